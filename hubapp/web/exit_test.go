package web

import (
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
)

// TestExitLogsServersKeptRunning: at exit without cleanup_servers one log line says how many
// servers keep running and that the next start adopts them; a reload says nothing, and the
// servers are not stopped either way.
func TestExitLogsServersKeptRunning(t *testing.T) {
	core, logs := observer.New(zap.InfoLevel)
	sp := newFakeSpawner()
	h := newTestHub(t, sp, func(a *testApp) { a.logger = zap.New(core) })
	for _, name := range []string{"alice", "bob"} {
		if _, err := h.startServer(mustUser(t, h, name, false), "", nil); err != nil {
			t.Fatal(err)
		}
	}
	kept := func() []observer.LoggedEntry {
		return logs.FilterFieldKey("servers").FilterMessageSnippet("running after this exit").All()
	}
	h.Stop(false, false) // a reload
	if got := kept(); len(got) != 0 {
		t.Fatalf("a reload logged %q", got[0].Message)
	}
	h.Stop(true, false) // Caddy exits, cleanup_servers off
	got := kept()
	if len(got) != 1 {
		t.Fatalf("%d log lines about servers kept running at exit, want 1", len(got))
	}
	want := "2 servers keep running after this exit (cleanup_servers is off); the next start adopts them"
	if got[0].Message != want || got[0].ContextMap()["servers"] != int64(2) || got[0].Level != zap.InfoLevel {
		t.Fatalf("log line %v %q %v, want %q", got[0].Level, got[0].Message, got[0].ContextMap(), want)
	}
	if len(sp.stops) != 0 {
		t.Fatalf("servers stopped at exit without cleanup_servers: %v", sp.stops)
	}
}
