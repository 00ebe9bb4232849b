package web

import (
	"net/http"
	"net/url"
	"strings"
	"unicode"

	"go.uber.org/zap"

	"github.com/caddyhub/caddyhub/auth"
	"github.com/caddyhub/caddyhub/hubapp/store"
)

// maxNextLen bounds the length of a next URL we redirect to.
const maxNextLen = 4096

// safeNext returns next if it is a safe place to send the browser after login, or "" (use the
// default). It follows JupyterHub's algorithm (docs/protocols.md, "next validation") and is
// stricter (CVE-2019-10255, GHSA-3vff-hjqv-m7h8; "Published advisories" there): the result is always a path on this host under base_url, so:
//   - an absolute URL is accepted only for this very scheme and host (or a user subdomain with
//     subdomain_host), and is then reduced to its path, with leading slashes collapsed to one;
//   - "//host", "///host", backslashes (browsers read `\` as `/`), control characters and
//     spaces (browsers drop tabs and newlines inside URLs, so "/\t/evil" becomes "//evil"),
//     other schemes (javascript:) and anything not starting with "/" are refused;
//   - percent-encoded forms are decoded (up to three times) and checked the same way, so
//     "/%2F%2Fevil" and "/%5Cevil" are refused too (encoded spaces stay allowed).
//
// JupyterHub 3.0 also rewrites next=<base>user/... to <base>hub/user/...; CaddyHub does not: the
// edge already sends /user/<name>/ requests with no route to /hub/user/<name>/.
func (h *Hub) safeNext(r *http.Request, next string) string {
	if next == "" {
		return ""
	}
	if len(next) > maxNextLen || !nextCharsOK(next) {
		return h.refuseNext(next)
	}
	if lower := strings.ToLower(next); strings.HasPrefix(lower, "http://") || strings.HasPrefix(lower, "https://") || strings.HasPrefix(next, "//") {
		u, err := url.Parse(next)
		if err != nil || u.Host == "" || u.User != nil {
			return h.refuseNext(next)
		}
		scheme := "http"
		if requestIsTLS(r) {
			scheme = "https"
		}
		sameHost := strings.EqualFold(u.Host, r.Host) && (u.Scheme == "" || strings.EqualFold(u.Scheme, scheme))
		if !sameHost {
			if h.isUserSubdomain(u) && pathNextOK(u.EscapedPath()) && strings.HasPrefix(u.Path, h.base) {
				return next // a user's own origin under subdomain_host
			}
			return h.refuseNext(next)
		}
		// Keep only path, query and fragment; "/" + path without its leading slashes, so that
		// https://hub//evil.com/ cannot become //evil.com/ (CVE-2026-33709).
		p := "/" + strings.TrimLeft(u.EscapedPath(), "/")
		if u.RawQuery != "" {
			p += "?" + u.RawQuery
		}
		if u.Fragment != "" {
			p += "#" + u.EscapedFragment()
		}
		next = p
	}
	if !pathNextOK(next) {
		return h.refuseNext(next)
	}
	// Every percent-decoded form must be a plain path as well.
	for s, i := next, 0; i < 3 && strings.Contains(s, "%"); i++ {
		d, err := url.PathUnescape(s)
		if err != nil {
			return h.refuseNext(next)
		}
		if strings.ContainsFunc(d, func(c rune) bool { return c == '\\' || unicode.IsControl(c) }) || !pathNextOK(d) {
			return h.refuseNext(next)
		}
		s = d
	}
	u, err := url.Parse(next)
	if err != nil || u.Scheme != "" || u.Host != "" || u.Opaque != "" {
		return h.refuseNext(next)
	}
	if !strings.HasPrefix(u.Path, h.base) && u.Path+"/" != h.base {
		return h.refuseNext(next)
	}
	// Reducing an absolute URL to its path re-escapes its fragment, which can make it longer than
	// the input: bound the result too, so that a value that passed passes again (found by
	// FuzzSafeNext: a 1,700-byte fragment of backquotes became 5,000 bytes of %60).
	if len(next) > maxNextLen {
		return h.refuseNext(next)
	}
	return next
}

func (h *Hub) refuseNext(next string) string {
	h.logger.Warn("disallowing redirect outside the hub", zap.String("next", auth.Truncate(next, 100)))
	return ""
}

// nextCharsOK refuses control characters, white space and backslashes anywhere.
func nextCharsOK(s string) bool {
	return !strings.ContainsFunc(s, func(c rune) bool {
		return c == '\\' || unicode.IsControl(c) || unicode.IsSpace(c) || c == '\uFFFD'
	})
}

// pathNextOK: an absolute path on this host, not a scheme-relative URL.
func pathNextOK(s string) bool {
	return strings.HasPrefix(s, "/") && !strings.HasPrefix(s, "//")
}

// isUserSubdomain reports whether an absolute next URL points at a user's origin under
// subdomain_host (<label>.<subdomain_host>, with its scheme and port).
func (h *Hub) isUserSubdomain(u *url.URL) bool {
	c, ok := h.subdomain()
	if !ok || !strings.EqualFold(u.Scheme, c.scheme) || u.Port() != c.port {
		return false
	}
	host := strings.ToLower(strings.TrimSuffix(u.Hostname(), "."))
	label, found := strings.CutSuffix(host, "."+c.host)
	return found && label != "" && !strings.Contains(label, ".")
}

// nextURL is where to send a user after login or from /hub/: the request's valid ?next=, else
// the default of JupyterHub 3.0's get_next_url (handlers/base.py): with redirect_to_server (the
// default) the user's server if it is active, else /hub/spawn; without it /hub/home.
func (h *Hub) nextURL(r *http.Request, user *store.User) string {
	if next := h.safeNext(r, r.FormValue("next")); next != "" {
		return next
	}
	return h.defaultURL(user)
}

func (h *Hub) defaultURL(user *store.User) string {
	if user == nil || !h.web.redirectToServer {
		return h.prefix + "home"
	}
	if srv := h.webServer(user.Name, ""); srv != nil && srv.Active() {
		return h.fullServerURL(user.Name, "")
	}
	return h.prefix + "spawn"
}
