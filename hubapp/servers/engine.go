// Package servers is the spawn engine: it starts, stops, adopts and polls users' servers through the
// configured spawners.Spawner, keeps their records, credentials and routes, and reports progress.
//
// It knows nothing of HTTP: it writes no response and registers no route. A start or stop it refuses
// is a *Refusal whose Code the HTTP layer maps to a status. docs/architecture.md walks the spawn path.
package servers

import (
	"context"
	"fmt"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/caddyhub/caddyhub/caddymodule/routetable"
	"github.com/caddyhub/caddyhub/hubapp/store"
	"github.com/caddyhub/caddyhub/spawners"
)

// adoptConcurrency bounds the spawner polls in flight at start and in the poll loop.
const adoptConcurrency = 64

// Config is what the engine takes from the hub's configuration.
type Config struct {
	// BaseURL is the hub's base_url ("/" or "/prefix/").
	BaseURL string
	// DataDir is the hub's data_dir, passed on to spawners.
	DataDir string
	// AllowNamedServers is allow_named_servers.
	AllowNamedServers bool
	// NamedServerLimitPerUser is named_server_limit_per_user (0: no limit).
	NamedServerLimitPerUser int
	// ConcurrentSpawnLimit is concurrent_spawn_limit (0: no limit).
	ConcurrentSpawnLimit int
	// ActiveServerLimit is active_server_limit (0: no limit).
	ActiveServerLimit int
}

// Site is what the engine asks the hub about addresses, which depend on listeners and subdomain_host.
type Site interface {
	// RouteKey is the route of a user's server in the route table.
	RouteKey(user, server string) string
	// UserOrigin is the scheme and host of a user's servers under subdomain_host, "" on one origin.
	UserOrigin(user string) string
	// HubOrigin is the hub's origin under subdomain_host, "" on one origin (JUPYTERHUB_HOST).
	HubOrigin() string
	// APIURL is the hub API's URL as servers reach it (JUPYTERHUB_API_URL).
	APIURL() string
}

// Metrics receives the engine's measurements. Nil methods are not allowed: use NopMetrics.
type Metrics interface {
	// ObserveSpawn records a finished spawn; status is "success" or "failure".
	ObserveSpawn(status string, d time.Duration)
	// ObserveStop records a finished stop; status is "success" or "failure".
	ObserveStop(status string, d time.Duration)
	// ObserveRouteAdd records how long adding a route took.
	ObserveRouteAdd(d time.Duration)
}

// NopMetrics discards measurements.
type NopMetrics struct{}

// ObserveSpawn implements Metrics.
func (NopMetrics) ObserveSpawn(string, time.Duration) {}

// ObserveStop implements Metrics.
func (NopMetrics) ObserveStop(string, time.Duration) {}

// ObserveRouteAdd implements Metrics.
func (NopMetrics) ObserveRouteAdd(time.Duration) {}

var _ Metrics = NopMetrics{}

// SpawnAuthFunc runs before a spawn: it returns the user's auth_state for the spawner and the
// environment the authenticator hands to the server, or a *Refusal.
type SpawnAuthFunc func(u *store.User) (authState map[string]any, env map[string]string, err error)

// SpawnHooks run around every start and stop of a server (auth.SpawnHooks: JupyterHub's
// pre_spawn_start and post_spawn_stop). Their errors are logged; they do not stop a spawn.
type SpawnHooks interface {
	PreSpawnStart(ctx context.Context, user string) error
	PostSpawnStop(ctx context.Context, user string) error
}

// Deps are the engine's collaborators.
type Deps struct {
	Store   *store.Store
	Table   *routetable.Table
	Spawner spawners.Spawner
	// Hooks are the authenticator's spawn hooks (auth.SpawnHooks); nil: none.
	Hooks SpawnHooks
	Site  Site
	// SpawnAuth refreshes the login before a spawn; nil: no auth_state, no extra environment.
	SpawnAuth SpawnAuthFunc
	// Metrics; nil: NopMetrics.
	Metrics Metrics
	// Runtime is the state that outlives a config reload (NewRuntime).
	Runtime *Runtime
	Logger  *zap.Logger
}

// Engine is one config generation's spawn engine over the shared store, route table and Runtime.
type Engine struct {
	cfg       Config
	store     *store.Store
	table     *routetable.Table
	spawner   spawners.Spawner
	hooks     SpawnHooks
	site      Site
	spawnAuth SpawnAuthFunc
	metrics   Metrics
	rt        *Runtime
	logger    *zap.Logger
}

// New returns an engine; every field of d but Hooks, SpawnAuth and Metrics is required.
func New(cfg Config, d Deps) (*Engine, error) {
	if d.Store == nil || d.Table == nil || d.Spawner == nil || d.Site == nil || d.Runtime == nil || d.Logger == nil {
		return nil, fmt.Errorf("servers: new engine: store, table, spawner, site, runtime and logger are required")
	}
	if d.Metrics == nil {
		d.Metrics = NopMetrics{}
	}
	if d.SpawnAuth == nil {
		d.SpawnAuth = func(*store.User) (map[string]any, map[string]string, error) { return nil, nil, nil }
	}
	return &Engine{
		cfg: cfg, store: d.Store, table: d.Table, spawner: d.Spawner, hooks: d.Hooks, site: d.Site,
		spawnAuth: d.SpawnAuth, metrics: d.Metrics, rt: d.Runtime, logger: d.Logger,
	}, nil
}

// Spawner is the engine's spawner.
func (e *Engine) Spawner() spawners.Spawner { return e.spawner }

// Op is a start ("spawn") or stop in flight for one server.
type Op struct {
	kind     string
	progress *Progress
	done     chan struct{}
	err      error // set before done is closed
}

func newOp(kind string) *Op {
	op := &Op{kind: kind, done: make(chan struct{})}
	if kind == "spawn" {
		op.progress = NewProgress()
	}
	return op
}

// Kind is "spawn" or "stop".
func (o *Op) Kind() string { return o.kind }

// Done is closed when the operation has ended.
func (o *Op) Done() <-chan struct{} { return o.done }

// Err is the operation's outcome, valid once Done is closed.
func (o *Op) Err() error { return o.err }

// Progress is a spawn's progress log (nil for a stop).
func (o *Op) Progress() *Progress { return o.progress }

// Runtime is what must outlive a config reload about servers in flight: the operation pending on
// each server (the per-server lock: one start or stop at a time), progress logs, the set of active
// servers (for active_server_limit) and the poll loops of the running generations.
type Runtime struct {
	mu       sync.Mutex
	ops      map[string]*Op       // server key "user/server" → op in flight
	progress map[string]*Progress // last spawn's progress, kept after it ends until the next start/stop
	active   map[string]struct{}  // servers ready or pending
	loops    map[*Engine]func()   // poll loop per generation
}

// NewRuntime returns an empty Runtime.
func NewRuntime() *Runtime {
	return &Runtime{
		ops:      map[string]*Op{},
		progress: map[string]*Progress{},
		active:   map[string]struct{}{},
		loops:    map[*Engine]func(){},
	}
}

// spawnsPendingLocked counts starts in flight (JupyterHub counts spawn and proxy pending together).
func (rt *Runtime) spawnsPendingLocked() int {
	n := 0
	for _, op := range rt.ops {
		if op.kind == "spawn" {
			n++
		}
	}
	return n
}

// op returns the operation in flight on a server, or nil.
func (rt *Runtime) op(key string) *Op {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	return rt.ops[key]
}

// Op returns the operation in flight on the server with key Key(user, server), or nil.
func (e *Engine) Op(key string) *Op { return e.rt.op(key) }

// Current returns the operation in flight on a server (or nil) and its last spawn's progress log
// (or nil), read together.
func (e *Engine) Current(key string) (*Op, *Progress) {
	e.rt.mu.Lock()
	defer e.rt.mu.Unlock()
	return e.rt.ops[key], e.rt.progress[key]
}

// Active reports whether a server counts as active (ready or pending) for active_server_limit.
func (e *Engine) Active(key string) bool {
	e.rt.mu.Lock()
	defer e.rt.mu.Unlock()
	_, ok := e.rt.active[key]
	return ok
}

// ActiveCount is the number of active servers.
func (e *Engine) ActiveCount() int {
	e.rt.mu.Lock()
	defer e.rt.mu.Unlock()
	return len(e.rt.active)
}

// Key is the server's full name, as in a !server= filter: "alice/" for the default server.
func Key(user, server string) string { return user + "/" + server }

// LogName names a server for messages: "alice's server", "alice's server gpu".
func LogName(user, server string) string {
	if server == "" {
		return user + "'s server"
	}
	return user + "'s server " + server
}

// Record returns a server's record, nil when it has none.
func (e *Engine) Record(user, server string) (*store.Server, error) {
	var rec *store.Server
	err := e.store.View(func(tx *store.Txn) error {
		var err error
		rec, err = tx.Server(user, server)
		return err
	})
	if err != nil {
		if isNotFound(err) {
			return nil, nil
		}
		return nil, fmt.Errorf("reading server of %s: %w", user, err)
	}
	return rec, nil
}
