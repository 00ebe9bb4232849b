package servers

// Named-server names (README, allow_named_servers): JupyterHub 6.0's rule for new servers, a lowercase
// letter followed by lowercase letters, digits and '-', at most 30 characters, so that a name is
// safe in URLs, process and container names and Kubernetes object names. Servers created before
// under another name keep working (JupyterHub's allow_existing_invalid_named_servers "allow-start").

import (
	"fmt"
)

// serverNameMaxLen is the longest name a new named server may have.
const serverNameMaxLen = 30

// checkNewServerName returns an Invalid refusal (HTTP 400) saying why name cannot name a new server.
func checkNewServerName(name string) error {
	bad := func(why string) error {
		return refuse(Invalid, fmt.Sprintf("Invalid server_name %q: %s", name, why))
	}
	switch {
	case len(name) > serverNameMaxLen:
		return bad(fmt.Sprintf("at most %d characters", serverNameMaxLen))
	case name[0] < 'a' || name[0] > 'z':
		return bad("must start with a lowercase letter (a-z)")
	}
	for i := 1; i < len(name); i++ {
		c := name[i]
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '-' {
			return bad("may contain only lowercase letters, digits and '-'")
		}
	}
	return nil
}
