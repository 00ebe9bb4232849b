// Package standard registers the spawners that ship with CaddyHub:
// jupyterhub.spawners.localprocess, jupyterhub.spawners.simple and
// jupyterhub.spawners.docker. Blank-import it in the build (cmd/caddy) or in
// the hub app.
package standard

import (
	_ "github.com/caddyhub/caddyhub/spawners/docker"
	_ "github.com/caddyhub/caddyhub/spawners/localprocess"
	_ "github.com/caddyhub/caddyhub/spawners/simple"
)
