package web

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
)

// FuzzXSRFCookies: any Cookie header and any XSRF token, sent in any of the places a token may
// travel, with any method. A request is logged in only when its Cookie header carries the
// genuine login cookie; it passes the XSRF check only when it is exempt (a navigation GET) or
// carries the token made for its own session or anonymous id; the REST API never answers 5xx to
// it, and answers 2xx to a cookie-authenticated call only when both hold.
//
// Seeds name the genuine values with placeholders, since every fuzz worker builds its own hub with
// its own session: {login} is the login cookie's value, {sess} the session's XSRF token, {anon}
// the anonymous token of the request.
func FuzzXSRFCookies(f *testing.F) {
	f.Add("jupyterhub-hub-login={login}", "{sess}", uint8(0), uint8(1))
	f.Add("jupyterhub-hub-login={login}", "{sess}", uint8(2), uint8(1))
	f.Add("jupyterhub-hub-login={login}", "{anon}", uint8(3), uint8(1))
	f.Add("jupyterhub-hub-login={login}; jupyterhub-hub-login={login}", "{sess}", uint8(1), uint8(1))
	f.Add("jupyterhub-hub-login={login}x", "{sess}", uint8(0), uint8(0))
	f.Add("_xsrf={sess}; jupyterhub-hub-login={login}", "", uint8(0), uint8(1))
	f.Add("_xsrf=abc", "abc", uint8(0), uint8(2))
	f.Add("jupyterhub-hub-login=\"{login}\"", "{anon}", uint8(3), uint8(3))
	f.Add(";;=;", "\x00", uint8(4), uint8(0))
	h := newTestHub(f, newFakeSpawner(), nil)
	mustUser(f, h, "alice", false)
	cookies, sess := login(f, h, "alice")
	var loginValue string
	for _, c := range cookies {
		if c.Name == loginCookie {
			loginValue = c.Value
		}
	}
	if loginValue == "" {
		f.Fatal("login set no login cookie")
	}
	sessTok := h.xsrfTokenFor(sessionXSRFID(sess))
	methods := []string{http.MethodGet, http.MethodPost, http.MethodPut, http.MethodDelete}
	f.Fuzz(func(t *testing.T, cookie, token string, where, method uint8) {
		m := methods[int(method)%len(methods)]
		path := "/hub/api/user"
		if m != http.MethodGet {
			path = "/hub/api/users/alice/tokens"
		}
		cookie = strings.ReplaceAll(cookie, "{login}", loginValue)
		var body, ct, hdr string
		build := func() *http.Request { // a request body can be read once: a new request per use
			r := httptest.NewRequest(m, "http://hub.test"+path, strings.NewReader(body))
			r.Header.Set("Cookie", cookie)
			r.Header.Set("User-Agent", "fuzz")
			if ct != "" {
				r.Header.Set("Content-Type", ct)
			}
			if hdr != "" {
				r.Header.Set(hdr, token)
			}
			return r
		}
		anonTok := h.xsrfTokenFor(anonymousXSRFID(build()))
		token = strings.ReplaceAll(strings.ReplaceAll(token, "{sess}", sessTok), "{anon}", anonTok)
		switch where % 5 {
		case 0:
			hdr = "X-XSRFToken"
		case 1:
			hdr = "X-CSRFToken"
		case 2:
			path += "?_xsrf=" + url.QueryEscape(token)
		case 3:
			body, ct = url.Values{"_xsrf": {token}}.Encode(), "application/x-www-form-urlencoded"
		case 4: // no token at all
		}
		if hdr != "" && (token == "" || strings.ContainsAny(token, "\r\n\x00") || token != strings.TrimSpace(token)) {
			return // not a header value a client can send as such
		}
		r := build()
		s, u, err := h.sessionFromRequest(r)
		if err != nil {
			t.Fatalf("sessionFromRequest: %v", err)
		}
		if u != nil && (u.Name != "alice" || s.Hash != sess.Hash || !strings.Contains(cookie, loginValue)) {
			t.Fatalf("Cookie %q logged in as %q (session %v)", cookie, u.Name, s.Hash == sess.Hash)
		}
		sent := xsrfFromRequest(build())
		tokenOK := sent != "" && ((u != nil && sent == sessTok) || (u == nil && sent == anonTok))
		xerr := h.checkXSRF(build())
		if xerr == nil && !xsrfExempt(r) && !tokenOK {
			t.Fatalf("%s with Cookie %q and token %q (%d) passed the XSRF check", m, cookie, token, where%5)
		}
		if xerr != nil && tokenOK {
			t.Fatalf("%s with the right token (%d) refused: %v", m, where%5, xerr)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, build())
		if rec.Code >= 500 {
			t.Fatalf("%s %s with Cookie %q: %d %s", m, path, cookie, rec.Code, rec.Body)
		}
		if rec.Code < 300 && (u == nil || (xerr != nil && !xsrfExempt(r))) {
			t.Fatalf("%s %s with Cookie %q and token %q: %d without a valid session and token", m, path, cookie, token, rec.Code)
		}
		if rec.Code >= 400 {
			errorBody(t, rec)
		}
	})
}
