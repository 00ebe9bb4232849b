package web

// The token page's scope checklist: the scopes a user may put on a token they request are the
// ones they hold (the REST API refuses any other: Not assigning requested scopes … not held).

import (
	"strings"

	"github.com/caddyhub/caddyhub/hubapp/rbac"
)

// scopeChoice is one checkbox of the token page's scope list.
type scopeChoice struct {
	Scope       string // expanded scope, as the REST API takes it ("read:users!user=alice")
	Description string // the scope's description, "" for none
}

// tokenScopeChoices lists the page user's expanded scopes with their descriptions, sorted. Scopes
// that only identify the holder (read:users:name!user=<self> and the like) are kept: a token
// narrowed to them is the "who am I" token of JupyterHub's docs.
func (h *Hub) tokenScopeChoices(pr *pageRequest) []scopeChoice {
	reg := h.scopeRegistry()
	held := h.pageScopes(pr).Strings()
	out := make([]scopeChoice, 0, len(held))
	for _, s := range held {
		base, _, _ := strings.Cut(s, "!")
		c := scopeChoice{Scope: s}
		if def, ok := reg.Definition(base); ok {
			c.Description = def.Description
		}
		out = append(out, c)
	}
	return out
}

// scopeRegistry is the registry of the current generation's RBAC engine (custom scopes
// included), or the built-in one before the API state exists.
func (h *Hub) scopeRegistry() *rbac.Registry {
	if st := h.apiState(); st != nil && st.engine != nil {
		return st.engine.Registry()
	}
	return rbac.Builtin()
}

// tokenScopesText is a token's requested scopes as the token table shows them: "all your
// permissions" for a token that inherits its owner's (no scopes, or the inherit marker).
func tokenScopesText(scopes []string) string {
	if len(scopes) == 0 || (len(scopes) == 1 && scopes[0] == rbac.ScopeInherit) {
		return "all your permissions"
	}
	return strings.Join(scopes, " ")
}
