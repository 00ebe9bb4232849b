// Package loginstate keeps the pending redirect logins of an authenticator:
// the OAuth `state`, the OpenID `nonce` and the PKCE verifier of each login
// between the redirect to the provider and the provider's callback, bound
// to the browser that started it by a short-lived cookie.
//
// The values stay in this process (a map with a time limit); the browser
// holds only a random binding secret in an HttpOnly cookie and the state in
// the provider's URL. A callback is accepted once: its state is deleted
// whatever the outcome, so a replayed callback fails, as does one from a
// browser that does not hold the cookie, or one older than the time limit.
// Logins that are under way when the hub's configuration is reloaded or the
// hub restarts fail the same way; the person signs in again.
package loginstate

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"net/http"
	"sync"
	"time"

	"golang.org/x/oauth2"

	"github.com/caddyhub/caddyhub/auth"
)

// DefaultTTL is how long a person has to complete a login at the provider.
const DefaultTTL = 10 * time.Minute

// maxPending bounds the logins kept at once; when full, expired ones go
// first, then the oldest half. A flood of unfinished logins costs memory
// for at most TTL and cannot grow without bound.
const maxPending = 100000

// Pending is what a login keeps between BeginLogin and Callback.
type Pending struct {
	// State is the OAuth state parameter.
	State string
	// Nonce is the OpenID nonce the ID token must carry.
	Nonce string
	// Verifier is the PKCE code verifier.
	Verifier string
	// Next is the hub URL to go to after the login.
	Next string

	binding [sha256.Size]byte
	created time.Time
}

// Store holds pending logins. The zero value is not usable; call New.
type Store struct {
	cookie string
	ttl    time.Duration
	now    func() time.Time

	mu sync.Mutex
	m  map[string]*Pending
}

// New returns a store whose cookie is called cookieName and whose logins
// expire after ttl (DefaultTTL when 0).
func New(cookieName string, ttl time.Duration) *Store {
	if ttl <= 0 {
		ttl = DefaultTTL
	}
	return &Store{cookie: cookieName, ttl: ttl, now: time.Now, m: make(map[string]*Pending)}
}

// SetClock replaces the store's clock (tests).
func (s *Store) SetClock(now func() time.Time) { s.now = now }

// random returns n random bytes as unpadded base64url.
func random(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // never fails (crypto/rand documents it)
	return base64.RawURLEncoding.EncodeToString(b)
}

// Begin records a new login for the browser of r and returns it; it sets
// the binding cookie on w (reusing the browser's current binding, so that
// logins started in two tabs both work).
func (s *Store) Begin(w http.ResponseWriter, r *http.Request, rc auth.RedirectContext) *Pending {
	binding := ""
	if c, err := r.Cookie(s.cookie); err == nil && len(c.Value) == 43 {
		binding = c.Value
	} else {
		binding = random(32)
	}
	p := &Pending{
		State:    random(24),
		Nonce:    random(24),
		Verifier: oauth2.GenerateVerifier(),
		Next:     rc.Next,
		binding:  sha256.Sum256([]byte(binding)),
		created:  s.now(),
	}
	s.mu.Lock()
	if len(s.m) >= maxPending {
		s.pruneLocked(p.created)
	}
	s.m[p.State] = p
	s.mu.Unlock()
	http.SetCookie(w, &http.Cookie{
		Name: s.cookie, Value: binding, Path: rc.CookiePath, MaxAge: int(s.ttl / time.Second),
		HttpOnly: true, Secure: rc.Secure, SameSite: http.SameSiteLaxMode,
	})
	return p
}

func (s *Store) pruneLocked(now time.Time) {
	for k, p := range s.m {
		if now.Sub(p.created) >= s.ttl {
			delete(s.m, k)
		}
	}
	if len(s.m) < maxPending {
		return
	}
	var cutoff time.Time
	n := 0
	for _, p := range s.m { // an approximate median is enough
		if n++; n > 64 {
			break
		}
		if cutoff.IsZero() || p.created.After(cutoff) {
			cutoff = p.created
		}
	}
	for k, p := range s.m {
		if len(s.m) <= maxPending/2 {
			break
		}
		if !p.created.After(cutoff) {
			delete(s.m, k)
		}
	}
}

// Finish takes the login named by the request's `state` parameter, once.
// Errors wrap auth.ErrLoginExpired and say which check failed (for the
// log): no state, unknown or used state, expired, or a browser without the
// binding cookie. The binding cookie is kept for other pending logins of
// the same browser; it expires on its own.
func (s *Store) Finish(r *http.Request) (*Pending, error) {
	state := r.URL.Query().Get("state")
	if state == "" {
		return nil, fmt.Errorf("%w: the callback has no state parameter", auth.ErrLoginExpired)
	}
	s.mu.Lock()
	p := s.m[state]
	delete(s.m, state)
	s.mu.Unlock()
	if p == nil {
		return nil, fmt.Errorf("%w: unknown state (already used, or started before the hub restarted)", auth.ErrLoginExpired)
	}
	if s.now().Sub(p.created) >= s.ttl {
		return nil, fmt.Errorf("%w: the login was started more than %s ago", auth.ErrLoginExpired, s.ttl)
	}
	c, err := r.Cookie(s.cookie)
	if err != nil {
		return nil, fmt.Errorf("%w: the browser did not send the login cookie (cookies blocked, or another browser)", auth.ErrLoginExpired)
	}
	sum := sha256.Sum256([]byte(c.Value))
	if subtle.ConstantTimeCompare(sum[:], p.binding[:]) != 1 {
		return nil, fmt.Errorf("%w: the state belongs to another browser", auth.ErrLoginExpired)
	}
	return p, nil
}

// Len returns the number of pending logins (tests, metrics).
func (s *Store) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.m)
}
