package hubapp

import "net/http"

// logoSVG is the hub's logo, served at /hub/logo (docs/protocols.md, "Pages"): jupyterhub-singleuser
// shows it in the notebook's header, linking back to the hub.
const logoSVG = `<svg xmlns="http://www.w3.org/2000/svg" width="120" height="32" viewBox="0 0 120 32">` +
	`<rect width="120" height="32" rx="6" fill="#1a5f7a"/>` +
	`<circle cx="16" cy="16" r="9" fill="none" stroke="#f5a623" stroke-width="3"/>` +
	`<text x="32" y="21.5" font-family="sans-serif" font-size="15" font-weight="bold" fill="#fff">CaddyHub</text></svg>`

// serveLogo answers GET /hub/logo.
func (h *Hub) serveLogo(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "image/svg+xml")
	w.Header().Set("Cache-Control", "public, max-age=86400")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'")
	_, _ = w.Write([]byte(logoSVG))
}
