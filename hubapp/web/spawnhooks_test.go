package web

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"

	"github.com/caddyhub/caddyhub/auth"
	"github.com/caddyhub/caddyhub/hubapp/store"
	"github.com/caddyhub/caddyhub/spawners"
)

// hooksAuth is an authenticator with spawn hooks that records their calls ("pre:alice").
type hooksAuth struct {
	opts  auth.Options
	mu    sync.Mutex
	calls []string
}

func (a *hooksAuth) Common() *auth.Options { return &a.opts }

func (a *hooksAuth) PreSpawnStart(_ context.Context, name string) error {
	a.record("pre:" + name)
	return nil
}

func (a *hooksAuth) PostSpawnStop(_ context.Context, name string) error {
	a.record("post:" + name)
	return errors.New("hook errors are only logged")
}

func (a *hooksAuth) record(s string) {
	a.mu.Lock()
	a.calls = append(a.calls, s)
	a.mu.Unlock()
}

// take returns the calls so far and forgets them.
func (a *hooksAuth) take() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := a.calls
	a.calls = nil
	return out
}

var (
	_ auth.Authenticator = (*hooksAuth)(nil)
	_ auth.SpawnHooks    = (*hooksAuth)(nil)
)

// TestSpawnHooks: the authenticator's PreSpawnStart runs before every start and PostSpawnStop after
// every stop: through the API, a failed spawn, the culler, deleting a user, the exit with
// cleanup_servers and a server found dead.
func TestSpawnHooks(t *testing.T) {
	ha := &hooksAuth{}
	sp := newFakeSpawner()
	h := newTestHub(t, sp, func(a *testApp) { a.authenticator = ha })
	alice := mustUser(t, h, "alice", false)
	mustUser(t, h, "bob", false)
	mustUser(t, h, "carol", false)
	mustUser(t, h, "root", true)
	admin := userToken(t, h, "root")
	expect := func(what string, want ...string) {
		t.Helper()
		got := ha.take()
		slices.Sort(got)
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Fatalf("%s: hooks %q, want %q", what, got, want)
		}
	}

	// Start and stop through the API.
	if rec := apiDo(t, h, "POST", "/hub/api/users/alice/server", admin, ""); rec.Code != 201 {
		t.Fatalf("start: %d %s", rec.Code, rec.Body)
	}
	expect("start through the API", "pre:alice")
	if rec := apiDo(t, h, "DELETE", "/hub/api/users/alice/server", admin, ""); rec.Code != 204 {
		t.Fatalf("stop: %d %s", rec.Code, rec.Body)
	}
	expect("stop through the API", "post:alice")

	// A failed spawn: pre, then post (JupyterHub stops a failed spawn).
	sp.mu.Lock()
	sp.startFn = func(context.Context, *spawners.StartRequest, func(spawners.Event)) (*spawners.Server, error) {
		return nil, errors.New("no room")
	}
	sp.mu.Unlock()
	if _, err := h.startServer(alice, "", nil); err == nil {
		t.Fatal("start with a failing spawner succeeded")
	}
	waitIdle(t, h, "alice", "")
	expect("failed spawn", "pre:alice", "post:alice")
	sp.mu.Lock()
	sp.startFn = nil
	sp.mu.Unlock()

	// The culler stops an idle server.
	if _, err := h.startServer(alice, "", nil); err != nil {
		t.Fatal(err)
	}
	expect("start", "pre:alice")
	c := h.newCuller(CullerConfig{Timeout: caddy.Duration(time.Hour), Concurrency: 1})
	c.Now = func() time.Time { return time.Now().Add(3 * time.Hour) }
	if n, err := c.CullOnce(context.Background()); err != nil || n != 1 {
		t.Fatalf("cullOnce = %d, %v", n, err)
	}
	waitIdle(t, h, "alice", "")
	expect("culled", "post:alice")

	// Deleting a user stops their server first.
	bob := mustUserGet(t, h, "bob")
	if _, err := h.startServer(bob, "", nil); err != nil {
		t.Fatal(err)
	}
	expect("start", "pre:bob")
	if rec := apiDo(t, h, "DELETE", "/hub/api/users/bob", admin, ""); rec.Code != 204 {
		t.Fatalf("delete bob: %d %s", rec.Code, rec.Body)
	}
	expect("user deleted", "post:bob")

	// A server found dead by the poll.
	if _, err := h.startServer(alice, "", nil); err != nil {
		t.Fatal(err)
	}
	expect("start", "pre:alice")
	sp.mu.Lock()
	sp.alive["alice/"] = false
	sp.mu.Unlock()
	engineOf(h).PollOnce(context.Background())
	expect("found dead", "post:alice")

	// Exit with cleanup_servers stops the rest.
	carol := mustUserGet(t, h, "carol")
	if _, err := h.startServer(carol, "", nil); err != nil {
		t.Fatal(err)
	}
	expect("start", "pre:carol")
	h.stopSpawn(true)
	expect("exit with cleanup_servers", "post:carol")
}

func mustUserGet(t *testing.T, h *Hub, name string) *store.User {
	t.Helper()
	var u *store.User
	if err := h.store.View(func(tx *store.Txn) error { var err error; u, err = tx.User(name); return err }); err != nil {
		t.Fatal(err)
	}
	return u
}
