package web

// JSON models of the REST API (docs/protocols.md, "Models"), filtered by the requester's scopes as
// JupyterHub's _filter_model does: a key appears only if a held scope grants it for that entity.

import (
	"encoding/json"
	"net/url"
	"slices"
	"time"

	"github.com/caddyhub/caddyhub/hubapp/rbac"
	"github.com/caddyhub/caddyhub/hubapp/store"
)

// userURL is a user's default server URL (JupyterHub's user.url): /user/<name>/ under base_url, on
// the user's own origin with subdomain_host.
func (h *Hub) userURL(name string) string { return h.fullServerURL(name, "") }

// serverActivity is a server's last activity: the stored time or its route's, whichever is later.
func (h *Hub) serverActivity(s *store.Server) time.Time {
	t := s.LastActivity
	if s.Active() {
		if r := h.table.Get(h.routeKey(s.User, s.Name)); r != nil {
			if ra := r.LastActivity(); ra.After(t) {
				t = ra
			}
		}
	}
	return t
}

// progressURL is the EventSource URL of a server's spawn progress.
func (h *Hub) progressURL(user, server string) string {
	u := h.prefix + "api/users/" + url.PathEscape(user)
	if server == "" {
		return u + "/server/progress"
	}
	return u + "/servers/" + url.PathEscape(server) + "/progress"
}

// serverModel is the Server model; withState adds the spawner state (admin:server_state).
func (h *Hub) serverModel(s *store.Server, withState bool) map[string]any {
	opts := s.UserOptions
	if opts == nil {
		opts = map[string]any{}
	}
	var pending any
	if s.Pending != "" {
		pending = s.Pending
	}
	m := map[string]any{
		"name":              s.Name,
		"full_name":         s.User + "/" + s.Name,
		"last_activity":     isoTime(h.serverActivity(s)),
		"started":           isoTime(s.Started),
		"pending":           pending,
		"ready":             s.Ready,
		"stopped":           !s.Active(),
		"url":               h.fullServerURL(s.User, s.Name),
		"user_options":      opts,
		"progress_url":      h.progressURL(s.User, s.Name),
		"full_url":          nil,
		"full_progress_url": nil,
	}
	if origin := h.hubOrigin(); origin != "" {
		// Absolute URLs need a public origin: JupyterHub ≥5 fills them with subdomains.
		m["full_url"] = h.fullServerURL(s.User, s.Name)
		m["full_progress_url"] = origin + h.progressURL(s.User, s.Name)
	}
	if withState {
		var state any = map[string]any{}
		if len(s.State) > 0 {
			var v any
			if json.Unmarshal(s.State, &v) == nil && v != nil {
				state = v
			}
		}
		m["state"] = state
	}
	return m
}

// userModel is the User model as scopes let the requester see it; nil when nothing is visible.
// servers are the user's server records (all of them; stopped ones are shown only with
// includeStopped).
func (h *Hub) userModel(scopes rbac.Set, u *store.User, servers []*store.Server, includeStopped bool) map[string]any {
	f := scopes.UserFields(u.Name, u.Groups)
	if f == 0 {
		return nil
	}
	m := make(map[string]any, 12)
	if f.Has(rbac.FieldKind) {
		m["kind"] = "user"
	}
	if f.Has(rbac.FieldName) {
		m["name"] = u.Name
	}
	if f.Has(rbac.FieldAdmin) {
		m["admin"] = u.Admin
	}
	if f.Has(rbac.FieldRoles) {
		roles, _ := h.userRoleNames(u, false)
		if roles == nil {
			roles = []string{}
		}
		m["roles"] = roles
	}
	if f.Has(rbac.FieldGroups) {
		groups := u.Groups
		if groups == nil {
			groups = []string{}
		}
		m["groups"] = groups
	}
	var def *store.Server
	for _, s := range servers {
		if s.Name == "" {
			def = s
		}
	}
	last := h.lastActivityOf(u, servers)
	if f.Has(rbac.FieldServer) {
		var srv any
		if def != nil && def.Ready {
			srv = h.userURL(u.Name)
		}
		m["server"] = srv
	}
	if f.Has(rbac.FieldPending) {
		var p any
		if def != nil && def.Pending != "" {
			p = def.Pending
		}
		m["pending"] = p
	}
	if f.Has(rbac.FieldCreated) {
		m["created"] = isoTime(u.Created)
	}
	if f.Has(rbac.FieldLastActivity) {
		m["last_activity"] = isoTime(last)
	}
	if f.Has(rbac.FieldAuthState) {
		var as any
		if st := h.authState(u); st != nil {
			as = st
		}
		m["auth_state"] = as
	}
	sm := map[string]any{}
	for _, s := range servers {
		if !s.Active() && !includeStopped {
			continue
		}
		visible, state := scopes.ServerVisibility(u.Name+"/"+s.Name, u.Groups)
		if visible {
			sm[s.Name] = h.serverModel(s, state)
		}
	}
	if f.Has(rbac.FieldServers) || len(sm) > 0 {
		m["servers"] = sm
	}
	return m
}

// groupModel is the Group model as scopes let the requester see it; nil when nothing is visible.
func (h *Hub) groupModel(scopes rbac.Set, g *store.Group) map[string]any {
	f := scopes.GroupFields(g.Name)
	if f == 0 {
		return nil
	}
	m := make(map[string]any, 5)
	if f.Has(rbac.FieldKind) {
		m["kind"] = "group"
	}
	if f.Has(rbac.FieldName) {
		m["name"] = g.Name
	}
	if f.Has(rbac.FieldRoles) {
		roles := h.groupRoleNames(g)
		if roles == nil {
			roles = []string{}
		}
		m["roles"] = roles
	}
	if f.Has(rbac.FieldUsers) {
		users := slices.Clone(g.Users)
		if users == nil {
			users = []string{}
		}
		m["users"] = users
	}
	if f.Has(rbac.FieldProperties) {
		props := g.Properties
		if props == nil {
			props = map[string]any{}
		}
		m["properties"] = props
	}
	return m
}

// tokenModel is the Token model (GET/POST tokens). Its scopes are the token's effective scopes now.
func (h *Hub) tokenModel(t *store.Token) map[string]any {
	m := map[string]any{
		"id":            t.ID,
		"kind":          "api_token",
		"roles":         []string{},
		"scopes":        h.tokenEffectiveScopes(t),
		"created":       isoTime(t.Created),
		"last_activity": isoTime(t.LastActivity),
		"expires_at":    isoTime(t.ExpiresAt),
		"note":          t.Note,
		"session_id":    nil,
		"oauth_client":  h.oauthClientDescription(t.OAuthClient),
	}
	if t.SessionHash != "" {
		m["session_id"] = t.SessionHash
	}
	if t.Service != "" {
		m["service"] = t.Service
	} else {
		m["user"] = t.User
	}
	return m
}

// tokenEffectiveScopes returns what a token may do now (its scopes ∩ its owner's), as strings.
func (h *Hub) tokenEffectiveScopes(t *store.Token) []string {
	id := &Identity{Token: t}
	if t.Service != "" {
		id.Service = h.cfg.service(t.Service)
	} else if t.User != "" {
		var u *store.User
		_ = h.store.View(func(tx *store.Txn) error {
			var err error
			u, err = tx.User(t.User)
			return err
		})
		id.User = u
	}
	if (id.User == nil && id.Service == nil) || h.resolveScopes(id) != nil {
		return []string{}
	}
	s := id.Scopes.Strings()
	if s == nil {
		s = []string{}
	}
	return s
}

// oauthClientDescription is what the token model shows as oauth_client: "JupyterHub" for API tokens,
// else the client's description or id.
func (h *Hub) oauthClientDescription(id string) string {
	if id == "" || id == "jupyterhub" {
		return "JupyterHub"
	}
	var desc string
	_ = h.store.View(func(tx *store.Txn) error {
		c, err := tx.OAuthClient(id)
		if err == nil {
			desc = c.Description
		}
		return nil
	})
	if desc == "" {
		return id
	}
	return desc
}

// serviceModel is the Service model as scopes let the requester see it; nil when nothing is visible.
func (h *Hub) serviceModel(scopes rbac.Set, s *Service) map[string]any {
	f := scopes.ServiceFields(s.Name)
	if f == 0 {
		return nil
	}
	full := map[string]any{
		"kind":    "service",
		"name":    s.Name,
		"roles":   h.serviceRoleNames(s),
		"admin":   s.Admin,
		"url":     s.URL,
		"prefix":  "",
		"command": []string{},
		"pid":     0,
		"info":    map[string]any{},
		"display": s.Display == nil || *s.Display,
	}
	if s.URL != "" {
		full["prefix"] = h.base + "services/" + s.Name + "/"
	}
	if s.Command != nil {
		full["command"] = s.Command
	}
	if s.Info != nil {
		full["info"] = s.Info
	}
	full["pid"] = h.servicePID(s.Name)
	m := make(map[string]any, len(full))
	for _, name := range f.Names() {
		if v, ok := full[name]; ok {
			m[name] = v
		}
	}
	return m
}
