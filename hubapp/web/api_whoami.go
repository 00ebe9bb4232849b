package web

// Who is asking: GET /hub/api answers the API version that jupyterhub-singleuser checks at start, and
// GET /hub/api/user the requester's identity and scopes, which single-user servers ask for every
// visitor's OAuth token (docs/protocols.md, "What jupyterhub-singleuser calls on the hub").

import (
	"net/http"

	"github.com/caddyhub/caddyhub/hubapp/rbac"
	"github.com/caddyhub/caddyhub/hubapp/servers"
	"github.com/caddyhub/caddyhub/hubapp/store"
)

// singleuserAPIVersion is what GET /hub/api answers and sends as X-JupyterHub-Version: the same
// version as every other API response (api.go), since the API is JupyterHub 5's. jupyterhub-singleuser
// 3.x compares major.minor with its own and only logs a warning on a mismatch; it never refuses to start.
const singleuserAPIVersion = apiJupyterHubVersion

// serveAPIVersion is GET /hub/api and /hub/api/: unauthenticated, the version singleuser checks.
func (h *Hub) serveAPIVersion(w http.ResponseWriter, r *http.Request) {
	h.apiHeaders(w)
	w.Header().Set("X-JupyterHub-Version", singleuserAPIVersion)
	writeJSON(w, http.StatusOK, map[string]string{"version": singleuserAPIVersion})
}

// serveWhoami is GET /hub/api/user: the requester's model (RequestIdentity, docs/protocols.md, "Models")
// with the token's session_id and scopes. Single-user servers call it with the OAuth token of each
// visitor.
func (h *Hub) serveWhoami(w http.ResponseWriter, r *http.Request) {
	h.apiHandler(func(q *apiRequest) error {
		if q.id == nil {
			return errStatus(http.StatusForbidden, "Forbidden")
		}
		return q.writeJSON(http.StatusOK, h.whoamiModel(q.id))
	}).ServeHTTP(w, r)
}

// whoamiModel builds the identity model: the owner's model filtered by the credential's scopes plus
// the identify scopes every credential holds on itself; scopes lists what the credential holds.
func (h *Hub) whoamiModel(id *Identity) map[string]any {
	scopes := id.Scopes
	shown := scopes.Strings()
	var m map[string]any
	switch {
	case id.User != nil:
		u := id.User
		ident, err := rbac.Expand(rbac.IdentifyScopes(rbac.UserOwner(u.Name)))
		if err == nil {
			scopes = scopes.Union(ident)
		}
		m = h.whoamiUserModel(u, scopes.UserFields(u.Name, u.Groups), scopes)
	case id.Service != nil:
		s := id.Service
		ident, err := rbac.Expand(rbac.IdentifyScopes(rbac.ServiceOwner(s.Name)))
		if err == nil {
			scopes = scopes.Union(ident)
		}
		fields := scopes.ServiceFields(s.Name)
		m = map[string]any{"kind": "service", "name": s.Name}
		if fields.Has(rbac.FieldAdmin) {
			m["admin"] = s.Admin
		}
		if fields.Has(rbac.FieldRoles) {
			m["roles"] = h.serviceRoleNames(s)
		}
		if fields.Has(rbac.FieldURL) {
			m["url"] = s.URL
		}
		if fields.Has(rbac.FieldPrefix) {
			m["prefix"] = ""
			if s.URL != "" {
				m["prefix"] = h.base + "services/" + s.Name + "/"
			}
		}
		if fields.Has(rbac.FieldInfo) {
			info := s.Info
			if info == nil {
				info = map[string]any{}
			}
			m["info"] = info
		}
		if fields.Has(rbac.FieldDisplay) {
			m["display"] = s.Display == nil || *s.Display
		}
	}
	if id.Token != nil && id.Token.SessionHash != "" {
		m["session_id"] = id.Token.SessionHash
	} else {
		m["session_id"] = nil
	}
	if shown == nil {
		shown = []string{}
	}
	m["scopes"] = shown
	return m
}

// whoamiUserModel is the user model with the keys fields allows (docs/protocols.md, "Models").
func (h *Hub) whoamiUserModel(u *store.User, fields rbac.Field, scopes rbac.Set) map[string]any {
	m := map[string]any{"kind": "user", "name": u.Name}
	if fields.Has(rbac.FieldAdmin) {
		m["admin"] = u.Admin
	}
	if fields.Has(rbac.FieldGroups) {
		g := u.Groups
		if g == nil {
			g = []string{}
		}
		m["groups"] = g
	}
	if fields.Has(rbac.FieldRoles) {
		roles, err := h.userRoleNames(u, false)
		if err != nil || roles == nil {
			roles = []string{}
		}
		m["roles"] = roles
	}
	if fields.Has(rbac.FieldCreated) {
		m["created"] = isoTime(u.Created)
	}
	if fields.Has(rbac.FieldLastActivity) {
		m["last_activity"] = isoTime(u.LastActivity)
	}
	needServers := fields.Has(rbac.FieldServer) || fields.Has(rbac.FieldPending) || fields.Has(rbac.FieldServers)
	if !needServers {
		return m
	}
	var recs []*store.Server
	_ = h.store.View(func(tx *store.Txn) error {
		var err error
		recs, err = tx.Servers(u.Name)
		return err
	})
	var def *store.Server
	for _, s := range recs {
		if s.Name == "" {
			def = s
		}
	}
	if fields.Has(rbac.FieldServer) {
		m["server"] = nil
		if def != nil && def.Ready {
			m["server"] = h.serverPrefix(u.Name, "")
		}
	}
	if fields.Has(rbac.FieldPending) {
		m["pending"] = nil
		if def != nil && def.Pending != "" {
			m["pending"] = def.Pending
		}
	}
	if fields.Has(rbac.FieldServers) {
		sm := map[string]any{}
		for _, s := range recs {
			if !s.Active() {
				continue
			}
			if ok, _ := scopes.ServerVisibility(servers.Key(u.Name, s.Name), u.Groups); !ok {
				continue
			}
			var pending any
			if s.Pending != "" {
				pending = s.Pending
			}
			progress := h.prefix + "api/users/" + servers.EscapePath(u.Name) + "/server/progress"
			if s.Name != "" {
				progress = h.prefix + "api/users/" + servers.EscapePath(u.Name) + "/servers/" + servers.EscapePath(s.Name) + "/progress"
			}
			opts := s.UserOptions
			if opts == nil {
				opts = map[string]any{}
			}
			sm[s.Name] = map[string]any{
				"name": s.Name, "last_activity": isoTime(s.LastActivity), "started": isoTime(s.Started),
				"pending": pending, "ready": s.Ready, "stopped": !s.Active(),
				"url": h.serverPrefix(u.Name, s.Name), "user_options": opts, "progress_url": progress,
			}
		}
		m["servers"] = sm
	}
	return m
}
