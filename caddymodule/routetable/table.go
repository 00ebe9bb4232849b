package routetable

import (
	"encoding/json"
	"errors"
	"fmt"
	"hash/maphash"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// numShards spreads routes so that a writer copies only 1/numShards of the
// table and writers of different keys rarely wait for each other.
const numShards = 256

// maxDepth caps the key depths counted one by one; deeper keys share a count.
const maxDepth = 32

// Table is the live route table. The zero value is not usable; call New.
type Table struct {
	seed   maphash.Seed
	shards [numShards]shard
	// n counts routes; hostRoutes counts host routes (Lookup skips the host
	// walk while it is zero).
	n          atomic.Int64
	hostRoutes atomic.Int64
	// depths counts routes by key depth (number of segments, capped at
	// maxDepth); Lookup probes only depths that hold routes, which makes
	// a deep request path cost about one probe.
	depths    [maxDepth + 1]atomic.Int64
	persister atomic.Pointer[persisterRef]
	// flushMu serializes FlushActivity calls.
	flushMu sync.Mutex
	// commits groups concurrent saves for a BatchPersister.
	commits groupCommit
}

type persisterRef struct{ p Persister }

// shard holds an immutable snapshot of its routes, replaced as a whole by
// writers holding mu.
type shard struct {
	mu sync.Mutex
	m  atomic.Pointer[slots]
}

// New returns an empty, memory-only table.
func New() *Table {
	t := &Table{seed: maphash.MakeSeed()}
	for i := range t.shards {
		t.shards[i].m.Store(emptySlots)
	}
	return t
}

// SetPersister makes every later Add and Delete durable through p before it is
// published; nil makes the table memory only.
func (t *Table) SetPersister(p Persister) {
	if p == nil {
		t.persister.Store(nil)
		return
	}
	t.persister.Store(&persisterRef{p: p})
}

func (t *Table) getPersister() Persister {
	if ref := t.persister.Load(); ref != nil {
		return ref.p
	}
	return nil
}

// shardFor returns key's shard and the tag that places key in the shard's
// slots, both from one hash of key.
func (t *Table) shardFor(key string) (*shard, uint32) {
	h := maphash.String(t.seed, key)
	return &t.shards[h%numShards], hashTag(h)
}

// get returns the route stored under an exact, normalized key.
func (t *Table) get(key string) *Route {
	s, tag := t.shardFor(key)
	return s.m.Load().get(tag, key)
}

// newRoute validates a route and builds it, its activity set to lastActivity.
func newRoute(key, target string, data map[string]any, lastActivity time.Time) (*Route, error) {
	r, _, err := newRouteData(key, target, data, lastActivity)
	return r, err
}

// newRouteData is newRoute that also returns the data the route keeps (data
// without the route's own fields), for the record the persister stores.
func newRouteData(key, target string, data map[string]any, lastActivity time.Time) (*Route, map[string]any, error) {
	k, err := NormalizeKey(key)
	if err != nil {
		return nil, nil, err
	}
	r := &Route{key: k, target: target}
	if err := parseTarget(r, target); err != nil {
		return nil, nil, err
	}
	if k != "/" {
		r.hostRoute = isHostSegment(firstSegment(k))
	}
	if _, ok := data["target"]; ok {
		data = withoutOwnFields(data)
	} else if _, ok := data["last_activity"]; ok {
		data = withoutOwnFields(data)
	}
	if len(data) > 0 {
		b, err := json.Marshal(data)
		if err != nil {
			return nil, nil, fmt.Errorf("route data: %w", err)
		}
		r.data = b
		r.hub, _ = data["hub"].(bool)
	}
	ms := lastActivity.UnixMilli()
	r.lastActivity.Store(ms)
	r.flushed.Store(ms)
	return r, data, nil
}

// withoutOwnFields copies data without "target" and "last_activity", which
// the route owns itself.
func withoutOwnFields(data map[string]any) map[string]any {
	out := make(map[string]any, len(data))
	for name, v := range data {
		if name != "target" && name != "last_activity" {
			out[name] = v
		}
	}
	return out
}

// publish swaps r (or, when r is nil, no route) in for key, of hash tag
// tag, in s; s.mu must be held. It returns the route it replaced.
func (t *Table) publish(s *shard, tag uint32, key string, r *Route) *Route {
	if r != nil {
		r.tag = tag
	}
	next, prev := s.m.Load().with(tag, key, r)
	s.m.Store(next)
	t.count(prev, -1)
	t.count(r, +1)
	return prev
}

func (t *Table) count(r *Route, d int64) {
	if r == nil {
		return
	}
	t.n.Add(d)
	t.depths[depthIndex(keyDepth(r.key))].Add(d)
	if r.hostRoute {
		t.hostRoutes.Add(d)
	}
}

// Load adds recs in bulk, without persisting them again (they come from the
// store at start). Invalid records are skipped and reported in the returned
// error; valid ones are loaded either way.
func (t *Table) Load(recs []Record) error {
	var errs []error
	byShard := make(map[*shard]map[string]*Route)
	for _, rec := range recs {
		r, err := newRoute(rec.Key, rec.Target, rec.Data, rec.LastActivity)
		if err != nil {
			errs = append(errs, fmt.Errorf("loading route %q: %w", rec.Key, err))
			continue
		}
		s, tag := t.shardFor(r.key)
		r.tag = tag
		if byShard[s] == nil {
			byShard[s] = make(map[string]*Route)
		}
		byShard[s][r.key] = r // the last record of a key wins
	}
	for s, added := range byShard {
		s.mu.Lock()
		old := s.m.Load()
		routes := make([]*Route, 0, old.n+len(added))
		old.each(func(r *Route) {
			if _, ok := added[r.key]; ok {
				t.count(r, -1) // replaced below
				return
			}
			routes = append(routes, r)
		})
		for _, r := range added {
			routes = append(routes, r)
			t.count(r, +1)
		}
		s.m.Store(buildSlots(routes))
		s.mu.Unlock()
	}
	return errors.Join(errs...)
}

// Add validates and normalizes a route, persists it, then publishes it. Adding
// an existing key replaces the route and its data (as configurable-http-proxy
// does); last_activity is set to now. The route keeps its own encoded copy of
// data.
func (t *Table) Add(key, target string, data map[string]any) (*Route, error) {
	r, kept, err := newRouteData(key, target, data, now())
	if err != nil {
		return nil, err
	}
	s, tag := t.shardFor(r.key)
	s.mu.Lock()
	defer s.mu.Unlock()
	if p := t.getPersister(); p != nil {
		rec := Record{Key: r.key, Target: r.target, Data: kept, LastActivity: r.LastActivity()}
		if err := t.commits.save(p, rec); err != nil {
			return nil, fmt.Errorf("saving route %q: %w", r.key, err)
		}
	}
	t.publish(s, tag, r.key, r)
	return r, nil
}

// Delete removes the route under key (normalized first). It reports whether
// the route existed; a missing route is not an error.
func (t *Table) Delete(key string) (existed bool, err error) {
	k, err := NormalizeKey(key)
	if err != nil {
		return false, err
	}
	s, tag := t.shardFor(k)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m.Load().get(tag, k) == nil {
		return false, nil
	}
	if p := t.getPersister(); p != nil {
		if err := p.DeleteRoute(k); err != nil {
			return true, fmt.Errorf("deleting route %q: %w", k, err)
		}
	}
	t.publish(s, tag, k, nil)
	return true, nil
}

// Get returns the route stored under exactly key (after normalization), or nil.
func (t *Table) Get(key string) *Route {
	k, err := NormalizeKey(key)
	if err != nil {
		return nil
	}
	return t.get(k)
}

// Lookup returns the route for a request, or nil. host is the request's Host
// without its port; path is the decoded request path (r.URL.Path). The
// longest key whose segments all match wins ("/user/al" never matches
// "/user/alice"). When the table holds host routes, "/"+host+path is tried
// first (host compared in lower case), then path alone; the path walk skips
// host routes so that a host route is reachable only through its host.
// Cost grows with the number of path segments, not with the table size.
func (t *Table) Lookup(host, path string) *Route {
	path = cleanPath(path)
	if host != "" && t.hostRoutes.Load() > 0 {
		hp := "/" + strings.ToLower(host)
		if r := t.walk(hp+path, len(hp), true); r != nil {
			return r
		}
	}
	return t.walk(path, 1, false)
}

// walk probes p and then each shorter segment prefix of it, down to minLen
// bytes ("/" is probed only when minLen is 1). Depths that hold no route are
// skipped without a probe.
func (t *Table) walk(p string, minLen int, hostOnly bool) *Route {
	p = trimTrailingSlashes(p)
	d := keyDepth(p)
	for len(p) >= minLen {
		if t.depths[depthIndex(d)].Load() > 0 {
			if r := t.get(p); r != nil && r.hostRoute == hostOnly {
				return r
			}
		}
		if p == "/" {
			return nil
		}
		p = p[:strings.LastIndexByte(p, '/')]
		d--
		if p == "" {
			p = "/"
		}
		for len(p) > 1 && p[len(p)-1] == '/' { // an empty segment
			p = p[:len(p)-1]
			d--
		}
	}
	return nil
}

// keyDepth returns the number of segments of a trimmed key or path: 0 for "/".
func keyDepth(p string) int {
	if p == "/" {
		return 0
	}
	return strings.Count(p, "/")
}

func depthIndex(d int) int { return min(d, maxDepth) }

// trimTrailingSlashes strips trailing slashes, keeping a lone "/".
func trimTrailingSlashes(p string) string {
	for len(p) > 1 && p[len(p)-1] == '/' {
		p = p[:len(p)-1]
	}
	return p
}

// All returns a snapshot of every route, sorted by key.
func (t *Table) All() []*Route {
	out := make([]*Route, 0, t.Len())
	for i := range t.shards {
		t.shards[i].m.Load().each(func(r *Route) { out = append(out, r) })
	}
	slices.SortFunc(out, func(a, b *Route) int { return strings.Compare(a.key, b.key) })
	return out
}

// Len returns the number of routes.
func (t *Table) Len() int { return int(t.n.Load()) }

// FlushActivity writes the last_activity of every route touched since the
// previous flush through the persister, in one batch. Without a persister it
// does nothing.
func (t *Table) FlushActivity() error {
	p := t.getPersister()
	if p == nil {
		return nil
	}
	t.flushMu.Lock()
	defer t.flushMu.Unlock()
	type pending struct {
		r  *Route
		ms int64
	}
	var todo []pending
	for i := range t.shards {
		t.shards[i].m.Load().each(func(r *Route) {
			if ms := r.lastActivity.Load(); ms != r.flushed.Load() {
				todo = append(todo, pending{r, ms})
			}
		})
	}
	if len(todo) == 0 {
		return nil
	}
	acts := make(map[string]time.Time, len(todo))
	for _, pd := range todo {
		acts[pd.r.key] = time.UnixMilli(pd.ms).UTC()
	}
	if err := p.SaveActivity(acts); err != nil {
		return fmt.Errorf("saving activity of %d routes: %w", len(acts), err)
	}
	for _, pd := range todo {
		pd.r.flushed.Store(pd.ms)
	}
	return nil
}
