package web

// /hub/api/groups endpoints (docs/protocols.md, "Endpoints") and the groups of the configuration
// (JupyterHub's load_groups).

import (
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"go.uber.org/zap"

	"github.com/caddyhub/caddyhub/hubapp/rbac"
	"github.com/caddyhub/caddyhub/hubapp/store"
)

var groupModelTypes = map[string]string{"name": "str", "users": "list", "roles": "list"}

// validGroupName refuses names that cannot be a store key or a path segment.
func validGroupName(name string) bool {
	return name != "" && len(name) <= 255 && !strings.ContainsAny(name, "/\x00") && name != "." && name != ".."
}

// GET /groups
func (h *Hub) apiListGroups(q *apiRequest) error {
	lf, dec := q.scopes().ListGroups()
	if dec != rbac.Allowed {
		return q.forbidden("list:groups")
	}
	offset, limit, err := q.pagination()
	if err != nil {
		return err
	}
	var (
		items = []any{}
		total int
	)
	scopes := q.scopes()
	err = h.store.View(func(tx *store.Txn) error {
		var groups []*store.Group
		if lf.All() {
			var err error
			if groups, err = tx.Groups(offset, limit); err != nil {
				return err
			}
			if total, err = tx.CountGroups(); err != nil {
				return err
			}
		} else {
			var all []*store.Group
			for _, n := range lf.Groups() {
				g, err := tx.Group(n)
				if errors.Is(err, store.ErrNotFound) {
					continue
				} else if err != nil {
					return err
				}
				all = append(all, g)
			}
			total = len(all)
			groups = all[min(offset, len(all)):min(offset+limit, len(all))]
		}
		for _, g := range groups {
			if m := h.groupModel(scopes, g); m != nil {
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

// groupUsers turns requested user names into existing users' names (400 "No such user").
func (h *Hub) groupUsers(tx *store.Txn, names []string) ([]string, error) {
	out := make([]string, 0, len(names))
	for _, n := range names {
		norm, err := h.normalizeUsername(n)
		if err != nil {
			return nil, errStatus(http.StatusBadRequest, "No such user: %s", n)
		}
		if _, err := tx.User(norm); errors.Is(err, store.ErrNotFound) {
			return nil, errStatus(http.StatusBadRequest, "No such user: %s", norm)
		} else if err != nil {
			return nil, err
		}
		if !slices.Contains(out, norm) {
			out = append(out, norm)
		}
	}
	return out, nil
}

// POST /groups
func (h *Hub) apiCreateGroups(q *apiRequest) error {
	if err := q.need(rbac.Resource{}, "admin:groups"); err != nil {
		return err
	}
	data, err := q.bodyObject()
	if err != nil {
		return err
	}
	if list, ok := data["groups"].([]any); !ok || len(list) == 0 {
		return errStatus(http.StatusBadRequest, "Must specify at least one group to create")
	}
	names, err := stringList(data["groups"], "groups")
	if err != nil {
		return err
	}
	delete(data, "groups")
	if err := checkModel(data, groupModelTypes, "group"); err != nil {
		return err
	}
	var usernames []string
	if v, ok := data["users"]; ok {
		if usernames, err = stringList(v, "users"); err != nil {
			return err
		}
	}
	for _, n := range names {
		if !validGroupName(n) {
			return errStatus(http.StatusBadRequest, "Invalid group name: %q", n)
		}
	}
	var created []*store.Group
	err = h.store.Update(func(tx *store.Txn) error {
		created = created[:0]
		users, err := h.groupUsers(tx, usernames)
		if err != nil {
			return err
		}
		for _, n := range names {
			if _, err := tx.Group(n); err == nil || slices.ContainsFunc(created, func(g *store.Group) bool { return g.Name == n }) {
				return errStatus(http.StatusConflict, "Group %s already exists", n)
			} else if !errors.Is(err, store.ErrNotFound) {
				return err
			}
			g := &store.Group{Name: n}
			if err := tx.SetGroupMembers(g, users); err != nil {
				return err
			}
			created = append(created, g)
		}
		return nil
	})
	if err != nil {
		return err
	}
	out := make([]any, 0, len(created))
	for _, g := range created {
		h.logger.Info("group created", zap.String("group", g.Name), zap.Int("users", len(g.Users)))
		if m := h.groupModel(q.scopes(), g); m != nil {
			out = append(out, m)
		}
	}
	return q.writeJSON(http.StatusCreated, out)
}

// groupByName reads a group; 404 "No such group".
func (h *Hub) groupByName(name string) (*store.Group, error) {
	var g *store.Group
	err := h.store.View(func(tx *store.Txn) error {
		var err error
		g, err = tx.Group(name)
		return err
	})
	if errors.Is(err, store.ErrNotFound) {
		return nil, errStatus(http.StatusNotFound, "No such group: %s", name)
	}
	return g, err
}

// GET /groups/{name}
func (h *Hub) apiGetGroup(q *apiRequest) error {
	name := q.r.PathValue("name")
	if err := q.need(rbac.Resource{Group: name}, "read:groups", "read:groups:name", "read:roles:groups"); err != nil {
		return err
	}
	g, err := h.groupByName(name)
	if err != nil {
		return err
	}
	return q.writeJSON(http.StatusOK, h.groupModel(q.scopes(), g))
}

// POST /groups/{name}
func (h *Hub) apiCreateGroup(q *apiRequest) error {
	name := q.r.PathValue("name")
	if err := q.need(rbac.Resource{Group: name}, "admin:groups"); err != nil {
		return err
	}
	data, err := q.bodyObject()
	if err != nil {
		return err
	}
	if err := checkModel(data, groupModelTypes, "group"); err != nil {
		return err
	}
	if !validGroupName(name) {
		return errStatus(http.StatusBadRequest, "Invalid group name: %q", name)
	}
	var usernames []string
	if v, ok := data["users"]; ok {
		if usernames, err = stringList(v, "users"); err != nil {
			return err
		}
	}
	g := &store.Group{Name: name}
	err = h.store.Update(func(tx *store.Txn) error {
		if _, err := tx.Group(name); err == nil {
			return errStatus(http.StatusConflict, "Group %s already exists", name)
		} else if !errors.Is(err, store.ErrNotFound) {
			return err
		}
		users, err := h.groupUsers(tx, usernames)
		if err != nil {
			return err
		}
		g = &store.Group{Name: name}
		return tx.SetGroupMembers(g, users)
	})
	if err != nil {
		return err
	}
	h.logger.Info("group created", zap.String("group", name), zap.Int("users", len(g.Users)))
	return q.writeJSON(http.StatusCreated, h.groupModel(q.scopes(), g))
}

// DELETE /groups/{name}
func (h *Hub) apiDeleteGroup(q *apiRequest) error {
	name := q.r.PathValue("name")
	if err := q.need(rbac.Resource{Group: name}, "delete:groups"); err != nil {
		return err
	}
	err := h.store.Update(func(tx *store.Txn) error { return tx.DeleteGroup(name) })
	if errors.Is(err, store.ErrNotFound) {
		return errStatus(http.StatusNotFound, "No such group: %s", name)
	} else if err != nil {
		return err
	}
	h.logger.Info("group deleted", zap.String("group", name))
	return q.noContent()
}

// POST /groups/{name}/users
func (h *Hub) apiAddGroupUsers(q *apiRequest) error { return h.changeGroupUsers(q, true) }

// DELETE /groups/{name}/users
func (h *Hub) apiRemoveGroupUsers(q *apiRequest) error { return h.changeGroupUsers(q, false) }

func (h *Hub) changeGroupUsers(q *apiRequest, add bool) error {
	name := q.r.PathValue("name")
	if err := q.need(rbac.Resource{Group: name}, "groups"); err != nil {
		return err
	}
	if _, err := h.groupByName(name); err != nil {
		return err
	}
	data, err := q.bodyObject()
	if err != nil {
		return err
	}
	if data == nil {
		return errStatus(http.StatusBadRequest, "Invalid JSON data: null")
	}
	if err := checkModel(data, groupModelTypes, "group"); err != nil {
		return err
	}
	verb := "delete"
	if add {
		verb = "add"
	}
	if _, ok := data["users"]; !ok {
		return errStatus(http.StatusBadRequest, "Must specify users to %s", verb)
	}
	usernames, err := stringList(data["users"], "users")
	if err != nil {
		return err
	}
	var g *store.Group
	err = h.store.Update(func(tx *store.Txn) error {
		var err error
		if g, err = tx.Group(name); err != nil {
			return err
		}
		users, err := h.groupUsers(tx, usernames)
		if err != nil {
			return err
		}
		members := slices.Clone(g.Users)
		for _, u := range users {
			if add && !slices.Contains(members, u) {
				members = append(members, u)
			} else if !add {
				members = slices.DeleteFunc(members, func(m string) bool { return m == u })
			}
		}
		return tx.SetGroupMembers(g, members)
	})
	if err != nil {
		return err
	}
	h.logger.Info("group members changed", zap.String("group", name), zap.String("change", verb), zap.Int("users", len(usernames)))
	return q.writeJSON(http.StatusOK, h.groupModel(q.scopes(), g))
}

// PUT /groups/{name}/properties
func (h *Hub) apiSetGroupProperties(q *apiRequest) error {
	name := q.r.PathValue("name")
	if err := q.need(rbac.Resource{Group: name}, "groups"); err != nil {
		return err
	}
	if _, err := h.groupByName(name); err != nil {
		return err
	}
	v, err := q.body()
	if err != nil {
		return err
	}
	props, ok := v.(map[string]any)
	if !ok {
		return errStatus(http.StatusBadRequest, "Group properties must be a JSON dict, not %s", pyType(v))
	}
	var g *store.Group
	err = h.store.Update(func(tx *store.Txn) error {
		var err error
		if g, err = tx.Group(name); err != nil {
			return err
		}
		g.Properties = props
		return tx.PutGroup(g)
	})
	if err != nil {
		return err
	}
	return q.writeJSON(http.StatusOK, h.groupModel(q.scopes(), g))
}

// loadConfigGroups creates the groups of the configuration with their members (creating users) and
// properties, as JupyterHub's load_groups does at start. Members added through the API are kept.
func (h *Hub) loadConfigGroups() error {
	for _, gc := range h.cfg.Groups {
		if !validGroupName(gc.Name) {
			return fmt.Errorf("group %q: invalid name", gc.Name)
		}
		members := make([]string, 0, len(gc.Users))
		for _, n := range gc.Users {
			norm, err := h.normalizeUsername(n)
			if err != nil {
				return fmt.Errorf("group %s: user %q: %w", gc.Name, n, err)
			}
			if _, err := h.lookupOrEnsureUser(norm); err != nil {
				return fmt.Errorf("group %s: %w", gc.Name, err)
			}
			members = append(members, norm)
		}
		err := h.store.Update(func(tx *store.Txn) error {
			g, err := tx.Group(gc.Name)
			if errors.Is(err, store.ErrNotFound) {
				g = &store.Group{Name: gc.Name}
			} else if err != nil {
				return err
			}
			all := slices.Clone(g.Users)
			for _, m := range members {
				if !slices.Contains(all, m) {
					all = append(all, m)
				}
			}
			if gc.Properties != nil {
				g.Properties = gc.Properties
			}
			return tx.SetGroupMembers(g, all)
		})
		if err != nil {
			return fmt.Errorf("loading group %s: %w", gc.Name, err)
		}
	}
	return nil
}
