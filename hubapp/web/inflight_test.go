package web

// Spawns in flight across a hub restart (issue #3 item 8): the spawner reports the process before it
// answers (StartRequest.Launched), the hub stores it, and a restarted hub adopts it as a pending spawn.

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"

	"github.com/caddyhub/caddyhub/hubapp/servers"
	"github.com/caddyhub/caddyhub/hubapp/store"
	"github.com/caddyhub/caddyhub/spawners"
)

// TestLaunchedPersistsStateBeforeReady: what the spawner reports through Launched is on disk, still
// pending and without a route, before the server answers; a spawn that then fails leaves no state.
func TestLaunchedPersistsStateBeforeReady(t *testing.T) {
	for _, fail := range []bool{false, true} {
		name := map[bool]string{false: "ready", true: "fails after launch"}[fail]
		t.Run(name, func(t *testing.T) {
			launched, release := make(chan error, 1), make(chan struct{})
			sp := newFakeSpawner()
			sp.startFn = func(ctx context.Context, req *spawners.StartRequest, _ func(spawners.Event)) (*spawners.Server, error) {
				srv := &spawners.Server{URL: fakeBackendURL(), State: fakeStateOf("alice/")}
				sp.mu.Lock()
				sp.alive["alice/"] = true
				sp.mu.Unlock()
				launched <- req.ReportLaunched(srv)
				<-release
				if fail {
					sp.mu.Lock()
					sp.alive["alice/"] = false
					sp.mu.Unlock()
					return nil, &spawners.StartError{Kind: spawners.ErrHTTPTimeout, Msg: "the server did not answer"}
				}
				return srv, nil
			}
			old := slowSpawnTimeout
			slowSpawnTimeout = 10 * time.Millisecond
			t.Cleanup(func() { slowSpawnTimeout = old })
			h := newTestHub(t, sp, nil)
			alice := mustUser(t, h, "alice", false)
			if pending, err := h.startServer(alice, "", nil); err != nil || !pending {
				t.Fatalf("start = %v %v, want pending", pending, err)
			}
			if err := <-launched; err != nil {
				t.Fatalf("Launched: %v", err)
			}
			s := getServer(t, h, "alice", "")
			if s.Pending != "spawn" || s.Ready || s.Target != fakeBackendURL() || string(s.State) != string(fakeStateOf("alice/")) {
				t.Fatalf("record after Launched: %+v", s)
			}
			if h.table.Get("/user/alice") != nil {
				t.Fatal("a route before the server answers")
			}
			close(release)
			waitIdle(t, h, "alice", "")
			s = getServer(t, h, "alice", "")
			if fail {
				if s.Active() || s.State != nil || s.Target != "" || s.Failure == "" {
					t.Fatalf("record after a failed spawn: %+v", s)
				}
				assertNothingLeft(t, h, "alice", "")
				return
			}
			if !s.Ready || s.Pending != "" || h.table.Get("/user/alice") == nil {
				t.Fatalf("record after the spawn: %+v", s)
			}
		})
	}
}

// TestLaunchedRefusedWhenNotPending: a late report for a server no longer pending spawn is refused,
// so the spawner stops what it launched.
func TestLaunchedRefusedWhenNotPending(t *testing.T) {
	h := newTestHub(t, newFakeSpawner(), nil)
	mustUser(t, h, "alice", false)
	if err := h.store.Update(func(tx *store.Txn) error { return tx.PutServer(&store.Server{User: "alice"}) }); err != nil {
		t.Fatal(err)
	}
	for _, srv := range []*spawners.Server{
		{URL: "http://127.0.0.1:7", State: fakeStateOf("alice/")},
		{URL: "", State: fakeStateOf("alice/")},
		nil,
	} {
		if err := engineOf(h).RecordLaunched("alice", "", srv); err == nil {
			t.Errorf("recordLaunched(%+v) on a stopped server succeeded", srv)
		}
	}
	if s := getServer(t, h, "alice", ""); s.State != nil || s.Target != "" {
		t.Fatalf("record changed: %+v", s)
	}
}

// refusedAddr returns a loopback address nobody listens on (a moment ago).
func refusedAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// putLaunchedSpawn records what a hub killed after Launched leaves: a pending spawn with state and
// target, the server's token and OAuth client.
func putLaunchedSpawn(t *testing.T, h *Hub, user, target string) {
	t.Helper()
	err := h.store.Update(func(tx *store.Txn) error {
		now := time.Now().UTC()
		if err := tx.PutServer(&store.Server{User: user, Pending: "spawn", Started: now, LastActivity: now,
			Target: target, State: fakeStateOf(user + "/")}); err != nil {
			return err
		}
		if err := tx.CreateToken(&store.Token{User: user, Kind: "server"}, store.NewToken()); err != nil {
			return err
		}
		return tx.PutOAuthClient(&store.OAuthClient{ID: servers.OAuthClientID(user, ""), User: user, SecretHash: store.Hash("x")})
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestAdoptLaunchedSpawn: at start, a launched spawn a dead hub left pending is polled. Alive and
// answering → ready with its route; alive but never answering, or exiting while the hub waits →
// stopped, nothing left; dead → cleaned up without a stop.
func TestAdoptLaunchedSpawn(t *testing.T) {
	for _, tt := range []struct {
		name        string
		alive       bool
		answers     bool // the target starts answering after the pending state is checked
		diesWaiting bool
		httpTimeout time.Duration // the spawner's http_timeout; 0: the fake's 5 s
		failure     string        // in the record's Failure; "" when the server ends up ready
		stopped     bool          // the spawner was asked to stop it
	}{
		{name: "alive, answers", alive: true, answers: true},
		{name: "alive, never answers", alive: true, httpTimeout: 300 * time.Millisecond, failure: "did not answer", stopped: true},
		{name: "alive, exits while waiting", alive: true, diesWaiting: true, failure: "exited before it answered", stopped: true},
		{name: "dead", alive: false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			sp := newFakeSpawner()
			if tt.httpTimeout > 0 {
				sp.opts.HTTPTimeout = caddy.Duration(tt.httpTimeout)
			}
			h := newTestHub(t, sp, nil)
			alice := mustUser(t, h, "alice", false)
			addr := refusedAddr(t)
			target := "http://" + addr
			putLaunchedSpawn(t, h, "alice", target)
			sp.alive["alice/"] = tt.alive
			if err := h.startSpawn(); err != nil {
				t.Fatal(err)
			}
			if !tt.alive {
				assertNothingLeft(t, h, "alice", "")
				if h.eng.Op("alice/") != nil || len(sp.stops) != 0 || sp.lastRequest() != nil {
					t.Fatalf("dead spawn: op %v, stops %v, starts %d", h.eng.Op("alice/"), sp.stops, len(sp.reqs))
				}
				if s := getServer(t, h, "alice", ""); s.State != nil || s.Target != "" {
					t.Fatalf("dead spawn's state kept: %+v", s)
				}
				if ev, failed := progressOf(h, "alice/").Last(); !failed || !strings.Contains(ev["message"].(string), "stopped while the hub was down") {
					t.Fatalf("last progress event of a dead spawn: %v", ev)
				}
				return
			}

			// While the hub waits, the server is a pending spawn everywhere, and holds its credentials.
			if op := h.eng.Op("alice/"); op == nil || op.Kind() != "spawn" {
				t.Fatalf("no spawn op while waiting: %+v", op)
			}
			if s := getServer(t, h, "alice", ""); s.Pending != "spawn" || s.Ready {
				t.Fatalf("record while waiting: %+v", s)
			}
			if h.table.Get("/user/alice") != nil {
				t.Fatal("route before the server answers")
			}
			tok := userToken(t, h, "alice")
			rec := apiDo(t, h, "GET", "/hub/api/users/alice", tok, "")
			var model struct {
				Pending any `json:"pending"`
			}
			if rec.Code != http.StatusOK || json.Unmarshal(rec.Body.Bytes(), &model) != nil || model.Pending != "spawn" {
				t.Fatalf("user model while waiting: %d %s", rec.Code, rec.Body)
			}
			if pending, err := h.startServer(alice, "", nil); err != nil || !pending {
				t.Fatalf("second start while waiting = %v %v, want pending", pending, err)
			}
			if sp.lastRequest() != nil {
				t.Fatal("a second start called the spawner")
			}
			if len(tokensOf(t, h, "alice", "server")) != 1 || !clientExists(t, h, servers.OAuthClientID("alice", "")) {
				t.Fatal("credentials revoked while waiting")
			}
			if _, err := h.eng.BeginStop("alice", "", false); err == nil {
				t.Fatal("a stop was accepted while the spawn is pending")
			}

			var srv *http.Server
			switch {
			case tt.answers:
				l, err := net.Listen("tcp", addr)
				if err != nil {
					t.Skipf("the target's port was taken meanwhile: %v", err)
				}
				srv = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					if !strings.HasPrefix(r.URL.Path, "/user/alice/") {
						http.NotFound(w, r) // any answer counts, as in JupyterHub
						return
					}
					w.WriteHeader(http.StatusOK)
				})}
				go func() { _ = srv.Serve(l) }()
				t.Cleanup(func() { _ = srv.Close() })
			case tt.diesWaiting:
				sp.mu.Lock()
				sp.alive["alice/"] = false
				sp.mu.Unlock()
			}
			waitIdle(t, h, "alice", "")
			s := getServer(t, h, "alice", "")
			if tt.failure == "" {
				if !s.Ready || s.Pending != "" || s.Target != target {
					t.Fatalf("record after the server answered: %+v", s)
				}
				if r := h.table.Get("/user/alice"); r == nil || r.Target() != target || r.Data()["user"] != "alice" {
					t.Fatalf("route after the server answered: %+v", r)
				}
				active := engineOf(h).Active("alice/")
				if !active {
					t.Fatal("the adopted server is not counted active")
				}
				if len(tokensOf(t, h, "alice", "server")) != 1 || !clientExists(t, h, servers.OAuthClientID("alice", "")) {
					t.Fatal("credentials lost by the adopted server")
				}
				if ev, _ := progressOf(h, "alice/").Last(); ev["ready"] != true || ev["progress"] != 100 {
					t.Fatalf("last progress event: %v", ev)
				}
			} else {
				assertNothingLeft(t, h, "alice", "")
				if s.State != nil || s.Target != "" || !strings.Contains(s.Failure, tt.failure) {
					t.Fatalf("record after a failed resumed spawn: %+v", s)
				}
			}
			sp.mu.Lock()
			stops := append([]string(nil), sp.stops...)
			sp.mu.Unlock()
			if tt.stopped != (len(stops) == 1 && stops[0] == "alice/") {
				t.Fatalf("spawner stops %v, want stopped=%v", stops, tt.stopped)
			}
			if sp.lastRequest() != nil {
				t.Fatal("the spawner was asked to start")
			}
		})
	}
}

// TestAdoptLaunchedSpawnPollError: a spawner that cannot poll a launched spawn gets it treated as
// dead (JupyterHub's check_spawner: "assuming the spawner is not running").
func TestAdoptLaunchedSpawnPollError(t *testing.T) {
	sp := newFakeSpawner()
	h := newTestHub(t, sp, nil)
	mustUser(t, h, "alice", false)
	putLaunchedSpawn(t, h, "alice", "http://"+refusedAddr(t))
	if err := h.store.Update(func(tx *store.Txn) error {
		s, err := tx.Server("alice", "")
		if err != nil {
			return err
		}
		s.State = json.RawMessage(`"not an object"`) // the fake's Poll fails to decode it
		return tx.PutServer(s)
	}); err != nil {
		t.Fatal(err)
	}
	if err := h.startSpawn(); err != nil {
		t.Fatal(err)
	}
	assertNothingLeft(t, h, "alice", "")
	if op := h.eng.Op("alice/"); op != nil {
		t.Fatalf("op left: %+v", op)
	}
}
