package servers

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/caddyhub/caddyhub/caddymodule/routetable"
	"github.com/caddyhub/caddyhub/hubapp/store"
	"github.com/caddyhub/caddyhub/spawners"
)

// testSpawner runs every server as one httptest backend; state {"id": "<user>/<server>"}.
type testSpawner struct {
	mu      sync.Mutex
	url     string
	alive   map[string]bool
	stops   []string
	opts    spawners.Options
	startFn func(req *spawners.StartRequest) error
}

func (s *testSpawner) Start(_ context.Context, req *spawners.StartRequest, _ func(spawners.Event)) (*spawners.Server, error) {
	s.mu.Lock()
	fn := s.startFn
	s.mu.Unlock()
	if fn != nil {
		if err := fn(req); err != nil {
			return nil, err
		}
	}
	id := Key(req.User, req.ServerName)
	state, _ := json.Marshal(map[string]string{"id": id})
	srv := &spawners.Server{URL: s.url, State: state}
	if req.Launched != nil {
		if err := req.Launched(srv); err != nil {
			return nil, err
		}
	}
	s.mu.Lock()
	s.alive[id] = true
	s.mu.Unlock()
	return srv, nil
}

func (s *testSpawner) id(state json.RawMessage) string {
	var v struct{ ID string }
	_ = json.Unmarshal(state, &v)
	return v.ID
}

func (s *testSpawner) Poll(_ context.Context, state json.RawMessage) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.alive[s.id(state)], nil
}

func (s *testSpawner) Stop(_ context.Context, state json.RawMessage) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.alive[s.id(state)] = false
	s.stops = append(s.stops, s.id(state))
	return nil
}

func (s *testSpawner) Common() *spawners.Options { return &s.opts }

// testSite is one origin with routes under "/user/".
type testSite struct{}

func (testSite) RouteKey(user, server string) string { return Prefix("/", user, server) }
func (testSite) UserOrigin(string) string            { return "" }
func (testSite) HubOrigin() string                   { return "" }
func (testSite) APIURL() string                      { return "http://127.0.0.1:8081/hub/api" }

func newTestEngine(t *testing.T, cfg Config) (*Engine, *testSpawner) {
	t.Helper()
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {}))
	t.Cleanup(backend.Close)
	st, err := store.Open(t.TempDir(), zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	table := routetable.New()
	table.SetPersister(RoutePersister{st})
	sp := &testSpawner{url: backend.URL, alive: map[string]bool{}}
	cfg.BaseURL = "/"
	e, err := New(cfg, Deps{Store: st, Table: table, Spawner: sp, Site: testSite{}, Runtime: NewRuntime(), Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Update(func(tx *store.Txn) error {
		for _, name := range []string{"alice", "bob"} {
			if err := tx.CreateUser(&store.User{Name: name}); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return e, sp
}

func wait(t *testing.T, op *Op) error {
	t.Helper()
	select {
	case <-op.Done():
		return op.Err()
	case <-time.After(30 * time.Second):
		t.Fatal("operation did not end")
		return nil
	}
}

// TestStartStop runs the whole spawn path without HTTP: route and record after a start, progress
// ending "ready", credentials revoked and route gone after a stop.
func TestStartStop(t *testing.T) {
	e, sp := newTestEngine(t, Config{})
	op, inFlight, err := e.Start(&store.User{Name: "alice"}, "", map[string]any{"x": 1.0})
	if err != nil || inFlight || op == nil {
		t.Fatalf("Start = %v, %v, %v", op, inFlight, err)
	}
	if err := wait(t, op); err != nil {
		t.Fatal(err)
	}
	if r := e.table.Get("/user/alice/"); r == nil || r.Target() != sp.url {
		t.Fatalf("route after start: %v", r)
	}
	rec, err := e.Record("alice", "")
	if err != nil || rec == nil || !rec.Ready || rec.Pending != "" || rec.UserOptions["x"] != 1.0 {
		t.Fatalf("record after start: %+v, %v", rec, err)
	}
	if ev, failed := op.Progress().Last(); failed || ev["ready"] != true || ev["url"] != "/user/alice/" {
		t.Fatalf("last progress event: %v (failed %v)", ev, failed)
	}
	if !e.Active("alice/") || e.ActiveCount() != 1 {
		t.Fatal("server not active after start")
	}
	// A second start refuses: already running.
	if _, _, err := e.Start(&store.User{Name: "alice"}, "", nil); !isRefusal(err, Invalid) {
		t.Fatalf("second start: %v", err)
	}
	if err := e.Stop(context.Background(), "alice", ""); err != nil {
		t.Fatal(err)
	}
	if r := e.table.Get("/user/alice/"); r != nil {
		t.Fatalf("route after stop: %v", r)
	}
	var toks []*store.Token
	_ = e.store.View(func(tx *store.Txn) (err error) { toks, err = Credentials(tx, "alice", ""); return })
	if len(toks) != 0 || e.Active("alice/") || len(sp.stops) != 1 {
		t.Fatalf("after stop: %d credentials, active %v, stops %v", len(toks), e.Active("alice/"), sp.stops)
	}
}

// TestRefusals: every refusal of the door and of the limits is a *Refusal with its Code.
func TestRefusals(t *testing.T) {
	alice := &store.User{Name: "alice"}
	t.Run("named servers off", func(t *testing.T) {
		e, _ := newTestEngine(t, Config{})
		if _, _, err := e.Start(alice, "gpu", nil); !isRefusal(err, Invalid) {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("slash in name", func(t *testing.T) {
		e, _ := newTestEngine(t, Config{AllowNamedServers: true})
		if _, _, err := e.Start(alice, "a/b", nil); !isRefusal(err, Invalid) {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("active server limit", func(t *testing.T) {
		e, _ := newTestEngine(t, Config{ActiveServerLimit: 1})
		op, _, err := e.Start(alice, "", nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := wait(t, op); err != nil {
			t.Fatal(err)
		}
		if _, _, err := e.Start(&store.User{Name: "bob"}, "", nil); !isRefusal(err, Throttled) {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("concurrent spawn limit", func(t *testing.T) {
		e, sp := newTestEngine(t, Config{ConcurrentSpawnLimit: 1})
		gate := make(chan struct{})
		sp.startFn = func(*spawners.StartRequest) error { <-gate; return nil }
		op, _, err := e.Start(alice, "", nil)
		if err != nil {
			t.Fatal(err)
		}
		_, _, err = e.Start(&store.User{Name: "bob"}, "", nil)
		var r *Refusal
		if !errors.As(err, &r) || r.Code != Throttled || r.RetryAfter < 30 || r.RetryAfter > 60 {
			t.Fatalf("got %v", err)
		}
		// The start in flight answers "pending" to a second request for the same server.
		if op2, inFlight, err := e.Start(alice, "", nil); op2 != nil || !inFlight || err != nil {
			t.Fatalf("second start of a pending server: %v, %v, %v", op2, inFlight, err)
		}
		// And a stop meanwhile is refused.
		if _, err := e.BeginStop("alice", "", false); !isRefusal(err, Invalid) {
			t.Fatalf("stop of a pending spawn: %v", err)
		}
		close(gate)
		if err := wait(t, op); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("failed spawn cleans up", func(t *testing.T) {
		e, sp := newTestEngine(t, Config{})
		sp.startFn = func(*spawners.StartRequest) error { return errors.New("no capacity") }
		op, _, err := e.Start(alice, "", nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := wait(t, op); err == nil {
			t.Fatal("spawn succeeded")
		}
		rec, _ := e.Record("alice", "")
		if rec == nil || rec.Active() || rec.Failure == "" || e.Active("alice/") {
			t.Fatalf("after a failed spawn: %+v, active %v", rec, e.Active("alice/"))
		}
	})
}

func isRefusal(err error, code Code) bool {
	var r *Refusal
	return errors.As(err, &r) && r.Code == code
}
