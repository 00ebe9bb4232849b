package web

import (
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/caddyhub/caddyhub/hubapp/rbac"
	"github.com/caddyhub/caddyhub/hubapp/store"
)

// Identity is who made a request to the hub.
type Identity struct {
	// User is set when a user made the request (login cookie or one of the user's tokens).
	User *store.User
	// Service is set when a service made the request with its token.
	Service *Service
	// Token is the token presented; nil for cookie-authenticated requests.
	Token *store.Token
	// SessionHash is the login session behind the request (the cookie's, or the session an OAuth
	// token was issued under).
	SessionHash string
	// Scopes are the expanded scopes the request holds: the token's scopes intersected with its
	// owner's at this moment (JupyterHub 2+), or the owner's for cookie requests.
	Scopes rbac.Set
}

// Name returns the user's or service's name.
func (id *Identity) Name() string {
	switch {
	case id == nil:
		return ""
	case id.User != nil:
		return id.User.Name
	case id.Service != nil:
		return id.Service.Name
	}
	return ""
}

var errBadToken = errors.New("invalid or expired token")

// tokenFromRequest extracts an API token: `Authorization: token …` or `Bearer …` (JupyterHub's
// auth_header_pat, case-insensitive). The hub does not take tokens from the URL (docs/protocols.md,
// "Credentials, errors and pagination"): only single-user servers accept ?token=.
func tokenFromRequest(r *http.Request) string {
	h := r.Header.Get("Authorization")
	if h == "" {
		return ""
	}
	scheme, tok, ok := strings.Cut(strings.TrimSpace(h), " ")
	tok = strings.TrimSpace(tok)
	if !ok || tok == "" || strings.ContainsAny(tok, " \t") {
		return ""
	}
	if strings.EqualFold(scheme, "token") || strings.EqualFold(scheme, "bearer") {
		return tok
	}
	return ""
}

// identify returns who made the request: token first, then the login cookie. (nil, nil) means anonymous;
// errBadToken means a token was presented and is not valid (JupyterHub answers 403).
func (h *Hub) identify(r *http.Request) (*Identity, error) {
	if secret := tokenFromRequest(r); secret != "" {
		return h.identifyToken(secret)
	}
	sess, user, err := h.sessionFromRequest(r)
	if err != nil || sess == nil {
		return nil, err
	}
	id := &Identity{User: user, SessionHash: sess.Hash}
	if err := h.resolveScopes(id); err != nil {
		return nil, err
	}
	return id, nil
}

func (h *Hub) identifyToken(secret string) (*Identity, error) {
	now := time.Now()
	id := &Identity{}
	for tok, user := range h.cfg.APITokens {
		if !constantTimeEqual(tok, secret) {
			continue
		}
		// Legacy api_tokens: the token acts as the user with the user's full scopes.
		u, err := h.lookupOrEnsureUser(user)
		if err != nil {
			return nil, err
		}
		id.User = u
		return id, h.resolveScopes(id)
	}
	for _, s := range h.cfg.Services {
		if tok := h.serviceToken(s); tok != "" && constantTimeEqual(tok, secret) {
			id.Service = s
			return id, h.resolveScopes(id)
		}
	}
	err := h.store.View(func(tx *store.Txn) error {
		t, err := tx.TokenBySecret(secret, now)
		if err != nil {
			return err
		}
		id.Token, id.SessionHash = t, t.SessionHash
		if t.User != "" {
			id.User, err = tx.User(t.User)
			return err
		}
		return nil
	})
	if errors.Is(err, store.ErrNotFound) {
		return nil, errBadToken
	}
	if err != nil {
		return nil, err
	}
	if id.Token.Service != "" {
		if id.Service = h.cfg.service(id.Token.Service); id.Service == nil {
			return nil, errBadToken
		}
	}
	h.noteTokenUse(id.Token, now)
	return id, h.resolveScopes(id)
}

// service returns the configured service called name, or nil.
func (a *Config) service(name string) *Service {
	for _, s := range a.Services {
		if s.Name == name {
			return s
		}
	}
	return nil
}

// lookupOrEnsureUser reads a user, creating the record only when it is missing (a read on the hot
// path, a write once).
func (h *Hub) lookupOrEnsureUser(name string) (*store.User, error) {
	var u *store.User
	err := h.store.View(func(tx *store.Txn) error {
		var err error
		u, err = tx.User(name)
		return err
	})
	if errors.Is(err, store.ErrNotFound) {
		return h.ensureUser(name)
	}
	return u, err
}

// ensureUser returns the user called name, creating the record on first sight (a user who logs in
// for the first time, a name from api_tokens or a config list).
func (h *Hub) ensureUser(name string) (*store.User, error) {
	var u *store.User
	err := h.store.Update(func(tx *store.Txn) error {
		var err error
		if u, err = tx.User(name); err == nil {
			return nil
		} else if !errors.Is(err, store.ErrNotFound) {
			return err
		}
		u = &store.User{Name: name}
		return tx.CreateUser(u)
	})
	return u, err
}
