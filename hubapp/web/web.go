package web

// The hub's web side: cookie secret (secret.go), login sessions (sessions.go), XSRF (xsrf.go),
// login and logout (login.go), pages (pages.go) and next= validation (next.go). This file wires
// them: the per-generation state and the page routes.
//
// Where it differs from JupyterHub 3.0 (for docs/design-notes.md):
//   - Sessions are server-side records (store.Session); the login cookie carries only a session id,
//     signed and encrypted (gorilla/sessions, keys derived from the cookie secret with HKDF). Logout
//     revokes the session and its OAuth tokens at once; "log out everywhere" (POST
//     /hub/logout?all=1) rotates the user's CookieID. JupyterHub's cookie holds the per-user
//     cookie_id, so a stolen cookie works until the secret changes.
//   - jupyterhub-session-id holds the session's hash (what OAuth tokens carry), not a secret.
//   - The cookie secret file is refused when group or others have any permission (0o077), not only
//     others (0o007).
//   - Every form POST needs an _xsrf token, the login form too (3.0 checks none; ≥4.0 does, as
//     here). Tokens are HMACs bound to the session and the user's CookieID, or to client address
//     + User-Agent before login. Pages set them in the _xsrf cookie too (JupyterHub ≥4.1), but the
//     check never trusts the cookie, so a tossed-in one forges nothing.
//   - GET /hub/spawn starts the server, as JupyterHub, except for a request the browser marks
//     cross-site, which gets a start button (POST) instead.
//   - next= must be a path on this host under base_url (or a user's origin under
//     subdomain_host); encoded and control-character variants are refused, and /user/… is not
//     rewritten to /hub/user/… (the edge does that when there is no route).
//   - Failed logins answer 403 (JupyterHub ≥5.3) and are throttled per (address, username).
//   - Requests carrying two login cookies are treated as anonymous (cookie tossing).
//   - Login grants admin when the authenticator says so and never revokes it (3.0's is_admin).

import (
	"bytes"
	"crypto/rand"
	"embed"
	"encoding/base64"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"time"

	"github.com/gorilla/sessions"
	"go.uber.org/zap"

	"github.com/caddyhub/caddyhub/hubapp/rbac"
	"github.com/caddyhub/caddyhub/hubapp/store"
)

// webState is the web side's state of one config generation.
type webState struct {
	keys             webKeys
	cookies          *sessions.CookieStore
	maxAge           time.Duration
	redirectToServer bool
	cache            sessionCache
	throttle         loginThrottle
	brand            *brandAssets // logo, favicon, name, announcements (branding.go)
}

// initWeb reads the cookie secret (creating the secret file on first start) and derives the keys.
// It runs in the app's Start, through New: Provision does no I/O.
func (h *Hub) initWeb() error {
	secret, err := loadCookieSecret(h.cfg.CookieSecret, h.cfg.CookieSecretFile, h.logger)
	if err != nil {
		return err
	}
	if len(secret) < 16 {
		h.logger.Warn("the cookie secret is shorter than 16 bytes; generate a longer one (e.g. openssl rand -hex 32)")
	}
	brand, err := loadBrandAssets(h.cfg.Branding)
	if err != nil {
		return err
	}
	keys, err := deriveWebKeys(secret)
	if err != nil {
		return err
	}
	maxAge := time.Duration(h.cfg.CookieMaxAge)
	if maxAge <= 0 {
		maxAge = defaultCookieMaxAge
	}
	h.web = &webState{
		keys:             keys,
		cookies:          newCookieStore(keys, maxAge),
		maxAge:           maxAge,
		redirectToServer: h.cfg.RedirectToServer == nil || *h.cfg.RedirectToServer,
		brand:            brand,
	}
	return nil
}

// registerWeb adds the hub's pages (docs/protocols.md, "Pages") to the mux.
func (h *Hub) registerWeb(mux *http.ServeMux) {
	// /hub/health is the REST API's (api.go), with /hub/api/health.
	p := h.prefix
	if p != "/" {
		mux.HandleFunc("GET "+p[:len(p)-1], func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, p, http.StatusMovedPermanently)
		})
	}
	mux.HandleFunc("GET "+p+"{$}", h.page(h.serveRoot))
	mux.HandleFunc("GET "+p+"login", h.page(h.serveLoginForm))
	mux.HandleFunc("POST "+p+"login", h.page(h.serveLogin))
	mux.HandleFunc("GET "+p+"logout", h.page(h.serveLogout))
	mux.HandleFunc("POST "+p+"logout", h.page(h.serveLogout))
	mux.HandleFunc("GET "+p+"home", h.page(h.requireLogin(h.serveHome)))
	for _, suffix := range []string{"", "/{user}", "/{user}/{server}"} {
		mux.HandleFunc("GET "+p+"spawn"+suffix, h.page(h.requireLogin(h.serveSpawnPage)))
		mux.HandleFunc("POST "+p+"spawn"+suffix, h.page(h.requireLogin(h.serveSpawn)))
	}
	mux.HandleFunc("GET "+p+"spawn-pending/{user}", h.page(h.requireLogin(h.serveSpawnPending)))
	mux.HandleFunc("GET "+p+"spawn-pending/{user}/{server}", h.page(h.requireLogin(h.serveSpawnPending)))
	mux.HandleFunc(p+"user/{user}", h.page(h.serveHubUser))
	mux.HandleFunc(p+"user/{user}/{path...}", h.page(h.serveHubUser))
	mux.HandleFunc("GET "+p+"user-redirect/{path...}", h.page(h.requireLogin(h.serveUserRedirect)))
	mux.HandleFunc("GET "+p+"token", h.page(h.requireLogin(h.serveTokenPage)))
	mux.HandleFunc("GET "+p+"error/{code}", h.page(h.serveErrorTarget))
	mux.HandleFunc("GET "+p+"logo", h.serveLogo)
	mux.HandleFunc("GET "+p+"favicon.ico", h.serveFavicon)
	h.registerAcceptShare(mux) // api_sharecodes.go
	h.registerAdmin(mux)       // admin.go
	mux.HandleFunc(p, h.page(h.serveNotFound))
}

// pageRequest is what a page handler knows about its request.
type pageRequest struct {
	sess   *store.Session // nil when anonymous
	user   *store.User    // nil when anonymous
	nonce  string         // CSP nonce of this response's inline script and style
	scopes *rbac.Set      // the user's scopes once resolved (pageScopes, admin.go)
}

type pageHandler func(w http.ResponseWriter, r *http.Request, pr *pageRequest)

// page wraps a page handler: security headers, the login session, and a readable 500 page when
// the store fails.
func (h *Hub) page(fn pageHandler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		pr := &pageRequest{nonce: newNonce()}
		setSecurityHeaders(w, pr.nonce)
		sess, user, err := h.sessionFromRequest(r)
		if err != nil {
			h.logger.Error("reading login session", zap.Error(err))
			h.renderError(w, r, pr, http.StatusInternalServerError, "The hub could not read its database. Try again in a moment.")
			return
		}
		pr.sess, pr.user = sess, user
		fn(w, r, pr)
	}
}

// requireLogin sends anonymous visitors to the login page, with next= pointing back here.
func (h *Hub) requireLogin(fn pageHandler) pageHandler {
	return func(w http.ResponseWriter, r *http.Request, pr *pageRequest) {
		if pr.user == nil {
			h.redirectToLogin(w, r)
			return
		}
		fn(w, r, pr)
	}
}

func (h *Hub) redirectToLogin(w http.ResponseWriter, r *http.Request) {
	http.Redirect(w, r, h.prefix+"login?"+url.Values{"next": {r.URL.RequestURI()}}.Encode(), http.StatusFound)
}

func newNonce() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return base64.RawStdEncoding.EncodeToString(b)
}

// setSecurityHeaders sets the headers of every hub page: a strict CSP (only our own origin; inline
// script and style only with this response's nonce; no framing, as JupyterHub ≥4.1), no MIME
// sniffing, no Referer to other origins, and no caching of pages that carry XSRF tokens.
func setSecurityHeaders(w http.ResponseWriter, nonce string) {
	hd := w.Header()
	hd.Set("Content-Security-Policy", fmt.Sprintf("default-src 'self'; script-src 'self' 'nonce-%s'; style-src 'self' 'nonce-%s'; img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'", nonce, nonce))
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("X-Frame-Options", "DENY")
	hd.Set("Referrer-Policy", "same-origin")
	hd.Set("Cache-Control", "no-store")
}

//go:embed templates/*.html
var templateFS embed.FS

var pageTemplates = loadTemplates("login", "home", "spawn", "spawn_pending", "not_running", "error", "token", "admin", "admin_groups")

func loadTemplates(names ...string) map[string]*template.Template {
	m := make(map[string]*template.Template, len(names))
	for _, n := range names {
		m[n] = template.Must(template.New("layout.html").ParseFS(templateFS, "templates/layout.html", "templates/"+n+".html"))
	}
	return m
}

// pageData is what every template sees; Data holds the page's own fields.
type pageData struct {
	Title  string
	Base   string // base_url
	Prefix string // <base_url>hub/
	User   *store.User
	XSRF   string
	Nonce  string
	// AdminUI: the user holds admin-ui, so the header links to the admin page.
	AdminUI bool
	Brand   brandView
	Data    any
}

// render executes a page template into a buffer first, so that a template error becomes a clean
// 500 instead of half a page.
func (h *Hub) render(w http.ResponseWriter, r *http.Request, pr *pageRequest, status int, name, title string, data any) {
	t := pageTemplates[name]
	pd := pageData{
		Title:  title,
		Base:   h.base,
		Prefix: h.prefix,
		User:   pr.user,
		XSRF:   h.pageXSRF(w, r, pr.sess),
		Nonce:  pr.nonce,
		Data:   data,
	}
	b := h.brand()
	pd.Brand = brandView{Name: b.title, Announcement: b.announcementFor(name)}
	if pr.user != nil {
		pd.AdminUI = h.holds(pr, "admin-ui")
	}
	var buf bytes.Buffer
	if t == nil {
		h.logger.Error("rendering page", zap.String("template", name), zap.String("error", "no such template"))
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	if err := t.Execute(&buf, pd); err != nil {
		h.logger.Error("rendering page", zap.String("template", name), zap.Error(err))
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// errorData is the error template's data.
type errorData struct {
	Status     int
	StatusText string
	Message    string
	// Link, if set, is offered below the message.
	Link, LinkText string
}

func (h *Hub) renderError(w http.ResponseWriter, r *http.Request, pr *pageRequest, status int, message string) {
	h.renderErrorLink(w, r, pr, status, message, "", "")
}

func (h *Hub) renderErrorLink(w http.ResponseWriter, r *http.Request, pr *pageRequest, status int, message, link, linkText string) {
	h.render(w, r, pr, status, "error", fmt.Sprintf("%d %s", status, http.StatusText(status)), errorData{
		Status: status, StatusText: http.StatusText(status), Message: message, Link: link, LinkText: linkText,
	})
}
