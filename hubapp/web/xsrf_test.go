package web

import (
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"testing"
)

// jarCookie returns the value of the cookie name that c's jar would send to path on wh.
func (wh *webHub) jarCookie(t *testing.T, c *http.Client, path, name string) string {
	t.Helper()
	u, err := url.Parse(wh.srv.URL + path)
	if err != nil {
		t.Fatal(err)
	}
	for _, ck := range c.Jar.Cookies(u) {
		if ck.Name == name {
			return ck.Value
		}
	}
	return ""
}

// TestXSRFCookie: the `_xsrf` cookie as JupyterHub ≥4.1 sets it (path <base>hub/, not HttpOnly, an
// hour while anonymous, the session's token once logged in), and scripts that send it back as the
// form field or either header are accepted.
func TestXSRFCookie(t *testing.T) {
	wh := newWebHub(t, false, func(a *testApp) { a.BaseURL = "/jh/" })

	t.Run("login page", func(t *testing.T) {
		c := wh.client(t)
		page := wh.do(t, c, "GET", "/jh/hub/login", nil)
		ck := cookieNamed(page.resp, xsrfCookie)
		if ck == nil {
			t.Fatal("the login page sets no _xsrf cookie")
		}
		if ck.Value != xsrfOf(t, page.body) {
			t.Errorf("_xsrf cookie %q differs from the form's token %q", ck.Value, xsrfOf(t, page.body))
		}
		if ck.Path != "/jh/hub/" {
			t.Errorf("_xsrf cookie path %q, want /jh/hub/", ck.Path)
		}
		if ck.HttpOnly {
			t.Error("_xsrf cookie is HttpOnly: scripts cannot read it")
		}
		if ck.MaxAge != 3600 {
			t.Errorf("anonymous _xsrf cookie Max-Age %d, want 3600", ck.MaxAge)
		}
		if ck.SameSite != http.SameSiteLaxMode || ck.Secure || ck.Domain != "" {
			t.Errorf("_xsrf cookie SameSite %v Secure %v Domain %q", ck.SameSite, ck.Secure, ck.Domain)
		}
		// Sent again with the cookie: not set again.
		if again := wh.do(t, c, "GET", "/jh/hub/login", nil); cookieNamed(again.resp, xsrfCookie) != nil {
			t.Error("_xsrf cookie set again although the request carries it")
		}
		// A fetch() of a page gets no cookie (JupyterHub: only navigations).
		fc := wh.client(t)
		if r := wh.do(t, fc, "GET", "/jh/hub/login", nil, "Sec-Fetch-Mode", "cors"); cookieNamed(r.resp, xsrfCookie) != nil {
			t.Error("a cors-mode request got an _xsrf cookie")
		}
		// A browser navigation does.
		if r := wh.do(t, fc, "GET", "/jh/hub/login", nil, "Sec-Fetch-Mode", "navigate"); cookieNamed(r.resp, xsrfCookie) == nil {
			t.Error("a navigation got no _xsrf cookie")
		}
	})

	// A script as JupyterHub's: GET the login page, read _xsrf from the jar, send it back.
	for _, how := range []string{"form field", "X-XSRFToken", "X-CSRFToken"} {
		t.Run("login with the cookie's token in the "+how, func(t *testing.T) {
			c := wh.client(t)
			wh.do(t, c, "GET", "/jh/hub/login", nil)
			tok := wh.jarCookie(t, c, "/jh/hub/login", xsrfCookie)
			if tok == "" {
				t.Fatal("no _xsrf cookie in the jar for /jh/hub/login")
			}
			form := url.Values{"username": {"alice"}, "password": {webTestPassword}}
			var hdr []string
			if how == "form field" {
				form.Set("_xsrf", tok)
			} else {
				hdr = []string{how, tok}
			}
			resp := wh.do(t, c, "POST", "/jh/hub/login", form, hdr...)
			if resp.status != http.StatusFound {
				t.Fatalf("login: %d %s", resp.status, resp.body)
			}
			// The login sets the session's token at once, a browser-session cookie.
			ck := cookieNamed(resp.resp, xsrfCookie)
			if ck == nil {
				t.Fatal("login sets no _xsrf cookie")
			}
			if ck.Path != "/jh/hub/" || ck.HttpOnly || ck.MaxAge != 0 || !ck.Expires.IsZero() {
				t.Errorf("logged-in _xsrf cookie: path %q httponly %v max-age %d expires %v", ck.Path, ck.HttpOnly, ck.MaxAge, ck.Expires)
			}
			if ck.Value == tok {
				t.Error("the _xsrf token did not change at login")
			}
			home := wh.do(t, c, "GET", "/jh/hub/home", nil)
			if home.status != http.StatusOK || xsrfOf(t, home.body) != ck.Value {
				t.Fatalf("home: %d; its token differs from the login's _xsrf cookie", home.status)
			}
			if cookieNamed(home.resp, xsrfCookie) != nil {
				t.Error("home set _xsrf again although the request carries the right one")
			}
			// The cookie's token works for a cookie-authenticated fetch() of the API, in each header.
			for _, h := range []string{"X-XSRFToken", "X-CSRFToken"} {
				r := wh.do(t, c, "GET", "/jh/hub/api/user", nil, "Sec-Fetch-Mode", "cors", h, wh.jarCookie(t, c, "/jh/hub/api/user", xsrfCookie))
				if r.status != http.StatusOK {
					t.Errorf("API with the cookie's token in %s: %d %s", h, r.status, r.body)
				}
			}
		})
	}

	t.Run("another anonymous id's token is refused", func(t *testing.T) {
		a := wh.client(t)
		wh.do(t, a, "GET", "/jh/hub/login", nil)
		tok := wh.jarCookie(t, a, "/jh/hub/login", xsrfCookie)
		// Another browser (another User-Agent) with that cookie tossed in and the token sent back.
		b := wh.client(t)
		u, _ := url.Parse(wh.srv.URL + "/jh/hub/")
		b.Jar.SetCookies(u, []*http.Cookie{{Name: xsrfCookie, Value: tok, Path: "/jh/hub/"}})
		form := url.Values{"username": {"alice"}, "password": {webTestPassword}, "_xsrf": {tok}}
		r := wh.do(t, b, "POST", "/jh/hub/login", form, "User-Agent", "another browser")
		if r.status != http.StatusForbidden || cookieNamed(r.resp, loginCookie) != nil {
			t.Fatalf("login with another anonymous id's token: %d", r.status)
		}
	})

	t.Run("another session's token is refused (cookie tossing)", func(t *testing.T) {
		mallory := wh.client(t)
		wh.mustLogin(t, mallory, "mallory")
		mtok := wh.jarCookie(t, mallory, "/jh/hub/", xsrfCookie)
		alice := wh.client(t)
		wh.mustLogin(t, alice, "alice")
		atok := wh.jarCookie(t, alice, "/jh/hub/", xsrfCookie)
		if mtok == "" || atok == "" || mtok == atok {
			t.Fatalf("tokens: mallory %q alice %q", mtok, atok)
		}
		// A sibling origin tosses mallory's token into alice's browser with a longer path: it is sent
		// first, and a script sends it back. Her session's token is the only one accepted.
		u, _ := url.Parse(wh.srv.URL + "/jh/hub/api/")
		alice.Jar.SetCookies(u, []*http.Cookie{{Name: xsrfCookie, Value: mtok, Path: "/jh/hub/api/"}})
		if got := wh.jarCookie(t, alice, "/jh/hub/api/user", xsrfCookie); got != mtok {
			t.Fatalf("the tossed cookie is not the one sent first: %q", got)
		}
		for _, h := range []string{"X-XSRFToken", "X-CSRFToken"} {
			if r := wh.do(t, alice, "GET", "/jh/hub/api/user", nil, "Sec-Fetch-Mode", "cors", h, mtok); r.status != http.StatusForbidden {
				t.Errorf("API with mallory's token in %s: %d, want 403", h, r.status)
			}
		}
		if r := wh.do(t, alice, "POST", "/jh/hub/logout", url.Values{"_xsrf": {mtok}}); r.status != http.StatusForbidden {
			t.Errorf("logout form with mallory's token: %d, want 403", r.status)
		}
		if r := wh.do(t, alice, "GET", "/jh/hub/api/user", nil, "Sec-Fetch-Mode", "cors", "X-XSRFToken", atok); r.status != http.StatusOK {
			t.Errorf("API with her own token: %d", r.status)
		}
		// Logout clears the cookie.
		r := wh.do(t, alice, "POST", "/jh/hub/logout", url.Values{"_xsrf": {atok}})
		if r.status != http.StatusFound {
			t.Fatalf("logout: %d", r.status)
		}
		if ck := cookieNamed(r.resp, xsrfCookie); ck == nil || ck.MaxAge >= 0 || ck.Path != "/jh/hub/" {
			t.Errorf("logout does not clear the _xsrf cookie: %+v", ck)
		}
	})
}

// TestSpawnGet: GET /hub/spawn starts the server as JupyterHub's SpawnHandler.get (no options
// form), opt-* query arguments becoming user options, except when the browser marks the request
// cross-site (or a fetch/subresource lacks the token): then a start button and nothing started.
func TestSpawnGet(t *testing.T) {
	sp := newFakeSpawner()
	wh := newWebHub(t, false, func(a *testApp) {
		a.spawner = sp
		a.DataDir = t.TempDir()
		a.HubAPI = "127.0.0.1:8081"
		a.ConcurrentSpawnLimit = 10
		a.AllowNamedServers = true
	})
	t.Cleanup(func() { wh.h.stopSpawn(false) })
	started := func() int {
		sp.mu.Lock()
		defer sp.mu.Unlock()
		return len(sp.reqs)
	}

	alice := wh.client(t)
	if r := wh.login(t, alice, "alice", nil); r.header.Get("Location") != "/hub/spawn" {
		t.Fatalf("login goes to %q, want /hub/spawn", r.header.Get("Location"))
	}
	for _, tc := range []struct {
		name string
		hdr  []string
	}{
		{"cross-site navigation", []string{"Sec-Fetch-Site", "cross-site", "Sec-Fetch-Mode", "navigate", "Sec-Fetch-Dest", "document"}},
		{"cross-site image", []string{"Sec-Fetch-Site", "cross-site", "Sec-Fetch-Mode", "no-cors", "Sec-Fetch-Dest", "image"}},
		{"same-site image without token", []string{"Sec-Fetch-Site", "same-site", "Sec-Fetch-Mode", "no-cors"}},
		{"same-origin fetch without token", []string{"Sec-Fetch-Site", "same-origin", "Sec-Fetch-Mode", "cors"}},
	} {
		r := wh.do(t, alice, "GET", "/hub/spawn?next=%2Fuser%2Falice%2Flab", nil, tc.hdr...)
		if r.status != http.StatusOK || !strings.Contains(r.body, `action="/hub/spawn/alice?next=%2Fuser%2Falice%2Flab"`) ||
			!strings.Contains(r.body, `type="submit"`) {
			t.Errorf("%s: %d %q, want the page with a start button", tc.name, r.status, r.header.Get("Location"))
		}
		if n := started(); n != 0 || wh.h.webServer("alice", "") != nil {
			t.Fatalf("%s started a server (%d starts)", tc.name, n)
		}
	}
	// Even with her own token, a cross-site GET starts nothing.
	tok := wh.jarCookie(t, alice, "/hub/", xsrfCookie)
	if r := wh.do(t, alice, "GET", "/hub/spawn?_xsrf="+url.QueryEscape(tok), nil, "Sec-Fetch-Site", "cross-site", "Sec-Fetch-Mode", "cors"); r.status != http.StatusOK || started() != 0 {
		t.Fatalf("cross-site fetch with token: %d, %d starts", r.status, started())
	}

	// A same-origin navigation starts it: to the progress page (next kept), then to next.
	r := wh.do(t, alice, "GET", "/hub/spawn?opt-image=a&opt-image=b&size=big&next=%2Fuser%2Falice%2Flab", nil,
		"Sec-Fetch-Site", "same-origin", "Sec-Fetch-Mode", "navigate")
	if r.status != http.StatusFound || r.header.Get("Location") != "/hub/spawn-pending/alice?next=%2Fuser%2Falice%2Flab" {
		t.Fatalf("GET spawn: %d %q %s", r.status, r.header.Get("Location"), r.body)
	}
	req := sp.lastRequest()
	if req == nil || req.User != "alice" {
		t.Fatalf("no start for alice: %+v", req)
	}
	if want := map[string]any{"image": []string{"a", "b"}}; !reflect.DeepEqual(req.UserOptions, want) {
		t.Errorf("user options %#v, want %#v (opt- ones only when mixed)", req.UserOptions, want)
	}
	wh.waitIdle(t, "alice")
	if r := wh.do(t, alice, "GET", "/hub/spawn-pending/alice?next=%2Fuser%2Falice%2Flab", nil); r.status != http.StatusFound || r.header.Get("Location") != "/user/alice/lab" {
		t.Fatalf("pending page once ready: %d %q", r.status, r.header.Get("Location"))
	}
	// Running: GET goes to the server, nothing more started.
	n := started()
	if r := wh.do(t, alice, "GET", "/hub/spawn", nil); r.status != http.StatusFound || r.header.Get("Location") != "/user/alice/" || started() != n {
		t.Fatalf("GET spawn when running: %d %q (%d starts, had %d)", r.status, r.header.Get("Location"), started(), n)
	}
	// next= outside the hub is not followed.
	if r := wh.do(t, alice, "GET", "/hub/spawn?next=https%3A%2F%2Fevil.example%2F", nil); r.header.Get("Location") != "/user/alice/" {
		t.Errorf("next to another site: %q", r.header.Get("Location"))
	}

	// A script (no Sec-Fetch headers), legacy options, a named server.
	r = wh.do(t, alice, "GET", "/hub/spawn/alice/gpu?size=big", nil)
	if r.status != http.StatusFound || r.header.Get("Location") != "/hub/spawn-pending/alice/gpu" {
		t.Fatalf("GET named spawn: %d %q", r.status, r.header.Get("Location"))
	}
	if req := sp.lastRequest(); req.ServerName != "gpu" || !reflect.DeepEqual(req.UserOptions, map[string]any{"size": []string{"big"}}) {
		t.Errorf("named start: server %q options %#v", req.ServerName, req.UserOptions)
	}
	if err := wh.h.waitServerIdle(t.Context(), "alice", "gpu"); err != nil {
		t.Fatal(err)
	}

	// No options: nil (the last stored ones are reused); a same-origin fetch with the token starts.
	bob := wh.client(t)
	wh.mustLogin(t, bob, "bob")
	btok := wh.jarCookie(t, bob, "/hub/", xsrfCookie)
	r = wh.do(t, bob, "GET", "/hub/spawn", nil, "Sec-Fetch-Site", "same-origin", "Sec-Fetch-Mode", "cors", "X-XSRFToken", btok)
	if r.status != http.StatusFound || r.header.Get("Location") != "/hub/spawn-pending/bob" {
		t.Fatalf("bob's GET spawn: %d %q %s", r.status, r.header.Get("Location"), r.body)
	}
	if req := sp.lastRequest(); req.User != "bob" || req.UserOptions != nil {
		t.Errorf("bob's start: %s options %#v", req.User, req.UserOptions)
	}
	wh.waitIdle(t, "bob")

	// An empty option name is refused, nothing started.
	carol := wh.client(t)
	wh.mustLogin(t, carol, "carol")
	n = started()
	if r := wh.do(t, carol, "GET", "/hub/spawn?opt-=x", nil); r.status != http.StatusUnprocessableEntity || started() != n {
		t.Errorf("empty option name: %d (%d starts, had %d)", r.status, started(), n)
	}
	if s := wh.h.webServer("carol", ""); s != nil {
		t.Errorf("carol's server recorded: %+v", s)
	}

	// An admin's GET starts another user's server (JupyterHub: servers scope on that user).
	root := wh.client(t)
	wh.mustLogin(t, root, "root")
	if r := wh.do(t, root, "GET", "/hub/spawn/carol", nil); r.status != http.StatusFound || r.header.Get("Location") != "/hub/spawn-pending/carol" {
		t.Fatalf("admin GET spawn for carol: %d %q", r.status, r.header.Get("Location"))
	}
	wh.waitIdle(t, "carol")
	if srv := wh.h.webServer("carol", ""); srv == nil || !srv.Ready {
		t.Fatalf("carol's server: %+v", srv)
	}
}
