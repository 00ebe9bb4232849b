package hubapp

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/caddyserver/caddy/v2"

	_ "github.com/caddyhub/caddyhub/auth/dummy"
	"github.com/caddyhub/caddyhub/internal/testport"
	_ "github.com/caddyhub/caddyhub/spawners/simple"
)

// JupyterHub's cookie names: the hub's login (path /hub/) and the session id every server reads.
const (
	loginCookie     = "jupyterhub-hub-login"
	sessionIDCookie = "jupyterhub-session-id"
)

// webTestPassword is the dummy authenticator's password in these tests.
const webTestPassword = "correct horse"

var xsrfInputRE = regexp.MustCompile(`name="_xsrf" value="([^"]+)"`)

// xsrfOf returns the _xsrf token of a page.
func xsrfOf(t *testing.T, page string) string {
	t.Helper()
	m := xsrfInputRE.FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("no _xsrf input in page:\n%s", page)
	}
	return m[1]
}

// freeLoopbackAddr returns 127.0.0.1:<port>, a port free a moment ago that no earlier call in this
// test binary returned.
func freeLoopbackAddr(t *testing.T) string {
	t.Helper()
	return fmt.Sprintf("127.0.0.1:%d", testport.Free(t))
}

// TestLoginCookieNeverReachesUserServer runs the whole app in process (http app with the
// `jupyterhub` handler, the hub with the dummy authenticator), logs a browser in, and follows a
// request through the edge to a user's server: the login cookie (path /hub/) must not be among
// the cookies the server receives: a user's server must never hold what logs in to the hub.
func TestLoginCookieNeverReachesUserServer(t *testing.T) {
	var mu sync.Mutex
	var seen []string
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen = append(seen, r.Header.Get("Cookie"))
		mu.Unlock()
		_, _ = fmt.Fprint(w, "user server")
	}))
	t.Cleanup(backend.Close)

	public := freeLoopbackAddr(t)
	cfg := map[string]any{
		"admin": map[string]any{"disabled": true},
		"apps": map[string]any{
			"http": map[string]any{"servers": map[string]any{"hub": map[string]any{
				"listen":          []string{public},
				"automatic_https": map[string]any{"disable": true},
				"routes":          []any{map[string]any{"handle": []any{map[string]any{"handler": "jupyterhub"}}}},
			}}},
			"jupyterhub": map[string]any{
				"data_dir":      t.TempDir(),
				"proxy_api":     "off",
				"hub_api":       freeLoopbackAddr(t),
				"cookie_secret": strings.Repeat("5a", 32),
				"authenticator": map[string]any{"authenticator": "dummy", "password": webTestPassword},
				"spawner":       map[string]any{"spawner": "simple"},
			},
		},
	}
	raw, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := caddy.Load(raw, true); err != nil {
		t.Fatalf("loading caddy: %v", err)
	}
	t.Cleanup(func() { _ = caddy.Stop() })
	appAny, err := caddy.ActiveContext().App("jupyterhub")
	if err != nil {
		t.Fatal(err)
	}
	app := appAny.(*App)
	if _, err := app.RouteTable().Add("/user/alice", backend.URL, map[string]any{"jupyterhub": true, "user": "alice", "server_name": ""}); err != nil {
		t.Fatal(err)
	}

	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	base := "http://" + public
	get := func(path string) (*http.Response, string) {
		t.Helper()
		resp, err := c.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var b strings.Builder
		buf := make([]byte, 32<<10)
		for {
			n, err := resp.Body.Read(buf)
			b.Write(buf[:n])
			if err != nil {
				break
			}
		}
		return resp, b.String()
	}
	_, page := get("/hub/login")
	resp, err := c.PostForm(base+"/hub/login", url.Values{"_xsrf": {xsrfOf(t, page)}, "username": {"alice"}, "password": {webTestPassword}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("login through the edge: %d", resp.StatusCode)
	}
	if home, _ := get("/hub/home"); home.StatusCode != http.StatusOK {
		t.Fatalf("home through the edge: %d", home.StatusCode)
	}
	for _, p := range []string{"/user/alice/", "/user/alice/lab/tree/x.ipynb"} {
		if r, body := get(p); r.StatusCode != http.StatusOK || body != "user server" {
			t.Fatalf("GET %s: %d %q", p, r.StatusCode, body)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if len(seen) != 2 {
		t.Fatalf("user server saw %d requests, want 2", len(seen))
	}
	for _, ck := range seen {
		if strings.Contains(ck, loginCookie) {
			t.Errorf("the user's server received the login cookie: %q", ck)
		}
		if !strings.Contains(ck, sessionIDCookie+"=") {
			t.Errorf("the user's server did not receive %s (singleuser reads it): %q", sessionIDCookie, ck)
		}
	}
}
