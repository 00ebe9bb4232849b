// Package caddyhub is JupyterHub as Caddy modules. Importing it (as cmd/caddy does, and as
// `xcaddy build --with github.com/caddyhub/caddyhub` does) registers every CaddyHub module: the
// `jupyterhub` app and HTTP handler, the authenticators and the spawners.
package caddyhub

import (
	_ "github.com/caddyhub/caddyhub/auth/dummy"
	_ "github.com/caddyhub/caddyhub/auth/github"
	_ "github.com/caddyhub/caddyhub/auth/oidc"
	_ "github.com/caddyhub/caddyhub/auth/pam"
	_ "github.com/caddyhub/caddyhub/caddymodule"
	_ "github.com/caddyhub/caddyhub/hubapp"
	_ "github.com/caddyhub/caddyhub/spawners/standard"
)
