// Package soak is CaddyHub's soak test: the real caddy binary under sustained mixed load for a
// long time, sampled for growth.
//
// While it runs, users log in (the login form, XSRF included), read and write the REST API (user
// reads and lists, tokens created and deleted), change the proxy API (routes added and deleted),
// call their servers through the edge, keep websockets open to their servers (the kernel-channel
// path /user/<name>/api/kernels/<id>/channels; the servers are the small Go stand-in of
// spawners/spawnertest, which echoes websocket messages, since real Jupyter kernels by the hundred
// do not fit a test machine), and a few users spawn and stop their servers over and over. At 35 %
// of the run the config is reloaded (`caddy reload`), at 55 % caddy is stopped and started again
// on the same data_dir (websockets reconnect; requests during the restart are counted apart).
//
// Every sample records caddy's VmRSS and RssAnon, goroutines (the admin endpoint's pprof), open
// file descriptors, routes in the table (proxy API), the Badger data_dir's size on disk, open
// websockets, requests and errors, p50/p99 latency. Bounds (per caddy process, after a warm-up,
// the median of the first two samples against the median of the last two):
//
//	goroutines ≤ 1.10 × start + 50     file descriptors ≤ 1.10 × start + 30
//	RssAnon    ≤ 1.25 × start + 32 MiB  Badger size     ≤ start + 128 MiB
//
// and: no request fails outside the restart window, and at the end the route table holds exactly
// the running servers' routes (no proxy-API route or stopped server left behind).
//
// `go test ./bench/soak` runs a short version (60 s, 10 users, 40 websockets, 20 requests/s).
// The long run, niced on a shared machine:
//
//	SOAK_DURATION=10m SOAK_USERS=60 SOAK_WEBSOCKETS=1000 SOAK_RATE=200 SOAK_SAMPLE=20s \
//	  CADDYHUB_BIN=/tmp/caddy nice -n 10 go test -count=1 -timeout 0 -v -run TestSoak ./bench/soak
//
// SOAK_CHURN sets the users that spawn and stop over and over (default 2), SOAK_CONCURRENCY the most
// mixed requests in flight at once (default 256). The mixed traffic is open-loop: request i is due
// at i/SOAK_RATE seconds after the start, whatever happened to the ones before it, so a slow answer
// never lowers the rate asked (a request due while every worker is busy is counted as not sent).
// The table of samples is
// printed with -v (t.Log) and in the failure message.
package soak

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/caddyhub/caddyhub/bench/internal/procmem"
	"github.com/caddyhub/caddyhub/internal/buildflags"
	"github.com/caddyhub/caddyhub/spawners/spawnertest"
	"github.com/caddyhub/caddyhub/tests"
)

type config struct {
	duration, sample         time.Duration
	users, websockets, churn int
	rate                     int // mixed requests per second
	warmup                   time.Duration
	reloadAt, restartAt      float64
	wsInterval               time.Duration
	concurrency              int
}

func envInt(t *testing.T, name string, def int) int {
	if s := os.Getenv(name); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 {
			t.Fatalf("%s=%q", name, s)
		}
		return n
	}
	return def
}

func envDuration(t *testing.T, name string, def time.Duration) time.Duration {
	if s := os.Getenv(name); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil || d <= 0 {
			t.Fatalf("%s=%q", name, s)
		}
		return d
	}
	return def
}

type soakHub struct {
	t                               *testing.T
	dir, serverBin                  string
	public, hubAPI, proxyAPI, extra int
	adminToken, proxyToken          string
	inst                            *tests.Instance
}

func (h *soakHub) caddyfile(gen int) string {
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

func (h *soakHub) do(c *http.Client, method, u, token, body string) (int, []byte, error) {
	req, err := http.NewRequest(method, u, strings.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	if token != "" {
		req.Header.Set("Authorization", "token "+token)
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}

func (h *soakHub) api(c *http.Client, method, path, body string) (int, []byte, error) {
	return h.do(c, method, tests.URL(h.public, "/hub/api"+path), h.adminToken, body)
}

// sample is one row of the report.
type sample struct {
	at                       time.Duration
	pid                      int
	rss, anon                int64
	goroutines, fds, routes  int
	badger                   int64
	websockets               int64
	requests, errors, during int64 // in the window; during: failures inside the restart window
	p50, p99                 time.Duration
}

// stats collects request outcomes and latencies between samples.
type stats struct {
	mu         sync.Mutex
	lat        []time.Duration
	reqs, errs int64
	during     int64
	firstErrs  []string
	restarting atomic.Bool
	// reloadUntil (Unix ns): until then a connection reset counts with the restart window's
	// failures: Caddy binds each config generation's listener with SO_REUSEPORT, and the kernel
	// resets the connections still queued on the old socket when it closes; nothing was
	// processed, a client retries (TestReloadUnderLoadE2E counts them the same way).
	reloadUntil atomic.Int64
	totalErrs   atomic.Int64
}

// isReset reports whether x is an error of a connection reset or closed before any answer.
func isReset(x any) bool {
	err, ok := x.(error)
	return ok && (errors.Is(err, syscall.ECONNRESET) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF))
}

func (s *stats) ok(d time.Duration) {
	s.mu.Lock()
	s.reqs++
	s.lat = append(s.lat, d)
	s.mu.Unlock()
}

func (s *stats) fail(format string, a ...any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.reqs++
	if s.restarting.Load() || (time.Now().UnixNano() < s.reloadUntil.Load() && slices.ContainsFunc(a, isReset)) {
		s.during++
		return
	}
	s.errs++
	s.totalErrs.Add(1)
	if len(s.firstErrs) < 10 {
		s.firstErrs = append(s.firstErrs, fmt.Sprintf(format, a...))
	}
}

// window returns and resets the window's figures.
func (s *stats) window() (reqs, errs, during int64, p50, p99 time.Duration) {
	s.mu.Lock()
	lat := s.lat
	reqs, errs, during = s.reqs, s.errs, s.during
	s.lat, s.reqs, s.errs, s.during = nil, 0, 0, 0
	s.mu.Unlock()
	if len(lat) > 0 {
		slices.Sort(lat)
		p50, p99 = lat[len(lat)/2], lat[min(len(lat)-1, len(lat)*99/100)]
	}
	return
}

func TestSoak(t *testing.T) {
	cfg := config{
		duration:   envDuration(t, "SOAK_DURATION", 60*time.Second),
		sample:     envDuration(t, "SOAK_SAMPLE", 3*time.Second),
		users:      envInt(t, "SOAK_USERS", 10),
		websockets: envInt(t, "SOAK_WEBSOCKETS", 40),
		churn:      envInt(t, "SOAK_CHURN", 2),
		rate:       envInt(t, "SOAK_RATE", 20),
		reloadAt:   0.35, restartAt: 0.55,
		wsInterval: 5 * time.Second, concurrency: envInt(t, "SOAK_CONCURRENCY", 256),
	}
	cfg.warmup = max(cfg.sample*2, cfg.duration/12)
	if cfg.users <= cfg.churn {
		t.Fatalf("SOAK_USERS (%d) must exceed SOAK_CHURN (%d)", cfg.users, cfg.churn)
	}
	if os.Getenv("CADDYHUB_BIN") == "" {
		t.Setenv("CADDYHUB_BIN", buildCaddy(t))
	}
	h := &soakHub{t: t, dir: t.TempDir(), serverBin: spawnertest.BuildT(t),
		public: tests.FreePort(t), hubAPI: tests.FreePort(t), proxyAPI: tests.FreePort(t), extra: tests.FreePort(t),
		adminToken: tests.RandomHex(t, 16), proxyToken: tests.RandomHex(t, 16)}
	gen := 0
	h.inst = tests.Start(t, h.dir, h.caddyfile(gen))
	var instPID atomic.Int64
	instPID.Store(int64(h.inst.PID()))
	c := tests.Client()
	c.Timeout = 60 * time.Second

	users := make([]string, cfg.users)
	for i := range users {
		users[i] = fmt.Sprintf("soak%03d", i)
	}
	body, _ := json.Marshal(map[string]any{"usernames": users})
	if code, b, err := h.api(c, "POST", "/users", string(body)); err != nil || code != 201 {
		t.Fatalf("creating users: %d %s %v", code, b, err)
	}
	residents, churners := users[cfg.churn:], users[:cfg.churn]
	pids := &sync.Map{} // every server process seen, to end them at the end
	t.Cleanup(func() {
		pids.Range(func(_, v any) bool {
			if p, err := os.FindProcess(v.(int)); err == nil {
				_ = p.Kill()
			}
			return true
		})
	})
	serverPID := func(c *http.Client, u string) (int, error) {
		code, b, err := h.do(c, "GET", tests.URL(h.public, "/user/"+u+"/status"), "", "")
		var st struct{ PID int }
		if err != nil || code != 200 || json.Unmarshal(b, &st) != nil || st.PID == 0 {
			return 0, fmt.Errorf("GET /user/%s/status: %d %.100s %w", u, code, b, err)
		}
		pids.Store(st.PID, st.PID)
		return st.PID, nil
	}
	startAndWait := func(c *http.Client, u string) error {
		if code, b, err := h.api(c, "POST", "/users/"+u+"/server", ""); err != nil || (code != 201 && code != 202) {
			return fmt.Errorf("starting %s's server: %d %.200s %w", u, code, b, err)
		}
		deadline := time.Now().Add(90 * time.Second)
		for {
			if _, err := serverPID(c, u); err == nil {
				return nil
			} else if time.Now().After(deadline) {
				return err
			}
			time.Sleep(200 * time.Millisecond) // polling a server that is starting
		}
	}
	began := time.Now()
	var wg sync.WaitGroup
	errs := make(chan error, len(residents))
	sem := make(chan struct{}, 8)
	for _, u := range residents {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			if err := startAndWait(c, u); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	t.Logf("%d resident servers running after %s", len(residents), time.Since(began).Round(time.Millisecond))

	st := &stats{}
	var stop atomic.Bool
	var load sync.WaitGroup
	var openWS, wsMsgs, mixedOK atomic.Int64

	// Websockets to the residents' servers, each echoing a message every wsInterval.
	for i := range cfg.websockets {
		load.Add(1)
		go func() {
			defer load.Done()
			dialer := websocket.Dialer{HandshakeTimeout: 30 * time.Second}
			u := residents[i%len(residents)]
			wsURL := fmt.Sprintf("ws://127.0.0.1:%d/user/%s/api/kernels/k%d/channels", h.public, u, i)
			time.Sleep(time.Duration(rand.Int64N(int64(cfg.wsInterval)))) // spread the pings
			for !stop.Load() {
				t0 := time.Now()
				conn, resp, err := dialer.Dial(wsURL, nil)
				if resp != nil && resp.Body != nil {
					resp.Body.Close()
				}
				if err != nil {
					st.fail("websocket dial %s: %v", u, err)
					time.Sleep(time.Second)
					continue
				}
				st.ok(time.Since(t0))
				openWS.Add(1)
				for n := 0; !stop.Load(); n++ {
					msg := fmt.Sprintf("%s %d %d", u, i, n)
					t0 := time.Now()
					_ = conn.NetConn().SetDeadline(time.Now().Add(30 * time.Second))
					if err = conn.WriteMessage(websocket.TextMessage, []byte(msg)); err == nil {
						var got []byte
						if _, got, err = conn.ReadMessage(); err == nil && string(got) != msg {
							err = fmt.Errorf("echo %q, sent %q", got, msg)
						}
					}
					if err != nil {
						st.fail("websocket %s: %v", u, err)
						break
					}
					st.ok(time.Since(t0))
					wsMsgs.Add(1)
					time.Sleep(cfg.wsInterval)
				}
				openWS.Add(-1)
				conn.Close()
			}
		}()
	}

	// Mixed hub traffic at cfg.rate requests per second.
	var owed sync.Map // proxy-API route keys whose DELETE failed
	ops := []func(c *http.Client, i int) error{
		func(c *http.Client, i int) error { // login with the form (XSRF cookie and field)
			jar, _ := cookiejar.New(nil)
			lc := &http.Client{Jar: jar, Timeout: c.Timeout, Transport: c.Transport,
				CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
			code, _, err := h.do(lc, "GET", tests.URL(h.public, "/hub/login"), "", "")
			if err != nil || code != 200 {
				return fmt.Errorf("GET /hub/login: %d %w", code, err)
			}
			var xsrf string
			for _, ck := range jar.Cookies(&url.URL{Scheme: "http", Host: fmt.Sprintf("127.0.0.1:%d", h.public), Path: "/hub/"}) {
				if ck.Name == "_xsrf" {
					xsrf = ck.Value
				}
			}
			form := url.Values{"username": {users[i%len(users)]}, "password": {"x"}, "_xsrf": {xsrf}}
			req, _ := http.NewRequest("POST", tests.URL(h.public, "/hub/login"), strings.NewReader(form.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			resp, err := lc.Do(req)
			if err != nil {
				return err
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusFound {
				return fmt.Errorf("POST /hub/login: %d", resp.StatusCode)
			}
			return nil
		},
		func(c *http.Client, i int) error { // API read
			code, b, err := h.api(c, "GET", "/users/"+users[i%len(users)], "")
			if err != nil || code != 200 {
				return fmt.Errorf("GET user: %d %.100s %w", code, b, err)
			}
			return nil
		},
		func(c *http.Client, i int) error { // API list
			code, b, err := h.api(c, "GET", "/users?limit=50", "")
			if err != nil || code != 200 {
				return fmt.Errorf("GET users: %d %.100s %w", code, b, err)
			}
			return nil
		},
		func(c *http.Client, i int) error { // API write: a token created and deleted
			u := users[i%len(users)]
			code, b, err := h.api(c, "POST", "/users/"+u+"/tokens", `{"note": "soak"}`)
			var tok struct{ ID string }
			if err != nil || code != 201 || json.Unmarshal(b, &tok) != nil {
				return fmt.Errorf("POST token: %d %.100s %w", code, b, err)
			}
			if code, b, err := h.api(c, "DELETE", "/users/"+u+"/tokens/"+tok.ID, ""); err != nil || code != 204 {
				return fmt.Errorf("DELETE token: %d %.100s %w", code, b, err)
			}
			return nil
		},
		func(c *http.Client, i int) error { // proxy API: a route added and deleted
			key := fmt.Sprintf("/soak/route%d", i)
			u := tests.URL(h.proxyAPI, "/api/routes"+key)
			if code, b, err := h.do(c, "POST", u, h.proxyToken, `{"target": "http://127.0.0.1:9"}`); err != nil || code != 201 {
				return fmt.Errorf("POST route: %d %.100s %w", code, b, err)
			}
			if code, b, err := h.do(c, "DELETE", u, h.proxyToken, ""); err != nil || code != 204 {
				// Most likely cut by the restart (then counted with the window's failures): the
				// route is this client's to delete, so it is deleted again before the end check.
				owed.Store(key, true)
				return fmt.Errorf("DELETE route: %d %.100s %w", code, b, err)
			}
			return nil
		},
		func(c *http.Client, i int) error { // a user's server through the edge
			_, err := serverPID(c, residents[i%len(residents)])
			return err
		},
		func(c *http.Client, i int) error { // a user's server through the edge
			_, err := serverPID(c, residents[(i*7)%len(residents)])
			return err
		},
	}
	var dropped atomic.Int64
	load.Add(1)
	go func() {
		defer load.Done()
		// Open loop: request i is due at begin + i/rate. A ticker would drop the ticks a busy
		// generator misses and quietly lower the rate; a schedule sends every request it owes.
		interval := time.Second / time.Duration(max(1, cfg.rate))
		begin := time.Now()
		sem := make(chan struct{}, cfg.concurrency)
		var inflight sync.WaitGroup
		for i := 0; !stop.Load(); i++ {
			if wait := time.Until(begin.Add(time.Duration(i) * interval)); wait > 0 {
				time.Sleep(wait) // pacing the load, not waiting for a result
			}
			select {
			case sem <- struct{}{}:
			default:
				dropped.Add(1) // every worker busy: the hub answers slower than the rate asks
				continue
			}
			inflight.Add(1)
			go func() {
				defer inflight.Done()
				defer func() { <-sem }()
				t0 := time.Now()
				if err := ops[i%len(ops)](c, i); err != nil {
					st.fail("%v", err)
				} else {
					st.ok(time.Since(t0))
					mixedOK.Add(1)
				}
			}()
		}
		inflight.Wait()
	}()

	// Churn: these users spawn, use a websocket, and stop, over and over.
	var spawns atomic.Int64
	for _, u := range churners {
		load.Add(1)
		go func() {
			defer load.Done()
			lc := tests.Client()
			lc.Timeout = 60 * time.Second
			for !stop.Load() {
				t0 := time.Now()
				if err := startAndWait(lc, u); err != nil {
					st.fail("churn: %v", err)
					time.Sleep(time.Second)
					continue
				}
				st.ok(time.Since(t0))
				conn, resp, err := websocket.DefaultDialer.Dial(fmt.Sprintf("ws://127.0.0.1:%d/user/%s/api/kernels/c/channels", h.public, u), nil)
				if resp != nil && resp.Body != nil {
					resp.Body.Close()
				}
				if err == nil {
					_ = conn.NetConn().SetDeadline(time.Now().Add(30 * time.Second))
					if err = conn.WriteMessage(websocket.TextMessage, []byte("x")); err == nil {
						_, _, err = conn.ReadMessage()
					}
					conn.Close()
				}
				if err != nil {
					st.fail("churn websocket %s: %v", u, err)
				}
				if code, b, err := h.api(lc, "DELETE", "/users/"+u+"/server", ""); err != nil || (code != 202 && code != 204) {
					st.fail("churn: stopping %s: %d %.100s %v", u, code, b, err)
					continue
				}
				for !stop.Load() {
					code, b, err := h.api(lc, "GET", "/users/"+u, "")
					var m struct {
						Servers map[string]any `json:"servers"`
						Pending any            `json:"pending"`
					}
					if err == nil && code == 200 && json.Unmarshal(b, &m) == nil && len(m.Servers) == 0 && m.Pending == nil {
						break
					}
					time.Sleep(200 * time.Millisecond) // polling a server that is stopping
				}
				spawns.Add(1)
			}
		}()
	}

	// Sampling, and the reload and the restart, from this goroutine (the harness's Reload and Stop
	// fail the test from here).
	var samples []sample
	var restartSampleIdx int
	take := func() {
		pid := int(instPID.Load())
		m := procmem.Read(pid)
		s := sample{at: time.Since(began).Round(time.Second), pid: pid, rss: m.VmRSS, anon: m.RssAnon,
			goroutines: goroutines(h.inst.Admin()), fds: countFDs(pid), routes: countRoutes(h), badger: dirSize(filepath.Join(h.dir, "data")),
			websockets: openWS.Load()}
		s.requests, s.errors, s.during, s.p50, s.p99 = st.window()
		samples = append(samples, s)
		t.Logf("%s", s.row())
	}
	t.Logf("%s", header)
	start := time.Now()
	reloaded, restarted := false, false
	next := start.Add(cfg.sample)
	for time.Since(start) < cfg.duration {
		time.Sleep(time.Until(next))
		next = next.Add(cfg.sample)
		take()
		el := time.Since(start)
		if !reloaded && el >= time.Duration(float64(cfg.duration)*cfg.reloadAt) {
			reloaded = true
			gen++
			st.reloadUntil.Store(time.Now().Add(time.Hour).UnixNano())
			h.inst.Reload(h.caddyfile(gen))
			st.reloadUntil.Store(time.Now().Add(10 * time.Second).UnixNano()) // the old listener closes after grace_period
			if got := tests.WaitHTTP(t, tests.URL(h.extra, "/"), 200, 30*time.Second); got != fmt.Sprintf("generation %d", gen) {
				t.Fatalf("reload not applied: %q", got)
			}
			t.Logf("reloaded at %s", time.Since(began).Round(time.Second))
		}
		if !restarted && el >= time.Duration(float64(cfg.duration)*cfg.restartAt) {
			restarted = true
			st.restarting.Store(true)
			h.inst.Stop()
			h.inst = tests.Start(t, h.dir, h.caddyfile(gen))
			instPID.Store(int64(h.inst.PID()))
			tests.WaitHTTP(t, tests.URL(h.public, "/hub/api/"), 200, 60*time.Second)
			// Websockets and in-flight requests of the old process fail for a few seconds more.
			restartEnd := time.Now().Add(cfg.wsInterval + 5*time.Second)
			for time.Now().Before(restartEnd) {
				time.Sleep(time.Until(next))
				next = next.Add(cfg.sample)
				take()
			}
			st.restarting.Store(false)
			restartSampleIdx = len(samples)
			t.Logf("restarted at %s (pid %d)", time.Since(began).Round(time.Second), h.inst.PID())
		}
	}
	stop.Store(true)
	load.Wait()
	// A churner stopped mid-cycle may have left its server running or stopping: stop it and wait.
	for _, u := range churners {
		_, _, _ = h.api(c, "DELETE", "/users/"+u+"/server", "")
		deadline := time.Now().Add(60 * time.Second)
		for {
			code, b, err := h.api(c, "GET", "/users/"+u, "")
			var m struct {
				Servers map[string]any `json:"servers"`
				Pending any            `json:"pending"`
			}
			if err == nil && code == 200 && json.Unmarshal(b, &m) == nil && len(m.Servers) == 0 && m.Pending == nil {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s's server did not stop at the end: %d %.200s %v", u, code, b, err)
			}
			time.Sleep(200 * time.Millisecond) // polling a server that is stopping
		}
	}
	// Routes whose DELETE was cut (by the restart) are deleted now, as a client would retry.
	owed.Range(func(k, _ any) bool {
		if code, b, err := h.do(tests.Client(), "DELETE", tests.URL(h.proxyAPI, "/api/routes"+k.(string)), h.proxyToken, ""); err != nil || (code != 204 && code != 404) {
			t.Errorf("deleting the cut route %s again: %d %.100s %v", k, code, b, err)
		}
		return true
	})
	// At rest: only the residents' routes remain (the churners stopped, every soak route deleted).
	if keys := routeKeys(h); len(keys) != len(residents) {
		t.Errorf("route table holds %d routes at the end, want the %d running servers': %v", len(keys), len(residents), keys)
	}
	report := header + "\n"
	for _, s := range samples {
		report += s.row() + "\n"
	}
	var total, during int64
	for _, s := range samples {
		total += s.requests
		during += s.during
	}
	secs := int64(max(1, cfg.duration/time.Second))
	t.Logf("%d requests (%d/s): %d mixed hub requests answered (%d/s), %d websocket echoes (%d/s); %d spawn-stop cycles; %d failures inside the restart and reload windows, %d errors; %d mixed requests not sent (all %d workers busy)",
		total, total/secs, mixedOK.Load(), mixedOK.Load()/secs, wsMsgs.Load(), wsMsgs.Load()/secs, spawns.Load(), during, st.totalErrs.Load(), dropped.Load(), cfg.concurrency)
	if n := st.totalErrs.Load(); n > 0 {
		t.Errorf("%d requests failed outside the restart window, e.g.:\n%s", n, strings.Join(st.firstErrs, "\n"))
	}
	// Growth bounds, per caddy process, after the warm-up.
	warm := int(cfg.warmup / cfg.sample)
	segments := [][]sample{}
	restartIdx := slices.IndexFunc(samples, func(s sample) bool { return s.pid != samples[0].pid })
	if restartIdx < 0 {
		restartIdx = len(samples)
	}
	segments = append(segments, samples[min(warm, restartIdx):restartIdx])
	if restartSampleIdx > 0 {
		// The restart window (at least 10 s of the new process) was its warm-up.
		segments = append(segments, samples[restartSampleIdx:])
	}
	for i, seg := range segments {
		if len(seg) < 4 {
			t.Logf("segment %d: %d samples after warm-up, too few to judge growth", i+1, len(seg))
			continue
		}
		first, last := seg[:2], seg[len(seg)-2:]
		med := func(ss []sample, f func(sample) float64) float64 { return (f(ss[0]) + f(ss[1])) / 2 }
		for _, b := range []struct {
			name         string
			f            func(sample) float64
			factor, plus float64
		}{
			{"goroutines", func(s sample) float64 { return float64(s.goroutines) }, 1.10, 50},
			{"file descriptors", func(s sample) float64 { return float64(s.fds) }, 1.10, 30},
			{"RssAnon (MiB)", func(s sample) float64 { return float64(s.anon) / (1 << 20) }, 1.25, 32},
			{"Badger size (MiB)", func(s sample) float64 { return float64(s.badger) / (1 << 20) }, 1, 128},
		} {
			a, z := med(first, b.f), med(last, b.f)
			if z > b.factor*a+b.plus {
				t.Errorf("segment %d (pid %d): %s grew from %.1f to %.1f, beyond %.2f × start + %.0f", i+1, seg[0].pid, b.name, a, z, b.factor, b.plus)
			}
		}
	}
	if t.Failed() {
		t.Logf("samples:\n%s", report)
	}
}

const header = "| t | pid | VmRSS MiB | RssAnon MiB | goroutines | fds | routes | Badger MiB | websockets | requests | errors | restart/reload-window failures | p50 ms | p99 ms |\n" +
	"|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"

func (s sample) row() string {
	mib := func(n int64) string { return fmt.Sprintf("%.1f", float64(n)/(1<<20)) }
	ms := func(d time.Duration) string { return fmt.Sprintf("%.1f", float64(d)/float64(time.Millisecond)) }
	return fmt.Sprintf("| %s | %d | %s | %s | %d | %d | %d | %s | %d | %d | %d | %d | %s | %s |", s.at, s.pid, mib(s.rss), mib(s.anon),
		s.goroutines, s.fds, s.routes, mib(s.badger), s.websockets, s.requests, s.errors, s.during, ms(s.p50), ms(s.p99))
}

// goroutines reads the goroutine count from the admin endpoint's pprof ("goroutine profile: total N").
func goroutines(admin string) int {
	resp, err := http.Get("http://" + admin + "/debug/pprof/goroutine?debug=1")
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	line, _ := bufio.NewReader(resp.Body).ReadString('\n')
	n, err := strconv.Atoi(strings.TrimSpace(strings.TrimPrefix(line, "goroutine profile: total")))
	if err != nil {
		return -1
	}
	return n
}

func countFDs(pid int) int {
	ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		return -1
	}
	return len(ents)
}

func countRoutes(h *soakHub) int {
	keys := routeKeys(h)
	if keys == nil {
		return -1
	}
	return len(keys)
}

// routeKeys lists the proxy API's route keys, sorted; nil when the API does not answer.
func routeKeys(h *soakHub) []string {
	code, b, err := h.do(tests.Client(), "GET", tests.URL(h.proxyAPI, "/api/routes"), h.proxyToken, "")
	var m map[string]any
	if err != nil || code != 200 || json.Unmarshal(b, &m) != nil {
		return nil
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// dirSize is the disk usage (allocated blocks) of the files under dir.
func dirSize(dir string) int64 {
	var n int64
	_ = filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return nil
		}
		if info, err := d.Info(); err == nil {
			if st, ok := info.Sys().(*syscall.Stat_t); ok {
				n += st.Blocks * 512 // Badger's files are sparse: count what is allocated
			} else {
				n += info.Size()
			}
		}
		return nil
	})
	return n
}

// buildCaddy builds ./cmd/caddy from the repository root into a temporary directory.
func buildCaddy(t *testing.T) string {
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "caddy")
	cmd := exec.Command("go", "build", "-tags", buildflags.Tags, "-o", out, "./cmd/caddy")
	cmd.Dir = root
	var msg bytes.Buffer
	cmd.Stdout, cmd.Stderr = &msg, &msg
	if err := cmd.Run(); err != nil {
		t.Fatalf("go build ./cmd/caddy: %v\n%s", err, msg.String())
	}
	return out
}
