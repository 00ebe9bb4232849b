//go:build unix

package simple

import (
	"context"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/caddyhub/caddyhub/spawners"
)

// launchRecorder collects the servers a start reports through StartRequest.Launched.
type launchRecorder struct {
	mu       sync.Mutex
	servers  []*spawners.Server
	launched chan *spawners.Server // the first report
	err      error                 // returned by every report
}

func newLaunchRecorder(err error) *launchRecorder {
	return &launchRecorder{launched: make(chan *spawners.Server, 1), err: err}
}

func (r *launchRecorder) report(srv *spawners.Server) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.servers = append(r.servers, srv)
	if len(r.servers) == 1 {
		r.launched <- srv
	}
	return r.err
}

func (r *launchRecorder) all() []*spawners.Server {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]*spawners.Server(nil), r.servers...)
}

// TestLaunchedBeforeReady: the spawner reports the process (URL and a State Poll and Stop accept)
// while the server does not answer yet, and Start later returns that same server.
func TestLaunchedBeforeReady(t *testing.T) {
	gate := filepath.Join(t.TempDir(), "gate")
	s := newSpawner(t, func(s *Spawner) { s.Args = []string{"-wait-file=" + gate} })
	req := newRequest(t, "gina")
	rec := newLaunchRecorder(nil)
	req.Launched = rec.report
	type result struct {
		srv *spawners.Server
		err error
	}
	done := make(chan result, 1)
	go func() {
		srv, err := spawners.StartAndWait(context.Background(), s, req, nil)
		done <- result{srv, err}
	}()
	var launched *spawners.Server
	select {
	case launched = <-rec.launched:
	case r := <-done:
		t.Fatalf("Start returned (%v, %v) before reporting the launch", r.srv, r.err)
	case <-time.After(20 * time.Second):
		t.Fatal("no launch reported")
	}
	pid := statePID(t, launched.State)
	t.Cleanup(func() { _ = s.Stop(context.Background(), launched.State) })
	if running, err := s.Poll(context.Background(), launched.State); err != nil || !running {
		t.Fatalf("Poll of the launched state = %v, %v; want running", running, err)
	}
	if resp, err := http.Get(launched.URL + req.ServicePrefix); err == nil {
		resp.Body.Close()
		t.Fatalf("the server answered (%d) before its gate opened: the report came too late to test", resp.StatusCode)
	}
	select {
	case r := <-done:
		t.Fatalf("Start returned (%v, %v) before the server answered", r.srv, r.err)
	default:
	}
	if err := os.WriteFile(gate, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	var r result
	select {
	case r = <-done:
	case <-time.After(20 * time.Second):
		t.Fatal("Start did not return after the server began to listen")
	}
	if r.err != nil {
		t.Fatalf("Start: %v", r.err)
	}
	if r.srv.URL != launched.URL || string(r.srv.State) != string(launched.State) {
		t.Fatalf("Start returned %s %s, launched %s %s", r.srv.URL, r.srv.State, launched.URL, launched.State)
	}
	if st := getStatus(t, r.srv, req.ServicePrefix); st.PID != pid {
		t.Fatalf("the answering server is pid %d, the launched one %d", st.PID, pid)
	}
	if n := len(rec.all()); n != 1 {
		t.Fatalf("%d launch reports, want 1", n)
	}
}

// TestLaunchedErrorStopsServer: when the hub cannot record the launch, Start fails with its error
// and leaves no process behind.
func TestLaunchedErrorStopsServer(t *testing.T) {
	gate := filepath.Join(t.TempDir(), "gate") // never created: the server would never answer
	s := newSpawner(t, func(s *Spawner) { s.Args = []string{"-wait-file=" + gate} })
	req := newRequest(t, "hank")
	errStore := errors.New("store is read-only")
	rec := newLaunchRecorder(errStore)
	req.Launched = rec.report
	_, err := spawners.StartAndWait(context.Background(), s, req, nil)
	if !errors.Is(err, errStore) {
		t.Fatalf("Start = %v, want the Launched error", err)
	}
	servers := rec.all()
	if len(servers) != 1 {
		t.Fatalf("%d launch reports, want 1", len(servers))
	}
	waitGone(t, statePID(t, servers[0].State), 10*time.Second)
	requireNoTestServers(t)
}

// TestLaunchedAgainOnPortRetry: a start that launches a second process (the first lost its port)
// reports each, and the last report is the server Start returns.
func TestLaunchedAgainOnPortRetry(t *testing.T) {
	marker := filepath.Join(t.TempDir(), "marker")
	s := newSpawner(t, func(s *Spawner) { s.Args = []string{"-addr-in-use-once=" + marker} })
	req := newRequest(t, "ivan")
	rec := newLaunchRecorder(nil)
	req.Launched = rec.report
	srv, _ := start(t, s, req)
	servers := rec.all()
	if len(servers) != 2 {
		t.Fatalf("%d launch reports, want 2 (one per process)", len(servers))
	}
	if last := servers[1]; last.URL != srv.URL || string(last.State) != string(srv.State) {
		t.Fatalf("last report %s %s, Start returned %s %s", last.URL, last.State, srv.URL, srv.State)
	}
	if statePID(t, servers[0].State) == statePID(t, srv.State) {
		t.Fatal("both reports name the same process")
	}
	getStatus(t, srv, req.ServicePrefix)
}
