package hubapp

// Owned by the hub-web helper: sessions, cookies, cookie secret, XSRF, login/logout, pages, next=.
// These stubs keep the package building until it lands.

import (
	"net/http"

	"github.com/caddyhub/caddyhub/caddymodule/routetable"
	"github.com/caddyhub/caddyhub/hubapp/store"
)

type webState struct{}

func (h *Hub) initWeb() error { h.web = &webState{}; return nil }

func (h *Hub) registerWeb(mux *http.ServeMux) {
	mux.HandleFunc("GET "+h.prefix+"health", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
}

// sessionFromRequest returns the login session and user of the request's cookie; (nil, nil, nil) when none.
func (h *Hub) sessionFromRequest(r *http.Request) (*store.Session, *store.User, error) {
	return nil, nil, nil
}

func (h *Hub) redirectToHubUser(w http.ResponseWriter, r *http.Request) {
	http.Redirect(w, r, h.prefix+r.URL.Path[len(h.base):], http.StatusFound)
}

func (h *Hub) serveServerDown(w http.ResponseWriter, r *http.Request, status int, route *routetable.Route) {
	http.Error(w, "your server is not running", status)
}
