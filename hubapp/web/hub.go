package web

import (
	"fmt"
	"net/http"
	"strings"
	"sync"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"

	"github.com/caddyhub/caddyhub/auth"
	"github.com/caddyhub/caddyhub/auth/authstate"
	"github.com/caddyhub/caddyhub/caddymodule"
	"github.com/caddyhub/caddyhub/caddymodule/routetable"
	"github.com/caddyhub/caddyhub/hubapp/servers"
	"github.com/caddyhub/caddyhub/hubapp/store"
	"github.com/caddyhub/caddyhub/spawners"
)

// Hub is the in-process hub of one config generation: pages, the REST API and the OAuth provider,
// over the shared store and route table. It implements caddymodule.Hub and is also the handler of
// the hub API listener that spawned servers call.
type Hub struct {
	cfg     *Config
	deps    Deps
	store   *store.Store
	table   *routetable.Table
	rt      *servers.Runtime
	eng     serverEngine // the spawn engine, *servers.Engine (spawn.go)
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

// Deps is what the hub uses besides its options: the app's shared state of this data_dir and the
// guest modules it loaded.
type Deps struct {
	// Store, Table and Runtime are the state shared by every config generation of one data_dir.
	Store   *store.Store
	Table   *routetable.Table
	Runtime *servers.Runtime
	// Authenticator and Spawner are the app's guest modules.
	Authenticator auth.Authenticator
	Spawner       spawners.Spawner
	// Crypter encrypts auth_state at rest; nil unless enable_auth_state.
	Crypter *authstate.Crypter
	// Ctx is the app's Caddy context (metrics registry, certificate storage, the authenticator's
	// background work); the zero value in tests.
	Ctx caddy.Context
	// Logger is the app's logger; the hub logs as its child "hub".
	Logger *zap.Logger
	// HubAPIAddr returns the address the hub API listener listens on (the real one, so that
	// port 0 works), or "" before it listens.
	HubAPIAddr func() string
	// Certificates lists the managed certificates' state for /hub/api/info; nil: none.
	Certificates func() []CertificateInfo
}

// New builds the hub of one config generation over cfg (with its defaults filled in) and deps. It
// starts nothing: Start does.
func New(cfg *Config, deps Deps) (*Hub, error) {
	if deps.Logger == nil {
		deps.Logger = zap.NewNop()
	}
	h := &Hub{
		cfg:     cfg,
		deps:    deps,
		store:   deps.Store,
		table:   deps.Table,
		rt:      deps.Runtime,
		authn:   deps.Authenticator,
		spawner: deps.Spawner,
		logger:  deps.Logger.Named("hub"),
		base:    cfg.BaseURL,
		prefix:  cfg.BaseURL + "hub/",
		mux:     http.NewServeMux(),
	}
	eng, err := h.newEngine()
	if err != nil {
		return nil, err
	}
	h.eng = eng
	if err := h.initWeb(); err != nil {
		return nil, err
	}
	h.registerWeb(h.mux)
	h.registerRedirectLogin(h.mux)
	h.registerServerAPI(h.mux)
	h.registerAPI(h.mux)
	return h, nil
}

// Start adopts running servers and starts background work (see spawn.go, api.go).
func (h *Hub) Start() error {
	h.startAuthenticator()
	if err := h.startSpawn(); err != nil {
		return err
	}
	h.addConfiguredUsers() // create_system_users (systemusers.go)
	return h.startAPI()
}

// Stop ends this generation's background work. When Caddy exits (not on a reload), cleanup
// (cleanup_servers) also stops users' servers; without it the log says how many keep running.
func (h *Hub) Stop(exiting, cleanup bool) {
	h.stopAPI()
	h.stopSpawn(exiting && cleanup)
	if exiting && !cleanup {
		h.logServersKeptRunning()
	}
}

// logServersKeptRunning says, at exit without cleanup_servers, how many users' servers keep
// running and that the next start adopts them.
func (h *Hub) logServersKeptRunning() {
	var n int
	err := h.store.View(func(tx *store.Txn) error {
		servers, err := tx.ActiveServers()
		n = len(servers)
		return err
	})
	if err != nil {
		h.logger.Error("counting servers at exit", zap.Error(err))
		return
	}
	if n > 0 {
		h.logger.Info(fmt.Sprintf("%d %s running after this exit (cleanup_servers is off); the next start adopts them",
			n, plural(n, "server keeps", "servers keep")), zap.Int("servers", n))
	}
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
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

// Interface guard.
var _ caddymodule.Hub = (*Hub)(nil)

// ServeProxyError implements caddymodule.Hub.
func (h *Hub) ServeProxyError(w http.ResponseWriter, r *http.Request, status int, route *routetable.Route) {
	h.serveServerDown(w, r, status, route)
}
