package web

// Branding: the hub's name, logo, favicon and announcement banners (README: hub_title through
// announcement_spawn). The logo is served at /hub/logo (jupyterhub-singleuser shows it in the
// notebook's header), so the hub's pages and its servers show the same one; without logo_file it
// is drawn with the hub's name.

import (
	"fmt"
	"html"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"unicode/utf8"
)

// defaultHubTitle is the hub's name when hub_title is not set.
const defaultHubTitle = "CaddyHub"

// Branding holds the hub's branding options; Config embeds it, so they sit beside the other hub
// options in JSON and in the Caddyfile.
type Branding struct {
	// HubTitle is the hub's name in page titles and in the default logo. Default: "CaddyHub".
	HubTitle string `json:"hub_title,omitempty"`

	// LogoFile is an image (.svg, .png, .jpg, .jpeg, .gif, .webp) served at /hub/logo instead of the
	// default logo, and shown in the header of the hub's pages and of jupyterhub-singleuser
	// (JupyterHub's logo_file). Read when the hub starts; a file that cannot be read stops the start.
	// Default: "" (a logo drawn with HubTitle).
	LogoFile string `json:"logo_file,omitempty"`

	// FaviconFile is an icon (.ico, .svg, .png) served at /hub/favicon.ico and linked from every
	// page. Default: "" (a small SVG icon).
	FaviconFile string `json:"favicon_file,omitempty"`

	// Announcement is a banner shown at the top of every hub page (JupyterHub's template_vars
	// announcement), as plain text. Default: "" (none).
	Announcement string `json:"announcement,omitempty"`

	// AnnouncementLogin, AnnouncementHome and AnnouncementSpawn replace Announcement on the login,
	// home and spawn pages (spawn, spawn-pending, not running) when set, "" included (no banner
	// there), as JupyterHub's announcement_login, announcement_home and announcement_spawn. Default:
	// unset (Announcement).
	AnnouncementLogin *string `json:"announcement_login,omitempty"`
	AnnouncementHome  *string `json:"announcement_home,omitempty"`
	AnnouncementSpawn *string `json:"announcement_spawn,omitempty"`
}

// imageTypes are the content types of the image files logo_file and favicon_file may name.
var imageTypes = map[string]string{
	".svg": "image/svg+xml", ".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg",
	".gif": "image/gif", ".webp": "image/webp", ".ico": "image/x-icon",
}

// Validate checks the file names' extensions (Provision time: no I/O).
func (b *Branding) Validate() error {
	for opt, f := range map[string]string{"logo_file": b.LogoFile, "favicon_file": b.FaviconFile} {
		if f == "" {
			continue
		}
		if _, ok := imageTypes[strings.ToLower(filepath.Ext(f))]; !ok {
			return fmt.Errorf("%s %q: want an .svg, .png, .jpg, .jpeg, .gif, .webp or .ico file", opt, f)
		}
	}
	if utf8.RuneCountInString(b.HubTitle) > 64 {
		return fmt.Errorf("hub_title %q: at most 64 characters", b.HubTitle)
	}
	return nil
}

// brandAssets are the logo and favicon bytes served by one config generation.
type brandAssets struct {
	title                   string
	logo, favicon           []byte
	logoType, faviconType   string
	announcement            string
	login, home, spawnPages *string
}

// loadBrandAssets reads logo_file and favicon_file (Start time), or draws the defaults.
func loadBrandAssets(b Branding) (*brandAssets, error) {
	a := &brandAssets{
		title:        strings.TrimSpace(b.HubTitle),
		announcement: b.Announcement,
		login:        b.AnnouncementLogin, home: b.AnnouncementHome, spawnPages: b.AnnouncementSpawn,
	}
	if a.title == "" {
		a.title = defaultHubTitle
	}
	var err error
	if b.LogoFile == "" {
		a.logo, a.logoType = []byte(defaultLogoSVG(a.title)), "image/svg+xml"
	} else if a.logo, err = os.ReadFile(b.LogoFile); err != nil {
		return nil, fmt.Errorf("jupyterhub: reading logo_file: %w", err)
	} else {
		a.logoType = imageTypes[strings.ToLower(filepath.Ext(b.LogoFile))]
	}
	if b.FaviconFile == "" {
		a.favicon, a.faviconType = []byte(defaultFaviconSVG), "image/svg+xml"
	} else if a.favicon, err = os.ReadFile(b.FaviconFile); err != nil {
		return nil, fmt.Errorf("jupyterhub: reading favicon_file: %w", err)
	} else {
		a.faviconType = imageTypes[strings.ToLower(filepath.Ext(b.FaviconFile))]
	}
	return a, nil
}

// announcementFor is the banner of a page template: the page's own announcement when set, else
// the general one.
func (a *brandAssets) announcementFor(template string) string {
	var own *string
	switch template {
	case "login":
		own = a.login
	case "home":
		own = a.home
	case "spawn", "spawn_pending", "not_running":
		own = a.spawnPages
	}
	if own != nil {
		return *own
	}
	return a.announcement
}

// brandView is what the layout template shows of the branding.
type brandView struct {
	Name         string
	Announcement string
}

// defaultFaviconSVG is the default favicon: the default logo's ring.
const defaultFaviconSVG = `<svg xmlns="http://www.w3.org/2000/svg" width="32" height="32" viewBox="0 0 32 32">` +
	`<rect width="32" height="32" rx="6" fill="#1a5f7a"/>` +
	`<circle cx="16" cy="16" r="9" fill="none" stroke="#f5a623" stroke-width="3"/></svg>`

// defaultLogoSVG draws the default logo: a ring and the hub's name, in a box sized to the name.
func defaultLogoSVG(title string) string {
	w := 42 + 9*utf8.RuneCountInString(title)
	return fmt.Sprintf(`<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="32" viewBox="0 0 %d 32">`+
		`<rect width="%d" height="32" rx="6" fill="#1a5f7a"/>`+
		`<circle cx="16" cy="16" r="9" fill="none" stroke="#f5a623" stroke-width="3"/>`+
		`<text x="32" y="21.5" font-family="sans-serif" font-size="15" font-weight="bold" fill="#fff">%s</text></svg>`,
		w, w, w, html.EscapeString(title))
}

// serveImage answers GET /hub/logo and /hub/favicon.ico with the generation's bytes.
func serveImage(w http.ResponseWriter, contentType string, body []byte) {
	w.Header().Set("Content-Type", contentType)
	w.Header().Set("Cache-Control", "public, max-age=3600")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	// An SVG opened on its own runs no script and loads nothing.
	w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; sandbox")
	_, _ = w.Write(body)
}

// brand returns the generation's branding (the defaults before initWeb has run).
func (h *Hub) brand() *brandAssets {
	if h.web != nil && h.web.brand != nil {
		return h.web.brand
	}
	a, _ := loadBrandAssets(Branding{})
	return a
}

// serveLogo answers GET /hub/logo.
func (h *Hub) serveLogo(w http.ResponseWriter, r *http.Request) {
	b := h.brand()
	serveImage(w, b.logoType, b.logo)
}

// serveFavicon answers GET /hub/favicon.ico.
func (h *Hub) serveFavicon(w http.ResponseWriter, r *http.Request) {
	b := h.brand()
	serveImage(w, b.faviconType, b.favicon)
}
