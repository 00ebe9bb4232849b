package web

// /hub/api/users endpoints (docs/protocols.md, "Endpoints"). Server start/stop and activity are in
// api_servers.go.

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sort"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/caddyhub/caddyhub/auth"
	"github.com/caddyhub/caddyhub/hubapp/rbac"
	"github.com/caddyhub/caddyhub/hubapp/store"
)

// userModelTypes are the keys a user model in a request may have (apihandlers/base.py).
var userModelTypes = map[string]string{"name": "str", "admin": "bool", "groups": "list", "roles": "list", "auth_state": "dict"}

// normalizeUsername normalizes a name as the authenticator does (lower case, username_map,
// username_pattern); without an authenticator, the common rules.
func (h *Hub) normalizeUsername(name string) (string, error) {
	if h.authn != nil && h.authn.Common() != nil {
		return h.authn.Common().Normalize(name)
	}
	return auth.NormalizeUsername(name)
}

// requesterIsAdmin reports whether the requester's owner is an admin (GHSA-9x4q-3gxw-849f: holding
// admin:users is not being an admin).
func (q *apiRequest) requesterIsAdmin() bool {
	switch {
	case q.id == nil:
		return false
	case q.id.User != nil:
		if q.id.User.Admin {
			return true
		}
		roles, err := q.h.userRoleNames(q.id.User, true)
		return err == nil && slices.Contains(roles, rbac.RoleAdmin)
	case q.id.Service != nil:
		return q.id.Service.Admin || slices.Contains(q.h.serviceRoleNames(q.id.Service), rbac.RoleAdmin)
	}
	return false
}

func includeStopped(r *http.Request) bool {
	v := strings.ToLower(r.URL.Query().Get("include_stopped_servers"))
	return r.URL.Query().Has("include_stopped_servers") && v != "0" && v != "false"
}

// GET /users
func (h *Hub) apiListUsers(q *apiRequest) error {
	lf, dec := q.scopes().ListUsers()
	if dec != rbac.Allowed {
		return q.forbidden("list:users")
	}
	qs := q.r.URL.Query()
	state := qs.Get("state")
	if state != "" && state != "active" && state != "ready" && state != "inactive" {
		return errStatus(http.StatusBadRequest, "Unrecognized state filter: '%s'", state)
	}
	sortKey := qs.Get("sort")
	desc := strings.HasPrefix(sortKey, "-")
	switch strings.TrimPrefix(sortKey, "-") {
	case "", "id", "name", "last_activity":
	default:
		return errStatus(http.StatusBadRequest, "sort must be one of id, name, last_activity, with optional '-' prefix, not %q", sortKey)
	}
	offset, limit, err := q.pagination()
	if err != nil {
		return err
	}
	nameFilter := strings.ToLower(qs.Get("name_filter"))
	stopped := includeStopped(q.r)
	scopes := q.scopes()

	var (
		items []any
		total int
	)
	idx := h.userIndex()
	err = h.store.View(func(tx *store.Txn) error {
		sel, err := h.newUserSelection(tx, nameFilter, state, true)
		if err != nil {
			return err
		}
		// Candidate names in name order.
		var names []string
		byName := strings.TrimPrefix(sortKey, "-") != "id" && strings.TrimPrefix(sortKey, "-") != "last_activity"
		simple := lf.All() && nameFilter == "" && state == "" && byName
		switch {
		case simple && idx != nil:
			// Unfiltered, name order: a page of the in-memory index.
			page, n := idx.page(offset, limit, desc)
			total = n
			items = make([]any, 0, len(page))
			for _, name := range page {
				u, err := tx.User(name)
				if errors.Is(err, store.ErrNotFound) {
					continue
				} else if err != nil {
					return err
				}
				if m, err := h.userRow(tx, scopes, u, stopped); err != nil {
					return err
				} else if m != nil {
					items = append(items, m)
				}
			}
			return nil
		case simple && !desc:
			// Unfiltered, name order: page with key-only skipping.
			users, err := tx.Users(offset, limit)
			if err != nil {
				return err
			}
			if q.acceptsPagination() {
				if total, err = tx.CountUsers(); err != nil {
					return err
				}
			}
			items = make([]any, 0, len(users))
			for _, u := range users {
				if m, err := h.userRow(tx, scopes, u, stopped); err != nil {
					return err
				} else if m != nil {
					items = append(items, m)
				}
			}
			return nil
		case !lf.All():
			set := map[string]bool{}
			for _, n := range lf.Users() {
				set[n] = true
			}
			for _, g := range lf.Groups() {
				grp, err := tx.Group(g)
				if errors.Is(err, store.ErrNotFound) {
					continue
				} else if err != nil {
					return err
				}
				for _, n := range grp.Users {
					set[n] = true
				}
			}
			for n := range set {
				if sel.keep(n) {
					names = append(names, n)
				}
			}
			slices.Sort(names)
		default:
			if names, err = sel.names(tx, idx); err != nil {
				return err
			}
		}
		var users []*store.User
		switch strings.TrimPrefix(sortKey, "-") {
		case "id", "last_activity":
			// Sorting by creation or activity needs every candidate's record.
			users = make([]*store.User, 0, len(names))
			for _, n := range names {
				u, err := tx.User(n)
				if errors.Is(err, store.ErrNotFound) {
					continue
				} else if err != nil {
					return err
				}
				users = append(users, u)
			}
			if strings.TrimPrefix(sortKey, "-") == "id" {
				sort.SliceStable(users, func(i, j int) bool { return users[i].Created.Before(users[j].Created) })
			} else {
				acts := make(map[string]time.Time, len(users))
				for _, u := range users {
					acts[u.Name] = h.userActivity(tx, u)
				}
				sort.SliceStable(users, func(i, j int) bool { return acts[users[i].Name].Before(acts[users[j].Name]) })
			}
			if desc {
				slices.Reverse(users)
			}
			total = len(users)
			users = users[min(offset, len(users)):min(offset+limit, len(users))]
		default:
			if desc {
				slices.Reverse(names)
			}
			total = len(names)
			for _, n := range names[min(offset, len(names)):min(offset+limit, len(names))] {
				u, err := tx.User(n)
				if errors.Is(err, store.ErrNotFound) {
					continue
				} else if err != nil {
					return err
				}
				users = append(users, u)
			}
		}
		items = make([]any, 0, len(users))
		for _, u := range users {
			servers, err := tx.Servers(u.Name)
			if err != nil {
				return err
			}
			if state == "ready" && !hasReadyServer(servers) {
				continue // routed but not (or no longer) ready: JupyterHub's post-filter
			}
			if m := h.userModel(scopes, u, servers, stopped); m != nil {
				items = append(items, m)
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	return q.paginated(items, offset, limit, total)
}

// userRow builds one user's model inside a listing transaction.
func (h *Hub) userRow(tx *store.Txn, scopes rbac.Set, u *store.User, stopped bool) (map[string]any, error) {
	servers, err := tx.Servers(u.Name)
	if err != nil {
		return nil, err
	}
	m := h.userModel(scopes, u, servers, stopped)
	if m == nil {
		return nil, nil
	}
	return m, nil
}

// userActivity is max(stored, route activity of the user's active servers).
func (h *Hub) userActivity(tx *store.Txn, u *store.User) time.Time {
	servers, _ := tx.Servers(u.Name)
	return h.lastActivityOf(u, servers)
}

// fullUserModel reads a user's servers and builds the model.
func (h *Hub) fullUserModel(scopes rbac.Set, u *store.User, stopped bool) (map[string]any, error) {
	var m map[string]any
	err := h.store.View(func(tx *store.Txn) error {
		var err error
		m, err = h.userRow(tx, scopes, u, stopped)
		return err
	})
	return m, err
}

// POST /users
func (h *Hub) apiCreateUsers(q *apiRequest) error {
	if err := q.need(rbac.Resource{}, "admin:users"); err != nil {
		return err
	}
	data, err := q.bodyObject()
	if err != nil {
		return err
	}
	rawNames, ok := data["usernames"]
	if list, isList := rawNames.([]any); !ok || !isList || len(list) == 0 {
		return errStatus(http.StatusBadRequest, "Must specify at least one user to create")
	}
	usernames, err := stringList(rawNames, "usernames")
	if err != nil {
		return err
	}
	delete(data, "usernames")
	if err := checkModel(data, userModelTypes, "user"); err != nil {
		return err
	}
	admin, _ := data["admin"].(bool)
	if err := rbac.CheckAdminChange(q.requesterIsAdmin(), false, admin); err != nil {
		return errStatus(http.StatusForbidden, "Only admins can grant admin permissions")
	}
	var invalid, toCreate []string
	for _, n := range usernames {
		norm, err := h.normalizeUsername(n)
		if err != nil {
			invalid = append(invalid, n)
			continue
		}
		if !slices.Contains(toCreate, norm) {
			toCreate = append(toCreate, norm)
		}
	}
	if len(invalid) == 1 {
		return errStatus(http.StatusBadRequest, "Invalid username: %s", invalid[0])
	} else if len(invalid) > 1 {
		return errStatus(http.StatusBadRequest, "Invalid usernames: %s", strings.Join(invalid, ", "))
	}
	// One transaction per chunk: a transaction holds only so many writes, and JupyterHub too creates
	// the users one by one, so a failure part-way leaves the earlier ones created.
	var created []*store.User
	for chunk := range slices.Chunk(toCreate, createUsersChunk) {
		if h.createsSystemUsers() {
			// System accounts before hub users: a failure leaves this chunk's users uncreated
			// (earlier chunks stay, as JupyterHub's one-by-one creation would leave them).
			missing, err := h.missingUsers(chunk)
			if err != nil {
				return err
			}
			for _, n := range missing {
				if err := h.ensureSystemUser(q.r.Context(), n); err != nil {
					return errStatus(http.StatusBadRequest, "Failed to create user %s: %s", n, errors.Unwrap(err))
				}
			}
		}
		var made []*store.User
		err = h.store.Update(func(tx *store.Txn) error {
			made = made[:0]
			for _, n := range chunk {
				if _, err := tx.User(n); err == nil {
					continue
				} else if !errors.Is(err, store.ErrNotFound) {
					return err
				}
				u := &store.User{Name: n, Admin: admin}
				if err := tx.CreateUser(u); err != nil {
					return err
				}
				made = append(made, u)
			}
			return nil
		})
		if err != nil {
			return err
		}
		for _, u := range made {
			h.noteUser(u.Name, false)
		}
		created = append(created, made...)
	}
	if len(created) == 0 {
		return errStatus(http.StatusConflict, "All %d users already exist", len(usernames))
	}
	out := make([]any, 0, len(created))
	for _, u := range created {
		h.logger.Info("user created through the api", zap.String("user", u.Name), zap.Bool("admin", u.Admin))
		if m, err := h.fullUserModel(q.scopes(), u, false); err != nil {
			return err
		} else if m != nil {
			out = append(out, m)
		}
	}
	return q.writeJSON(http.StatusCreated, out)
}

// createUsersChunk is how many users POST /users creates per transaction.
const createUsersChunk = 1000

// GET /users/{name}
func (h *Hub) apiGetUser(q *apiRequest) error {
	name := q.r.PathValue("name")
	if err := q.need(rbac.UserResource(name), "read:users", "read:users:name", "read:servers", "read:users:groups", "read:users:activity", "read:roles:users"); err != nil {
		return err
	}
	u, err := q.existingUser(name)
	if err != nil {
		return err
	}
	m, err := h.fullUserModel(q.scopes(), u, includeStopped(q.r))
	if err != nil {
		return err
	}
	if m == nil {
		return errStatus(http.StatusNotFound, "No access to resources or resources not found")
	}
	return q.writeJSON(http.StatusOK, m)
}

// POST /users/{name}
func (h *Hub) apiCreateUser(q *apiRequest) error {
	name := q.r.PathValue("name")
	if err := q.need(rbac.UserResource(name), "admin:users"); err != nil {
		return err
	}
	data, err := q.bodyObject()
	if err != nil {
		return err
	}
	if err := checkModel(data, userModelTypes, "user"); err != nil {
		return err
	}
	admin, _ := data["admin"].(bool)
	if err := rbac.CheckAdminChange(q.requesterIsAdmin(), false, admin); err != nil {
		return errStatus(http.StatusForbidden, "Only admins can grant admin permissions")
	}
	if h.checkUsername(name) != nil {
		return errStatus(http.StatusBadRequest, "Invalid username: %s", name)
	}
	if h.createsSystemUsers() {
		// The system account first, so that a failure leaves no hub user.
		if missing, err := h.missingUsers([]string{name}); err != nil {
			return err
		} else if len(missing) == 0 {
			return errStatus(http.StatusConflict, "User %s already exists", name)
		}
		if err := h.ensureSystemUser(q.r.Context(), name); err != nil {
			return errStatus(http.StatusBadRequest, "Failed to create user %s: %s", name, errors.Unwrap(err))
		}
	}
	u := &store.User{Name: name, Admin: admin}
	err = h.store.Update(func(tx *store.Txn) error { return tx.CreateUser(u) })
	if errors.Is(err, store.ErrExists) {
		return errStatus(http.StatusConflict, "User %s already exists", name)
	} else if err != nil {
		return err
	}
	h.noteUser(name, false)
	h.logger.Info("user created through the api", zap.String("user", name), zap.Bool("admin", admin))
	m, err := h.fullUserModel(q.scopes(), u, false)
	if err != nil {
		return err
	}
	return q.writeJSON(http.StatusCreated, m)
}

// PATCH /users/{name}
func (h *Hub) apiPatchUser(q *apiRequest) error {
	name := q.r.PathValue("name")
	if err := q.need(rbac.UserResource(name), "admin:users"); err != nil {
		return err
	}
	target, err := q.existingUser(name)
	if err != nil {
		return err
	}
	data, err := q.bodyObject()
	if err != nil {
		return err
	}
	if data == nil {
		return errStatus(http.StatusBadRequest, "Invalid JSON data: null")
	}
	if err := checkModel(data, userModelTypes, "user"); err != nil {
		return err
	}
	admin, setAdmin := data["admin"].(bool)
	var roles []string
	if v, ok := data["roles"]; ok {
		if roles, err = stringList(v, "roles"); err != nil {
			return err
		}
	}
	grantsAdmin := (setAdmin && admin) || slices.Contains(roles, rbac.RoleAdmin)
	if err := rbac.CheckAdminChange(q.requesterIsAdmin(), target.Admin, grantsAdmin); err != nil {
		if errors.Is(err, rbac.ErrOnlyAdminsModifyAdmins) {
			return errStatus(http.StatusForbidden, "Only admins can modify other admins")
		}
		return errStatus(http.StatusForbidden, "Only admins can grant admin permissions")
	}
	eng := h.apiState().engine
	if roles != nil {
		for _, r := range roles {
			if _, ok := eng.Role(r); !ok {
				return errStatus(http.StatusBadRequest, "Role %s does not exist", r)
			}
		}
		// Handing out a role must not give more than the requester holds. Roles the user holds
		// already (user, configured ones, earlier grants) are not handed out by this request.
		held, err := h.userRoleNames(target, false)
		if err != nil {
			return err
		}
		added := slices.DeleteFunc(slices.Clone(roles), func(r string) bool { return slices.Contains(held, r) })
		// OwnerScopes, not RoleScopes expanded: the admin role grants what the engine says
		// (without access:servers unless admin_access is on).
		want, err := eng.OwnerScopes(rbac.UserOwner(name), added)
		if err != nil {
			return errStatus(http.StatusBadRequest, "%s", err)
		}
		if err := rbac.CheckSubset(want, q.scopes(), h.groupLookup()); err != nil {
			return errStatus(http.StatusForbidden, "Cannot assign roles with scopes the requester does not hold: %s", err)
		}
	}
	var groups []string
	if v, ok := data["groups"]; ok {
		if groups, err = stringList(v, "groups"); err != nil {
			return err
		}
	}
	newName := name
	if v, ok := data["name"].(string); ok && v != name {
		if h.checkUsername(v) != nil {
			return errStatus(http.StatusBadRequest, "Invalid username: %s", v)
		}
		newName = v
	}
	err = h.store.Update(func(tx *store.Txn) error {
		if newName != name {
			if err := tx.RenameUser(name, newName); errors.Is(err, store.ErrExists) {
				return errStatus(http.StatusBadRequest, "User %s already exists, username must be unique", newName)
			} else if errors.Is(err, store.ErrActive) {
				return errStatus(http.StatusBadRequest, "User %s has active servers; stop them before renaming", name)
			} else if err != nil {
				return err
			}
		}
		u, err := tx.User(newName)
		if err != nil {
			return err
		}
		if setAdmin {
			u.Admin = admin
		}
		if roles != nil {
			u.Roles = roles
		}
		if v, ok := data["auth_state"].(map[string]any); ok {
			if err := h.setAuthState(u, v); err != nil {
				return err
			}
		}
		if err := tx.PutUser(u); err != nil {
			return err
		}
		if groups != nil {
			return setUserGroups(tx, u, groups)
		}
		return nil
	})
	if err != nil {
		return err
	}
	q.forget(name)
	if newName != name {
		h.noteUser(name, true)
		h.noteUser(newName, false)
	}
	u, err := q.user(newName)
	if err != nil {
		return err
	}
	h.logger.Info("user changed through the api", zap.String("user", name), zap.String("new_name", newName))
	m, err := h.fullUserModel(q.scopes(), u, false)
	if err != nil {
		return err
	}
	if m == nil {
		m = map[string]any{}
	}
	var as any
	if st := h.authState(u); st != nil {
		as = st
	}
	m["auth_state"] = as
	return q.writeJSON(http.StatusOK, m)
}

// setUserGroups makes u a member of exactly groups (which must exist).
func setUserGroups(tx *store.Txn, u *store.User, groups []string) error {
	for _, g := range groups {
		if _, err := tx.Group(g); errors.Is(err, store.ErrNotFound) {
			return errStatus(http.StatusBadRequest, "No such group: %s", g)
		} else if err != nil {
			return err
		}
	}
	for _, g := range slices.Concat(u.Groups, groups) {
		grp, err := tx.Group(g)
		if errors.Is(err, store.ErrNotFound) {
			continue
		} else if err != nil {
			return err
		}
		members := slices.DeleteFunc(slices.Clone(grp.Users), func(n string) bool { return n == u.Name })
		if slices.Contains(groups, g) {
			members = append(members, u.Name)
		}
		if slices.Equal(members, grp.Users) {
			continue
		}
		if err := tx.SetGroupMembers(grp, members); err != nil {
			return err
		}
	}
	return nil
}

// DELETE /users/{name}
func (h *Hub) apiDeleteUser(q *apiRequest) error {
	name := q.r.PathValue("name")
	if err := q.need(rbac.UserResource(name), "delete:users"); err != nil {
		return err
	}
	u, err := q.existingUser(name)
	if err != nil {
		return err
	}
	if q.id != nil && q.id.User != nil && q.id.User.Name == name {
		return errStatus(http.StatusBadRequest, "Cannot delete yourself!")
	}
	if err := h.stopAllServers(q.r.Context(), u); err != nil {
		return err
	}
	if err := h.deleteUser(name); err != nil {
		return err
	}
	h.logger.Info("user deleted through the api", zap.String("user", name))
	return q.noContent()
}

// stopAllServers stops every active server of u through the spawn flow; 400 while a stop is pending.
func (h *Hub) stopAllServers(ctx context.Context, u *store.User) error {
	var servers []*store.Server
	if err := h.store.View(func(tx *store.Txn) error {
		var err error
		servers, err = tx.Servers(u.Name)
		return err
	}); err != nil {
		return err
	}
	for _, s := range servers {
		if s.Pending == "stop" {
			return errStatus(http.StatusBadRequest, "%s's server is in the process of stopping, please wait.", u.Name)
		}
		if !s.Active() {
			continue
		}
		if err := h.callStopServer(ctx, u, s.Name); err != nil {
			return fmt.Errorf("stopping server %q of %s: %w", s.Name, u.Name, err)
		}
	}
	return nil
}

// deleteUser removes the user's routes and records.
func (h *Hub) deleteUser(name string) error {
	var servers []*store.Server
	if err := h.store.View(func(tx *store.Txn) error {
		var err error
		servers, err = tx.Servers(name)
		return err
	}); err != nil {
		return err
	}
	for _, s := range servers {
		if _, err := h.table.Delete(h.routeKey(name, s.Name)); err != nil {
			return err
		}
	}
	h.deleteUserStorage(name, servers) // keptstate.go
	if err := h.store.Update(func(tx *store.Txn) error { return tx.DeleteUser(name) }); err != nil {
		return err
	}
	h.noteUser(name, true)
	return nil
}

// callStopServer stops a server through the spawn engine (package servers).
func (h *Hub) callStopServer(ctx context.Context, u *store.User, server string) error {
	return h.stopServer(ctx, u, server)
}

// GET /users/{name}/servers/{server} (JupyterHub 6.0)
func (h *Hub) apiGetServer(q *apiRequest) error {
	name, server := q.r.PathValue("name"), q.r.PathValue("server")
	if err := q.need(rbac.ServerResource(name, server), "read:servers"); err != nil {
		return err
	}
	u, err := q.existingUser(name)
	if err != nil {
		return err
	}
	var s *store.Server
	err = h.store.View(func(tx *store.Txn) error {
		var err error
		s, err = tx.Server(name, server)
		return err
	})
	if errors.Is(err, store.ErrNotFound) {
		return errStatus(http.StatusNotFound, "%s has no server named %s", name, server)
	} else if err != nil {
		return err
	}
	_, state := q.scopes().ServerVisibility(name+"/"+server, u.Groups)
	return q.writeJSON(http.StatusOK, h.serverModel(s, state))
}

// POST /users/{name}/admin-access: deprecated since 0.8 (docs/protocols.md, "Endpoints").
// JupyterHub 3.0 answers 403 unless admin_access is on, and then 200 for an existing user: the
// access itself goes through OAuth, where the admin role's access:servers lets the admin in.
func (h *Hub) apiAdminAccess(q *apiRequest) error {
	name := q.r.PathValue("name")
	if err := q.need(rbac.UserResource(name), "servers"); err != nil {
		return err
	}
	if !h.cfg.AdminAccess {
		return errStatus(http.StatusForbidden, "admin access to user servers disabled")
	}
	if _, err := q.existingUser(name); err != nil {
		return err
	}
	q.w.WriteHeader(http.StatusOK)
	return nil
}
