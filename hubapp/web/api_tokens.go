package web

// /hub/api/users/{name}/tokens endpoints (docs/protocols.md, "Endpoints" and "Tokens at rest").

import (
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/caddyhub/caddyhub/auth"
	"github.com/caddyhub/caddyhub/hubapp/rbac"
	"github.com/caddyhub/caddyhub/hubapp/store"
)

// GET /users/{name}/tokens
func (h *Hub) apiListTokens(q *apiRequest) error {
	name := q.r.PathValue("name")
	if err := q.need(rbac.UserResource(name), "read:tokens"); err != nil {
		return err
	}
	if _, err := q.user(name); errors.Is(err, store.ErrNotFound) {
		return errStatus(http.StatusNotFound, "No such user: %s", name)
	} else if err != nil {
		return err
	}
	var toks []*store.Token
	err := h.store.View(func(tx *store.Txn) error {
		var err error
		toks, err = tx.OwnerTokens(store.OwnerUser(name), time.Now())
		return err
	})
	if err != nil {
		return err
	}
	sortKey := func(t *store.Token) time.Time {
		if !t.LastActivity.IsZero() {
			return t.LastActivity
		}
		return t.Created
	}
	sort.SliceStable(toks, func(i, j int) bool { return sortKey(toks[i]).Before(sortKey(toks[j])) })
	out := make([]any, 0, len(toks))
	for _, t := range toks {
		out = append(out, h.tokenModel(t))
	}
	return q.writeJSON(http.StatusOK, map[string]any{"api_tokens": out})
}

// POST /users/{name}/tokens
func (h *Hub) apiCreateToken(q *apiRequest) error {
	name := q.r.PathValue("name")
	v, err := q.body()
	if err != nil {
		return err
	}
	var body map[string]any
	if v != nil {
		var ok bool
		if body, ok = v.(map[string]any); !ok {
			return errStatus(http.StatusBadRequest, "Body must be a JSON dict or empty")
		}
	}
	if q.id == nil {
		// No credential: the body may carry {"auth": {"username", "password"}} for the authenticator.
		if err := h.identifyFromAuthBody(q, body["auth"]); err != nil {
			return err
		}
	}
	kind := "User"
	if q.id.Service != nil {
		kind = "Service"
	}
	target, err := q.user(name)
	if err != nil || !q.scopes().Allows("tokens", rbac.UserResource(name), target.Groups) {
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return err
		}
		return errStatus(http.StatusForbidden, "%s %s not found or no permissions to generate tokens", kind, name)
	}
	note, _ := body["note"].(string)
	if n, ok := body["note"]; ok && n != nil {
		if _, isStr := n.(string); !isStr {
			return errStatus(http.StatusBadRequest, "note must be a string")
		}
	}
	if note == "" {
		note = "Requested via api"
		if q.id.Name() != name || q.id.Service != nil {
			note += fmt.Sprintf(" by %s %s", strings.ToLower(kind), q.id.Name())
		}
	}
	var expires time.Time
	if e, ok := body["expires_in"]; ok && e != nil {
		secs, err := jsonInt(e)
		if err != nil {
			return errStatus(http.StatusBadRequest, "expires_in must be an integer number of seconds")
		}
		if secs < 0 {
			return errStatus(http.StatusBadRequest, "expires_in must not be negative")
		}
		if secs > 0 { // 0 means no expiry (docs/protocols.md, "Surprises")
			expires = time.Now().Add(time.Duration(secs) * time.Second).UTC()
		}
	}
	rolesV, hasRoles := body["roles"]
	scopesV, hasScopes := body["scopes"]
	hasRoles, hasScopes = hasRoles && rolesV != nil, hasScopes && scopesV != nil
	if hasRoles && hasScopes {
		return errStatus(http.StatusBadRequest, "Can only assign one of scopes or roles")
	}
	eng := h.apiState().engine
	var scopes, roles []string
	switch {
	case hasRoles:
		if roles, err = stringList(rolesV, "roles"); err != nil {
			return err
		}
		if scopes, err = eng.RoleScopes(roles); err != nil {
			return errStatus(http.StatusBadRequest, "Role(s) not found: %s", err)
		}
	case hasScopes:
		if scopes, err = stringList(scopesV, "scopes"); err != nil {
			return err
		}
		if err := eng.Registry().Validate(scopes); err != nil {
			return errStatus(http.StatusBadRequest, "Unknown scope(s): %s", err)
		}
	default:
		scopes = []string{rbac.ScopeInherit}
	}
	ownerRoles, err := h.userRoleNames(target, true)
	if err != nil {
		return err
	}
	rt := rbac.Token{Owner: rbac.UserOwner(name), OwnerRoles: ownerRoles, Scopes: scopes}
	if err := eng.CheckTokenScopes(rt, h.groupLookup()); err != nil {
		if errors.Is(err, rbac.ErrUnknownScope) {
			return errStatus(http.StatusBadRequest, "Unknown scope(s): %s", err)
		}
		return errStatus(http.StatusBadRequest, "Not assigning requested scopes %s not held by User %s", strings.Join(scopes, ", "), name)
	}
	secret := store.NewToken()
	t := &store.Token{User: name, Kind: "api_token", Note: note, Scopes: scopes, ExpiresAt: expires, OAuthClient: "jupyterhub"}
	if err := h.store.Update(func(tx *store.Txn) error {
		t.ID, t.Hash = "", ""
		return tx.CreateToken(t, secret)
	}); err != nil {
		return err
	}
	h.logger.Info("api token created", zap.String("user", name), zap.String("requester", q.id.Name()), zap.String("token_id", t.ID))
	m := h.tokenModel(t)
	m["token"] = secret
	return q.writeJSON(http.StatusCreated, m)
}

// identifyFromAuthBody authenticates an anonymous token request with the authenticator ({"auth":
// {"username": …, "password": …}}); any failure is 403.
func (h *Hub) identifyFromAuthBody(q *apiRequest, authData any) error {
	fa, ok := h.authn.(auth.FormAuthenticator)
	m, isMap := authData.(map[string]any)
	if !ok || !isMap {
		return errStatus(http.StatusForbidden, "Missing or invalid credentials.")
	}
	user, _ := m["username"].(string)
	pass, _ := m["password"].(string)
	au, err := fa.Authenticate(q.r.Context(), user, pass)
	if err != nil || au == nil {
		return errStatus(http.StatusForbidden, "Missing or invalid credentials.")
	}
	u, err := h.lookupOrEnsureUser(au.Name)
	if err != nil {
		return err
	}
	id := &Identity{User: u}
	if err := h.resolveScopes(id); err != nil {
		return err
	}
	q.id = id
	return nil
}

// jsonInt returns a JSON number that is an integer.
func jsonInt(v any) (int64, error) {
	n, ok := v.(interface{ Int64() (int64, error) })
	if !ok {
		return 0, errors.New("not a number")
	}
	return n.Int64()
}

// findToken returns token id of user name; 404 for any other case (wrong owner, bad id).
func (h *Hub) findToken(q *apiRequest, name, id string) (*store.Token, error) {
	if _, err := q.user(name); errors.Is(err, store.ErrNotFound) {
		return nil, errStatus(http.StatusNotFound, "No such user: %s", name)
	} else if err != nil {
		return nil, err
	}
	var t *store.Token
	err := h.store.View(func(tx *store.Txn) error {
		var err error
		t, err = tx.TokenByID(id, time.Now())
		return err
	})
	if errors.Is(err, store.ErrNotFound) || (err == nil && (t.User != name || t.Service != "")) {
		return nil, errStatus(http.StatusNotFound, "No such token %s for user %s", id, name)
	}
	return t, err
}

// GET /users/{name}/tokens/{id}
func (h *Hub) apiGetToken(q *apiRequest) error {
	name := q.r.PathValue("name")
	if err := q.need(rbac.UserResource(name), "read:tokens"); err != nil {
		return err
	}
	t, err := h.findToken(q, name, q.r.PathValue("id"))
	if err != nil {
		return err
	}
	return q.writeJSON(http.StatusOK, h.tokenModel(t))
}

// DELETE /users/{name}/tokens/{id}: deleting an OAuth token deletes every token of that user for
// the same OAuth client.
func (h *Hub) apiDeleteToken(q *apiRequest) error {
	name := q.r.PathValue("name")
	if err := q.need(rbac.UserResource(name), "tokens"); err != nil {
		return err
	}
	t, err := h.findToken(q, name, q.r.PathValue("id"))
	if err != nil {
		return err
	}
	err = h.store.Update(func(tx *store.Txn) error {
		if t.OAuthClient == "" || t.OAuthClient == "jupyterhub" {
			return tx.DeleteToken(t)
		}
		toks, err := tx.OwnerTokens(store.OwnerUser(name), time.Time{})
		if err != nil {
			return err
		}
		for _, o := range toks {
			if o.OAuthClient == t.OAuthClient {
				if err := tx.DeleteToken(o); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	h.logger.Info("token deleted", zap.String("user", name), zap.String("token_id", t.ID))
	return q.noContent()
}
