package hubapp

import (
	"net/http"
	"strings"
	"sync"

	"go.uber.org/zap"

	"github.com/caddyhub/caddyhub/auth"
	"github.com/caddyhub/caddyhub/caddymodule/routetable"
	"github.com/caddyhub/caddyhub/hubapp/store"
	"github.com/caddyhub/caddyhub/spawners"
)

// Hub is the in-process hub of one config generation: pages, the REST API and the OAuth provider,
// over the shared store and route table. It implements caddymodule.Hub and is also the handler of
// the hub API listener that spawned servers call.
type Hub struct {
	app     *App
	store   *store.Store
	table   *routetable.Table
	rt      *runtimeState
	authn   auth.Authenticator
	spawner spawners.Spawner
	logger  *zap.Logger

	base   string // base_url, "/" or "/prefix/"
	prefix string // base + "hub/"
	mux    *http.ServeMux

	web *webState // sessions, cookies, XSRF (web.go)

	apiMu sync.Mutex
	api   *apiState // REST API state (api.go); created on first use
}

func newHub(a *App) (*Hub, error) {
	h := &Hub{
		app:     a,
		store:   a.shared.store,
		table:   a.shared.table,
		rt:      a.shared.runtime,
		authn:   a.authenticator,
		spawner: a.spawner,
		logger:  a.logger.Named("hub"),
		base:    a.BaseURL,
		prefix:  a.BaseURL + "hub/",
		mux:     http.NewServeMux(),
	}
	if err := h.initWeb(); err != nil {
		return nil, err
	}
	h.registerWeb(h.mux)
	h.registerSpawn(h.mux)
	h.registerAPI(h.mux)
	return h, nil
}

// start adopts running servers and starts background work (see spawn.go, api.go).
func (h *Hub) start() error {
	if err := h.startSpawn(); err != nil {
		return err
	}
	return h.startAPI()
}

// stop ends this generation's background work; cleanup also stops users' servers (exit only).
func (h *Hub) stop(cleanup bool) {
	h.stopAPI()
	h.stopSpawn(cleanup)
}

// Prefix implements caddymodule.Hub: the path the hub serves itself.
func (h *Hub) Prefix() string { return h.prefix }

// ServeHTTP implements caddymodule.Hub: requests under the hub's prefix, and requests no route matched.
func (h *Hub) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if h.guardHost(w, r) {
		return
	}
	p := r.URL.Path
	switch {
	case strings.HasPrefix(p, h.prefix) || p+"/" == h.prefix:
		h.mux.ServeHTTP(w, r)
	case strings.HasPrefix(p, h.base+"user/"):
		// No route: the server is not running (or not yet routed). JupyterHub sends the browser to
		// /hub/user/<name>/…, which offers to start it (docs/protocols.md, "A server that is not
		// running").
		h.redirectToHubUser(w, r)
	default:
		http.Redirect(w, r, h.prefix, http.StatusFound)
	}
}

// ServeProxyError implements caddymodule.Hub.
func (h *Hub) ServeProxyError(w http.ResponseWriter, r *http.Request, status int, route *routetable.Route) {
	h.serveServerDown(w, r, status, route)
}
