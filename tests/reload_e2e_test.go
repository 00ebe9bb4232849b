package tests

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/caddyhub/caddyhub/spawners/spawnertest"
)

// reloadServers is how many users' servers TestReloadUnderLoadE2E runs (RELOAD_E2E_SERVERS
// overrides it, e.g. for a slow machine).
func reloadServers(t *testing.T) int {
	if s := os.Getenv("RELOAD_E2E_SERVERS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 2 {
			t.Fatalf("RELOAD_E2E_SERVERS=%q", s)
		}
		return n
	}
	return 100
}

type reloadHub struct {
	t                               *testing.T
	dir, serverBin                  string
	public, hubAPI, proxyAPI, extra int
	adminToken, proxyToken          string
}

// caddyfile is the hub's config; gen changes only what a reload must visibly apply (an extra
// site's answer).
func (h *reloadHub) caddyfile(gen int) string {
	return fmt.Sprintf(`{
	grace_period 5s
	jupyterhub {
		data_dir %[1]s/data
		proxy_api 127.0.0.1:%[3]d
		proxy_auth_token %[9]s
		hub_api 127.0.0.1:%[4]d
		cookie_secret_file %[1]s/cookie_secret
		authenticator dummy
		spawner simple {
			cmd %[6]s
			start_timeout 60s
			http_timeout 60s
		}
		api_token %[5]s admin
		role admin {
			users admin
		}
	}
}

:%[2]d {
	bind 127.0.0.1
	jupyterhub
}

:%[7]d {
	bind 127.0.0.1
	respond "generation %[8]d"
}
`, h.dir, h.public, h.proxyAPI, h.hubAPI, h.adminToken, h.serverBin, h.extra, gen, h.proxyToken)
}

// api sends a REST API request with the admin token; transport errors come back as errors.
func (h *reloadHub) api(c *http.Client, method, path, body string) (int, []byte, error) {
	req, err := http.NewRequest(method, URL(h.public, "/hub/api"+path), strings.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Authorization", "token "+h.adminToken)
	resp, err := c.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}

// serverPID asks a user's server, through the edge, for its process id.
func (h *reloadHub) serverPID(c *http.Client, user string) (int, error) {
	resp, err := c.Get(URL(h.public, "/user/"+user+"/status"))
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	var st struct{ PID int }
	if b, _ := io.ReadAll(resp.Body); resp.StatusCode != 200 || json.Unmarshal(b, &st) != nil || st.PID == 0 {
		return 0, fmt.Errorf("GET /user/%s/status: %d %.200s", user, resp.StatusCode, b)
	}
	return st.PID, nil
}

// TestReloadUnderLoadE2E: `caddy reload` of a hub with 100 running servers (the simple spawner
// and a small Go stand-in server), open websockets through the edge and API traffic (users and
// tokens created through the REST API, routes through the proxy API, requests to the servers)
// loses no server (same process behind every route), no route, no websocket and no
// acknowledged write, and no request fails.
func TestReloadUnderLoadE2E(t *testing.T) {
	n := reloadServers(t)
	h := &reloadHub{t: t, dir: t.TempDir(), serverBin: spawnertest.BuildT(t),
		public: FreePort(t), hubAPI: FreePort(t), proxyAPI: FreePort(t), extra: FreePort(t),
		adminToken: RandomHex(t, 16), proxyToken: RandomHex(t, 16)}
	inst := Start(t, h.dir, h.caddyfile(0))
	t.Cleanup(func() { endHubProcesses(t, h.hubAPI) })
	c := Client()
	c.Timeout = 60 * time.Second

	users := make([]string, n)
	for i := range users {
		users[i] = fmt.Sprintf("r%03d", i)
	}
	body, _ := json.Marshal(map[string]any{"usernames": users})
	if code, b, err := h.api(c, "POST", "/users", string(body)); err != nil || code != 201 {
		t.Fatalf("creating %d users: %d %s %v", n, code, b, err)
	}
	began := time.Now()
	var wg sync.WaitGroup
	errs := make(chan error, n)
	sem := make(chan struct{}, 8)
	for _, u := range users {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			if code, b, err := h.api(c, "POST", "/users/"+u+"/server", ""); err != nil || (code != 201 && code != 202) {
				errs <- fmt.Errorf("starting %s's server: %d %s %v", u, code, b, err)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	pids := map[string]int{}
	waitFor(t, fmt.Sprintf("%d servers to answer through the edge", n), 180*time.Second, func() bool {
		for _, u := range users {
			if pids[u] != 0 {
				continue
			}
			pid, err := h.serverPID(c, u)
			if err != nil {
				return false
			}
			pids[u] = pid
		}
		return true
	})
	t.Logf("%d servers running after %s", n, time.Since(began).Round(time.Millisecond))

	// Websockets to a fifth of the servers (at least 2), each echoing before, during and after.
	var conns []*websocket.Conn
	dialer := websocket.Dialer{HandshakeTimeout: 30 * time.Second}
	for i := 0; i < n; i += 5 {
		conn, resp, err := dialer.Dial(fmt.Sprintf("ws://127.0.0.1:%d/user/%s/api/kernels/k/channels", h.public, users[i]), nil)
		if err != nil {
			t.Fatalf("websocket to %s: %v (%v)", users[i], err, resp)
		}
		defer conn.Close()
		conns = append(conns, conn)
	}
	echoAll := func(when string) {
		t.Helper()
		for i, conn := range conns {
			msg := fmt.Sprintf("%s %d", when, i)
			_ = conn.SetWriteDeadline(time.Now().Add(20 * time.Second))
			_ = conn.SetReadDeadline(time.Now().Add(20 * time.Second))
			if err := conn.WriteMessage(websocket.TextMessage, []byte(msg)); err != nil {
				t.Fatalf("websocket %d %s: write: %v", i, when, err)
			}
			if _, got, err := conn.ReadMessage(); err != nil || string(got) != msg {
				t.Fatalf("websocket %d %s: read %q, %v", i, when, got, err)
			}
		}
	}
	echoAll("before")

	// Load while the reloads run: REST API writes, proxy API writes, requests to the servers.
	var (
		stop                  atomic.Bool
		mu                    sync.Mutex
		ackedUsers, ackedToks []string
		ackedRoutes, failures []string
		served                atomic.Int64
		tokenOf               = map[string]string{}
		load                  sync.WaitGroup
		resets                atomic.Int64
		failf                 = func(format string, a ...any) {
			mu.Lock()
			failures = append(failures, fmt.Sprintf(format, a...))
			mu.Unlock()
		}
		// refused reports whether err is a fresh connection reset before any answer: Caddy binds
		// each config generation's listener with SO_REUSEPORT, and the kernel resets the
		// connections still queued on the old socket when it closes. Nothing was processed (no
		// write acknowledged); a client retries. Counted, not failed; everything else fails.
		refused = func(err error) bool {
			if errors.Is(err, syscall.ECONNRESET) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
				resets.Add(1)
				return true
			}
			return false
		}
	)
	load.Add(3)
	go func() { // users and their tokens, through the REST API
		defer load.Done()
		lc := Client()
		for i := 0; !stop.Load(); i++ {
			u := fmt.Sprintf("live%04d", i)
			code, b, err := h.api(lc, "POST", "/users/"+u, "")
			if refused(err) {
				continue
			}
			if err != nil || code != 201 {
				failf("creating %s: %d %.200s %v", u, code, b, err)
				continue
			}
			mu.Lock()
			ackedUsers = append(ackedUsers, u)
			mu.Unlock()
			code, b, err = h.api(lc, "POST", "/users/"+u+"/tokens", `{}`)
			var tok struct{ Token string }
			if refused(err) {
				continue
			}
			if err != nil || code != 201 || json.Unmarshal(b, &tok) != nil {
				failf("token for %s: %d %.200s %v", u, code, b, err)
				continue
			}
			mu.Lock()
			ackedToks = append(ackedToks, u)
			tokenOf[u] = tok.Token
			mu.Unlock()
		}
	}()
	go func() { // routes, through the proxy API
		defer load.Done()
		lc := Client()
		for i := 0; !stop.Load(); i++ {
			key := fmt.Sprintf("/extra/route%04d", i)
			req, _ := http.NewRequest("POST", URL(h.proxyAPI, "/api/routes"+key), strings.NewReader(`{"target": "http://127.0.0.1:9"}`))
			req.Header.Set("Authorization", "token "+h.proxyToken)
			resp, err := lc.Do(req)
			if refused(err) {
				continue
			}
			if err != nil {
				failf("adding route %s: %v", key, err)
				continue
			}
			resp.Body.Close()
			if resp.StatusCode != 201 {
				failf("adding route %s: %d", key, resp.StatusCode)
				continue
			}
			mu.Lock()
			ackedRoutes = append(ackedRoutes, key)
			mu.Unlock()
		}
	}()
	go func() { // requests to users' servers through the edge
		defer load.Done()
		lc := Client()
		for i := 0; !stop.Load(); i++ {
			u := users[i%n]
			if pid, err := h.serverPID(lc, u); refused(err) {
				continue
			} else if err != nil {
				failf("%v", err)
			} else if pid != pids[u] {
				failf("%s's server answered from pid %d, was %d", u, pid, pids[u])
			} else {
				served.Add(1)
			}
		}
	}()

	const reloads = 5
	for gen := 1; gen <= reloads; gen++ {
		inst.Reload(h.caddyfile(gen))
		if got := WaitHTTP(t, URL(h.extra, "/"), 200, 20*time.Second); got != fmt.Sprintf("generation %d", gen) {
			t.Fatalf("reload %d not applied: extra site says %q", gen, got)
		}
		echoAll(fmt.Sprintf("during reload %d", gen))
	}
	stop.Store(true)
	load.Wait()
	if len(failures) > 0 {
		t.Fatalf("%d requests failed during the reloads, e.g.:\n%s", len(failures), strings.Join(failures[:min(5, len(failures))], "\n"))
	}
	if len(ackedUsers) < 5 || len(ackedRoutes) < 5 || served.Load() < int64(n) {
		t.Fatalf("too little load to mean anything: %d users, %d routes, %d server requests", len(ackedUsers), len(ackedRoutes), served.Load())
	}
	t.Logf("during %d reloads: %d users and %d tokens created, %d routes added, %d requests served by users' servers; %d fresh connections reset by a closing listener",
		reloads, len(ackedUsers), len(ackedToks), len(ackedRoutes), served.Load(), resets.Load())

	echoAll("after")
	for _, u := range users {
		pid, err := h.serverPID(c, u)
		if err != nil || pid != pids[u] {
			t.Fatalf("%s's server after the reloads: pid %d (was %d), %v", u, pid, pids[u], err)
		}
	}
	code, b, err := h.api(c, "GET", "/users?state=ready&limit=1000", "")
	var ready []struct{ Name string }
	if err != nil || code != 200 || json.Unmarshal(b, &ready) != nil || len(ready) != n {
		t.Fatalf("ready servers after the reloads: %d of %d (%d %.300s %v)", len(ready), n, code, b, err)
	}
	for _, u := range ackedUsers {
		if code, _, err := h.api(c, "GET", "/users/"+u, ""); err != nil || code != 200 {
			t.Fatalf("user %s, acknowledged during the reloads, is gone: %d %v", u, code, err)
		}
	}
	for _, u := range ackedToks {
		req, _ := http.NewRequest("GET", URL(h.public, "/hub/api/user"), nil)
		req.Header.Set("Authorization", "token "+tokenOf[u])
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("%s's token, acknowledged during the reloads, answers %d", u, resp.StatusCode)
		}
	}
	for _, key := range ackedRoutes {
		if code, _ := GetJSON(t, URL(h.proxyAPI, "/api/routes"+key), h.proxyToken); code != 200 {
			t.Fatalf("route %s, acknowledged during the reloads, is gone: %d", key, code)
		}
	}
	if _, err := os.Stat(filepath.Join(h.dir, "data")); err != nil {
		t.Fatal(err)
	}
}
