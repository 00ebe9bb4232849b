// Package routetable is the edge's routing table: the set of path (and host)
// prefixes that the `jupyterhub` HTTP handler proxies to user servers and
// services, and that the configurable-http-proxy compatible API edits
// (docs/protocols.md, "configurable-http-proxy").
//
// Lookups take no lock and allocate nothing in the common case: routes are
// spread over shards, each an immutable cuckoo hash table (slots.go)
// published through an atomic pointer (copy-on-write per shard); one hash of
// the key picks both the shard and the key's two slots. Writers serialize per shard, persist
// first and publish second, so a route a client saw acknowledged survives
// a crash. Activity is an atomic timestamp on the route, flushed in batches.
//
// The package is pure Go and imports nothing from Caddy, so the hub app, the
// proxy API and benchmarks can use it directly.
package routetable

import (
	"bytes"
	"encoding/json"
	"errors"
	"sync/atomic"
	"time"
)

// Record is a route as stored and as listed by the proxy API.
type Record struct {
	// Key is the normalized CHP path: "/", "/user/alice", "/alice.hub.example.org/user/alice".
	Key string `json:"key"`
	// Target is the upstream URL, "http://127.0.0.1:54321"; it may carry a path, which is
	// prepended to the forwarded path (CHP's prependPath).
	Target string `json:"target"`
	// Data holds every extra JSON field given on add, returned as is.
	Data map[string]any `json:"data,omitempty"`
	// LastActivity is the last time traffic went through the route (millisecond precision).
	LastActivity time.Time `json:"last_activity"`
}

// ErrStorageFull is what a Persister returns (wrapped) when its storage has no room for the
// change: nothing was stored, the table is unchanged, and the same change may succeed later.
var ErrStorageFull = errors.New("route storage is full")

// Persister makes table changes durable; the hub app's Badger store implements it.
type Persister interface {
	// SaveRoute stores rec durably (synced) before it returns.
	SaveRoute(rec Record) error
	// DeleteRoute removes the route stored under key.
	DeleteRoute(key string) error
	// SaveActivity stores batched last_activity updates, keyed by route key.
	SaveActivity(acts map[string]time.Time) error
}

// BatchPersister is an optional extension of Persister. When the persister
// has it, concurrent Adds are grouped (group commit): while one batch is being
// written, the next ones queue, and each batch is one durable write. A store
// that syncs every write (Badger with SyncWrites syncs once per transaction)
// then pays one sync per batch instead of one per route. Every Add still
// returns only after its own record is durable.
type BatchPersister interface {
	Persister
	// SaveRoutes stores recs durably, atomically or not at all; the keys are
	// distinct.
	SaveRoutes(recs []Record) error
}

// Route is one published route. Everything but its activity timestamp is
// immutable after it has been published; replacing a route publishes a new
// *Route.
type Route struct {
	key    string
	target string
	// data holds the extra fields as one compact JSON object (nil when there
	// are none): a few dozen bytes, where a decoded map costs ~350 per route.
	data []byte
	// hub is set when data has "hub": true, JupyterHub's mark on its own
	// route; the edge asks on every request, so it is decoded once here.
	hub bool
	// hostRoute is set when the key's first segment is a host name.
	hostRoute bool
	// tag is the high half of the key's hash in its table (hashTag), set
	// before the route is published; it places the route in its shard's
	// slots and spares most key comparisons.
	tag uint32
	// scheme is "http" or "https"; dial is the upstream's host:port.
	scheme string
	dial   string
	// prependPath and prependRawPath are the target's path without its
	// trailing slash ("" when the target has no path).
	prependPath    string
	prependRawPath string

	// lastActivity is Unix milliseconds; flushed is the value last handed
	// to the persister.
	lastActivity atomic.Int64
	flushed      atomic.Int64
}

// now is the clock; tests replace it.
var now = time.Now

// Key returns the route's normalized key.
func (r *Route) Key() string { return r.key }

// Target returns the target URL as given on add.
func (r *Route) Target() string { return r.target }

// Data returns the extra fields given on add, decoded afresh (nil when there
// are none): the caller owns the map. Numbers come back as json.Number, so
// that they are returned verbatim, as configurable-http-proxy does.
func (r *Route) Data() map[string]any {
	if r.data == nil {
		return nil
	}
	var m map[string]any
	dec := json.NewDecoder(bytes.NewReader(r.data))
	dec.UseNumber()
	if err := dec.Decode(&m); err != nil {
		return nil // cannot happen: newRoute stored what json.Marshal wrote
	}
	return m
}

// Hub reports whether the route's data has "hub": true, the mark JupyterHub
// puts on the route to itself.
func (r *Route) Hub() bool { return r.hub }

// IsHostRoute reports whether the route's first key segment is a host name.
func (r *Route) IsHostRoute() bool { return r.hostRoute }

// Scheme returns the target's scheme, "http" or "https".
func (r *Route) Scheme() string { return r.scheme }

// Dial returns the target's network address in Caddy's form: host:port (the
// scheme's default port filled in), or unix/<socket path> for an http+unix
// target.
func (r *Route) Dial() string { return r.dial }

// PrependPath returns the target's path without a trailing slash, decoded and
// escaped; both are "" when the target has no path. The edge prepends it to
// the forwarded request path, as configurable-http-proxy does by default.
func (r *Route) PrependPath() (path, rawPath string) { return r.prependPath, r.prependRawPath }

// Record returns the route as a Record, with its data decoded afresh.
func (r *Route) Record() Record {
	return Record{
		Key:          r.key,
		Target:       r.target,
		Data:         r.Data(),
		LastActivity: r.LastActivity(),
	}
}

// Touch marks the route active now. It is on the hot path of every proxied
// write: when the route was already touched this second it costs one atomic
// load (and the clock read), so busy routes do not bounce a cache line
// between cores.
func (r *Route) Touch() {
	ms := now().UnixMilli()
	if r.lastActivity.Load()/1000 >= ms/1000 {
		return
	}
	r.lastActivity.Store(ms)
}

// LastActivity returns the last time the route was touched (or added), in UTC.
func (r *Route) LastActivity() time.Time {
	return time.UnixMilli(r.lastActivity.Load()).UTC()
}
