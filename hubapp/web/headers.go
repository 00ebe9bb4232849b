package web

// Transport-level rules for every hub response (pages, REST API, redirects): HSTS under TLS, and
// under subdomain_host the hub answers only on its own host. The page headers (CSP,
// Referrer-Policy, X-Content-Type-Options, framing) are web.go's setSecurityHeaders.

import (
	"net/http"
	"strings"
)

// hstsMaxAge is the Strict-Transport-Security max-age: one year, as Caddy's docs suggest.
const hstsMaxAge = "31536000"

// guardHost runs first for every request the hub serves (Hub.ServeHTTP). It sets
// Strict-Transport-Security on responses sent over TLS (with includeSubDomains under
// subdomain_host, whose users' origins are HTTPS as well), and, under subdomain_host, sends a
// request that reached the hub at a user's origin (<label>.<subdomain_host>) to the same path on
// the hub's origin. The hub thus never serves a page, sets a cookie or reads one on a user's
// origin: a user's server cannot script the hub's pages from its own origin, and the login cookie
// (host-only, path /hub/) stays on the hub's host. Requests to other hosts (the hub API listener
// at 127.0.0.1, a bare IP) are served as usual. It returns true when it has answered.
func (h *Hub) guardHost(w http.ResponseWriter, r *http.Request) bool {
	c, sub := h.subdomain()
	if r.TLS != nil {
		v := "max-age=" + hstsMaxAge
		if sub {
			v += "; includeSubDomains"
		}
		w.Header().Set("Strict-Transport-Security", v)
	}
	if !sub {
		return false
	}
	host := strings.ToLower(strings.TrimSuffix(hostOf(r.Host), "."))
	if !strings.HasSuffix(host, "."+c.host) {
		return false
	}
	status := http.StatusFound
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		status = http.StatusTemporaryRedirect
	}
	target := h.hubOrigin() + r.URL.RequestURI()
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, target, status)
	return true
}
