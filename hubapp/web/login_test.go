package web

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/caddyhub/caddyhub/hubapp/store"
)

func TestLoginCookieAttributes(t *testing.T) {
	tests := []struct {
		name       string
		tls        bool
		forwarded  bool
		base       string
		wantSecure bool
	}{
		{name: "plain http", base: "/"},
		{name: "tls", tls: true, base: "/", wantSecure: true},
		{name: "x-forwarded-proto https", forwarded: true, base: "/", wantSecure: true},
		{name: "base_url", base: "/jh/"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			wh := newWebHub(t, tc.tls, func(a *testApp) { a.BaseURL = tc.base })
			c := wh.client(t)
			page := wh.do(t, c, "GET", tc.base+"hub/login", nil)
			form := url.Values{"_xsrf": {xsrfOf(t, page.body)}, "username": {"alice"}, "password": {webTestPassword}}
			var hdr []string
			if tc.forwarded {
				hdr = []string{"X-Forwarded-Proto", "https"}
			}
			resp := wh.do(t, c, "POST", tc.base+"hub/login", form, hdr...)
			if resp.status != http.StatusFound {
				t.Fatalf("login: %d %s", resp.status, resp.body)
			}
			lc := cookieNamed(resp.resp, loginCookie)
			if lc == nil {
				t.Fatal("no login cookie")
			}
			if lc.Path != tc.base+"hub/" {
				t.Errorf("login cookie path %q, want %q", lc.Path, tc.base+"hub/")
			}
			if !lc.HttpOnly {
				t.Error("login cookie is not HttpOnly")
			}
			if lc.SameSite != http.SameSiteLaxMode {
				t.Errorf("login cookie SameSite %v, want Lax", lc.SameSite)
			}
			if lc.Secure != tc.wantSecure {
				t.Errorf("login cookie Secure = %v, want %v", lc.Secure, tc.wantSecure)
			}
			if lc.MaxAge < int((defaultCookieMaxAge-time.Minute)/time.Second) || lc.MaxAge > int(defaultCookieMaxAge/time.Second) {
				t.Errorf("login cookie Max-Age %d, want about 14 days", lc.MaxAge)
			}
			if lc.Domain != "" {
				t.Errorf("login cookie has Domain %q: must be host-only", lc.Domain)
			}
			sc := cookieNamed(resp.resp, sessionIDCookie)
			if sc == nil {
				t.Fatal("no session id cookie")
			}
			if sc.Path != tc.base || !sc.HttpOnly || sc.Secure != tc.wantSecure {
				t.Errorf("session id cookie: path %q httponly %v secure %v", sc.Path, sc.HttpOnly, sc.Secure)
			}
			// The session-id cookie carries the session hash, never the id inside the login cookie:
			// it is sent to users' servers.
			var sess *store.Session
			err := wh.h.store.View(func(tx *store.Txn) error {
				var err error
				sess, err = tx.Session(sc.Value, time.Now())
				return err
			})
			if err != nil {
				t.Fatalf("session id cookie does not name a session: %v", err)
			}
			if sess.User != "alice" || sess.CookieID != wh.user(t, "alice").CookieID {
				t.Errorf("session %+v", sess)
			}
			if strings.Contains(lc.Value, sc.Value) {
				t.Error("login cookie contains the session hash in clear")
			}
		})
	}
}

func TestLogin(t *testing.T) {
	wh := newWebHub(t, false)

	t.Run("form", func(t *testing.T) {
		c := wh.client(t)
		resp := wh.do(t, c, "GET", "/hub/login?next=%2Fhub%2Fhome", nil)
		if resp.status != http.StatusOK {
			t.Fatalf("status %d", resp.status)
		}
		for _, want := range []string{`name="username"`, `name="password"`, `name="_xsrf"`, `name="next" value="/hub/home"`} {
			if !strings.Contains(resp.body, want) {
				t.Errorf("login page lacks %s", want)
			}
		}
	})

	t.Run("success", func(t *testing.T) {
		c := wh.client(t)
		resp := wh.login(t, c, "  Alice ", nil)
		if resp.status != http.StatusFound || resp.header.Get("Location") != "/hub/spawn" {
			t.Fatalf("status %d location %q", resp.status, resp.header.Get("Location"))
		}
		if u := wh.user(t, "alice"); u.Admin {
			t.Error("alice became admin")
		}
		home := wh.do(t, c, "GET", "/hub/home", nil)
		if home.status != http.StatusOK || !strings.Contains(home.body, "alice") {
			t.Fatalf("home after login: %d", home.status)
		}
		// Logged in, GET /hub/login goes straight on.
		again := wh.do(t, c, "GET", "/hub/login?next=%2Fhub%2Fhome", nil)
		if again.status != http.StatusFound || again.header.Get("Location") != "/hub/home" {
			t.Fatalf("GET login when logged in: %d %q", again.status, again.header.Get("Location"))
		}
	})

	t.Run("redirect to running server", func(t *testing.T) {
		wh.setServer(t, &store.Server{User: "carol", Ready: true, Target: "http://127.0.0.1:1"})
		c := wh.client(t)
		resp := wh.login(t, c, "carol", nil)
		if loc := resp.header.Get("Location"); loc != "/user/carol/" {
			t.Fatalf("location %q, want /user/carol/", loc)
		}
	})

	t.Run("admin_users grants admin", func(t *testing.T) {
		c := wh.client(t)
		wh.mustLogin(t, c, "root")
		if !wh.user(t, "root").Admin {
			t.Fatal("root is not admin after login")
		}
	})

	t.Run("admin granted elsewhere is kept", func(t *testing.T) {
		err := wh.h.store.Update(func(tx *store.Txn) error {
			return tx.PutUser(&store.User{Name: "dave", Admin: true})
		})
		if err != nil {
			t.Fatal(err)
		}
		wh.mustLogin(t, wh.client(t), "dave")
		if !wh.user(t, "dave").Admin {
			t.Fatal("login revoked admin")
		}
	})

	t.Run("wrong password", func(t *testing.T) {
		c := wh.client(t)
		page := wh.do(t, c, "GET", "/hub/login", nil)
		resp := wh.do(t, c, "POST", "/hub/login", url.Values{"_xsrf": {xsrfOf(t, page.body)}, "username": {"bob"}, "password": {"hunter2-wrong"}})
		if resp.status != http.StatusForbidden {
			t.Fatalf("status %d, want 403", resp.status)
		}
		if !strings.Contains(resp.body, "Invalid username or password") {
			t.Error("no 'Invalid username or password' message")
		}
		if !strings.Contains(resp.body, `value="bob"`) {
			t.Error("the form does not keep the username")
		}
		if cookieNamed(resp.resp, loginCookie) != nil {
			t.Error("failed login set a login cookie")
		}
		for _, e := range wh.logs.All() {
			if strings.Contains(e.Message+fieldsString(e.ContextMap()), "hunter2-wrong") {
				t.Fatalf("password logged: %v", e)
			}
		}
		if n := wh.logs.FilterMessage("login failed").FilterFieldKey("username").Len(); n == 0 {
			t.Error("failed login not logged")
		}
	})

	t.Run("invalid username", func(t *testing.T) {
		c := wh.client(t)
		page := wh.do(t, c, "GET", "/hub/login", nil)
		resp := wh.do(t, c, "POST", "/hub/login", url.Values{"_xsrf": {xsrfOf(t, page.body)}, "username": {"a/b"}, "password": {webTestPassword}})
		if resp.status != http.StatusForbidden || !strings.Contains(resp.body, "must not contain") {
			t.Fatalf("status %d body %s", resp.status, resp.body)
		}
	})

	t.Run("huge username: bounded log line (GHSA-p43p-whwx-q52h)", func(t *testing.T) {
		c := wh.client(t)
		page := wh.do(t, c, "GET", "/hub/login", nil)
		huge := strings.Repeat("x", 40000)
		wh.logs.TakeAll()
		resp := wh.do(t, c, "POST", "/hub/login", url.Values{"_xsrf": {xsrfOf(t, page.body)}, "username": {huge}, "password": {"nope"}})
		if resp.status != http.StatusForbidden {
			t.Fatalf("status %d", resp.status)
		}
		for _, e := range wh.logs.All() {
			if l := len(e.Message + fieldsString(e.ContextMap())); l > 2000 {
				t.Fatalf("log entry of %d bytes for a huge username", l)
			}
		}
	})

	t.Run("xsrf missing", func(t *testing.T) {
		c := wh.client(t)
		resp := wh.do(t, c, "POST", "/hub/login", url.Values{"username": {"alice"}, "password": {webTestPassword}})
		if resp.status != http.StatusForbidden || !strings.Contains(resp.body, msgXSRFLogin) {
			t.Fatalf("status %d", resp.status)
		}
		if cookieNamed(resp.resp, loginCookie) != nil {
			t.Fatal("login without xsrf set a cookie")
		}
	})

	t.Run("xsrf of another browser", func(t *testing.T) {
		// A token made for another client (User-Agent) is worthless here.
		other := wh.client(t)
		page := wh.do(t, other, "GET", "/hub/login", nil, "User-Agent", "other browser")
		c := wh.client(t)
		resp := wh.do(t, c, "POST", "/hub/login", url.Values{"_xsrf": {xsrfOf(t, page.body)}, "username": {"alice"}, "password": {webTestPassword}})
		if resp.status != http.StatusForbidden {
			t.Fatalf("status %d, want 403", resp.status)
		}
	})

	t.Run("a new login replaces the old session", func(t *testing.T) {
		c := wh.client(t)
		wh.mustLogin(t, c, "erin")
		old := wh.sessionHashes(t, "erin")
		// A logged-in browser posting the login form again (a form rendered before it logged in).
		tok := xsrfOf(t, wh.do(t, wh.client(t), "GET", "/hub/login", nil).body)
		if r := wh.do(t, c, "POST", "/hub/login", url.Values{"_xsrf": {tok}, "username": {"erin"}, "password": {webTestPassword}}); r.status != http.StatusFound {
			t.Fatalf("second login: %d", r.status)
		}
		now := wh.sessionHashes(t, "erin")
		if len(old) != 1 || len(now) != 1 || old[0] == now[0] {
			t.Fatalf("sessions before %v after %v: want one, replaced", old, now)
		}
	})
}

func TestLoginThrottle(t *testing.T) {
	wh := newWebHub(t, false)
	c := wh.client(t)
	page := wh.do(t, c, "GET", "/hub/login", nil)
	tok := xsrfOf(t, page.body)
	for i := range loginFailLimit {
		resp := wh.do(t, c, "POST", "/hub/login", url.Values{"_xsrf": {tok}, "username": {"bob"}, "password": {"wrong"}})
		if resp.status != http.StatusForbidden {
			t.Fatalf("failure %d: status %d", i, resp.status)
		}
	}
	resp := wh.do(t, c, "POST", "/hub/login", url.Values{"_xsrf": {tok}, "username": {"bob"}, "password": {webTestPassword}})
	if resp.status != http.StatusTooManyRequests || resp.header.Get("Retry-After") == "" {
		t.Fatalf("after %d failures: status %d, Retry-After %q", loginFailLimit, resp.status, resp.header.Get("Retry-After"))
	}
	// Same name, other spelling: the same key.
	if r := wh.do(t, c, "POST", "/hub/login", url.Values{"_xsrf": {tok}, "username": {" BOB "}, "password": {webTestPassword}}); r.status != http.StatusTooManyRequests {
		t.Fatalf("BOB after bob's failures: %d, want 429", r.status)
	}
	// Another user from the same address is not locked out.
	if r := wh.do(t, c, "POST", "/hub/login", url.Values{"_xsrf": {tok}, "username": {"carol"}, "password": {webTestPassword}}); r.status != http.StatusFound {
		t.Fatalf("carol from the same address: %d, want 302", r.status)
	}
	// The window passes.
	var th loginThrottle
	now := time.Now()
	k := throttleKey("192.0.2.1", "bob")
	for range loginFailLimit {
		th.fail(k, now)
	}
	if th.blocked(k, now) == 0 {
		t.Fatal("not blocked at the limit")
	}
	if th.blocked(throttleKey("192.0.2.2", "bob"), now) != 0 {
		t.Fatal("another address is blocked")
	}
	if th.blocked(k, now.Add(loginFailWindow)) != 0 {
		t.Fatal("still blocked after the window")
	}
}

func TestLogoutRevokes(t *testing.T) {
	wh := newWebHub(t, false)
	c := wh.client(t)
	wh.mustLogin(t, c, "alice")
	hashes := wh.sessionHashes(t, "alice")
	if len(hashes) != 1 {
		t.Fatalf("sessions %v", hashes)
	}
	// An OAuth token issued under the session (GHSA-cw7p-q79f-m2v7).
	const oauthSecret = "oauth-token-secret-0123456789"
	err := wh.h.store.Update(func(tx *store.Txn) error {
		return tx.CreateToken(&store.Token{User: "alice", Kind: "oauth", SessionHash: hashes[0]}, oauthSecret)
	})
	if err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse(wh.srv.URL + "/hub/")
	saved := c.Jar.Cookies(u)

	resp := wh.do(t, c, "GET", "/hub/logout", nil)
	if resp.status != http.StatusFound || resp.header.Get("Location") != "/hub/login" {
		t.Fatalf("logout: %d %q", resp.status, resp.header.Get("Location"))
	}
	for _, name := range []string{loginCookie, sessionIDCookie} {
		if ck := cookieNamed(resp.resp, name); ck == nil || ck.MaxAge >= 0 {
			t.Errorf("logout does not clear %s", name)
		}
	}
	if h := wh.sessionHashes(t, "alice"); len(h) != 0 {
		t.Fatalf("sessions left after logout: %v", h)
	}
	err = wh.h.store.View(func(tx *store.Txn) error {
		_, err := tx.TokenBySecret(oauthSecret, time.Now())
		return err
	})
	if !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("OAuth token of the session survived logout: %v", err)
	}
	// Replaying the old cookie does not work.
	replay := wh.client(t)
	replay.Jar.SetCookies(u, saved)
	if r := wh.do(t, replay, "GET", "/hub/home", nil); r.status != http.StatusFound || !strings.HasPrefix(r.header.Get("Location"), "/hub/login?next=") {
		t.Fatalf("replayed cookie after logout: %d %q", r.status, r.header.Get("Location"))
	}
}

func TestLogoutEverywhere(t *testing.T) {
	wh := newWebHub(t, false)
	laptop, phone := wh.client(t), wh.client(t)
	wh.mustLogin(t, laptop, "alice")
	wh.mustLogin(t, phone, "alice")
	if n := len(wh.sessionHashes(t, "alice")); n != 2 {
		t.Fatalf("%d sessions, want 2", n)
	}
	home := wh.do(t, laptop, "GET", "/hub/home", nil)
	tok := xsrfOf(t, home.body)

	// Without the token: refused, nothing revoked.
	if r := wh.do(t, laptop, "POST", "/hub/logout?all=1", url.Values{}); r.status != http.StatusForbidden {
		t.Fatalf("logout everywhere without xsrf: %d", r.status)
	}
	// With the phone's token on the laptop's session: refused.
	phoneTok := xsrfOf(t, wh.do(t, phone, "GET", "/hub/home", nil).body)
	if r := wh.do(t, laptop, "POST", "/hub/logout?all=1", url.Values{"_xsrf": {phoneTok}}); r.status != http.StatusForbidden {
		t.Fatalf("logout everywhere with another session's xsrf: %d", r.status)
	}
	if r := wh.do(t, phone, "GET", "/hub/home", nil); r.status != http.StatusOK {
		t.Fatalf("phone logged out by a refused request: %d", r.status)
	}
	oldCookieID := wh.user(t, "alice").CookieID

	r := wh.do(t, laptop, "POST", "/hub/logout?all=1", url.Values{"_xsrf": {tok}})
	if r.status != http.StatusFound {
		t.Fatalf("logout everywhere: %d %s", r.status, r.body)
	}
	if r := wh.do(t, phone, "GET", "/hub/home", nil); r.status != http.StatusFound {
		t.Fatalf("phone still logged in after logout everywhere: %d", r.status)
	}
	if n := len(wh.sessionHashes(t, "alice")); n != 0 {
		t.Fatalf("%d sessions left", n)
	}
	if wh.user(t, "alice").CookieID == oldCookieID {
		t.Fatal("CookieID not rotated")
	}
	// Logging in again works.
	wh.mustLogin(t, phone, "alice")
	if r := wh.do(t, phone, "GET", "/hub/home", nil); r.status != http.StatusOK {
		t.Fatalf("login after logout everywhere: %d", r.status)
	}
}

// TestCookieIDRotationEndsCachedSessions: a session in this process's cache is refused as soon
// as the user's CookieID changes elsewhere (an admin API call, another process).
func TestCookieIDRotationEndsCachedSessions(t *testing.T) {
	wh := newWebHub(t, false)
	c := wh.client(t)
	wh.mustLogin(t, c, "alice")
	if r := wh.do(t, c, "GET", "/hub/home", nil); r.status != http.StatusOK {
		t.Fatal(r.status)
	}
	err := wh.h.store.Update(func(tx *store.Txn) error {
		u, err := tx.User("alice")
		if err != nil {
			return err
		}
		u.CookieID = store.NewSecret(16)
		return tx.PutUser(u)
	})
	if err != nil {
		t.Fatal(err)
	}
	if r := wh.do(t, c, "GET", "/hub/home", nil); r.status != http.StatusFound {
		t.Fatalf("status %d after CookieID rotation, want a redirect to login", r.status)
	}
}

func TestForgedLoginCookie(t *testing.T) {
	wh := newWebHub(t, false)
	other := newWebHub(t, false, func(a *testApp) { a.CookieSecret = strings.Repeat("ab", 32) })
	c := other.client(t)
	other.mustLogin(t, c, "alice")
	ou, _ := url.Parse(other.srv.URL + "/hub/")
	u, _ := url.Parse(wh.srv.URL + "/hub/")
	mine := wh.client(t)
	mine.Jar.SetCookies(u, c.Jar.Cookies(ou))
	if r := wh.do(t, mine, "GET", "/hub/home", nil); r.status != http.StatusFound {
		t.Fatalf("a cookie made with another secret was accepted: %d", r.status)
	}
	// Garbage cookie.
	mine.Jar.SetCookies(u, []*http.Cookie{{Name: loginCookie, Value: "garbage", Path: "/hub/"}})
	if r := wh.do(t, mine, "GET", "/hub/home", nil); r.status != http.StatusFound {
		t.Fatalf("garbage cookie: %d", r.status)
	}
}

// sessionHashes returns the live sessions of user among those the hub has handed out.
func (wh *webHub) sessionHashes(t *testing.T, user string) []string {
	t.Helper()
	var out []string
	now := time.Now()
	err := wh.h.store.View(func(tx *store.Txn) error {
		for _, h := range wh.knownHashes() {
			if s, err := tx.Session(h, now); err == nil && s.User == user {
				out = append(out, h)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func fieldsString(m map[string]any) string {
	var b strings.Builder
	for k, v := range m {
		b.WriteString(k)
		b.WriteString("=")
		b.WriteString(strings.TrimSpace(strings.ReplaceAll(fmt.Sprint(v), "\n", " ")))
		b.WriteString(" ")
	}
	return b.String()
}

// TestTossedLoginCookie: a second jupyterhub-hub-login cookie (set by a sibling origin with a
// longer path, sent first by the browser) makes the request anonymous rather than letting the
// attacker's session win (GHSA-7r3h-4ph8-w38g, session fixation).
func TestTossedLoginCookie(t *testing.T) {
	wh := newWebHub(t, false)
	victim, attacker := wh.client(t), wh.client(t)
	wh.mustLogin(t, victim, "alice")
	wh.mustLogin(t, attacker, "mallory")
	u, _ := url.Parse(wh.srv.URL + "/hub/")
	var tossed *http.Cookie
	for _, c := range attacker.Jar.Cookies(u) {
		if c.Name == loginCookie {
			tossed = c
		}
	}
	var own *http.Cookie
	for _, c := range victim.Jar.Cookies(u) {
		if c.Name == loginCookie {
			own = c
		}
	}
	if tossed == nil || own == nil {
		t.Fatal("no login cookies")
	}
	req, _ := http.NewRequest("GET", wh.srv.URL+"/hub/home", nil)
	req.Header.Set("Cookie", loginCookie+"="+tossed.Value+"; "+loginCookie+"="+own.Value)
	resp, err := wh.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.Request.URL.Path != "/hub/login" {
		t.Fatalf("request with two login cookies ended at %s, want the login page", resp.Request.URL.Path)
	}
}
