package web

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"mime"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/caddyhub/caddyhub/hubapp/store"
)

// XSRF tokens (docs/protocols.md, "Cross-site protections (XSRF)", JupyterHub ≥4.1 _xsrf_utils.py): a
// token is the HMAC, under a key derived from the cookie secret, of an id that names who the form was
// made for:
//
//   - logged in: the session hash and the user's CookieID, so a token dies with its session and
//     with "log out everywhere", and one user's token is worthless for another;
//   - anonymous (the login form): a hash of the client address and User-Agent, as JupyterHub's
//     anonymous id.
//
// Every page a browser navigates to also sets the token in the `_xsrf` cookie (path <base>hub/, not
// HttpOnly, one hour while anonymous), as JupyterHub does, so that scripts written for JupyterHub
// can read it and send it back. The cookie is only a carrier: a request is checked against the
// token of its own session (or anonymous id), never against the cookie, so a cookie tossed in by a
// sibling (sub)domain forges nothing (GHSA-7r3h-4ph8-w38g).
//
// Unlike JupyterHub 3.0, the login form is protected too (login CSRF).

// xsrfCookie is the cookie that carries the page's XSRF token to scripts.
const xsrfCookie = "_xsrf"

// anonymousXSRFMaxAge is the lifetime of an anonymous `_xsrf` cookie (JupyterHub's one hour); the
// cookie of a logged-in user lasts as long as the browser session.
const anonymousXSRFMaxAge = time.Hour

var (
	errXSRFMissing = errors.New("'_xsrf' argument missing from request")
	errXSRFInvalid = errors.New("'_xsrf' argument does not match: the form is invalid or expired")
)

func (h *Hub) xsrfTokenFor(id string) string {
	m := hmac.New(sha256.New, h.web.keys.xsrf)
	m.Write([]byte("caddyhub-xsrf\x00"))
	m.Write([]byte(id))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

func sessionXSRFID(sess *store.Session) string { return "s:" + sess.Hash + ":" + sess.CookieID }

func anonymousXSRFID(r *http.Request) string {
	sum := sha256.New()
	sum.Write([]byte(clientIP(r)))
	sum.Write([]byte{0xff})
	sum.Write([]byte(r.UserAgent()))
	return "a:" + hex.EncodeToString(sum.Sum(nil))
}

// clientIP is the client's address as Caddy determined it (trusted_proxies honoured), or the
// connection's peer for requests that did not come through Caddy's HTTP app (the hub API listener).
func clientIP(r *http.Request) string {
	if ip, ok := caddyhttp.GetVar(r.Context(), caddyhttp.ClientIPVarKey).(string); ok && ip != "" {
		return ip
	}
	if host, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		return host
	}
	return r.RemoteAddr
}

// xsrfToken returns the token that forms and scripts on a page made for this request must send
// back: bound to the session when there is one, else to the anonymous id.
func (h *Hub) xsrfToken(r *http.Request, sess *store.Session) string {
	if sess != nil {
		return h.xsrfTokenFor(sessionXSRFID(sess))
	}
	return h.xsrfTokenFor(anonymousXSRFID(r))
}

// pageXSRF returns the token for a page made for this request, and sets it in the `_xsrf` cookie
// when the request is a navigation (Sec-Fetch-Mode navigate, or absent: old browsers and scripts)
// and does not carry that very token already. A fetch() or subresource request gets no cookie, as
// in JupyterHub; nor does a page the hub answers for a user's server (/user/…: server down), where
// the session is not read and the cookie's path does not apply.
func (h *Hub) pageXSRF(w http.ResponseWriter, r *http.Request, sess *store.Session) string {
	tok := h.xsrfToken(r, sess)
	mode := strings.ToLower(r.Header.Get("Sec-Fetch-Mode"))
	if (mode != "" && mode != "navigate") || !strings.HasPrefix(r.URL.Path, h.prefix) {
		return tok
	}
	for _, c := range r.Cookies() {
		if c.Name == xsrfCookie && c.Value == tok {
			return tok
		}
	}
	h.setXSRFCookie(w, r, tok, sess != nil)
	return tok
}

// setXSRFCookie sets the `_xsrf` cookie: path <base>hub/ (the REST API and pages, never users'
// servers, which set their own), readable by scripts, Lax, Secure under TLS; an anonymous one
// expires after an hour, a logged-in one with the browser session.
func (h *Hub) setXSRFCookie(w http.ResponseWriter, r *http.Request, tok string, loggedIn bool) {
	c := &http.Cookie{
		Name:     xsrfCookie,
		Value:    tok,
		Path:     h.prefix,
		Secure:   requestIsTLS(r),
		SameSite: http.SameSiteLaxMode,
	}
	if !loggedIn {
		c.MaxAge = int(anonymousXSRFMaxAge / time.Second)
	}
	http.SetCookie(w, c)
}

// xsrfFromRequest returns the token the request carries: header X-XSRFToken (or X-CSRFToken), then
// `_xsrf` in the query, then in a form body.
func xsrfFromRequest(r *http.Request) string {
	if t := r.Header.Get("X-XSRFToken"); t != "" {
		return t
	}
	if t := r.Header.Get("X-CSRFToken"); t != "" {
		return t
	}
	if t := r.URL.Query().Get("_xsrf"); t != "" {
		return t
	}
	if r.Method == http.MethodPost || r.Method == http.MethodPut || r.Method == http.MethodPatch {
		ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
		if ct == "application/x-www-form-urlencoded" || ct == "multipart/form-data" {
			return r.PostFormValue("_xsrf")
		}
	}
	return ""
}

// xsrfExempt reports whether a request may skip the XSRF check, as JupyterHub ≥5.4.6 decides:
// websocket handshakes (the origin check belongs to the server), and read-only requests that are
// top-level navigations (Sec-Fetch-Mode navigate, or absent in old browsers and non-browser
// clients). A `fetch()` or EventSource GET (mode cors/same-origin) does need the token, and so
// does every state-changing request whatever its mode (GHSA-m68r-v472-jgq9: no-cors POSTs).
func xsrfExempt(r *http.Request) bool {
	mode := strings.ToLower(r.Header.Get("Sec-Fetch-Mode"))
	if mode == "websocket" {
		return true
	}
	switch r.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
		return mode == "" || mode == "navigate"
	}
	return false
}

// checkXSRF checks the XSRF token of a cookie-authenticated request; token-authenticated API calls
// do not call it. It returns nil for exempt requests (xsrfExempt), errXSRFMissing or
// errXSRFInvalid otherwise when the token is absent or wrong (answer 403). The REST API calls it
// for every cookie-authenticated request; pages call it for every form POST.
func (h *Hub) checkXSRF(r *http.Request) error {
	if xsrfExempt(r) {
		return nil
	}
	sess, _, err := h.sessionFromRequest(r)
	if err != nil {
		return err
	}
	return h.checkXSRFFor(r, sess, false)
}

// checkXSRFFor checks the request's token against the one made for sess (or, without a session,
// for the anonymous id). allowAnonymous also accepts the anonymous token while logged in: the login
// form may have been rendered before another tab logged in.
func (h *Hub) checkXSRFFor(r *http.Request, sess *store.Session, allowAnonymous bool) error {
	got := xsrfFromRequest(r)
	if got == "" {
		return errXSRFMissing
	}
	if sess != nil && constantTimeEqual(got, h.xsrfTokenFor(sessionXSRFID(sess))) {
		return nil
	}
	if (sess == nil || allowAnonymous) && constantTimeEqual(got, h.xsrfTokenFor(anonymousXSRFID(r))) {
		return nil
	}
	return errXSRFInvalid
}
