package hubapp

import "strings"

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
