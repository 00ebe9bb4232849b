package web

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/caddyhub/caddyhub/hubapp/store"
)

func TestPagesRedirectAnonymousToLogin(t *testing.T) {
	wh := newWebHub(t, false)
	c := wh.client(t)
	for _, path := range []string{
		"/hub/home",
		"/hub/spawn",
		"/hub/spawn/alice",
		"/hub/spawn-pending/alice",
		"/hub/user/alice/tree?x=1",
		"/hub/user-redirect/lab/tree/a.ipynb",
		"/hub/token",
		"/hub/",
	} {
		r := wh.do(t, c, "GET", path, nil)
		want := "/hub/login?" + url.Values{"next": {path}}.Encode()
		if r.status != http.StatusFound || r.header.Get("Location") != want {
			t.Errorf("GET %s: %d %q, want 302 %q", path, r.status, r.header.Get("Location"), want)
		}
	}
}

func TestPagesLoggedIn(t *testing.T) {
	wh := newWebHub(t, false)
	c := wh.client(t)
	wh.mustLogin(t, c, "alice")
	tests := []struct {
		path     string
		hdr      []string
		status   int
		location string
		contains []string
	}{
		{path: "/hub", status: http.StatusMovedPermanently, location: "/hub/"},
		{path: "/hub/", status: http.StatusFound, location: "/hub/spawn"},
		{path: "/hub/home", status: http.StatusOK, contains: []string{"Start my server", `action="/hub/spawn/alice"`, `name="_xsrf"`, "Log out everywhere"}},
		// Cross-site, GET /hub/spawn shows a start button (a same-site one starts: TestSpawnGet).
		{path: "/hub/spawn", hdr: crossSite, status: http.StatusOK, contains: []string{`action="/hub/spawn/alice"`, `name="_xsrf"`}},
		{path: "/hub/spawn/alice?next=%2Fuser%2Falice%2Flab", hdr: crossSite, status: http.StatusOK, contains: []string{`action="/hub/spawn/alice?next=%2Fuser%2Falice%2Flab"`}},
		{path: "/hub/spawn-pending/alice", status: http.StatusOK, contains: []string{"Server not running", "Launch server"}},
		{path: "/hub/user/alice/tree/x.ipynb", status: http.StatusFailedDependency, contains: []string{"not running", `action="/hub/spawn/alice?next=%2Fhub%2Fuser%2Falice%2Ftree%2Fx.ipynb"`}},
		{path: "/hub/user-redirect/lab/tree/a.ipynb?kernel=py", status: http.StatusFound, location: "/user/alice/lab/tree/a.ipynb?kernel=py"},
		{path: "/hub/user-redirect/files/a%3Ab%2Fc%20d.txt", status: http.StatusFound, location: "/user/alice/files/a%3Ab%2Fc%20d.txt"},
		{path: "/hub/error/503", status: http.StatusServiceUnavailable, contains: []string{serverDownMessage, `href="/hub/home"`}},
		{path: "/hub/error/404", status: http.StatusNotFound},
		{path: "/hub/error/nonsense", status: http.StatusNotFound},
		{path: "/hub/no-such-page", status: http.StatusNotFound, contains: []string{"There is no page at this address."}},
		{path: "/hub/health", status: http.StatusOK},
		{path: "/hub/named/x/spawn", status: http.StatusNotFound},
		{path: "/hub/spawn/alice/named", status: http.StatusBadRequest, contains: []string{"Named servers are not enabled"}},
		{path: "/hub/user/bob/tree", status: http.StatusNotFound},
		{path: "/hub/spawn/bob", status: http.StatusNotFound},
		{path: "/hub/spawn-pending/bob", status: http.StatusNotFound},
	}
	for _, tc := range tests {
		r := wh.do(t, c, "GET", tc.path, nil, tc.hdr...)
		if r.status != tc.status {
			t.Errorf("GET %s: status %d, want %d", tc.path, r.status, tc.status)
			continue
		}
		if tc.location != "" && r.header.Get("Location") != tc.location {
			t.Errorf("GET %s: location %q, want %q", tc.path, r.header.Get("Location"), tc.location)
		}
		for _, s := range tc.contains {
			if !strings.Contains(r.body, s) {
				t.Errorf("GET %s: body lacks %q", tc.path, s)
			}
		}
	}
}

// crossSite are the headers of a browser's navigation from another site.
var crossSite = []string{"Sec-Fetch-Site", "cross-site", "Sec-Fetch-Mode", "navigate"}

func TestSecurityHeaders(t *testing.T) {
	wh := newWebHub(t, false)
	c := wh.client(t)
	check := func(path string, r webResp) {
		t.Helper()
		csp := r.header.Get("Content-Security-Policy")
		for _, want := range []string{"default-src 'self'", "frame-ancestors 'none'", "base-uri 'none'", "object-src 'none'"} {
			if !strings.Contains(csp, want) {
				t.Errorf("%s: CSP %q lacks %q", path, csp, want)
			}
		}
		if strings.Contains(csp, "unsafe-inline") {
			t.Errorf("%s: CSP allows unsafe-inline", path)
		}
		for k, v := range map[string]string{"X-Content-Type-Options": "nosniff", "Referrer-Policy": "same-origin", "X-Frame-Options": "DENY", "Cache-Control": "no-store"} {
			if got := r.header.Get(k); got != v {
				t.Errorf("%s: %s = %q, want %q", path, k, got, v)
			}
		}
	}
	for _, p := range []string{"/hub/login", "/hub/error/503", "/hub/nope", "/hub/home"} {
		check(p, wh.do(t, c, "GET", p, nil))
	}
	wh.mustLogin(t, c, "alice")
	for _, p := range []string{"/hub/home", "/hub/spawn", "/hub/spawn-pending/alice", "/hub/user/alice/", "/hub/token"} {
		r := wh.do(t, c, "GET", p, nil, crossSite...) // cross-site: /hub/spawn shows its page, starts nothing
		check(p, r)
		// Inline scripts and styles carry this response's nonce.
		if strings.Contains(r.body, "<style") && !strings.Contains(r.body, `<style nonce="`) {
			t.Errorf("%s: style without nonce", p)
		}
	}
}

func TestLoginPageEscapesNext(t *testing.T) {
	wh := newWebHub(t, false)
	c := wh.client(t)
	for _, next := range []string{`/hub/"><script>alert(1)</script>`, `javascript:alert(1)`, `" onmouseover="alert(1)`, `/hub/' onmouseover='alert(1)`} {
		r := wh.do(t, c, "GET", "/hub/login?"+url.Values{"next": {next}, "username": {`"><img src=x onerror=alert(1)>`}}.Encode(), nil)
		if r.status != http.StatusOK {
			t.Fatalf("status %d", r.status)
		}
		for _, bad := range []string{"<script>alert", "javascript:", `" onmouseover`, `' onmouseover`, "<img src=x"} {
			if strings.Contains(r.body, bad) {
				t.Errorf("next=%q: page contains %q unescaped", next, bad)
			}
		}
	}
}

func TestHubUserStates(t *testing.T) {
	wh := newWebHub(t, false)
	c := wh.client(t)
	wh.mustLogin(t, c, "alice")

	// Not running, API client: JupyterHub's JSON 424.
	for _, tc := range []struct {
		method, path string
		hdr          []string
	}{
		{"GET", "/hub/user/alice/api/contents", nil},
		{"GET", "/hub/user/alice/lab", []string{"Accept", "application/json"}},
		{"GET", "/hub/user/alice/lab", []string{"Accept", "text/html;q=0.5, application/json"}},
		{"POST", "/hub/user/alice/api/sessions", nil},
		{"DELETE", "/hub/user/alice/api/kernels/1", nil},
	} {
		r := wh.do(t, c, tc.method, tc.path, nil, tc.hdr...)
		if r.status != http.StatusFailedDependency {
			t.Errorf("%s %s: status %d, want 424", tc.method, tc.path, r.status)
			continue
		}
		var body APIError
		if err := json.Unmarshal([]byte(r.body), &body); err != nil || body.Status != 424 {
			t.Errorf("%s %s: body %s", tc.method, tc.path, r.body)
			continue
		}
		wantPath := strings.TrimPrefix(tc.path, "/hub")
		if !strings.Contains(body.Message, "no longer running at "+wantPath) || !strings.Contains(body.Message, wh.srv.URL+"/hub/spawn/alice") {
			t.Errorf("%s %s: message %q", tc.method, tc.path, body.Message)
		}
	}
	// Browsers preferring HTML get the page.
	if r := wh.do(t, c, "GET", "/hub/user/alice/lab", nil, "Accept", "text/html,application/json;q=0.9"); r.status != 424 || !strings.Contains(r.body, "<html") {
		t.Errorf("html client: %d", r.status)
	}

	// Pending: to the progress page.
	wh.setServer(t, &store.Server{User: "alice", Pending: "spawn"})
	r := wh.do(t, c, "GET", "/hub/user/alice/lab?x=1", nil)
	if r.status != http.StatusSeeOther || r.header.Get("Location") != "/hub/spawn-pending/alice?next=%2Fhub%2Fuser%2Falice%2Flab%3Fx%3D1" {
		t.Errorf("pending: %d %q", r.status, r.header.Get("Location"))
	}
	p := wh.do(t, c, "GET", "/hub/spawn-pending/alice", nil)
	if p.status != http.StatusOK || !strings.Contains(p.body, "/hub/api/users/alice/server/progress?_xsrf=") || !strings.Contains(p.body, "EventSource") {
		t.Errorf("spawn-pending while pending: %d", p.status)
	}
	if !strings.Contains(p.body, `<script nonce="`) {
		t.Error("progress script has no nonce")
	}

	// Failed: the failure in words, 500.
	wh.setServer(t, &store.Server{User: "alice", Failure: "command not found: <jupyterhub-singleuser>"})
	p = wh.do(t, c, "GET", "/hub/spawn-pending/alice", nil)
	if p.status != http.StatusInternalServerError || !strings.Contains(p.body, "command not found: &lt;jupyterhub-singleuser&gt;") {
		t.Errorf("spawn-pending after failure: %d %s", p.status, p.body)
	}
	if r := wh.do(t, c, "GET", "/hub/user/alice/", nil); r.status != http.StatusSeeOther {
		t.Errorf("failed server: %d, want 303 to spawn-pending", r.status)
	}

	// Ready (the route is not there yet): back to /user/, counting, then a loop error.
	wh.setServer(t, &store.Server{User: "alice", Ready: true, Target: "http://127.0.0.1:1"})
	r = wh.do(t, c, "GET", "/hub/user/alice/lab/tree/a%20b.ipynb?x=1", nil)
	if r.status != http.StatusFound || r.header.Get("Location") != "/user/alice/lab/tree/a%20b.ipynb?redirects=1&x=1" {
		t.Errorf("ready: %d %q", r.status, r.header.Get("Location"))
	}
	if r := wh.do(t, c, "GET", "/hub/user/alice/files/a%2Fb", nil); r.header.Get("Location") != "/user/alice/files/a%2Fb?redirects=1" {
		t.Errorf("ready, encoded slash: %q", r.header.Get("Location"))
	}
	if r := wh.do(t, c, "GET", "/hub/user/alice/lab?redirects=4", nil); r.status != http.StatusInternalServerError || !strings.Contains(r.body, "Redirect loop") {
		t.Errorf("redirect loop: %d", r.status)
	}
	if r := wh.do(t, c, "GET", "/hub/spawn-pending/alice?next=%2Fuser%2Falice%2Flab", nil); r.status != http.StatusFound || r.header.Get("Location") != "/user/alice/lab" {
		t.Errorf("spawn-pending when ready: %d %q", r.status, r.header.Get("Location"))
	}
	if r := wh.do(t, c, "GET", "/hub/spawn", nil); r.status != http.StatusFound || r.header.Get("Location") != "/user/alice/" {
		t.Errorf("spawn page when ready: %d %q", r.status, r.header.Get("Location"))
	}
	if r := wh.do(t, c, "GET", "/hub/", nil); r.header.Get("Location") != "/user/alice/" {
		t.Errorf("/hub/ with a running server: %q", r.header.Get("Location"))
	}
	home := wh.do(t, c, "GET", "/hub/home", nil)
	if !strings.Contains(home.body, `data-stop="/hub/api/users/alice/server"`) {
		t.Error("home page of a running server has no stop button")
	}
}

func TestAdminActsForOthers(t *testing.T) {
	wh := newWebHub(t, false)
	bob := wh.client(t)
	wh.mustLogin(t, bob, "bob")
	root := wh.client(t)
	wh.mustLogin(t, root, "root")
	if r := wh.do(t, root, "GET", "/hub/spawn/bob", nil, crossSite...); r.status != http.StatusOK || !strings.Contains(r.body, "Start bob's server") {
		t.Errorf("admin spawn page for bob: %d", r.status)
	}
	if r := wh.do(t, root, "GET", "/hub/spawn/nobody", nil, crossSite...); r.status != http.StatusNotFound {
		t.Errorf("admin spawn page for a missing user: %d", r.status)
	}
	if r := wh.do(t, root, "GET", "/hub/user/bob/lab", nil); r.status != http.StatusFailedDependency {
		t.Errorf("admin on bob's stopped server: %d", r.status)
	}
	if r := wh.do(t, bob, "GET", "/hub/spawn/root", nil, crossSite...); r.status != http.StatusNotFound {
		t.Errorf("bob on root's spawn page: %d", r.status)
	}
}

// TestPagesGateByScopes: the spawn page and /hub/user/<name> of another user are gated by the
// scopes servers (spawn page) and access:servers or servers (/hub/user) on that user's server, as
// JupyterHub's needs_scope does, not by the admin flag: a non-admin with a role holding them gets
// in; one whose role holds them for somebody else gets "not found".
func TestPagesGateByScopes(t *testing.T) {
	wh := newWebHub(t, false, func(a *testApp) {
		a.Roles = []*Role{
			{Name: "bob-helper", Scopes: []string{"servers!user=bob"}, Users: []string{"carol"}},
			{Name: "bob-viewer", Scopes: []string{"access:servers!user=bob"}, Users: []string{"erin"}},
			{Name: "root-helper", Scopes: []string{"servers!user=root", "access:servers!user=root"}, Users: []string{"dave"}},
		}
	})
	bob := wh.client(t)
	wh.mustLogin(t, bob, "bob")
	carol := wh.client(t)
	wh.mustLogin(t, carol, "carol")
	dave := wh.client(t)
	wh.mustLogin(t, dave, "dave")
	if r := wh.do(t, carol, "GET", "/hub/spawn/bob", nil, crossSite...); r.status != http.StatusOK || !strings.Contains(r.body, "Start bob's server") {
		t.Errorf("carol (servers!user=bob) on bob's spawn page: %d", r.status)
	}
	if r := wh.do(t, carol, "GET", "/hub/user/bob/lab", nil); r.status != http.StatusFailedDependency {
		t.Errorf("carol (servers!user=bob) on bob's stopped server: %d", r.status)
	}
	erin := wh.client(t)
	wh.mustLogin(t, erin, "erin")
	if r := wh.do(t, erin, "GET", "/hub/user/bob/lab", nil); r.status != http.StatusFailedDependency {
		t.Errorf("erin (access:servers!user=bob) on bob's stopped server: %d", r.status)
	}
	if r := wh.do(t, erin, "GET", "/hub/spawn/bob", nil, crossSite...); r.status != http.StatusNotFound {
		t.Errorf("erin (access:servers only) on bob's spawn page: %d", r.status)
	}
	if r := wh.do(t, dave, "GET", "/hub/spawn/bob", nil, crossSite...); r.status != http.StatusNotFound {
		t.Errorf("dave (servers!user=root) on bob's spawn page: %d", r.status)
	}
	if r := wh.do(t, dave, "GET", "/hub/user/bob/lab", nil); r.status != http.StatusNotFound {
		t.Errorf("dave (access:servers!user=root) on bob's server: %d", r.status)
	}
	if r := wh.do(t, carol, "GET", "/hub/spawn/nobody", nil, crossSite...); r.status != http.StatusNotFound {
		t.Errorf("carol on a missing user's spawn page: %d", r.status)
	}
}

func TestSpawnPostXSRF(t *testing.T) {
	wh := newWebHub(t, false)
	alice := wh.client(t)
	wh.mustLogin(t, alice, "alice")
	mallory := wh.client(t)
	wh.mustLogin(t, mallory, "mallory")
	malloryTok := xsrfOf(t, wh.do(t, mallory, "GET", "/hub/home", nil).body)
	aliceTok := xsrfOf(t, wh.do(t, alice, "GET", "/hub/home", nil).body)
	anonTok := xsrfOf(t, wh.do(t, wh.client(t), "GET", "/hub/login", nil).body)

	for _, tc := range []struct {
		name string
		form url.Values
		hdr  []string
	}{
		{"missing", url.Values{}, nil},
		{"another user's token (GHSA-7r3h-4ph8-w38g)", url.Values{"_xsrf": {malloryTok}}, nil},
		{"anonymous token", url.Values{"_xsrf": {anonTok}}, nil},
		{"cross-site no-cors POST (GHSA-m68r-v472-jgq9)", url.Values{}, []string{"Sec-Fetch-Mode", "no-cors", "Sec-Fetch-Site", "cross-site"}},
		{"navigate POST without token", url.Values{}, []string{"Sec-Fetch-Mode", "navigate"}},
	} {
		r := wh.do(t, alice, "POST", "/hub/spawn", tc.form, tc.hdr...)
		if r.status != http.StatusForbidden {
			t.Errorf("%s: status %d, want 403", tc.name, r.status)
		}
	}
	// With her own token the form goes through (a running server: straight to it, no start).
	wh.setServer(t, &store.Server{User: "alice", Ready: true, Target: "http://127.0.0.1:1"})
	r := wh.do(t, alice, "POST", "/hub/spawn?next=%2Fuser%2Falice%2Flab", url.Values{"_xsrf": {aliceTok}})
	if r.status != http.StatusFound || r.header.Get("Location") != "/user/alice/lab" {
		t.Errorf("valid token: %d %q", r.status, r.header.Get("Location"))
	}
	// And in the X-XSRFToken header.
	r = wh.do(t, alice, "POST", "/hub/spawn", url.Values{}, "X-XSRFToken", aliceTok)
	if r.status != http.StatusFound {
		t.Errorf("valid header token: %d", r.status)
	}
}

func TestXSRFExempt(t *testing.T) {
	tests := []struct {
		method, mode string
		exempt       bool
	}{
		{"GET", "", true},
		{"GET", "navigate", true},
		{"HEAD", "navigate", true},
		{"GET", "websocket", true},
		{"GET", "cors", false},
		{"GET", "same-origin", false},
		{"GET", "no-cors", false},
		{"POST", "", false},
		{"POST", "navigate", false},
		{"POST", "no-cors", false},
		{"DELETE", "cors", false},
		{"PATCH", "same-origin", false},
	}
	for _, tc := range tests {
		r := httptest.NewRequest(tc.method, "/hub/api/users", nil)
		if tc.mode != "" {
			r.Header.Set("Sec-Fetch-Mode", tc.mode)
		}
		if got := xsrfExempt(r); got != tc.exempt {
			t.Errorf("%s mode %q: exempt = %v, want %v", tc.method, tc.mode, got, tc.exempt)
		}
	}
}

// TestCheckXSRFForAPI exercises h.checkXSRF as the REST API uses it for cookie-authenticated calls.
func TestCheckXSRFForAPI(t *testing.T) {
	wh := newWebHub(t, false)
	c := wh.client(t)
	wh.mustLogin(t, c, "alice")
	tok := xsrfOf(t, wh.do(t, c, "GET", "/hub/home", nil).body)
	u, _ := url.Parse(wh.srv.URL + "/hub/api/users")
	req := func(method, target string, hdr ...string) *http.Request {
		r := httptest.NewRequest(method, target, nil)
		r.Header.Set("User-Agent", "webtest")
		for _, ck := range c.Jar.Cookies(u) {
			r.AddCookie(ck)
		}
		for i := 0; i+1 < len(hdr); i += 2 {
			r.Header.Set(hdr[i], hdr[i+1])
		}
		return r
	}
	tests := []struct {
		name string
		r    *http.Request
		want error
	}{
		{"fetch DELETE without token", req("DELETE", "/hub/api/users/alice/server", "Sec-Fetch-Mode", "cors"), errXSRFMissing},
		{"fetch DELETE with header", req("DELETE", "/hub/api/users/alice/server", "Sec-Fetch-Mode", "cors", "X-XSRFToken", tok), nil},
		{"fetch GET with query", req("GET", "/hub/api/users/alice/server/progress?_xsrf="+tok, "Sec-Fetch-Mode", "cors"), nil},
		{"fetch GET without token", req("GET", "/hub/api/user", "Sec-Fetch-Mode", "cors"), errXSRFMissing},
		{"wrong token", req("POST", "/hub/api/users/alice/server", "X-XSRFToken", "x"+tok), errXSRFInvalid},
		{"navigation GET", req("GET", "/hub/api/user"), nil},
	}
	for _, tc := range tests {
		if err := wh.h.checkXSRF(tc.r); !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
	}
}

func TestEdgeFallbacks(t *testing.T) {
	wh := newWebHub(t, false)
	tests := []struct {
		method, path string
		status       int
		location     string
	}{
		{"GET", "/user/alice/lab?x=1", http.StatusFound, "/hub/user/alice/lab?x=1"},
		{"GET", "/user/alice", http.StatusFound, "/hub/user/alice"},
		{"POST", "/user/alice/api/contents", http.StatusTemporaryRedirect, "/hub/user/alice/api/contents"},
		{"GET", "/", http.StatusFound, "/hub/"},
	}
	for _, tc := range tests {
		w := httptest.NewRecorder()
		wh.h.ServeHTTP(w, httptest.NewRequest(tc.method, tc.path, nil))
		if w.Code != tc.status || w.Header().Get("Location") != tc.location {
			t.Errorf("%s %s: %d %q, want %d %q", tc.method, tc.path, w.Code, w.Header().Get("Location"), tc.status, tc.location)
		}
	}

	// A routed server that does not answer.
	w := httptest.NewRecorder()
	wh.h.ServeProxyError(w, httptest.NewRequest("GET", "/user/alice/lab", nil), http.StatusBadGateway, nil)
	if w.Code != http.StatusBadGateway || !strings.Contains(w.Body.String(), serverDownMessage) || !strings.Contains(w.Body.String(), `href="/hub/home"`) {
		t.Errorf("server down page: %d %s", w.Code, w.Body.String())
	}
	if w.Header().Get("Content-Security-Policy") == "" {
		t.Error("server down page without CSP")
	}
	w = httptest.NewRecorder()
	req := httptest.NewRequest("GET", "/user/alice/api/kernels", nil)
	req.Header.Set("Accept", "application/json")
	wh.h.ServeProxyError(w, req, http.StatusServiceUnavailable, nil)
	var body APIError
	if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil || body.Status != 503 || body.Message != serverDownMessage {
		t.Errorf("server down JSON: %d %s", w.Code, w.Body.String())
	}
}

func TestImplicitSpawn(t *testing.T) {
	wh := newWebHub(t, false, func(a *testApp) { a.ImplicitSpawnSeconds = 3 })
	alice := wh.client(t)
	wh.mustLogin(t, alice, "alice")
	r := wh.do(t, alice, "GET", "/hub/user/alice/lab", nil)
	if r.status != http.StatusFailedDependency || !strings.Contains(r.body, `id="countdown">3<`) || !strings.Contains(r.body, `getElementById("spawn-form").submit()`) {
		t.Fatalf("own stopped server with implicit_spawn_seconds: %d", r.status)
	}
	root := wh.client(t)
	wh.mustLogin(t, root, "root")
	if r := wh.do(t, root, "GET", "/hub/user/alice/lab", nil); strings.Contains(r.body, "countdown") {
		t.Fatal("an admin visiting alice's server would start it by itself")
	}
}

// TestTokenPage: the page lists the user's own API and OAuth tokens (not servers' credentials),
// and its script's calls — POST and DELETE on the REST API with the X-XSRFToken header — work.
func TestTokenPage(t *testing.T) {
	wh := newWebHub(t, false)
	c := wh.client(t)
	wh.mustLogin(t, c, "alice")
	err := wh.h.store.Update(func(tx *store.Txn) error {
		if err := tx.CreateToken(&store.Token{User: "alice", Kind: "oauth", OAuthClient: "jupyterhub-user-alice"}, store.NewToken()); err != nil {
			return err
		}
		return tx.CreateToken(&store.Token{User: "alice", Kind: "server", Note: "Server at /user/alice/"}, store.NewToken())
	})
	if err != nil {
		t.Fatal(err)
	}
	page := wh.do(t, c, "GET", "/hub/token", nil)
	if page.status != http.StatusOK || !strings.Contains(page.body, "jupyterhub-user-alice") || strings.Contains(page.body, "Server at /user/alice/") {
		t.Fatalf("token page: %d %s", page.status, page.body)
	}
	if !strings.Contains(page.body, `var base = "/hub/api/users/alice/tokens"`) {
		t.Error("token page script lacks the API URL")
	}
	tok := xsrfOf(t, wh.do(t, c, "GET", "/hub/home", nil).body)
	post := func(hdr ...string) *http.Response {
		req, _ := http.NewRequest("POST", wh.srv.URL+"/hub/api/users/alice/tokens", strings.NewReader(`{"note":"for my script","expires_in":3600}`))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("User-Agent", "webtest")
		req.Header.Set("Sec-Fetch-Mode", "cors")
		for i := 0; i+1 < len(hdr); i += 2 {
			req.Header.Set(hdr[i], hdr[i+1])
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	if resp := post(); resp.StatusCode != http.StatusForbidden {
		resp.Body.Close()
		t.Fatalf("token request without xsrf: %d, want 403", resp.StatusCode)
	}
	resp := post("X-XSRFToken", tok)
	defer resp.Body.Close()
	var created struct {
		Token string `json:"token"`
		ID    string `json:"id"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&created); err != nil || resp.StatusCode/100 != 2 || created.Token == "" || created.ID == "" {
		t.Fatalf("token request: %d %+v %v", resp.StatusCode, created, err)
	}
	page = wh.do(t, c, "GET", "/hub/token", nil)
	if !strings.Contains(page.body, "for my script") || !strings.Contains(page.body, `data-revoke="`+created.ID+`"`) {
		t.Fatal("new token not listed")
	}
	if r := wh.do(t, c, "DELETE", "/hub/api/users/alice/tokens/"+created.ID, nil, "Sec-Fetch-Mode", "cors", "X-XSRFToken", tok); r.status/100 != 2 {
		t.Fatalf("revoke: %d %s", r.status, r.body)
	}
	if page = wh.do(t, c, "GET", "/hub/token", nil); strings.Contains(page.body, "for my script") {
		t.Fatal("revoked token still listed")
	}
}
