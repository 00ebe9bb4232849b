package web

// JupyterHub 5's user-initiated sharing (docs/protocols.md, "Endpoints" and "RBAC: scopes and roles"):
// shares of a server with users and groups, share codes, and the scopes recipients hold through shares.
// Every listing here is paginated (the shares API always answers with the envelope).

import (
	"errors"
	"net/http"
	"slices"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/caddyhub/caddyhub/hubapp/rbac"
	"github.com/caddyhub/caddyhub/hubapp/store"
)

const (
	// shareCodeDefaultExpiry, shareCodeMinExpiry and shareCodeMaxExpiry are a share code's
	// expires_in default and bounds (JupyterHub's ShareCodeGrantRequest).
	shareCodeDefaultExpiry = 24 * time.Hour
	shareCodeMinExpiry     = time.Minute
	shareCodeMaxExpiry     = 365 * 24 * time.Hour
)

// registerShares registers the shares endpoints; a server path ending in "/" names the default server.
func (h *Hub) registerShares(handle func(pattern string, fn apiFunc)) {
	both := func(method, path string, fn apiFunc) {
		handle(method+" "+path+"/{server}", fn)
		handle(method+" "+path+"/{$}", fn)
	}
	handle("GET users/{name}/shared", h.apiUserShared)
	both("GET", "users/{name}/shared/{owner}", h.apiUserSharedOne)
	both("DELETE", "users/{name}/shared/{owner}", h.apiUserSharedDelete)
	handle("GET groups/{name}/shared", h.apiGroupShared)
	both("GET", "groups/{name}/shared/{owner}", h.apiGroupSharedOne)
	handle("GET shares/{owner}", h.apiShares)
	both("GET", "shares/{owner}", h.apiShares)
	both("DELETE", "groups/{name}/shared/{owner}", h.apiGroupSharedDelete)
	both("POST", "shares/{owner}", h.apiShareCreate)
	both("PATCH", "shares/{owner}", h.apiShareRevoke)
	both("DELETE", "shares/{owner}", h.apiSharesDelete)
	handle("GET share-codes/{owner}", h.apiShareCodes)
	both("GET", "share-codes/{owner}", h.apiShareCodes)
	both("POST", "share-codes/{owner}", h.apiShareCodeCreate)
	both("DELETE", "share-codes/{owner}", h.apiShareCodeDelete)
	// Only GET lists all of an owner's servers; changes name one server.
	for _, m := range []string{"POST", "PATCH", "DELETE"} {
		handle(m+" shares/{owner}", h.apiNeedsServer)
		if m != "PATCH" {
			handle(m+" share-codes/{owner}", h.apiNeedsServer)
		}
	}
}

// apiNeedsServer answers 405 to changes of /shares/{owner} and /share-codes/{owner}.
func (h *Hub) apiNeedsServer(q *apiRequest) error {
	return errStatus(http.StatusMethodNotAllowed, "Method Not Allowed")
}

// sharedScopes returns the expanded scopes a user holds through shares with it and its groups.
func (h *Hub) sharedScopes(u *store.User) ([]string, error) {
	var raw []string
	err := h.store.View(func(tx *store.Txn) error {
		recipients := []string{store.UserRecipient(u.Name)}
		for _, g := range u.Groups {
			recipients = append(recipients, store.GroupRecipient(g))
		}
		for _, rcp := range recipients {
			shares, err := tx.SharesWith(rcp, "", "", false)
			if err != nil {
				return err
			}
			for _, s := range shares {
				raw = append(raw, s.Scopes...)
			}
		}
		return nil
	})
	if err != nil || len(raw) == 0 {
		return nil, err
	}
	set, err := h.apiState().engine.Registry().Expand(raw)
	if err != nil {
		return nil, err
	}
	return set.Strings(), nil
}

// withShared adds a user's shared scopes to set (cookie-authenticated requests).
func (h *Hub) withShared(set rbac.Set, shared []string) (rbac.Set, error) {
	if len(shared) == 0 {
		return set, nil
	}
	s, err := h.apiState().engine.Registry().ParseSet(shared)
	if err != nil {
		return set, err
	}
	return set.Union(s), nil
}

// shareServerModel is the server part of share and share-code models.
func (h *Hub) shareServerModel(tx *store.Txn, owner, server string) map[string]any {
	ready := false
	if s, err := tx.Server(owner, server); err == nil {
		ready = s.Ready
	}
	return map[string]any{
		"user":  map[string]any{"name": owner},
		"name":  server,
		"url":   h.fullServerURL(owner, server),
		"ready": ready,
	}
}

func (h *Hub) shareModel(tx *store.Txn, s *store.Share) map[string]any {
	m := map[string]any{
		"server":     h.shareServerModel(tx, s.Owner, s.Server),
		"scopes":     s.Scopes,
		"user":       nil,
		"group":      nil,
		"kind":       "user",
		"created_at": isoTime(s.Created),
	}
	if s.Group != "" {
		m["kind"], m["group"] = "group", map[string]any{"name": s.Group}
	} else {
		m["user"] = map[string]any{"name": s.User}
	}
	return m
}

func (h *Hub) shareCodeModel(tx *store.Txn, c *store.ShareCode) map[string]any {
	return map[string]any{
		"server":            h.shareServerModel(tx, c.Owner, c.Server),
		"scopes":            c.Scopes,
		"id":                c.ID,
		"created_at":        isoTime(c.Created),
		"expires_at":        isoTime(c.ExpiresAt),
		"exchange_count":    c.ExchangeCount,
		"last_exchanged_at": isoTime(c.LastExchangedAt),
	}
}

// pageOf answers with one page of items in the pagination envelope, which the shares API always uses.
func (q *apiRequest) pageOf(items []map[string]any) error {
	offset, limit, err := q.pagination() // legacy clients get the larger default limit, as in JupyterHub
	if err != nil {
		return err
	}
	q.r.Header.Set("Accept", paginationMediaType)
	page := items[min(offset, len(items)):min(offset+limit, len(items))]
	if page == nil {
		page = []map[string]any{}
	}
	return q.paginated(page, offset, limit, len(items))
}

// modelList runs fetch in a read transaction and answers with the page of the models of what it
// returns (shares, share codes).
func modelList[T any](h *Hub, q *apiRequest, fetch func(tx *store.Txn) ([]T, error), model func(tx *store.Txn, v T) map[string]any) error {
	var items []map[string]any
	err := h.store.View(func(tx *store.Txn) error {
		vs, err := fetch(tx)
		if err != nil {
			return err
		}
		for _, v := range vs {
			items = append(items, model(tx, v))
		}
		return nil
	})
	if err != nil {
		return err
	}
	return q.pageOf(items)
}

// shareList answers with the models of the shares fn returns.
func (h *Hub) shareList(q *apiRequest, fn func(tx *store.Txn) ([]*store.Share, error)) error {
	return modelList(h, q, fn, h.shareModel)
}

// existingServer answers 404 unless owner exists and, for a named server, the server does.
func (h *Hub) existingServer(q *apiRequest, owner, server string) error {
	if _, err := q.existingUser(owner); err != nil {
		return err
	}
	if server == "" {
		return nil
	}
	err := h.store.View(func(tx *store.Txn) error { _, err := tx.Server(owner, server); return err })
	if errors.Is(err, store.ErrNotFound) {
		return errStatus(http.StatusNotFound, "No such server: %s/%s", owner, server)
	}
	return err
}

// GET /users/{name}/shared
func (h *Hub) apiUserShared(q *apiRequest) error {
	name := q.r.PathValue("name")
	if err := q.need(rbac.UserResource(name), "read:users:shares"); err != nil {
		return err
	}
	u, err := q.user(name)
	if errors.Is(err, store.ErrNotFound) {
		return errStatus(http.StatusNotFound, "No such user: %s", name)
	} else if err != nil {
		return err
	}
	// Shares with the user and with its groups, as JupyterHub lists them.
	return h.shareList(q, func(tx *store.Txn) ([]*store.Share, error) {
		all, err := tx.SharesWith(store.UserRecipient(name), "", "", false)
		for _, g := range u.Groups {
			if err != nil {
				break
			}
			var more []*store.Share
			more, err = tx.SharesWith(store.GroupRecipient(g), "", "", false)
			all = append(all, more...)
		}
		return all, err
	})
}

// oneShare reads the share of owner/server with recipient; 404 when there is none.
func (h *Hub) oneShare(owner, server, recipient string) (*store.Share, map[string]any, error) {
	kind, name, _ := strings.Cut(recipient, ":")
	kind = map[string]string{"u": "user", "g": "group"}[kind]
	var s *store.Share
	var m map[string]any
	err := h.store.View(func(tx *store.Txn) error {
		var err error
		if s, err = tx.Share(owner, server, recipient); err != nil {
			return err
		}
		m = h.shareModel(tx, s)
		return nil
	})
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil, errStatus(http.StatusNotFound, "No such share for %s %s on %s/%s", kind, name, owner, server)
	}
	return s, m, err
}

// GET /users/{name}/shared/{owner}/{server}
func (h *Hub) apiUserSharedOne(q *apiRequest) error {
	name := q.r.PathValue("name")
	if err := q.need(rbac.UserResource(name), "read:users:shares"); err != nil {
		return err
	}
	_, m, err := h.oneShare(q.r.PathValue("owner"), q.r.PathValue("server"), store.UserRecipient(name))
	if err != nil {
		return err
	}
	return q.writeJSON(http.StatusOK, m)
}

// DELETE /users/{name}/shared/{owner}/{server}: the recipient gives up its access.
func (h *Hub) apiUserSharedDelete(q *apiRequest) error {
	name := q.r.PathValue("name")
	if err := q.need(rbac.UserResource(name), "users:shares"); err != nil {
		return err
	}
	return h.deleteOneShare(q, store.UserRecipient(name))
}

// deleteOneShare removes recipient's share of the server in the path.
func (h *Hub) deleteOneShare(q *apiRequest, recipient string) error {
	owner, server := q.r.PathValue("owner"), q.r.PathValue("server")
	s, _, err := h.oneShare(owner, server, recipient)
	if err != nil {
		return err
	}
	if err := h.store.Update(func(tx *store.Txn) error { return tx.DeleteShare(s) }); err != nil {
		return err
	}
	return q.noContent()
}

// DELETE /groups/{name}/shared/{owner}/{server}
func (h *Hub) apiGroupSharedDelete(q *apiRequest) error {
	name := q.r.PathValue("name")
	if err := q.need(rbac.Resource{Group: name}, "groups:shares"); err != nil {
		return err
	}
	if _, err := h.groupByName(name); err != nil {
		return err
	}
	return h.deleteOneShare(q, store.GroupRecipient(name))
}

// GET /groups/{name}/shared
func (h *Hub) apiGroupShared(q *apiRequest) error {
	name := q.r.PathValue("name")
	if err := q.need(rbac.Resource{Group: name}, "read:groups:shares"); err != nil {
		return err
	}
	if _, err := h.groupByName(name); err != nil {
		return err
	}
	return h.shareList(q, func(tx *store.Txn) ([]*store.Share, error) {
		return tx.SharesWith(store.GroupRecipient(name), "", "", false)
	})
}

// GET /groups/{name}/shared/{owner}/{server}
func (h *Hub) apiGroupSharedOne(q *apiRequest) error {
	name := q.r.PathValue("name")
	if err := q.need(rbac.Resource{Group: name}, "read:groups:shares"); err != nil {
		return err
	}
	if _, err := h.groupByName(name); err != nil {
		return err
	}
	_, m, err := h.oneShare(q.r.PathValue("owner"), q.r.PathValue("server"), store.GroupRecipient(name))
	if err != nil {
		return err
	}
	return q.writeJSON(http.StatusOK, m)
}

// serverPath returns owner and server of a /shares or /share-codes path and whether it names one
// server (/shares/{owner} names all of owner's servers).
func serverPath(r *http.Request) (owner, server string, one bool) {
	owner = r.PathValue("owner")
	one = strings.HasSuffix(r.URL.Path, "/") || r.PathValue("server") != ""
	return owner, r.PathValue("server"), one
}

// GET /shares/{owner}[/{server}]
func (h *Hub) apiShares(q *apiRequest) error {
	owner, server, one, err := h.readSharesTarget(q)
	if err != nil {
		return err
	}
	return h.shareList(q, func(tx *store.Txn) ([]*store.Share, error) { return tx.OwnerShares(owner, server, !one) })
}

// readSharesTarget reads the {owner}[/{server}] of a listing of shares or share codes, checks the
// caller holds read:shares on it and that it exists. one is true when a single server is named.
func (h *Hub) readSharesTarget(q *apiRequest) (owner, server string, one bool, err error) {
	owner, server, one = serverPath(q.r)
	res := rbac.UserResource(owner)
	if one {
		res = rbac.ServerResource(owner, server)
	}
	if err := q.need(res, "read:shares"); err != nil {
		return "", "", false, err
	}
	if err := h.existingServer(q, owner, server); err != nil {
		return "", "", false, err
	}
	return owner, server, one, nil
}

// shareScopes validates the scopes requested for a share, a share code or a revocation of owner/server
// (JupyterHub's _apply_filter): each must exist and carry no filter or exactly !server=<owner>/<server>,
// which is added where missing. None requested: access to the server.
func (h *Hub) shareScopes(v any, owner, server string) ([]string, error) {
	filter := "server=" + owner + "/" + server
	var scopes []string
	if v != nil {
		var err error
		if scopes, err = stringList(v, "scopes"); err != nil {
			return nil, err
		}
	}
	if len(scopes) == 0 {
		return []string{"access:servers!" + filter}, nil
	}
	reg := h.apiState().engine.Registry()
	out := make([]string, 0, len(scopes))
	for _, s := range scopes {
		base, f, _ := strings.Cut(s, "!")
		if _, err := reg.Expand([]string{base}); err != nil {
			return nil, errStatus(http.StatusBadRequest, "Invalid scope for share: %s", s)
		}
		if f != "" && f != filter {
			return nil, errStatus(http.StatusBadRequest, "!%s not allowed on sharing %s, only !%s (or no filter)", f, s, filter)
		}
		out = append(out, base+"!"+filter)
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}

// checkGrant answers 403 unless the requester holds every scope it wants to share.
func (h *Hub) checkGrant(q *apiRequest, scopes []string) error {
	reg := h.apiState().engine.Registry()
	for _, s := range scopes {
		set, err := reg.Expand([]string{s})
		if err == nil {
			err = rbac.CheckSubset(set, q.scopes(), h.groupLookup())
		}
		if err != nil {
			return errStatus(http.StatusForbidden, "Do not have permission to grant share with scope %s", s)
		}
	}
	return nil
}

// shareRequest reads a share request body: {"user": …} or {"group": …}, with "scopes" optional.
func shareRequest(data map[string]any) (user, group string, err error) {
	if err := checkModel(data, shareRequestTypes, "share"); err != nil {
		return "", "", err
	}
	user, _ = data["user"].(string)
	group, _ = data["group"].(string)
	_, hasUser := data["user"]
	_, hasGroup := data["group"]
	switch {
	case hasUser && hasGroup:
		return "", "", errStatus(http.StatusBadRequest, "Expected exactly one of `user` or `group`, not both.")
	case !hasUser && !hasGroup:
		return "", "", errStatus(http.StatusBadRequest, "Specify exactly one of `user` or `group`")
	}
	return user, group, nil
}

// shareRecipient resolves a request's recipient for a new share: the requester must be able to name it
// (read:users:name / read:groups:name), and it must exist (400 otherwise).
func (h *Hub) shareRecipient(q *apiRequest, tx *store.Txn, user, group string) (*store.Share, error) {
	if user != "" || group == "" {
		if !q.scopes().Allows("read:users:name", rbac.UserResource(user), q.groupsOf(user)) {
			return nil, errStatus(http.StatusForbidden, "Need scope 'read:users:name' to share with users by name")
		}
		if _, err := tx.User(user); errors.Is(err, store.ErrNotFound) {
			return nil, errStatus(http.StatusBadRequest, "No such user: %s", user)
		} else if err != nil {
			return nil, err
		}
		return &store.Share{User: user}, nil
	}
	if !q.scopes().Allows("read:groups:name", rbac.Resource{Group: group}, nil) {
		return nil, errStatus(http.StatusForbidden, "Need scope 'read:groups:name' to share with groups by name")
	}
	if _, err := tx.Group(group); errors.Is(err, store.ErrNotFound) {
		return nil, errStatus(http.StatusBadRequest, "No such group: %s", group)
	} else if err != nil {
		return nil, err
	}
	return &store.Share{Group: group}, nil
}

var shareRequestTypes = map[string]string{"user": "str", "group": "str", "scopes": "list"}

// POST /shares/{owner}/{server}: share with a user or group, or extend an existing share's scopes.
func (h *Hub) apiShareCreate(q *apiRequest) error {
	owner, server, _ := serverPath(q.r)
	if err := q.need(rbac.ServerResource(owner, server), "shares"); err != nil {
		return err
	}
	data, err := q.bodyObject()
	if err != nil {
		return err
	}
	user, group, err := shareRequest(data)
	if err != nil {
		return err
	}
	scopes, err := h.shareScopes(data["scopes"], owner, server)
	if err != nil {
		return err
	}
	if err := h.existingServer(q, owner, server); err != nil {
		return err
	}
	if err := h.checkGrant(q, scopes); err != nil {
		return err
	}
	var model map[string]any
	err = h.store.Update(func(tx *store.Txn) error {
		rcp, err := h.shareRecipient(q, tx, user, group)
		if err != nil {
			return err
		}
		if rcp.User == owner {
			return errStatus(http.StatusBadRequest, "Cannot share a server with its owner")
		}
		model, err = h.shareWith(tx, rcp, owner, server, scopes)
		return err
	})
	if err != nil {
		return err
	}
	h.logger.Info("server shared", zap.String("owner", owner), zap.String("server", server), zap.String("user", user), zap.String("group", group))
	return q.writeJSON(http.StatusOK, model)
}

// shareWith creates rcp's share of owner/server with scopes, or adds scopes to the existing one.
func (h *Hub) shareWith(tx *store.Txn, rcp *store.Share, owner, server string, scopes []string) (map[string]any, error) {
	recipient := store.UserRecipient(rcp.User)
	if rcp.Group != "" {
		recipient = store.GroupRecipient(rcp.Group)
	}
	s, err := tx.Share(owner, server, recipient)
	if errors.Is(err, store.ErrNotFound) {
		s = &store.Share{Owner: owner, Server: server, User: rcp.User, Group: rcp.Group}
	} else if err != nil {
		return nil, err
	}
	s.Scopes = append(s.Scopes, scopes...)
	slices.Sort(s.Scopes)
	s.Scopes = slices.Compact(s.Scopes)
	if err := tx.PutShare(s); err != nil {
		return nil, err
	}
	return h.shareModel(tx, s), nil
}

// PATCH /shares/{owner}/{server}: revoke some scopes of a share ({"user"|"group", "scopes"?}); without
// scopes, or when none remain, the share is removed and the answer is {} (also for unknown recipients).
func (h *Hub) apiShareRevoke(q *apiRequest) error {
	owner, server, _ := serverPath(q.r)
	if err := q.need(rbac.ServerResource(owner, server), "shares"); err != nil {
		return err
	}
	data, err := q.bodyObject()
	if err != nil {
		return err
	}
	user, group, err := shareRequest(data)
	if err != nil {
		return err
	}
	var revoke []string
	if v, ok := data["scopes"]; ok && v != nil {
		if list, _ := v.([]any); len(list) > 0 {
			if revoke, err = h.shareScopes(v, owner, server); err != nil {
				return err
			}
		}
	}
	if err := h.existingServer(q, owner, server); err != nil {
		return err
	}
	recipient := store.UserRecipient(user)
	if group != "" {
		recipient = store.GroupRecipient(group)
	}
	model := map[string]any{}
	err = h.store.Update(func(tx *store.Txn) error {
		model = map[string]any{}
		s, err := tx.Share(owner, server, recipient)
		if errors.Is(err, store.ErrNotFound) {
			return nil // nothing to revoke
		} else if err != nil {
			return err
		}
		if revoke != nil {
			s.Scopes = slices.DeleteFunc(s.Scopes, func(x string) bool { return slices.Contains(revoke, x) })
		}
		if revoke == nil || len(s.Scopes) == 0 {
			return tx.DeleteShare(s)
		}
		if err := tx.PutShare(s); err != nil {
			return err
		}
		model = h.shareModel(tx, s)
		return nil
	})
	if err != nil {
		return err
	}
	return q.writeJSON(http.StatusOK, model)
}

// DELETE /shares/{owner}/{server}: revoke every share of the server.
func (h *Hub) apiSharesDelete(q *apiRequest) error {
	owner, server, _ := serverPath(q.r)
	if err := q.need(rbac.ServerResource(owner, server), "shares"); err != nil {
		return err
	}
	if err := h.existingServer(q, owner, server); err != nil {
		return err
	}
	err := h.store.Update(func(tx *store.Txn) error {
		return tx.RevokeServerShares(owner, server)
	})
	if err != nil {
		return err
	}
	return q.noContent()
}
