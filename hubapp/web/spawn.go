package web

// The hub's side of the spawn engine (package servers): the engine's wiring (addresses, metrics,
// the login refresh), the waits the HTTP layer puts on a start or stop, and the mapping of the
// engine's refusals to HTTP statuses.

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/caddyhub/caddyhub/auth"
	"github.com/caddyhub/caddyhub/hubapp/servers"
	"github.com/caddyhub/caddyhub/hubapp/store"
	"github.com/caddyhub/caddyhub/spawners"
)

// slowSpawnTimeout is how long a spawn request waits for the server before answering "pending"
// (JupyterHub's tornado setting slow_spawn_timeout, 10 s); slowStopTimeout likewise for stops.
var (
	slowSpawnTimeout = 10 * time.Second
	slowStopTimeout  = 10 * time.Second
	// pageSpawnWait is how long the spawn page waits before showing the progress page (JupyterHub's
	// page handler waits 1 s): a browser should see progress, not a 10-second blank.
	pageSpawnWait = time.Second
)

// serverEngine is what the hub asks of the spawn engine (*servers.Engine): the HTTP layer starts,
// stops and watches servers through it only, so that tests can put a fake in its place.
type serverEngine interface {
	Start(u *store.User, server string, userOptions map[string]any) (op *servers.Op, inFlight bool, err error)
	BeginStop(user, server string, remove bool) (*servers.Op, error)
	Stop(ctx context.Context, user, server string) error
	Op(key string) *servers.Op
	Current(key string) (*servers.Op, *servers.Progress)
	Record(user, server string) (*store.Server, error)
	ServerURL(user, server string) string
	Profiles() []spawners.Profile
	Orphans(ctx context.Context) ([]string, error)
	WaitIdle(ctx context.Context, user, server string) error
	// Begin adopts running servers and starts the poll loop; End stops it (with cleanup, the servers).
	Begin() error
	End(cleanup bool)
}

var _ serverEngine = (*servers.Engine)(nil)

// newEngine builds this generation's spawn engine over the shared store, table and runtime.
func (h *Hub) newEngine() (*servers.Engine, error) {
	a := h.cfg
	hooks, _ := h.authn.(auth.SpawnHooks)
	return servers.New(servers.Config{
		BaseURL:                 h.base,
		DataDir:                 a.DataDir,
		AllowNamedServers:       a.AllowNamedServers,
		NamedServerLimitPerUser: a.NamedServerLimitPerUser,
		ConcurrentSpawnLimit:    a.ConcurrentSpawnLimit,
		ActiveServerLimit:       a.ActiveServerLimit,
	}, servers.Deps{
		Store:     h.store,
		Table:     h.table,
		Spawner:   h.spawner,
		Hooks:     hooks,
		Site:      hubSite{h},
		SpawnAuth: h.spawnAuth,
		Metrics:   hubMetricsSink{h},
		Runtime:   h.rt,
		Logger:    h.logger,
	})
}

// hubSite tells the engine the hub's addresses.
type hubSite struct{ h *Hub }

func (s hubSite) RouteKey(user, server string) string { return s.h.routeKey(user, server) }
func (s hubSite) UserOrigin(user string) string       { return s.h.userOrigin(user) }
func (s hubSite) HubOrigin() string                   { return s.h.hubOrigin() }
func (s hubSite) APIURL() string                      { return s.h.serverAPIURL() }

var _ servers.Site = hubSite{}

// hubMetricsSink records the engine's measurements in the hub's metrics.
type hubMetricsSink struct{ h *Hub }

func (m hubMetricsSink) ObserveSpawn(status string, d time.Duration) { m.h.observeSpawn(status, d) }
func (m hubMetricsSink) ObserveStop(status string, d time.Duration)  { m.h.observeStop(status, d) }
func (m hubMetricsSink) ObserveRouteAdd(d time.Duration)             { m.h.observeRouteAdd(d) }

var _ servers.Metrics = hubMetricsSink{}

// serverPrefix is the server's base URL path: <base>user/<name>/[<server>/] (JUPYTERHUB_SERVICE_PREFIX).
func (h *Hub) serverPrefix(user, server string) string { return servers.Prefix(h.base, user, server) }

// routeKey is the route of a user's server in the table: "<base>user/<name>[/<server>]",
// host-routed under subdomain_host (subdomain.go).
func (h *Hub) routeKey(user, server string) string { return h.subdomainRouteKey(user, server) }

// serverAPIURL is JUPYTERHUB_API_URL: hub_connect_url's origin, or http://<hub_api listener>, then
// <base>hub/api. The hub API listener's real address is used, so port 0 works.
func (h *Hub) serverAPIURL() string {
	path := h.prefix + "api"
	if c := h.cfg.HubConnectURL; c != "" {
		if u, err := url.Parse(c); err == nil && u.Host != "" {
			return u.Scheme + "://" + u.Host + path
		}
		return strings.TrimRight(c, "/") + path
	}
	addr := h.cfg.HubAPI
	if h.deps.HubAPIAddr != nil {
		if a := h.deps.HubAPIAddr(); a != "" {
			addr = a
		}
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "http://" + addr + path
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
	}
	return "http://" + net.JoinHostPort(host, port) + path
}

// startServer starts user's server (serverName "" is the default). It returns once the server is
// ready, or with pending=true when the start takes longer than slow_spawn_timeout (API: 201 or 202).
// A refusal or a fast failure is a *servers.Refusal. userOptions nil reuses the last stored options.
func (h *Hub) startServer(user *store.User, serverName string, userOptions map[string]any) (pending bool, err error) {
	return h.startServerWait(user, serverName, userOptions, slowSpawnTimeout)
}

// startServerWait is startServer answering "pending" after wait.
func (h *Hub) startServerWait(user *store.User, serverName string, userOptions map[string]any, wait time.Duration) (pending bool, err error) {
	op, inFlight, err := h.eng.Start(user, serverName, userOptions)
	if err != nil || inFlight {
		return inFlight, err
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-op.Done():
		if op.Err() != nil {
			return false, &servers.Refusal{Code: servers.Failed, Msg: op.Err().Error()}
		}
		return false, nil
	case <-t.C:
		return true, nil
	}
}

// stopServer stops user's server and waits for it (or for ctx); see servers.Engine.Stop.
func (h *Hub) stopServer(ctx context.Context, user *store.User, serverName string) error {
	return h.eng.Stop(ctx, user.Name, serverName)
}

// profiles returns the spawner's profiles (spawners.OptionsSpawner), or none.
func (h *Hub) profiles() []spawners.Profile { return h.eng.Profiles() }

// startSpawn adopts running servers and starts this generation's poll loop.
func (h *Hub) startSpawn() error { return h.eng.Begin() }

// stopSpawn ends this generation's poll loop; with cleanup, users' servers are stopped.
func (h *Hub) stopSpawn(cleanup bool) { h.eng.End(cleanup) }

// refusalStatus is the HTTP status of a refusal of the spawn engine.
func refusalStatus(c servers.Code) int {
	switch c {
	case servers.Invalid:
		return http.StatusBadRequest
	case servers.Forbidden:
		return http.StatusForbidden
	case servers.Throttled:
		return http.StatusTooManyRequests
	case servers.Unavailable:
		return http.StatusServiceUnavailable
	default:
		return http.StatusInternalServerError
	}
}

// asRefusal returns err's *servers.Refusal, or nil.
func asRefusal(err error) *servers.Refusal {
	var r *servers.Refusal
	if errors.As(err, &r) {
		return r
	}
	return nil
}
