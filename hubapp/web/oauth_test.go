package web

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/caddyhub/caddyhub/hubapp/store"
)

// login creates a login session for user and returns the cookies a browser would hold.
func login(t testing.TB, h *Hub, name string) ([]*http.Cookie, *store.Session) {
	t.Helper()
	var u *store.User
	if err := h.store.View(func(tx *store.Txn) error { var err error; u, err = tx.User(name); return err }); err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	sess, err := h.createSession(rec, httptest.NewRequest("POST", "http://hub.test/hub/login", nil), u)
	if err != nil {
		t.Fatal(err)
	}
	return rec.Result().Cookies(), sess
}

func browserDo(t testing.TB, h *Hub, method, target string, cookies []*http.Cookie, form url.Values) *httptest.ResponseRecorder {
	t.Helper()
	var req *http.Request
	if form != nil {
		req = httptest.NewRequest(method, "http://hub.test"+target, strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	} else {
		req = httptest.NewRequest(method, "http://hub.test"+target, nil)
	}
	for _, c := range cookies {
		req.AddCookie(c)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

// oauthFixture: alice's server is running; its client secret is its API token.
type oauthFixture struct {
	h       *Hub
	secret  string
	cookies []*http.Cookie
	sess    *store.Session
}

func newOAuthFixture(t *testing.T) *oauthFixture { return newOAuthFixtureWith(t, nil) }

// newOAuthFixtureWith is newOAuthFixture with the app changed by mutate first.
func newOAuthFixtureWith(t *testing.T, mutate func(a *testApp)) *oauthFixture {
	sp := newFakeSpawner()
	h := newTestHub(t, sp, mutate)
	alice := mustUser(t, h, "alice", false)
	mustUser(t, h, "bob", false)
	mustUser(t, h, "root", true)
	if _, err := h.startServer(alice, "", nil); err != nil {
		t.Fatal(err)
	}
	f := &oauthFixture{h: h, secret: sp.lastRequest().Env["JUPYTERHUB_API_TOKEN"]}
	f.cookies, f.sess = login(t, h, "alice")
	return f
}

func authorizeURL(extra url.Values) string {
	q := url.Values{
		"client_id":     {"jupyterhub-user-alice"},
		"redirect_uri":  {"/user/alice/oauth_callback"},
		"response_type": {"code"},
		"state":         {"st4te"},
	}
	for k, v := range extra {
		q[k] = v
	}
	return "/hub/api/oauth2/authorize?" + q.Encode()
}

// authorize runs the authorization step and returns the code.
func (f *oauthFixture) authorize(t *testing.T, extra url.Values) string {
	t.Helper()
	rec := browserDo(t, f.h, "GET", authorizeURL(extra), f.cookies, nil)
	if rec.Code != http.StatusFound {
		t.Fatalf("authorize: %d %s", rec.Code, rec.Body)
	}
	loc, err := url.Parse(rec.Header().Get("Location"))
	if err != nil || loc.Path != "/user/alice/oauth_callback" || loc.Query().Get("state") != "st4te" || len(loc.Query().Get("code")) != oauthCodeLength {
		t.Fatalf("authorize redirected to %q", rec.Header().Get("Location"))
	}
	return loc.Query().Get("code")
}

func (f *oauthFixture) exchange(t *testing.T, form url.Values) (int, map[string]any) {
	t.Helper()
	base := url.Values{
		"client_id":     {"jupyterhub-user-alice"},
		"client_secret": {f.secret},
		"grant_type":    {"authorization_code"},
		"redirect_uri":  {"/user/alice/oauth_callback"},
	}
	for k, v := range form {
		base[k] = v
	}
	for k := range form {
		if form.Get(k) == "-" {
			base.Del(k)
		}
	}
	rec := browserDo(t, f.h, "POST", "/hub/api/oauth2/token", nil, base)
	var body map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
		t.Fatalf("token response %d is not JSON: %s", rec.Code, rec.Body)
	}
	return rec.Code, body
}

func whoami(t *testing.T, h *Hub, token string) (int, map[string]any) {
	t.Helper()
	rec := apiDo(t, h, "GET", "/hub/api/user", token, "")
	var body map[string]any
	_ = json.Unmarshal(rec.Body.Bytes(), &body)
	return rec.Code, body
}

func TestOAuthFlow(t *testing.T) {
	f := newOAuthFixture(t)
	code := f.authorize(t, nil)
	status, body := f.exchange(t, url.Values{"code": {code}})
	if status != http.StatusOK || body["token_type"] != "Bearer" || body["expires_in"] != float64(14*24*3600) {
		t.Fatalf("token: %d %v", status, body)
	}
	token, _ := body["access_token"].(string)
	st, model := whoami(t, f.h, token)
	wantScopes := []any{"access:servers!server=alice/", "read:users:groups!user=alice", "read:users:name!user=alice"}
	if st != http.StatusOK || model["kind"] != "user" || model["name"] != "alice" || model["admin"] != false ||
		model["session_id"] != f.sess.Hash || !slices.Equal(anyList(model["scopes"]), wantScopes) {
		t.Fatalf("whoami with the OAuth token: %d %v", st, model)
	}
	if _, ok := model["servers"]; ok {
		t.Errorf("whoami shows servers to a token without read:servers: %v", model)
	}
	// Single use.
	if status, body := f.exchange(t, url.Values{"code": {code}}); status != http.StatusBadRequest || body["error"] != "invalid_grant" {
		t.Fatalf("code reuse: %d %v", status, body)
	}
	// Logout revokes the token and the codes of the session (GHSA-cw7p-q79f-m2v7).
	code2 := f.authorize(t, nil)
	if err := f.h.store.Update(func(tx *store.Txn) error { return tx.DeleteSession(f.sess.Hash) }); err != nil {
		t.Fatal(err)
	}
	f.h.web.cache.evict(f.sess.Hash)
	if st, _ := whoami(t, f.h, token); st != http.StatusForbidden {
		t.Fatalf("whoami after logout: %d, want 403", st)
	}
	if status, body := f.exchange(t, url.Values{"code": {code2}}); status != http.StatusBadRequest || body["error"] != "invalid_grant" {
		t.Fatalf("code of an ended session: %d %v", status, body)
	}
	// Stopping the server deletes its client and the tokens it issued.
	f.cookies, f.sess = login(t, f.h, "alice")
	_, body = f.exchange(t, url.Values{"code": {f.authorize(t, nil)}})
	token, _ = body["access_token"].(string)
	if err := f.h.stopServer(t.Context(), &store.User{Name: "alice"}, ""); err != nil {
		t.Fatal(err)
	}
	if st, _ := whoami(t, f.h, token); st != http.StatusForbidden {
		t.Fatalf("whoami with a token of a stopped server's client: %d, want 403", st)
	}
}

func anyList(v any) []any {
	l, _ := v.([]any)
	return l
}

func TestOAuthTokenErrors(t *testing.T) {
	f := newOAuthFixture(t)
	verifier := strings.Repeat("v", 50)
	sum := sha256.Sum256([]byte(verifier))
	challenge := base64.RawURLEncoding.EncodeToString(sum[:])

	tests := []struct {
		name       string
		authorize  url.Values
		form       url.Values
		basic      bool
		wantStatus int
		wantError  string
	}{
		{"ok", nil, nil, false, 200, ""},
		{"basic auth", nil, url.Values{"client_id": {"-"}, "client_secret": {"-"}}, true, 200, ""},
		{"wrong secret", nil, url.Values{"client_secret": {"0123456789abcdef0123456789abcdef"}}, false, 401, "invalid_client"},
		{"unknown client", nil, url.Values{"client_id": {"jupyterhub-user-nobody"}}, false, 401, "invalid_client"},
		{"wrong redirect_uri", nil, url.Values{"redirect_uri": {"/user/alice/elsewhere"}}, false, 400, "invalid_grant"},
		{"bad grant type", nil, url.Values{"grant_type": {"password"}}, false, 400, "unsupported_grant_type"},
		{"no code", nil, url.Values{"code": {"-"}}, false, 400, "invalid_request"},
		{"unknown code", nil, url.Values{"code": {"x"}}, false, 400, "invalid_grant"},
		{"pkce S256", url.Values{"code_challenge": {challenge}, "code_challenge_method": {"S256"}}, url.Values{"code_verifier": {verifier}}, false, 200, ""},
		{"pkce missing verifier", url.Values{"code_challenge": {challenge}, "code_challenge_method": {"S256"}}, nil, false, 400, "invalid_grant"},
		{"pkce mismatch", url.Values{"code_challenge": {challenge}, "code_challenge_method": {"S256"}}, url.Values{"code_verifier": {strings.Repeat("w", 50)}}, false, 400, "invalid_grant"},
		{"pkce plain", url.Values{"code_challenge": {verifier}, "code_challenge_method": {"plain"}}, url.Values{"code_verifier": {verifier}}, false, 200, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code := f.authorize(t, tt.authorize)
			form := url.Values{"code": {code}}
			for k, v := range tt.form {
				form[k] = v
			}
			var status int
			var body map[string]any
			if tt.basic {
				base := url.Values{"grant_type": {"authorization_code"}, "code": form["code"], "redirect_uri": {"/user/alice/oauth_callback"}}
				req := httptest.NewRequest("POST", "http://hub.test/hub/api/oauth2/token", strings.NewReader(base.Encode()))
				req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
				req.SetBasicAuth("jupyterhub-user-alice", f.secret)
				rec := httptest.NewRecorder()
				f.h.ServeHTTP(rec, req)
				status = rec.Code
				_ = json.Unmarshal(rec.Body.Bytes(), &body)
			} else {
				status, body = f.exchange(t, form)
			}
			if status != tt.wantStatus || (tt.wantError != "" && body["error"] != tt.wantError) {
				t.Fatalf("got %d %v, want %d %s", status, body, tt.wantStatus, tt.wantError)
			}
			if tt.wantStatus == 200 && body["access_token"] == "" {
				t.Fatalf("no access token: %v", body)
			}
		})
	}

	t.Run("expired code", func(t *testing.T) {
		code := f.authorize(t, nil)
		oauthNow = func() time.Time { return time.Now().Add(6 * time.Minute) }
		defer func() { oauthNow = time.Now }()
		if status, body := f.exchange(t, url.Values{"code": {code}}); status != 400 || body["error"] != "invalid_grant" {
			t.Fatalf("expired code: %d %v", status, body)
		}
	})
}

func TestOAuthAuthorizeRefusals(t *testing.T) {
	f := newOAuthFixture(t)
	bob, _ := login(t, f.h, "bob")
	tests := []struct {
		name     string
		target   string
		cookies  []*http.Cookie
		status   int
		location string // prefix
		body     string
	}{
		{"not logged in", authorizeURL(nil), nil, http.StatusFound, "/hub/login?next=%2Fhub%2Fapi%2Foauth2%2Fauthorize%3F", ""},
		{"another user's server", authorizeURL(nil), bob, http.StatusForbidden, "", "not authorized"},
		{"unknown client", authorizeURL(url.Values{"client_id": {"jupyterhub-user-nobody"}}), f.cookies, http.StatusBadRequest, "", "Invalid client_id"},
		{"wrong redirect_uri", authorizeURL(url.Values{"redirect_uri": {"https://evil.example/cb"}}), f.cookies, http.StatusBadRequest, "", "Mismatching redirect URI"},
		{"unsupported response type", authorizeURL(url.Values{"response_type": {"token"}}), f.cookies, http.StatusFound, "/user/alice/oauth_callback?error=unsupported_response_type", ""},
		{"scope not allowed", authorizeURL(url.Values{"scope": {"admin:users"}}), f.cookies, http.StatusFound, "/user/alice/oauth_callback?error=invalid_scope", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := browserDo(t, f.h, "GET", tt.target, tt.cookies, nil)
			if rec.Code != tt.status || !strings.HasPrefix(rec.Header().Get("Location"), tt.location) || !strings.Contains(rec.Body.String(), tt.body) {
				t.Fatalf("got %d Location %q body %.300s", rec.Code, rec.Header().Get("Location"), rec.Body)
			}
		})
	}

	t.Run("admin is refused without admin_access", func(t *testing.T) {
		root, _ := login(t, f.h, "root")
		rec := browserDo(t, f.h, "GET", authorizeURL(nil), root, nil)
		if rec.Code != http.StatusForbidden || !strings.Contains(rec.Body.String(), "not authorized") {
			t.Fatalf("admin authorizing alice's server without admin_access: %d %.300s", rec.Code, rec.Body)
		}
	})
}
