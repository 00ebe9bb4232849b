package web

// Roles and scopes of requesters (docs/protocols.md, "RBAC: scopes and roles"): which roles users,
// services and tokens hold, and the throttled record of token use. The scope engine itself is
// hubapp/rbac.

import (
	"errors"
	"slices"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/caddyhub/caddyhub/hubapp/rbac"
	"github.com/caddyhub/caddyhub/hubapp/store"
)

// activityResolution is JupyterHub's activity_resolution: token and user last_activity are written
// at most this often per token.
const activityResolution = 30 * time.Second

// userRoleNames returns the roles a user holds: the built-in ones (user, admin), those configuration
// assigns (directly or through groups), those assigned through the API, and with viaGroups the roles
// of the user's groups (what scopes are computed from; the user model lists only the user's own).
func (h *Hub) userRoleNames(u *store.User, viaGroups bool) ([]string, error) {
	eng := h.apiState().engine
	var groups []string
	if viaGroups {
		groups = u.Groups
	}
	names := eng.ConfiguredRoleNames(rbac.UserOwner(u.Name), groups, u.Admin)
	names = append(names, u.Roles...)
	if viaGroups && len(u.Groups) > 0 {
		err := h.store.View(func(tx *store.Txn) error {
			for _, g := range u.Groups {
				grp, err := tx.Group(g)
				if errors.Is(err, store.ErrNotFound) {
					continue
				} else if err != nil {
					return err
				}
				names = append(names, grp.Roles...)
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	return knownRoles(eng, names), nil
}

// knownRoles sorts and deduplicates role names, dropping roles that no longer exist (a role removed
// from the configuration while users still name it grants nothing rather than failing requests).
func knownRoles(eng *rbac.Engine, names []string) []string {
	slices.Sort(names)
	names = slices.Compact(names)
	return slices.DeleteFunc(names, func(n string) bool { _, ok := eng.Role(n); return !ok })
}

// serviceRoleNames returns the roles of a configured service: its roles option, admin, and roles
// whose services list names it.
func (h *Hub) serviceRoleNames(s *Service) []string {
	eng := h.apiState().engine
	names := eng.ConfiguredRoleNames(rbac.ServiceOwner(s.Name), nil, s.Admin)
	names = append(names, s.Roles...)
	return knownRoles(eng, names)
}

// groupRoleNames returns the roles a group holds: assigned through the API or by configuration.
func (h *Hub) groupRoleNames(g *store.Group) []string {
	eng := h.apiState().engine
	names := slices.Clone(g.Roles)
	for _, r := range eng.Roles() {
		if slices.Contains(r.Groups, g.Name) {
			names = append(names, r.Name)
		}
	}
	return knownRoles(eng, names)
}

// tokenRawScopes returns the raw scopes a token was issued with and the OAuth client that issued it.
// Tokens store scopes (JupyterHub ≥3); tokens created with roles only are resolved through them; a
// token with neither has the default of its kind (API tokens: the token role, `inherit`; a server's
// own token: the server role).
func (h *Hub) tokenRawScopes(t *store.Token) ([]string, rbac.Client, error) {
	eng := h.apiState().engine
	var client rbac.Client
	if t.OAuthClient != "" && t.OAuthClient != "jupyterhub" {
		var c *store.OAuthClient
		err := h.store.View(func(tx *store.Txn) error {
			var err error
			c, err = tx.OAuthClient(t.OAuthClient)
			return err
		})
		switch {
		case err == nil && c.Service != "":
			client.Service = c.Service
		case err == nil && c.User != "":
			client.Server = c.User + "/" + c.ServerName
		case err != nil && !errors.Is(err, store.ErrNotFound):
			return nil, client, err
		}
	}
	if t.Kind == "server" && client.Server == "" && t.User != "" {
		client.Server = t.User + "/" + t.ServerName
	}
	if len(t.Scopes) > 0 {
		return t.Scopes, client, nil
	}
	roles := t.Roles
	if len(roles) == 0 {
		roles = []string{rbac.RoleToken}
		if t.Kind == "server" {
			roles = []string{rbac.RoleServer}
		}
	}
	raw, err := eng.RoleScopes(roles)
	return raw, client, err
}

// groupLookup resolves group filters during token intersection.
func (h *Hub) groupLookup() rbac.GroupLookup {
	return func(user string) []string {
		var groups []string
		_ = h.store.View(func(tx *store.Txn) error {
			u, err := tx.User(user)
			if err == nil {
				groups = u.Groups
			}
			return nil
		})
		return groups
	}
}

// noteTokenUse records a token's last use and its owner's activity, at most once per
// activityResolution per token, off the request path. Tokens of single-user servers (note "Server at
// …") do not count as user activity, as in JupyterHub.
func (h *Hub) noteTokenUse(t *store.Token, now time.Time) {
	st := h.apiState()
	if prev, ok := st.tokenUse.Load(t.Hash); ok && now.Sub(prev.(time.Time)) < activityResolution {
		return
	}
	if !t.LastActivity.IsZero() && now.Sub(t.LastActivity) < activityResolution {
		st.tokenUse.Store(t.Hash, t.LastActivity)
		return
	}
	st.tokenUse.Store(t.Hash, now)
	id, user, serverToken := t.ID, t.User, strings.HasPrefix(t.Note, "Server at ") || t.Kind == "server"
	// Off the request path, but inside the generation's wait group, so that stopAPI (and with it
	// the store's closing) waits for the write.
	st.bgMu.Lock()
	defer st.bgMu.Unlock()
	if st.stopping || st.stopped {
		return
	}
	st.wg.Add(1)
	go func() {
		defer st.wg.Done()
		err := h.store.Update(func(tx *store.Txn) error {
			tok, err := tx.TokenByID(id, now)
			if errors.Is(err, store.ErrNotFound) {
				return nil
			} else if err != nil {
				return err
			}
			if err := tx.TouchToken(tok, now); err != nil {
				return err
			}
			if user == "" || serverToken {
				return nil
			}
			u, err := tx.User(user)
			if errors.Is(err, store.ErrNotFound) {
				return nil
			} else if err != nil {
				return err
			}
			if u.LastActivity.Before(now) {
				u.LastActivity = now.UTC()
				return tx.PutUser(u)
			}
			return nil
		})
		if err != nil {
			h.logger.Debug("recording token use", zap.String("token_id", id), zap.Error(err))
		}
	}()
}
