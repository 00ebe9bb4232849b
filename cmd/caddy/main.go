// Command caddy is Caddy with every CaddyHub module plugged in.
package main

import (
	_ "time/tzdata"

	caddycmd "github.com/caddyserver/caddy/v2/cmd"

	_ "github.com/caddyserver/caddy/v2/modules/standard"

	_ "github.com/caddyhub/caddyhub"
)

func main() {
	caddycmd.Main()
}
