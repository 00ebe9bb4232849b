package web

import (
	"slices"
	"strings"
	"time"

	"github.com/caddyhub/caddyhub/hubapp/store"
)

// userSelection is the users a list shows: a name substring and a server state (JupyterHub's
// name_filter and state). GET /hub/api/users and the admin page share it.
type userSelection struct {
	needle string          // lower case; "" for any name
	state  string          // "", "active", "ready" or "inactive"
	active map[string]bool // users with an active server (ready: a routed one); nil without a state
}

// newUserSelection reads what the state filter needs: keys and memory only (active servers from
// the store's keys; with routedReady, ready = routed: the spawn flow adds the route just before it
// marks the server ready and removes it when the server stops). A ready list checks its rows'
// records (hasReadyServer), as JupyterHub post-filters; without routedReady every active user is a
// candidate and the caller checks them all.
func (h *Hub) newUserSelection(tx *store.Txn, nameFilter, state string, routedReady bool) (*userSelection, error) {
	sel := &userSelection{needle: strings.ToLower(nameFilter), state: state}
	if state == "" {
		return sel, nil
	}
	sel.active = map[string]bool{}
	err := tx.ActiveServerNames(func(user, server string) {
		if state != "ready" || !routedReady || h.table.Get(h.routeKey(user, server)) != nil {
			sel.active[user] = true
		}
	})
	if err != nil {
		return nil, err
	}
	return sel, nil
}

// keep reports whether the user named name is selected.
func (s *userSelection) keep(name string) bool {
	if s.needle != "" && !strings.Contains(strings.ToLower(name), s.needle) {
		return false
	}
	switch s.state {
	case "active", "ready":
		return s.active[name]
	case "inactive":
		return !s.active[name]
	}
	return true
}

// names returns the selected users' names in name order: from the active set for active and
// ready (O(running)), else from the in-memory index (idx, nil when not built) or the store.
func (s *userSelection) names(tx *store.Txn, idx *userIndex) ([]string, error) {
	var names []string
	switch {
	case s.state == "active" || s.state == "ready":
		for n := range s.active {
			if s.keep(n) {
				names = append(names, n)
			}
		}
		slices.Sort(names)
	case idx != nil:
		names = idx.filter(s.keep)
	default:
		if err := tx.UserNames("", func(n string) bool {
			if s.keep(n) {
				names = append(names, n)
			}
			return true
		}); err != nil {
			return nil, err
		}
	}
	return names, nil
}

// hasReadyServer reports whether one of servers is ready (the post-filter of state=ready).
func hasReadyServer(servers []*store.Server) bool {
	return slices.ContainsFunc(servers, func(s *store.Server) bool { return s.Ready })
}

// lastActivityOf is a user's last activity: the stored one or the latest of their servers' (as
// the proxy saw it), whichever is later.
func (h *Hub) lastActivityOf(u *store.User, servers []*store.Server) time.Time {
	t := u.LastActivity
	for _, s := range servers {
		if a := h.serverActivity(s); a.After(t) {
			t = a
		}
	}
	return t
}
