// Command caddy is Caddy with every CaddyHub module plugged in: Caddy's standard modules, as Caddy's
// own cmd/caddy has them (file_server, templates, forward_auth, tracing, acme_server, …), plus ours.
// Build it with the tags in README, "Build".
package main

import (
	caddycmd "github.com/caddyserver/caddy/v2/cmd"

	// Caddy's standard modules.
	_ "github.com/caddyserver/caddy/v2/modules/standard"

	// CaddyHub's modules.
	_ "github.com/caddyhub/caddyhub"
)

func main() {
	caddycmd.Main()
}
