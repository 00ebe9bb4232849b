package web

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/sessions"
	"go.uber.org/zap"

	"github.com/caddyhub/caddyhub/hubapp/store"
)

// Cookie names, JupyterHub's (docs/protocols.md, "Cookies and the cookie secret").
const (
	// loginCookie holds the login session id, signed and encrypted with keys derived from the cookie
	// secret. Path <base>hub/: it never reaches users' servers.
	loginCookie = "jupyterhub-hub-login"
	// sessionIDCookie is what single-user servers read as the browser session's id (a cache key).
	// Its value is the session's hash — the id OAuth tokens issued under the session carry — never
	// the session id itself, which stays inside the encrypted login cookie.
	sessionIDCookie = "jupyterhub-session-id"
	// servicesCookie is JupyterHub's legacy services cookie; logout clears it.
	servicesCookie = "jupyterhub-services"
	// sessionIDKey is the key of the session id in the login cookie's values.
	sessionIDKey = "sid"
)

// defaultCookieMaxAge is JupyterHub's cookie_max_age_days (14).
const defaultCookieMaxAge = 14 * 24 * time.Hour

// sessionCacheTTL bounds how long a session record read from the store is reused without reading
// it again. Logout and "log out everywhere" evict at once in this process; the user record (whose
// CookieID changes on "log out everywhere") is read on every request.
const sessionCacheTTL = 30 * time.Second

// sessionCacheMax caps the cache; when full it is emptied (sessions are cheap to read again).
const sessionCacheMax = 10000

// sessionCache remembers recently seen session records, keyed by session hash.
type sessionCache struct {
	mu sync.Mutex
	m  map[string]cachedSession
}

type cachedSession struct {
	sess  *store.Session
	until time.Time
}

func (c *sessionCache) get(hash string, now time.Time) *store.Session {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[hash]
	if !ok {
		return nil
	}
	if now.After(e.until) || now.After(e.sess.Expires) {
		delete(c.m, hash)
		return nil
	}
	return e.sess
}

func (c *sessionCache) put(s *store.Session, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil || len(c.m) >= sessionCacheMax {
		c.m = make(map[string]cachedSession)
	}
	c.m[s.Hash] = cachedSession{sess: s, until: now.Add(sessionCacheTTL)}
}

func (c *sessionCache) evict(hash string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.m, hash)
}

func (c *sessionCache) evictUser(user string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for k, e := range c.m {
		if e.sess.User == user {
			delete(c.m, k)
		}
	}
}

// newCookieStore builds the gorilla/sessions store of the login cookie: HMAC-SHA256 signed and
// AES-256 encrypted, with an embedded timestamp checked against maxAge.
func newCookieStore(k webKeys, maxAge time.Duration) *sessions.CookieStore {
	cs := sessions.NewCookieStore(k.cookieHash, k.cookieBlock)
	cs.Options.HttpOnly = true
	cs.Options.SameSite = http.SameSiteLaxMode
	cs.MaxAge(int(maxAge / time.Second))
	return cs
}

// requestIsTLS reports whether the browser reached us over HTTPS: directly (Caddy terminated TLS)
// or through a proxy in front that says so.
func requestIsTLS(r *http.Request) bool {
	return r.TLS != nil || strings.EqualFold(r.Header.Get("X-Forwarded-Proto"), "https")
}

// loginSessionID returns the session id in the request's login cookie, or "" when there is no
// valid cookie (missing, forged, made with another secret, or older than cookie_max_age).
func (h *Hub) loginSessionID(r *http.Request) string {
	n := 0
	for _, c := range r.Cookies() {
		if c.Name == loginCookie {
			n++
		}
	}
	switch {
	case n == 0:
		return ""
	case n > 1:
		// Two login cookies: one was set by somebody else — a sibling subdomain can set a cookie
		// for the hub's domain with a longer path, which the browser sends first (cookie tossing,
		// GHSA-7r3h-4ph8-w38g). Honouring either could log the victim in as the attacker, so
		// neither counts; logging in again replaces ours, and logout clears it.
		h.logger.Warn("request carries several login cookies; ignoring them all", zap.String("remote_ip", clientIP(r)))
		return ""
	}
	s, err := h.web.cookies.New(r, loginCookie)
	if err != nil {
		h.logger.Debug("ignoring invalid login cookie", zap.Error(err))
		return ""
	}
	sid, _ := s.Values[sessionIDKey].(string)
	return sid
}

// sessionFromRequest returns the login session and user of the request's cookie; (nil, nil, nil)
// when there is none or it is no longer valid (logged out, expired, user deleted, or the user
// logged out everywhere since). Errors are failures of the store.
func (h *Hub) sessionFromRequest(r *http.Request) (*store.Session, *store.User, error) {
	sid := h.loginSessionID(r)
	if sid == "" {
		return nil, nil, nil
	}
	hash := store.Hash(sid)
	now := time.Now()
	sess := h.web.cache.get(hash, now)
	var user *store.User
	err := h.store.View(func(tx *store.Txn) error {
		var err error
		if sess == nil {
			if sess, err = tx.Session(hash, now); err != nil {
				return err
			}
		}
		user, err = tx.User(sess.User)
		return err
	})
	if errors.Is(err, store.ErrNotFound) {
		h.web.cache.evict(hash)
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, fmt.Errorf("loading login session: %w", err)
	}
	h.web.cache.put(sess, now)
	if !constantTimeEqual(user.CookieID, sess.CookieID) {
		// The user logged out everywhere (or was recreated) after this session began.
		return nil, nil, nil
	}
	return sess, user, nil
}

// createSession records a new login session for user and sets the login cookies. A session the
// request already carried is revoked first: a login never reuses a session id (no fixation).
func (h *Hub) createSession(w http.ResponseWriter, r *http.Request, user *store.User) (*store.Session, error) {
	oldHash := ""
	if sid := h.loginSessionID(r); sid != "" {
		oldHash = store.Hash(sid)
	}
	sid := store.NewSecret(16)
	now := time.Now().UTC()
	sess := &store.Session{
		Hash:     store.Hash(sid),
		User:     user.Name,
		Created:  now,
		Expires:  now.Add(h.web.maxAge),
		CookieID: user.CookieID,
	}
	err := h.store.Update(func(tx *store.Txn) error {
		if oldHash != "" {
			if err := tx.DeleteSession(oldHash); err != nil {
				return err
			}
		}
		return tx.PutSession(sess)
	})
	if err != nil {
		return nil, fmt.Errorf("recording login session of %s: %w", user.Name, err)
	}
	if oldHash != "" {
		h.web.cache.evict(oldHash)
	}
	if err := h.setLoginCookies(w, r, sid, sess); err != nil {
		return nil, err
	}
	return sess, nil
}

// setLoginCookies sets jupyterhub-hub-login (the encrypted session id, path <base>hub/),
// jupyterhub-session-id (the session hash, path <base>) and `_xsrf` (the new session's XSRF token,
// so that a script has the right one without loading another page first, as JupyterHub).
func (h *Hub) setLoginCookies(w http.ResponseWriter, r *http.Request, sid string, sess *store.Session) error {
	maxAge := int(time.Until(sess.Expires) / time.Second)
	if maxAge <= 0 {
		maxAge = -1
	}
	secure := requestIsTLS(r)
	s := sessions.NewSession(h.web.cookies, loginCookie)
	s.Values[sessionIDKey] = sid
	s.Options = &sessions.Options{
		Path:     h.prefix,
		MaxAge:   maxAge,
		HttpOnly: true,
		Secure:   secure,
		SameSite: http.SameSiteLaxMode,
	}
	if err := h.web.cookies.Save(r, w, s); err != nil {
		return fmt.Errorf("encoding login cookie: %w", err)
	}
	h.setSessionIDCookie(w, r, sess)
	h.setXSRFCookie(w, r, h.xsrfTokenFor(sessionXSRFID(sess)), true)
	return nil
}

func (h *Hub) setSessionIDCookie(w http.ResponseWriter, r *http.Request, sess *store.Session) {
	http.SetCookie(w, &http.Cookie{
		Name:     sessionIDCookie,
		Value:    sess.Hash,
		Path:     h.base,
		MaxAge:   max(int(time.Until(sess.Expires)/time.Second), 1),
		HttpOnly: true,
		Secure:   requestIsTLS(r),
		SameSite: http.SameSiteLaxMode,
	})
}

// clearLoginCookies expires every cookie the hub sets on login.
func (h *Hub) clearLoginCookies(w http.ResponseWriter, r *http.Request) {
	secure := requestIsTLS(r)
	for _, c := range []struct{ name, path string }{
		{loginCookie, h.prefix},
		{sessionIDCookie, h.base},
		{servicesCookie, h.base + "services/"},
		{xsrfCookie, h.prefix},
	} {
		http.SetCookie(w, &http.Cookie{
			Name: c.name, Value: "", Path: c.path, MaxAge: -1,
			HttpOnly: true, Secure: secure, SameSite: http.SameSiteLaxMode,
		})
	}
}

// deleteSession revokes one login session and the OAuth tokens issued under it
// (GHSA-cw7p-q79f-m2v7), here and in the store.
func (h *Hub) deleteSession(sess *store.Session) error {
	h.web.cache.evict(sess.Hash)
	if err := h.store.Update(func(tx *store.Txn) error { return tx.DeleteSession(sess.Hash) }); err != nil {
		return fmt.Errorf("deleting login session of %s: %w", sess.User, err)
	}
	return nil
}

// logoutEverywhere revokes every login session of a user: it rotates the user's CookieID (so
// that no session begun before is accepted again, even one this process has cached) and deletes
// the sessions with their OAuth tokens.
func (h *Hub) logoutEverywhere(name string) error {
	err := h.store.Update(func(tx *store.Txn) error {
		u, err := tx.User(name)
		if err != nil {
			return err
		}
		u.CookieID = store.NewSecret(16)
		if err := tx.PutUser(u); err != nil {
			return err
		}
		return tx.DeleteUserSessions(name)
	})
	h.web.cache.evictUser(name)
	if err != nil {
		return fmt.Errorf("logging %s out everywhere: %w", name, err)
	}
	return nil
}
