// Package standard registers the spawners that ship with CaddyHub:
// jupyterhub.spawners.localprocess and jupyterhub.spawners.simple.
// Blank-import it in the build (cmd/caddy) or in the hub app.
package standard

import (
	_ "github.com/caddyhub/caddyhub/spawners/localprocess"
	_ "github.com/caddyhub/caddyhub/spawners/simple"
)
