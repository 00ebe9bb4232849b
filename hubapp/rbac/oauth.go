package rbac

import (
	"slices"
	"strings"
)

// ResolveRequestedScopes decides which raw scopes of a request (an OAuth
// authorization, a server token) may be granted given the raw scopes held
// (the user's role scopes, or an OAuth client's allowed scopes), following
// scopes.py _resolve_requested_scopes:
//
//   - a requested scope also held verbatim is allowed;
//   - otherwise it is allowed when its expansion for owner and client lies
//     entirely within the expansion of have (`read:users!user=alice` when
//     `self` is held, `access:servers!server=alice/` under
//     `access:servers!user=alice`);
//   - when only part of its expansion is held, that part is added to
//     allowed as expanded scopes, and the scope stays in disallowed.
//
// Both results are sorted. Unknown scopes are an error naming them.
func (r *Registry) ResolveRequestedScopes(requested, have []string, owner Owner, client Client, groups GroupLookup) (allowed, disallowed []string, err error) {
	if err := r.Validate(requested); err != nil {
		return nil, nil, err
	}
	if err := r.Validate(have); err != nil {
		return nil, nil, err
	}
	allowedSet := map[string]bool{}
	for _, s := range requested {
		if slices.Contains(have, s) {
			allowedSet[s] = true
		} else if !slices.Contains(disallowed, s) {
			disallowed = append(disallowed, s)
		}
	}
	if len(disallowed) == 0 {
		return sortedSet(allowedSet), nil, nil
	}
	expandedHave, err := r.ExpandFor(have, owner, client)
	if err != nil {
		return nil, nil, err
	}
	expandedAllowed, err := r.ExpandFor(sortedSet(allowedSet), owner, client)
	if err != nil {
		return nil, nil, err
	}
	slices.Sort(disallowed)
	var still []string
	for _, scope := range disallowed {
		want, err := r.ExpandFor([]string{scope}, owner, client)
		if err != nil {
			return nil, nil, err
		}
		// only what is not granted already (compared as strings, as
		// JupyterHub does)
		granted := expandedAllowed.Strings()
		var rest []string
		for _, s := range want.Strings() {
			if _, found := slices.BinarySearch(granted, s); !found {
				rest = append(rest, s)
			}
		}
		restSet, err := r.ParseSet(rest)
		if err != nil {
			return nil, nil, err
		}
		inter := Intersect(restSet, expandedHave, groups)
		switch {
		case inter.Equal(restSet):
			allowedSet[scope] = true
		case !inter.IsEmpty():
			for _, s := range inter.Strings() {
				allowedSet[s] = true
			}
			still = append(still, scope)
		default:
			still = append(still, scope)
		}
		if expandedAllowed, err = r.ExpandFor(sortedSet(allowedSet), owner, client); err != nil {
			return nil, nil, err
		}
	}
	return sortedSet(allowedSet), still, nil
}

func sortedSet(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// ServerTokenScopes prepares the raw scopes requested for a single-user
// server's API token (JUPYTERHUB_API_TOKEN) as user.py spawn does: nil
// requested means the server role's scopes; bare `!server` filters are
// bound to "<user>/<server>"; and `users:activity!user` is added unless
// activity is already covered, since the server cannot report activity
// without it. Resolve the result against the user's role scopes (plus
// "inherit") with [Registry.ResolveRequestedScopes] before creating the
// token.
func ServerTokenScopes(requested []string, user, server string) []string {
	if requested == nil {
		requested = DefaultRoles()[2].Scopes
	}
	full := user + "/" + server
	out := make([]string, 0, len(requested)+1)
	for _, s := range requested {
		if strings.HasSuffix(s, "!server") {
			s += "=" + full
		}
		out = append(out, s)
	}
	if !slices.ContainsFunc(out, func(s string) bool {
		return s == "users:activity!user" || s == "users:activity" || s == ScopeInherit
	}) {
		out = append(out, "users:activity!user")
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// ScopeDescription is one line of the OAuth consent page.
type ScopeDescription struct {
	// Scope is the scope name, without filter.
	Scope string `json:"scope"`
	// Description is the scope's description.
	Description string `json:"description"`
	// Filter says whose resources: "" (all), "only you", "user bob",
	// "server bob/gpu", "users in group staff", "service cull".
	Filter string `json:"filter"`
}

// Describe describes raw scopes for username's consent page
// (scopes.py describe_raw_scopes), in the order given. Unknown scopes are
// skipped.
func (r *Registry) Describe(raw []string, username string) []ScopeDescription {
	out := make([]ScopeDescription, 0, len(raw))
	for _, s := range raw {
		p, err := r.parse(s)
		if err != nil {
			continue
		}
		d := ScopeDescription{Scope: p.base, Description: r.defs[p.base].Description}
		switch {
		case p.kind == FilterNone:
		case p.bare && p.kind == FilterUser, p.kind == FilterUser && p.value == username:
			d.Filter = "only you"
		case p.kind == FilterGroup:
			d.Filter = "users in group " + p.value
		default:
			d.Filter = strings.TrimSpace(p.kind.String() + " " + p.value)
		}
		out = append(out, d)
	}
	return out
}
