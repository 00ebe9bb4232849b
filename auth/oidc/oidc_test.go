package oidc

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddyhub/caddyhub/auth"
	"github.com/caddyhub/caddyhub/auth/authtest"
	"github.com/caddyhub/caddyhub/auth/oidc/oidctest"
	_ "github.com/caddyhub/caddyhub/hubapp" // the jupyterhub global option
	"github.com/caddyhub/caddyhub/internal/caddyfiletest"
)

// hub is a stand-in for the hub's HTTP layer: it mounts oauth_login and
// oauth_callback as the hub does and records what Callback returned.
type hub struct {
	hubNS atomic.Int64 // time spent in the authenticator, minus the provider's
	srv   *httptest.Server
	a     *OIDC
	mu    sync.Mutex
	user  *auth.User
	next  string
	err   error
}

func (h *hub) rc(r *http.Request) auth.RedirectContext {
	return auth.RedirectContext{CallbackURL: h.srv.URL + "/hub/oauth_callback", CookiePath: "/hub/", Next: r.URL.Query().Get("next")}
}

func newHub(t testing.TB, p *oidctest.Provider, extra string) *hub {
	t.Helper()
	h := &hub{}
	mux := http.NewServeMux()
	mux.HandleFunc("/hub/oauth_login", func(w http.ResponseWriter, r *http.Request) {
		r, done := h.timed(r)
		u, err := h.a.BeginLogin(w, r, h.rc(r))
		done()
		if err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		http.Redirect(w, r, u, http.StatusFound)
	})
	mux.HandleFunc("/hub/oauth_callback", func(w http.ResponseWriter, r *http.Request) {
		r, done := h.timed(r)
		u, next, err := h.a.Callback(w, r, h.rc(r))
		done()
		h.mu.Lock()
		h.user, h.next, h.err = u, next, err
		h.mu.Unlock()
		if err != nil {
			http.Error(w, err.Error(), http.StatusForbidden)
			return
		}
		_, _ = io.WriteString(w, "welcome "+u.Name)
	})
	h.srv = httptest.NewServer(mux)
	t.Cleanup(h.srv.Close)
	p.AddClient("hub", "s3cret", []string{h.srv.URL + "/hub/oauth_callback"}, []string{h.srv.URL + "/hub/login"})
	h.a = load(t, p.Issuer, extra)
	h.a.client.Transport = providerTimer{http.DefaultTransport}
	return h
}

func load(t testing.TB, issuer, extra string) *OIDC {
	t.Helper()
	raw := fmt.Sprintf(`{"authenticator":"oidc","issuer":%q,"client_id":"hub","client_secret":"s3cret"%s}`, issuer, extra)
	m, err := authtest.Load(t, raw)
	if err != nil {
		t.Fatalf("loading %s: %v", raw, err)
	}
	return m.(*OIDC)
}

func (h *hub) result() (*auth.User, string, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.user, h.next, h.err
}

// login signs username in through the provider and returns what the hub's
// callback got.
func (h *hub) login(t *testing.T, p *oidctest.Provider, browser *http.Client, username string) (*auth.User, string, error) {
	t.Helper()
	h.mu.Lock()
	h.user, h.err = nil, nil
	h.mu.Unlock()
	resp, err := p.Login(browser, h.srv.URL+"/hub/oauth_login?next=/hub/spawn", username, "pw-"+username)
	if err != nil {
		t.Fatalf("login of %s: %v", username, err)
	}
	resp.Body.Close()
	return h.result()
}

func provider(t testing.TB) *oidctest.Provider {
	p := oidctest.Start(t, "")
	p.AddUser(oidctest.User{Username: "alice", Password: "pw-alice", Groups: []string{"staff", "hub-admins"}})
	p.AddUser(oidctest.User{Username: "bob", Password: "pw-bob", Groups: []string{"staff"}})
	p.AddUser(oidctest.User{Username: "eve", Password: "pw-eve", Groups: []string{"guests"}})
	return p
}

const groupsConfig = `,"allowed_groups":["staff"],"admin_groups":["hub-admins"],"scopes":["openid","profile","email","offline_access"]`

func TestLoginByGroups(t *testing.T) {
	p := provider(t)
	h := newHub(t, p, groupsConfig+`,"blocked_users":["carol"]`)
	u, next, err := h.login(t, p, oidctest.NewBrowser(), "alice")
	if err != nil {
		t.Fatalf("alice: %v", err)
	}
	if u.Name != "alice" || !u.Admin || next != "/hub/spawn" {
		t.Fatalf("alice: got %+v next %q; want admin alice, next /hub/spawn", u, next)
	}
	if strings.Join(u.Groups, ",") != "staff,hub-admins" {
		t.Fatalf("alice's groups: %v", u.Groups)
	}
	for _, k := range []string{stateAccessToken, stateRefreshToken, stateIDToken, stateExpiresAt, stateUser} {
		if u.AuthState[k] == nil {
			t.Errorf("auth_state has no %s: %v", k, u.AuthState)
		}
	}
	if c, _ := u.AuthState[stateUser].(map[string]any); c["preferred_username"] != "alice" {
		t.Errorf("auth_state claims: %v", u.AuthState[stateUser])
	}

	u, _, err = h.login(t, p, oidctest.NewBrowser(), "bob")
	if err != nil || u.Name != "bob" || u.Admin {
		t.Fatalf("bob: %+v %v; want a non-admin login", u, err)
	}
	_, _, err = h.login(t, p, oidctest.NewBrowser(), "eve")
	if !errors.Is(err, auth.ErrNotAllowed) || !strings.Contains(err.Error(), "allowed_groups") {
		t.Fatalf("eve (only in guests): %v; want ErrNotAllowed naming allowed_groups", err)
	}
	// Group membership is read at every login: eve joins staff.
	p.SetGroups("eve", "staff")
	if u, _, err = h.login(t, p, oidctest.NewBrowser(), "eve"); err != nil || u.Name != "eve" {
		t.Fatalf("eve after joining staff: %+v %v", u, err)
	}
	// Losing hub-admins takes admin away at the next login (the hub never revokes it, as JupyterHub).
	p.SetGroups("alice", "staff")
	if u, _, err = h.login(t, p, oidctest.NewBrowser(), "alice"); err != nil || u.Admin {
		t.Fatalf("alice without hub-admins: %+v %v; want non-admin", u, err)
	}
}

func TestUsernameClaimAndPattern(t *testing.T) {
	p := provider(t)
	p.AddUser(oidctest.User{Username: "Dora", Password: "pw-Dora", Email: "dora@example.org", Groups: []string{"staff"}})
	h := newHub(t, p, groupsConfig+`,"username_claim":"email","username_pattern":"[a-z]+@example\\.org"`)
	u, _, err := h.login(t, p, oidctest.NewBrowser(), "Dora")
	if err != nil || u.Name != "dora@example.org" {
		t.Fatalf("dora by email: %+v %v", u, err)
	}
	h2 := newHub(t, p, groupsConfig+`,"username_claim":"nickname"`)
	if _, _, err := h2.login(t, p, oidctest.NewBrowser(), "bob"); !errors.Is(err, auth.ErrInvalidUsername) || !strings.Contains(err.Error(), "nickname") {
		t.Fatalf("missing claim: %v", err)
	}
}

func TestStateChecks(t *testing.T) {
	p := provider(t)
	h := newHub(t, p, groupsConfig)
	browser := oidctest.NewBrowser()
	// Capture the callback URL instead of following it.
	var callback string
	browser.CheckRedirect = func(r *http.Request, _ []*http.Request) error {
		if strings.HasPrefix(r.URL.String(), h.srv.URL+"/hub/oauth_callback") {
			callback = r.URL.String()
			return http.ErrUseLastResponse
		}
		return nil
	}
	resp, err := p.Login(browser, h.srv.URL+"/hub/oauth_login", "bob", "pw-bob")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if callback == "" {
		t.Fatal("no redirect to the callback")
	}
	// Another browser (without the state cookie) cannot use it.
	other := oidctest.NewBrowser()
	if resp, err := other.Get(callback); err != nil || resp.StatusCode != http.StatusForbidden {
		t.Fatalf("callback from another browser: %v %v", resp.Status, err)
	}
	if _, _, err := h.result(); !errors.Is(err, auth.ErrLoginExpired) {
		t.Fatalf("another browser: %v, want ErrLoginExpired", err)
	}
	// That attempt consumed the state: the right browser now fails as well (replay).
	browser.CheckRedirect = nil
	if resp, err := browser.Get(callback); err != nil || resp.StatusCode != http.StatusForbidden {
		t.Fatalf("replayed callback: %v %v", resp.Status, err)
	}
	if _, _, err := h.result(); !errors.Is(err, auth.ErrLoginExpired) {
		t.Fatalf("replay: %v, want ErrLoginExpired", err)
	}
	// A successful callback cannot be replayed either.
	if _, _, err := h.login(t, p, browser, "bob"); err != nil {
		t.Fatal(err)
	}
	var last string
	browser.CheckRedirect = func(r *http.Request, _ []*http.Request) error {
		if strings.HasPrefix(r.URL.String(), h.srv.URL+"/hub/oauth_callback") {
			last = r.URL.String()
		}
		return nil
	}
	if _, _, err := h.login(t, p, browser, "bob"); err != nil {
		t.Fatal(err)
	}
	if resp, err := browser.Get(last); err != nil || resp.StatusCode != http.StatusForbidden {
		t.Fatalf("replaying a used callback: %v %v", resp.Status, err)
	}
	// An expired login: start, then move the clock past the time limit.
	browser.CheckRedirect = nil
	var calls atomic.Int32
	h.a.pending.SetClock(func() time.Time { // Begin in the past, Finish now
		if calls.Add(1) == 1 {
			return time.Now().Add(-time.Hour)
		}
		return time.Now()
	})
	_, _, err = h.login(t, p, browser, "bob")
	h.a.pending.SetClock(time.Now)
	if !errors.Is(err, auth.ErrLoginExpired) || !strings.Contains(err.Error(), "started more than") {
		t.Fatalf("expired login: %v", err)
	}
	// No state at all.
	resp, _ = browser.Get(h.srv.URL + "/hub/oauth_callback?code=x")
	resp.Body.Close()
	if _, _, err := h.result(); !errors.Is(err, auth.ErrLoginExpired) {
		t.Fatalf("no state: %v", err)
	}
}

func TestTokenVerification(t *testing.T) {
	p := provider(t)
	h := newHub(t, p, groupsConfig)
	p.TamperIDTokens(true)
	if _, _, err := h.login(t, p, oidctest.NewBrowser(), "bob"); !errors.Is(err, auth.ErrInvalidToken) {
		t.Fatalf("tampered id token: %v, want ErrInvalidToken", err)
	}
	p.TamperIDTokens(false)
	p.SetIDTokenTTL(-time.Minute)
	if _, _, err := h.login(t, p, oidctest.NewBrowser(), "bob"); !errors.Is(err, auth.ErrInvalidToken) || !strings.Contains(err.Error(), "expired") {
		t.Fatalf("expired id token: %v, want ErrInvalidToken (expired)", err)
	}
	p.SetIDTokenTTL(0)
	if _, _, err := h.login(t, p, oidctest.NewBrowser(), "bob"); err != nil {
		t.Fatalf("login before the key rotation: %v", err)
	}
	// The provider rotates its signing key: the verifier fetches the JWKS again.
	p.RotateKey()
	if _, _, err := h.login(t, p, oidctest.NewBrowser(), "bob"); err != nil {
		t.Fatalf("login after the provider rotated its key: %v", err)
	}
}

func TestWrongClientSecret(t *testing.T) {
	p := provider(t)
	h := newHub(t, p, groupsConfig)
	h.a = load(t, p.Issuer, groupsConfig)
	h.a.secret = "wrong"
	_, _, err := h.login(t, p, oidctest.NewBrowser(), "bob")
	if !errors.Is(err, auth.ErrProviderRefused) || !strings.Contains(err.Error(), "client_secret") {
		t.Fatalf("wrong secret: %v, want ErrProviderRefused naming client_secret", err)
	}
}

func TestProviderDownAtStart(t *testing.T) {
	old := retryOnDemand
	retryOnDemand = 0
	t.Cleanup(func() { retryOnDemand = old })
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	a := load(t, "http://"+addr, groupsConfig)
	rec := httptest.NewRecorder()
	req := httptest.NewRequest("GET", "/hub/oauth_login", nil)
	if _, err := a.BeginLogin(rec, req, auth.RedirectContext{CallbackURL: "http://x/hub/oauth_callback", CookiePath: "/hub/"}); !errors.Is(err, auth.ErrProviderUnavailable) {
		t.Fatalf("provider down: %v, want ErrProviderUnavailable", err)
	}
	if msg := a.Unavailable(req.Context()); !strings.Contains(msg, "unavailable") {
		t.Fatalf("login page text while the provider is down: %q", msg)
	}
	p := oidctest.Start(t, addr)
	p.AddClient("hub", "s3cret", []string{"http://x/hub/oauth_callback"}, nil)
	u, err := a.BeginLogin(rec, req, auth.RedirectContext{CallbackURL: "http://x/hub/oauth_callback", CookiePath: "/hub/"})
	if err != nil || !strings.HasPrefix(u, p.Issuer+"/authorize?") {
		t.Fatalf("after the provider came up: %q %v", u, err)
	}
	q, _ := url.Parse(u)
	for _, k := range []string{"state", "nonce", "code_challenge"} {
		if q.Query().Get(k) == "" {
			t.Errorf("authorization URL without %s: %s", k, u)
		}
	}
	if q.Query().Get("code_challenge_method") != "S256" {
		t.Errorf("PKCE method: %s", u)
	}
	if msg := a.Unavailable(req.Context()); msg != "" {
		t.Fatalf("still unavailable: %q", msg)
	}
}

func TestRefreshBeforeSpawn(t *testing.T) {
	p := provider(t)
	h := newHub(t, p, groupsConfig+`,"refresh_pre_spawn":true`)
	u, _, err := h.login(t, p, oidctest.NewBrowser(), "bob")
	if err != nil {
		t.Fatal(err)
	}
	same, err := h.a.RefreshUser(t.Context(), u)
	if err != nil || same != u {
		t.Fatalf("fresh token refreshed: %v", err)
	}
	exp, _ := expiresAt(u.AuthState)
	h.a.now = func() time.Time { return exp.Add(time.Minute) }
	before := p.TokenRequests()
	nu, err := h.a.RefreshUser(t.Context(), u)
	if err != nil {
		t.Fatalf("refresh: %v", err)
	}
	if p.TokenRequests() != before+1 || nu.AuthState[stateAccessToken] == u.AuthState[stateAccessToken] {
		t.Fatalf("no new access token after an expired one (token requests %d→%d)", before, p.TokenRequests())
	}
	if nu.Name != "bob" || nu.AuthState[stateRefreshToken] == "" {
		t.Fatalf("refreshed user: %+v", nu)
	}
	// Removed from staff at the provider: the refresh refuses the spawn.
	p.SetGroups("bob", "guests")
	if _, err := h.a.RefreshUser(t.Context(), nu); !errors.Is(err, auth.ErrNotAllowed) {
		t.Fatalf("refresh after leaving staff: %v, want ErrNotAllowed", err)
	}
	// A refresh token the provider no longer knows: log in again.
	bad := &auth.User{Name: "bob", AuthState: map[string]any{stateExpiresAt: float64(exp.Unix()), stateRefreshToken: "nope"}}
	if _, err := h.a.RefreshUser(t.Context(), bad); !errors.Is(err, auth.ErrLoginExpired) {
		t.Fatalf("unknown refresh token: %v, want ErrLoginExpired", err)
	}
}

func TestLogoutEndSession(t *testing.T) {
	p := provider(t)
	h := newHub(t, p, groupsConfig+`,"end_session":true`)
	browser := oidctest.NewBrowser()
	u, _, err := h.login(t, p, browser, "bob")
	if err != nil {
		t.Fatal(err)
	}
	lu := h.a.LogoutURL(t.Context(), u, h.srv.URL+"/hub/login")
	if !strings.HasPrefix(lu, p.Issuer+"/end_session?") || !strings.Contains(lu, "id_token_hint=") {
		t.Fatalf("logout URL: %q", lu)
	}
	var landed string
	browser.CheckRedirect = func(r *http.Request, _ []*http.Request) error {
		landed = r.URL.String()
		if strings.HasPrefix(landed, h.srv.URL) {
			return http.ErrUseLastResponse
		}
		return nil
	}
	resp, err := browser.Get(lu)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if p.EndSessions() != 1 || landed != h.srv.URL+"/hub/login" {
		t.Fatalf("end session: %d sessions ended, landed on %q", p.EndSessions(), landed)
	}
	// Without end_session: only logout_redirect_url, or nothing.
	a := load(t, p.Issuer, `,"logout_redirect_url":"https://example.org/bye"`)
	if got := a.LogoutURL(t.Context(), u, "x"); got != "https://example.org/bye" {
		t.Fatalf("logout_redirect_url: %q", got)
	}
}

func TestSpawnEnv(t *testing.T) {
	a := load(t, "http://127.0.0.1:1", `,"auth_state_env":{"TOKEN":"access_token","MAIL":"claim.email","DEPT":"claim.org.dept"}`)
	env := a.SpawnEnv(map[string]any{stateAccessToken: "at", stateRefreshToken: "rt",
		stateUser: map[string]any{"email": "a@x", "org": map[string]any{"dept": "r&d"}}})
	b, _ := json.Marshal(env)
	if string(b) != `{"DEPT":"r\u0026d","MAIL":"a@x","TOKEN":"at"}` {
		t.Fatalf("env: %s", b)
	}
	if env := load(t, "http://127.0.0.1:1", "").SpawnEnv(map[string]any{stateAccessToken: "at"}); env != nil {
		t.Fatalf("tokens handed to the server without auth_state_env: %v", env)
	}
}

func TestProvisionErrors(t *testing.T) {
	for _, c := range []struct{ raw, want string }{
		{`{"authenticator":"oidc","client_id":"x"}`, "issuer is required"},
		{`{"authenticator":"oidc","issuer":"ftp://x","client_id":"x"}`, "absolute http(s) URL"},
		{`{"authenticator":"oidc","issuer":"https://x"}`, "client_id is required"},
		{`{"authenticator":"oidc","issuer":"https://x","client_id":"x","client_secret":"{env.CADDYHUB_SURELY_UNSET}"}`, "client_secret"},
		{`{"authenticator":"oidc","issuer":"https://x","client_id":"x","auth_state_env":{"A":"password"}}`, "auth_state_env"},
	} {
		if _, err := authtest.Load(t, c.raw); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want an error with %q", c.raw, err, c.want)
		}
	}
}

func TestCaddyfile(t *testing.T) {
	caddyfiletest.Run(t, "testdata/caddyfile", authtest.LoadsFromHub)
}
