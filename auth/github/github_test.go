package github

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/caddyhub/caddyhub/auth"
	"github.com/caddyhub/caddyhub/auth/authtest"
	_ "github.com/caddyhub/caddyhub/hubapp" // the jupyterhub global option
	"github.com/caddyhub/caddyhub/internal/caddyfiletest"
)

// fakeGitHub speaks the few GitHub endpoints the authenticator uses, as
// GitHub Enterprise Server does (API under /api/v3): authorize (which
// signs in the user named by the test), access_token, /user, /user/orgs,
// team memberships.
type fakeGitHub struct {
	srv    *httptest.Server
	secret string
	mu     sync.Mutex
	next   string              // the login the next authorize signs in
	codes  map[string]string   // code → login
	tokens map[string]string   // token → login
	orgs   map[string][]string // login → orgs
	teams  map[string][]string // "org:team" → active members
	calls  []string
}

func newFake(t *testing.T) *fakeGitHub {
	f := &fakeGitHub{secret: "gh-secret", codes: map[string]string{}, tokens: map[string]string{},
		orgs:  map[string][]string{"octo": {"Acme", "other"}, "mona": {"other"}, "lisa": {"acme"}},
		teams: map[string][]string{"acme:hub-admins": {"Lisa"}, "other:science": {"mona"}}}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /login/oauth/authorize", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		if q.Get("code_challenge_method") != "S256" || q.Get("state") == "" {
			http.Error(w, "no PKCE or state", http.StatusBadRequest)
			return
		}
		f.mu.Lock()
		code := fmt.Sprintf("code-%d", len(f.codes))
		f.codes[code] = f.next
		f.mu.Unlock()
		http.Redirect(w, r, q.Get("redirect_uri")+"?code="+code+"&state="+url.QueryEscape(q.Get("state")), http.StatusFound)
	})
	mux.HandleFunc("POST /login/oauth/access_token", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		f.mu.Lock()
		defer f.mu.Unlock()
		// GitHub answers errors with 200 and an "error" field.
		if r.FormValue("client_secret") != f.secret {
			_, _ = w.Write([]byte(`{"error":"incorrect_client_credentials","error_description":"The client_id and/or client_secret passed are incorrect."}`))
			return
		}
		login, ok := f.codes[r.FormValue("code")]
		if !ok || r.FormValue("code_verifier") == "" {
			_, _ = w.Write([]byte(`{"error":"bad_verification_code"}`))
			return
		}
		delete(f.codes, r.FormValue("code"))
		tok := "gho_" + login
		f.tokens[tok] = login
		_ = json.NewEncoder(w).Encode(map[string]string{"access_token": tok, "token_type": "bearer", "scope": "read:org,read:user"})
	})
	api := http.NewServeMux()
	api.HandleFunc("GET /user", func(w http.ResponseWriter, r *http.Request) {
		_ = json.NewEncoder(w).Encode(map[string]any{"login": r.Context().Value(loginKey{}), "id": 1})
	})
	api.HandleFunc("GET /user/orgs", func(w http.ResponseWriter, r *http.Request) {
		var out []map[string]string
		for _, o := range f.orgs[r.Context().Value(loginKey{}).(string)] {
			out = append(out, map[string]string{"login": o})
		}
		_ = json.NewEncoder(w).Encode(out)
	})
	api.HandleFunc("GET /orgs/{org}/teams/{team}/memberships/{user}", func(w http.ResponseWriter, r *http.Request) {
		for _, m := range f.teams[r.PathValue("org")+":"+r.PathValue("team")] {
			if strings.EqualFold(m, r.PathValue("user")) {
				_, _ = w.Write([]byte(`{"state":"active","role":"member"}`))
				return
			}
		}
		http.Error(w, `{"message":"Not Found"}`, http.StatusNotFound)
	})
	mux.Handle("/api/v3/", http.StripPrefix("/api/v3", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		login, ok := f.tokens[strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")]
		f.calls = append(f.calls, r.URL.Path)
		f.mu.Unlock()
		if !ok {
			http.Error(w, `{"message":"Bad credentials"}`, http.StatusUnauthorized)
			return
		}
		api.ServeHTTP(w, r.WithContext(contextWithLogin(r, login)))
	})))
	f.srv = httptest.NewServer(mux)
	t.Cleanup(f.srv.Close)
	return f
}

// login runs a whole login of user through a stand-in hub.
func (f *fakeGitHub) login(t *testing.T, g *GitHub, user string) (*auth.User, error) {
	t.Helper()
	f.mu.Lock()
	f.next = user
	f.mu.Unlock()
	var got *auth.User
	var gotErr error
	var hubURL string
	rc := func(r *http.Request) auth.RedirectContext {
		return auth.RedirectContext{CallbackURL: hubURL + "/hub/oauth_callback", CookiePath: "/hub/", Next: "/hub/home"}
	}
	hub := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/hub/oauth_login":
			u, _ := g.BeginLogin(w, r, rc(r))
			http.Redirect(w, r, u, http.StatusFound)
		case "/hub/oauth_callback":
			got, _, gotErr = g.Callback(w, r, rc(r))
		}
	}))
	defer hub.Close()
	hubURL = hub.URL
	jar, _ := cookiejar.New(nil)
	resp, err := (&http.Client{Jar: jar}).Get(hub.URL + "/hub/oauth_login")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return got, gotErr
}

func load(t *testing.T, f *fakeGitHub, extra string) *GitHub {
	t.Helper()
	m, err := authtest.Load(t, fmt.Sprintf(`{"authenticator":"github","client_id":"cid","client_secret":%q,"github_url":%q%s}`,
		f.secret, f.srv.URL, extra))
	if err != nil {
		t.Fatal(err)
	}
	return m.(*GitHub)
}

func TestOrganizationsAndTeams(t *testing.T) {
	f := newFake(t)
	g := load(t, f, `,"allowed_organizations":["acme"],"allowed_teams":["other:science"],"admin_teams":["acme:hub-admins"]`)
	if g.apiURL != f.srv.URL+"/api/v3" {
		t.Fatalf("enterprise API URL: %s", g.apiURL)
	}
	for _, c := range []struct {
		login       string
		name        string
		admin       bool
		notAllowed  bool
		wantInError string
	}{
		{login: "octo", name: "octo"},              // member of Acme (case differs)
		{login: "Mona", name: "mona"},              // not in acme, but in other:science
		{login: "lisa", name: "lisa", admin: true}, // admin team
		{login: "nobody", notAllowed: true, wantInError: "allowed_organizations"},
	} {
		u, err := f.login(t, g, c.login)
		if c.notAllowed {
			if !errors.Is(err, auth.ErrNotAllowed) || !strings.Contains(err.Error(), c.wantInError) {
				t.Errorf("%s: %v, want ErrNotAllowed naming %s", c.login, err, c.wantInError)
			}
			continue
		}
		if err != nil || u.Name != c.name || u.Admin != c.admin {
			t.Errorf("%s: %+v %v; want %s admin=%v", c.login, u, err, c.name, c.admin)
			continue
		}
		if u.AuthState["access_token"] != "gho_"+c.login || u.AuthState["github_user"] == nil {
			t.Errorf("%s: auth_state %v", c.login, u.AuthState)
		}
	}
	// Only teams: an org member outside the team is refused.
	g2 := load(t, f, `,"allowed_teams":["other:science"]`)
	if _, err := f.login(t, g2, "octo"); !errors.Is(err, auth.ErrNotAllowed) || !strings.Contains(err.Error(), "allowed_teams") {
		t.Fatalf("octo with only allowed_teams: %v", err)
	}
	// org:team inside allowed_organizations means the team.
	g3 := load(t, f, `,"allowed_organizations":["acme:hub-admins"]`)
	if u, err := f.login(t, g3, "lisa"); err != nil || u.Name != "lisa" {
		t.Fatalf("lisa by org:team in allowed_organizations: %+v %v", u, err)
	}
	if _, err := f.login(t, g3, "octo"); !errors.Is(err, auth.ErrNotAllowed) {
		t.Fatalf("octo by org:team: %v", err)
	}
	// The common lists still apply.
	g4 := load(t, f, `,"allowed_organizations":["acme"],"blocked_users":["octo"]`)
	if _, err := f.login(t, g4, "octo"); !errors.Is(err, auth.ErrNotAllowed) || !strings.Contains(err.Error(), "blocked") {
		t.Fatalf("blocked octo: %v", err)
	}
}

func TestWrongSecretAndReplay(t *testing.T) {
	f := newFake(t)
	g := load(t, f, `,"allow_all":true`)
	g.secret = "wrong"
	if _, err := f.login(t, g, "octo"); !errors.Is(err, auth.ErrProviderRefused) || !strings.Contains(err.Error(), "client_secret") {
		t.Fatalf("wrong secret: %v", err)
	}
	// A callback without a matching state is refused before any request to GitHub.
	g = load(t, f, `,"allow_all":true`)
	rec := httptest.NewRecorder()
	_, _, err := g.Callback(rec, httptest.NewRequest("GET", "/hub/oauth_callback?code=code-0&state=forged", nil), auth.RedirectContext{})
	if !errors.Is(err, auth.ErrLoginExpired) {
		t.Fatalf("forged state: %v", err)
	}
}

func TestDefaults(t *testing.T) {
	m, err := authtest.Load(t, `{"authenticator":"github","client_id":"c","client_secret":"s","allowed_organizations":["acme"]}`)
	if err != nil {
		t.Fatal(err)
	}
	g := m.(*GitHub)
	if g.apiURL != "https://api.github.com" || g.endpoint.AuthURL != "https://github.com/login/oauth/authorize" {
		t.Fatalf("github.com URLs: %s %s", g.apiURL, g.endpoint.AuthURL)
	}
	if strings.Join(g.scopes, " ") != "read:user read:org" {
		t.Fatalf("scopes: %v", g.scopes)
	}
	for _, bad := range []string{
		`{"authenticator":"github","client_id":"c"}`,
		`{"authenticator":"github","client_id":"c","client_secret":"s","allowed_teams":["noslug"]}`,
		`{"authenticator":"github","client_id":"c","client_secret":"s","github_url":"github.example.org"}`,
	} {
		if _, err := authtest.Load(t, bad); err == nil {
			t.Errorf("accepted %s", bad)
		}
	}
}

func TestCaddyfile(t *testing.T) {
	caddyfiletest.Run(t, "testdata/caddyfile", authtest.LoadsFromHub)
}

type loginKey struct{}

func contextWithLogin(r *http.Request, login string) context.Context {
	return context.WithValue(r.Context(), loginKey{}, login)
}
