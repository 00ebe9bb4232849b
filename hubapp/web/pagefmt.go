package web

import (
	"strings"

	"github.com/caddyhub/caddyhub/hubapp/store"
)

// failureText is a spawn failure as the pages say it: once, without the "Spawn failed: " prefixes
// that JupyterHub's progress protocol (and wrapped errors) put in front of the cause.
func failureText(s string) string {
	s = strings.TrimSpace(s)
	for {
		lower := strings.ToLower(s)
		if !strings.HasPrefix(lower, "spawn failed:") {
			break
		}
		s = strings.TrimSpace(s[len("spawn failed:"):])
	}
	return s
}

// lastProfile is the profile a server record last started with, "" for none.
func lastProfile(srv *store.Server) string {
	if srv == nil {
		return ""
	}
	p, _ := srv.UserOptions["profile"].(string)
	return p
}
