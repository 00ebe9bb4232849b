package web

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"

	"github.com/caddyhub/caddyhub/hubapp/store"
	"github.com/caddyhub/caddyhub/spawners"
)

// gatedSpawner starts "servers" that are an httptest server, once the test opens the gate.
type gatedSpawner struct {
	opts    spawners.Options
	gate    chan struct{}
	backend string
}

func (g *gatedSpawner) Start(ctx context.Context, req *spawners.StartRequest, progress func(spawners.Event)) (*spawners.Server, error) {
	progress(spawners.Event{Progress: 40, Message: "waiting for the gate"})
	select {
	case <-g.gate:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	return &spawners.Server{URL: g.backend, State: json.RawMessage(`{}`)}, nil
}
func (g *gatedSpawner) Poll(context.Context, json.RawMessage) (bool, error) { return true, nil }
func (g *gatedSpawner) Stop(context.Context, json.RawMessage) error         { return nil }
func (g *gatedSpawner) Common() *spawners.Options                           { return &g.opts }

// TestWebSpawnFlow walks the pages a browser sees from login to a running server and back, with
// the spawn helper's startServer and progress stream behind them: the spawn form, the pending page
// and its EventSource (which needs the page's _xsrf), the redirect when ready, and the home page's
// stop call (which needs the X-XSRFToken header).
func TestWebSpawnFlow(t *testing.T) {
	old := slowSpawnTimeout
	slowSpawnTimeout = 10 * time.Millisecond
	t.Cleanup(func() { slowSpawnTimeout = old })
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	t.Cleanup(backend.Close)
	sp := &gatedSpawner{gate: make(chan struct{}), backend: backend.URL}
	sp.opts.StartTimeout = caddy.Duration(10 * time.Second)
	sp.opts.HTTPTimeout = caddy.Duration(10 * time.Second)
	sp.opts.PollInterval = caddy.Duration(time.Hour)
	wh := newWebHub(t, false, func(a *testApp) {
		a.spawner = sp
		a.DataDir = t.TempDir()
		a.HubAPI = "127.0.0.1:8081"
		a.ConcurrentSpawnLimit = 10
	})
	t.Cleanup(func() { wh.h.stopSpawn(false) })
	c := wh.client(t)

	if r := wh.login(t, c, "alice", nil); r.header.Get("Location") != "/hub/spawn" {
		t.Fatalf("after login: %q", r.header.Get("Location"))
	}
	// Cross-site, the spawn page shows a start button; its form starts the server (same-site GETs
	// start it directly: TestSpawnGet).
	page := wh.do(t, c, "GET", "/hub/spawn", nil, crossSite...)
	tok := xsrfOf(t, page.body)
	r := wh.do(t, c, "POST", "/hub/spawn/alice", url.Values{"_xsrf": {tok}})
	if r.status != http.StatusFound || r.header.Get("Location") != "/hub/spawn-pending/alice" {
		t.Fatalf("start: %d %q %s", r.status, r.header.Get("Location"), r.body)
	}
	if s := wh.h.webServer("alice", ""); s == nil || s.Pending != "spawn" {
		t.Fatalf("server record after start: %+v", s)
	}

	// The pending page and its progress stream.
	pending := wh.do(t, c, "GET", "/hub/spawn-pending/alice", nil)
	if pending.status != http.StatusOK {
		t.Fatalf("pending page: %d", pending.status)
	}
	i := strings.Index(pending.body, "/hub/api/users/alice/server/progress?_xsrf=")
	if i < 0 {
		t.Fatal("no progress URL on the pending page")
	}
	progressURL := pending.body[i : i+strings.IndexByte(pending.body[i:], '"')]
	progressURL = strings.ReplaceAll(progressURL, `\u0026`, "&")
	// EventSource requests are Sec-Fetch-Mode: cors, so they need the token.
	if r := wh.do(t, c, "GET", "/hub/api/users/alice/server/progress", nil, "Sec-Fetch-Mode", "cors"); r.status != http.StatusForbidden {
		t.Fatalf("progress without _xsrf: %d, want 403", r.status)
	}
	req, _ := http.NewRequest("GET", wh.srv.URL+progressURL, nil)
	req.Header.Set("User-Agent", "webtest")
	req.Header.Set("Sec-Fetch-Mode", "cors")
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("progress stream: %d %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	close(sp.gate)
	var ready map[string]any
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		d, ok := strings.CutPrefix(sc.Text(), "data: ")
		if !ok {
			continue
		}
		var ev map[string]any
		if err := json.Unmarshal([]byte(d), &ev); err != nil {
			t.Fatalf("event %q: %v", d, err)
		}
		if ev["ready"] == true {
			ready = ev
			break
		}
	}
	if ready == nil || ready["url"] != "/user/alice/" {
		t.Fatalf("no ready event with the server's URL: %v", ready)
	}

	// Ready: the pages send the browser to the server.
	wh.waitIdle(t, "alice")
	if s := wh.h.webServer("alice", ""); s == nil || !s.Ready {
		t.Fatalf("server not recorded ready: %+v", s)
	}
	if r := wh.do(t, c, "GET", "/hub/spawn-pending/alice", nil); r.status != http.StatusFound || r.header.Get("Location") != "/user/alice/" {
		t.Fatalf("pending page when ready: %d %q", r.status, r.header.Get("Location"))
	}
	if r := wh.do(t, c, "GET", "/hub/", nil); r.header.Get("Location") != "/user/alice/" {
		t.Fatalf("/hub/ when running: %q", r.header.Get("Location"))
	}

	// The home page's stop button: DELETE with the header token.
	home := wh.do(t, c, "GET", "/hub/home", nil)
	if !strings.Contains(home.body, `data-stop="/hub/api/users/alice/server"`) {
		t.Fatal("no stop button")
	}
	hTok := xsrfOf(t, home.body)
	if r := wh.do(t, c, "DELETE", "/hub/api/users/alice/server", nil, "Sec-Fetch-Mode", "cors"); r.status != http.StatusForbidden {
		t.Fatalf("stop without token: %d, want 403", r.status)
	}
	if r := wh.do(t, c, "DELETE", "/hub/api/users/alice/server", nil, "Sec-Fetch-Mode", "cors", "X-XSRFToken", hTok); r.status != http.StatusNoContent && r.status != http.StatusAccepted {
		t.Fatalf("stop with token: %d %s", r.status, r.body)
	}
	wh.waitIdle(t, "alice")
	if s := wh.h.webServer("alice", ""); s != nil && s.Active() {
		t.Fatalf("server still active after stop: %+v", s)
	}
	if r := wh.do(t, c, "GET", "/hub/user/alice/lab", nil); r.status != http.StatusFailedDependency {
		t.Fatalf("stopped server: %d, want 424", r.status)
	}
	var n int
	_ = wh.h.store.View(func(tx *store.Txn) error {
		s, err := tx.ActiveServers()
		n = len(s)
		return err
	})
	if n != 0 {
		t.Fatalf("%d active servers left", n)
	}
}

func (wh *webHub) waitIdle(t *testing.T, user string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := wh.h.waitServerIdle(ctx, user, ""); err != nil {
		t.Fatalf("waiting for %s's server: %v", user, err)
	}
}
