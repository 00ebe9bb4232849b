package routetable

import (
	"errors"
	"fmt"
	"maps"
	"sync"
	"testing"
	"time"
)

func mustAdd(t testing.TB, tb *Table, key, target string) *Route {
	t.Helper()
	r, err := tb.Add(key, target, nil)
	if err != nil {
		t.Fatalf("Add(%q, %q): %v", key, target, err)
	}
	return r
}

func TestLookup(t *testing.T) {
	tb := New()
	for _, k := range []string{
		"/user/alice", "/user/alice/gpu", "/user/zoë", "/user/a@b.org", "/services/cull",
		"/alice.hub.example.org/user/alice", "/localhost/x", "/hub",
	} {
		mustAdd(t, tb, k, "http://127.0.0.1:1")
	}
	withRoot := New()
	mustAdd(t, withRoot, "/", "http://127.0.0.1:2")
	mustAdd(t, withRoot, "/user/alice", "http://127.0.0.1:1")

	for _, tc := range []struct {
		tb         *Table
		host, path string
		want       string // key, "" for no match
	}{
		{tb, "hub", "/user/alice", "/user/alice"},
		{tb, "hub", "/user/alice/", "/user/alice"},
		{tb, "hub", "/user/alice//", "/user/alice"},
		{tb, "hub", "/user/alice/lab/tree/x.ipynb", "/user/alice"},
		{tb, "hub", "/user/al", ""},
		{tb, "hub", "/user/alicex", ""},
		{tb, "hub", "/user/alice-x/", ""},
		{tb, "hub", "/user", ""},
		{tb, "hub", "/user/alice/gpu", "/user/alice/gpu"},
		{tb, "hub", "/user/alice/gpux", "/user/alice"},
		{tb, "hub", "/user/alice/gpu/api/kernels", "/user/alice/gpu"},
		// %2F decodes to "/" in r.URL.Path: "/user/alice%2Fgpu" arrives as below.
		{tb, "hub", "/user/alice/gpu", "/user/alice/gpu"},
		{tb, "hub", "/user/alice/../bob/x", ""},
		{tb, "hub", "/user/bob/../alice/x", "/user/alice"},
		{tb, "hub", "/user/alice/gpu/..", "/user/alice"},
		{tb, "hub", "/user//alice", ""},
		{tb, "hub", "/user/zoë/api", "/user/zoë"},
		{tb, "hub", "/user/zo", ""},
		{tb, "hub", "/user/a@b.org/tree", "/user/a@b.org"},
		{tb, "hub", "/services/cull/", "/services/cull"},
		{tb, "hub", "/hub/login", "/hub"},
		{tb, "hub", "", ""},
		{tb, "hub", "/", ""},
		// host routes
		{tb, "alice.hub.example.org", "/user/alice/lab", "/alice.hub.example.org/user/alice"},
		{tb, "ALICE.Hub.Example.org", "/user/alice/lab", "/alice.hub.example.org/user/alice"},
		{tb, "alice.hub.example.org", "/hub/login", "/hub"},
		{tb, "bob.hub.example.org", "/user/alice/", "/user/alice"},
		{tb, "hub", "/alice.hub.example.org/user/alice", ""}, // a host route needs its host
		{tb, "localhost", "/x/y", "/localhost/x"},
		{tb, "localhost", "/y", ""},
		// default route
		{withRoot, "hub", "/", "/"},
		{withRoot, "hub", "", "/"},
		{withRoot, "hub", "/anything/else", "/"},
		{withRoot, "hub", "/user/al", "/"},
		{withRoot, "hub", "/user/alice/x", "/user/alice"},
		{withRoot, "hub", "/user/alice/../../..", "/"},
	} {
		r := tc.tb.Lookup(tc.host, tc.path)
		got := ""
		if r != nil {
			got = r.Key()
		}
		if got != tc.want {
			t.Errorf("Lookup(%q, %q) = %q, want %q", tc.host, tc.path, got, tc.want)
		}
	}
}

type fakePersister struct {
	mu      sync.Mutex
	routes  map[string]Record
	acts    map[string]time.Time
	failing bool
}

var errDisk = errors.New("disk on fire")

func (p *fakePersister) SaveRoute(rec Record) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.failing {
		return errDisk
	}
	p.routes[rec.Key] = rec
	return nil
}

func (p *fakePersister) DeleteRoute(key string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.failing {
		return errDisk
	}
	delete(p.routes, key)
	return nil
}

func (p *fakePersister) SaveActivity(acts map[string]time.Time) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.failing {
		return errDisk
	}
	maps.Copy(p.acts, acts)
	return nil
}

func setClock(t *testing.T, tm *time.Time) {
	t.Helper()
	now = func() time.Time { return *tm }
	t.Cleanup(func() { now = time.Now })
}

func TestAddDeletePersist(t *testing.T) {
	clock := time.Date(2026, 1, 2, 3, 4, 5, 600_000_000, time.UTC)
	setClock(t, &clock)
	tb := New()
	p := &fakePersister{routes: map[string]Record{}, acts: map[string]time.Time{}}
	tb.SetPersister(p)

	data := map[string]any{"user": "alice", "jupyterhub": true, "target": "x", "last_activity": "y"}
	r, err := tb.Add("/user/alice/", "http://127.0.0.1:5000", data)
	if err != nil {
		t.Fatal(err)
	}
	data["user"] = "mallory" // the table keeps its own copy
	rec := p.routes["/user/alice"]
	if rec.Target != "http://127.0.0.1:5000" || rec.Data["user"] != "alice" || rec.Data["jupyterhub"] != true {
		t.Fatalf("persisted %+v", rec)
	}
	if _, ok := rec.Data["target"]; ok {
		t.Errorf("data kept target: %v", rec.Data)
	}
	if _, ok := rec.Data["last_activity"]; ok {
		t.Errorf("data kept last_activity: %v", rec.Data)
	}
	if !rec.LastActivity.Equal(clock.Truncate(time.Millisecond)) || !r.LastActivity().Equal(rec.LastActivity) {
		t.Errorf("last activity %v / %v, want %v", rec.LastActivity, r.LastActivity(), clock)
	}
	if tb.Get("/user/alice/") != r || tb.Len() != 1 {
		t.Fatalf("Get after Add: %v, len %d", tb.Get("/user/alice"), tb.Len())
	}

	// Re-add replaces the route and its data.
	r2, err := tb.Add("/user/alice", "http://127.0.0.1:6000", map[string]any{"server_name": ""})
	if err != nil {
		t.Fatal(err)
	}
	if tb.Len() != 1 || tb.Get("/user/alice") != r2 || r2.Data()["user"] != nil {
		t.Fatalf("re-add did not replace: len %d, data %v", tb.Len(), tb.Get("/user/alice").Data())
	}

	// Data is the caller's to change: the route keeps its own copy.
	d := r2.Data()
	d["server_name"] = "changed"
	if r2.Data()["server_name"] != "" || r2.Hub() {
		t.Fatalf("route data changed through a returned map: %v (hub %v)", r2.Data(), r2.Hub())
	}
	hub, err := tb.Add("/", "http://127.0.0.1:8081", map[string]any{"hub": true})
	if err != nil || !hub.Hub() {
		t.Fatalf("hub route: %v, Hub() %v", err, hub != nil && hub.Hub())
	}
	if _, err := tb.Add("/user/carol", "http://127.0.0.1:6001", map[string]any{"f": func() {}}); err == nil || tb.Get("/user/carol") != nil {
		t.Fatalf("data JSON cannot encode: %v", err)
	}
	if _, err := tb.Delete("/"); err != nil {
		t.Fatal(err)
	}

	// Invalid input changes nothing.
	if _, err := tb.Add("/user/bob", "nope", nil); !errors.Is(err, ErrInvalidTarget) {
		t.Errorf("bad target: %v", err)
	}
	if _, err := tb.Add("/user/../bob", "http://127.0.0.1:1", nil); !errors.Is(err, ErrInvalidKey) {
		t.Errorf("bad key: %v", err)
	}
	if tb.Len() != 1 || len(p.routes) != 1 {
		t.Fatalf("bad input changed the table: %d routes, %d stored", tb.Len(), len(p.routes))
	}

	// A failing persister leaves the table unchanged.
	p.failing = true
	if _, err := tb.Add("/user/carol", "http://127.0.0.1:1", nil); !errors.Is(err, errDisk) {
		t.Errorf("Add with failing store: %v", err)
	}
	if tb.Get("/user/carol") != nil {
		t.Error("route published although saving failed")
	}
	if _, err := tb.Delete("/user/alice"); !errors.Is(err, errDisk) {
		t.Errorf("Delete with failing store: %v", err)
	}
	if tb.Get("/user/alice") == nil {
		t.Error("route removed although deleting failed")
	}
	p.failing = false

	existed, err := tb.Delete("/user/alice/")
	if err != nil || !existed {
		t.Fatalf("Delete: %v, %v", existed, err)
	}
	if _, ok := p.routes["/user/alice"]; ok || tb.Len() != 0 || tb.Lookup("", "/user/alice") != nil {
		t.Fatal("route survived Delete")
	}
	existed, err = tb.Delete("/user/alice")
	if err != nil || existed {
		t.Fatalf("second Delete: %v, %v", existed, err)
	}
}

func TestTouchAndFlush(t *testing.T) {
	clock := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	setClock(t, &clock)
	tb := New()
	p := &fakePersister{routes: map[string]Record{}, acts: map[string]time.Time{}}
	tb.SetPersister(p)
	a := mustAdd(t, tb, "/user/alice", "http://127.0.0.1:1")
	b := mustAdd(t, tb, "/user/bob", "http://127.0.0.1:2")

	if err := tb.FlushActivity(); err != nil || len(p.acts) != 0 {
		t.Fatalf("flush with nothing touched: %v, %v", err, p.acts)
	}
	clock = clock.Add(400 * time.Millisecond)
	a.Touch() // same second: no change
	if !a.LastActivity().Equal(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)) {
		t.Errorf("touch within the same second moved activity to %v", a.LastActivity())
	}
	clock = clock.Add(2 * time.Second)
	a.Touch()
	if !a.LastActivity().Equal(clock) {
		t.Errorf("activity %v, want %v", a.LastActivity(), clock)
	}
	if err := tb.FlushActivity(); err != nil {
		t.Fatal(err)
	}
	if len(p.acts) != 1 || !p.acts["/user/alice"].Equal(clock) {
		t.Fatalf("flushed %v", p.acts)
	}
	clear(p.acts)
	if err := tb.FlushActivity(); err != nil || len(p.acts) != 0 {
		t.Fatalf("second flush wrote again: %v %v", err, p.acts)
	}
	clock = clock.Add(time.Minute)
	b.Touch()
	p.failing = true
	if err := tb.FlushActivity(); !errors.Is(err, errDisk) {
		t.Fatalf("failing flush: %v", err)
	}
	p.failing = false
	if err := tb.FlushActivity(); err != nil || !p.acts["/user/bob"].Equal(clock) {
		t.Fatalf("retry after failure: %v %v", err, p.acts)
	}
	// A clock going backwards never moves activity back.
	clock = clock.Add(-time.Hour)
	b.Touch()
	if !b.LastActivity().Equal(clock.Add(time.Hour)) {
		t.Errorf("activity moved back to %v", b.LastActivity())
	}
}

func TestLoadAndAll(t *testing.T) {
	tb := New()
	la := time.Date(2025, 5, 1, 12, 0, 0, 0, time.UTC)
	p := &fakePersister{routes: map[string]Record{}, acts: map[string]time.Time{}}
	tb.SetPersister(p)
	err := tb.Load([]Record{
		{Key: "/user/bob", Target: "http://127.0.0.1:2", LastActivity: la, Data: map[string]any{"user": "bob"}},
		{Key: "/", Target: "http://127.0.0.1:8081", LastActivity: la},
		{Key: "/bob.hub.org/user/bob", Target: "http://127.0.0.1:2", LastActivity: la},
		{Key: "/user/../x", Target: "http://127.0.0.1:2", LastActivity: la},
		{Key: "/user/eve", Target: "gopher://x", LastActivity: la},
	})
	if !errors.Is(err, ErrInvalidKey) || !errors.Is(err, ErrInvalidTarget) {
		t.Errorf("Load error %v, want both invalid key and target", err)
	}
	if len(p.routes) != 0 {
		t.Errorf("Load persisted %d routes", len(p.routes))
	}
	all := tb.All()
	var keys []string
	for _, r := range all {
		keys = append(keys, r.Key())
	}
	if fmt.Sprint(keys) != "[/ /bob.hub.org/user/bob /user/bob]" || tb.Len() != 3 {
		t.Fatalf("All() = %v, Len %d", keys, tb.Len())
	}
	if rec := tb.Get("/user/bob").Record(); !rec.LastActivity.Equal(la) || rec.Data["user"] != "bob" {
		t.Errorf("loaded record %+v", rec)
	}
	if tb.Lookup("bob.hub.org", "/user/bob/x").Key() != "/bob.hub.org/user/bob" {
		t.Error("loaded host route not found")
	}
	if err := tb.FlushActivity(); err != nil || len(p.acts) != 0 {
		t.Errorf("loaded routes flushed as active: %v %v", err, p.acts)
	}
	// Deleting the last host route turns the host walk off again.
	if _, err := tb.Delete("/bob.hub.org/user/bob"); err != nil {
		t.Fatal(err)
	}
	if tb.hostRoutes.Load() != 0 {
		t.Errorf("hostRoutes = %d after deleting the only host route", tb.hostRoutes.Load())
	}
}

// TestConcurrent runs writers and readers together; run it with -race.
func TestConcurrent(t *testing.T) {
	tb := New()
	p := &fakePersister{routes: map[string]Record{}, acts: map[string]time.Time{}}
	tb.SetPersister(p)
	mustAdd(t, tb, "/", "http://127.0.0.1:8081")
	const users = 200
	var writers, readers sync.WaitGroup
	stop := make(chan struct{})
	for w := range 4 {
		writers.Go(func() {
			for i := range users {
				key := fmt.Sprintf("/user/u%d", (i*7+w)%users)
				if _, err := tb.Add(key, "http://127.0.0.1:9", map[string]any{"w": w}); err != nil {
					t.Error(err)
					return
				}
				if i%3 == 0 {
					if _, err := tb.Delete(key); err != nil {
						t.Error(err)
						return
					}
				}
			}
		})
	}
	for range 4 {
		readers.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				r := tb.Lookup("hub", fmt.Sprintf("/user/u%d/api/kernels", i%users))
				if r == nil {
					t.Error("lookup lost the default route")
					return
				}
				r.Touch()
				_ = r.Record()
				if i%50 == 0 {
					_ = tb.All()
					if err := tb.FlushActivity(); err != nil {
						t.Error(err)
						return
					}
				}
			}
		})
	}
	writers.Wait()
	close(stop)
	readers.Wait()
	// The table and the store agree.
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.routes) != tb.Len() {
		t.Fatalf("store has %d routes, table %d", len(p.routes), tb.Len())
	}
	for _, r := range tb.All() {
		if rec, ok := p.routes[r.Key()]; !ok || rec.Target != r.Target() {
			t.Errorf("route %s not in the store", r.Key())
		}
	}
}
