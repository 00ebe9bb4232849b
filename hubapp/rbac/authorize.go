package rbac

import (
	"errors"
	"net/http"
)

// Decision is the outcome of an authorization check.
type Decision uint8

// Decisions, mapped to HTTP status codes by [Decision.Status].
const (
	// Forbidden: none of the required scopes is held at all (403).
	Forbidden Decision = iota
	// NotFound: a required scope is held, but filtered to other resources
	// (404, so as not to reveal whether the resource exists).
	NotFound
	// Allowed: go ahead.
	Allowed
)

// Status returns the HTTP status for the decision: 200, 403 or 404.
func (d Decision) Status() int {
	switch d {
	case Allowed:
		return http.StatusOK
	case NotFound:
		return http.StatusNotFound
	}
	return http.StatusForbidden
}

// String returns "allowed", "forbidden" or "not found".
func (d Decision) String() string {
	switch d {
	case Allowed:
		return "allowed"
	case NotFound:
		return "not found"
	}
	return "forbidden"
}

// Authorize is JupyterHub's needs_scope check (5.5.1) for an endpoint that
// requires any one of scopes on res:
//
//   - Allowed if some scope allows res ([Set.Allows]);
//   - for an endpoint about a resource (res not zero), NotFound if one of
//     the scopes is held but filtered to other resources;
//   - Forbidden otherwise. In particular an endpoint without a resource
//     (POST /users, POST /groups, GET /proxy) needs an unfiltered scope:
//     `admin:users!group=x` does not let anyone create users
//     (GHSA-69wv-m5fw-2fhp; JupyterHub < 5.5.1 let any filtered scope in).
//
// Listing endpoints use [Set.AuthorizeList] instead.
func (s Set) Authorize(scopes []string, res Resource, groupsOfUser []string) Decision {
	for _, sc := range scopes {
		if s.Allows(sc, res, groupsOfUser) {
			return Allowed
		}
	}
	if !res.IsZero() {
		for _, sc := range scopes {
			if held, _ := s.Has(sc); held {
				return NotFound
			}
		}
	}
	return Forbidden
}

// AuthorizeList is the check for listing endpoints (needs_scope with
// post_filter=True): Allowed if any of scopes is held, filtered or not; the
// handler then narrows the rows with [Set.ListUsers], [Set.ListGroups] or
// [Set.ListServices].
func (s Set) AuthorizeList(scopes ...string) Decision {
	for _, sc := range scopes {
		if held, _ := s.Has(sc); held {
			return Allowed
		}
	}
	return Forbidden
}

// ListFilter says which rows a filtered listing scope may see. The zero
// ListFilter sees nothing.
type ListFilter struct {
	f *filter
}

// All reports whether every row is visible.
func (l ListFilter) All() bool { return l.f != nil && l.f.all }

// Users returns the user names a user listing is restricted to, sorted
// (nil with All).
func (l ListFilter) Users() []string {
	if l.f == nil {
		return nil
	}
	return sortedKeys(l.f.users)
}

// Groups returns the group names the listing is restricted to (a user
// listing: their members), sorted.
func (l ListFilter) Groups() []string {
	if l.f == nil {
		return nil
	}
	return sortedKeys(l.f.groups)
}

// Services returns the service names a service listing is restricted to,
// sorted.
func (l ListFilter) Services() []string {
	if l.f == nil {
		return nil
	}
	return sortedKeys(l.f.services)
}

// IncludesUser reports whether a user listing shows user (a member of
// groupsOfUser). It does not allocate.
func (l ListFilter) IncludesUser(user string, groupsOfUser []string) bool {
	if l.f == nil {
		return false
	}
	if l.f.all || contains(l.f.users, user) {
		return true
	}
	return anyIn(groupsOfUser, l.f.groups)
}

// IncludesGroup reports whether a group listing shows group.
func (l ListFilter) IncludesGroup(group string) bool {
	return l.f != nil && (l.f.all || contains(l.f.groups, group))
}

// IncludesService reports whether a service listing shows service.
func (l ListFilter) IncludesService(service string) bool {
	return l.f != nil && (l.f.all || contains(l.f.services, service))
}

// ListUsers is GET /hub/api/users: Allowed with the rows `list:users` may
// see (its !user= and !group= filters). Forbidden without the scope, and
// also when it is filtered by server or service: such a filter must not
// widen to every user.
func (s Set) ListUsers() (ListFilter, Decision) {
	return s.list("list:users", FilterUser, FilterGroup)
}

// ListGroups is GET /hub/api/groups: only !group= filters are valid.
func (s Set) ListGroups() (ListFilter, Decision) {
	return s.list("list:groups", FilterGroup)
}

// ListServices is GET /hub/api/services: rows by !service= filters; as in
// JupyterHub, other filters show no row rather than fail.
func (s Set) ListServices() (ListFilter, Decision) {
	f := s.m["list:services"]
	if f == nil {
		return ListFilter{}, Forbidden
	}
	if f.all {
		return ListFilter{f: f}, Allowed
	}
	return ListFilter{f: &filter{services: f.services}}, Allowed
}

func (s Set) list(scope string, valid ...FilterKind) (ListFilter, Decision) {
	f := s.m[scope]
	if f == nil {
		return ListFilter{}, Forbidden
	}
	if !f.all {
	kinds:
		for _, k := range filterKinds {
			if len(f.names(k)) == 0 {
				continue
			}
			for _, v := range valid {
				if k == v {
					continue kinds
				}
			}
			return ListFilter{}, Forbidden
		}
	}
	return ListFilter{f: f}, Allowed
}

// Errors of [CheckAdminChange].
var (
	// ErrOnlyAdminsGrantAdmin: a non-admin tried to create an admin or set
	// admin=true. JupyterHub answers 403 "Only admins can grant admin
	// permissions".
	ErrOnlyAdminsGrantAdmin = errors.New("only admins can grant admin permissions")
	// ErrOnlyAdminsModifyAdmins: a non-admin tried to change an admin.
	// JupyterHub answers 403 "Only admins can modify other admins".
	ErrOnlyAdminsModifyAdmins = errors.New("only admins can modify other admins")
)

// CheckAdminChange is the guard against GHSA-9x4q-3gxw-849f: holding
// `admin:users` is not being an admin. Before creating or modifying a user
// (POST /users, POST /users/{name}, PATCH /users/{name}) the handler calls
// it with whether the requester (the token's owner) is an admin, whether
// the target user is an admin now (false when creating), and whether the
// request sets admin=true. Non-admins get an error for status 403.
func CheckAdminChange(requesterIsAdmin, targetIsAdmin, grantsAdmin bool) error {
	if requesterIsAdmin {
		return nil
	}
	if targetIsAdmin {
		return ErrOnlyAdminsModifyAdmins
	}
	if grantsAdmin {
		return ErrOnlyAdminsGrantAdmin
	}
	return nil
}
