package hubapp

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
//     anonymous id. It lives in no cookie, so a sibling (sub)domain cannot toss one in
//     (GHSA-7r3h-4ph8-w38g).
//
// Unlike JupyterHub 3.0, the login form is protected too (login CSRF).

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
