package web

import "github.com/caddyhub/caddyhub/auth"

// checkUsername reports whether name can be a user's name as it stands, without normalizing it
// again (auth.Options.CheckUsername: username_map is applied once, to login names, as in
// JupyterHub, so a mapped name such as "b" of a→b, b→c is a valid user name although normalizing
// it would give "c"). Without an authenticator, the common rules.
func (h *Hub) checkUsername(name string) error {
	if h.authn != nil && h.authn.Common() != nil {
		return h.authn.Common().CheckUsername(name)
	}
	if n, err := auth.NormalizeUsername(name); err != nil || n != name {
		return auth.ErrInvalidUsername
	}
	return nil
}
