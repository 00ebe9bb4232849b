package tests

// The delay from a spawn request to its first progress event (HUB_ADMIN_BENCH=1; docs/benchmarks.md,
// "First progress event after a spawn request"), against the real binary with 100,000 users in the
// store, 1,000 of them with a running server. Servers are cheap: the simple spawner runs `sleep`, and
// every server's URL is one listener of this test on a fixed port, which answers at once for the
// 1,000 background servers and after a pause for the measured ones, so those stay pending while
// their progress is read. In the same run: the machine's floor, a bare loopback HTTP round trip.

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// measuredPause is how long the shared listener holds back the measured servers' first answer.
const measuredPause = 500 * time.Millisecond

func progressBenchCaddyfile(dir string, public, hubAPI, proxyAPI, serverPort int, token string) string {
	return fmt.Sprintf(`{
	grace_period 2s
	jupyterhub {
		data_dir %[1]s/data
		proxy_api 127.0.0.1:%[3]d
		hub_api 127.0.0.1:%[4]d
		cookie_secret_file %[1]s/cookie_secret
		authenticator dummy {
			password %[7]s
		}
		spawner simple {
			cmd sleep 100000
			port %[5]d
			start_timeout 120s
			http_timeout 60s
			poll_interval 5m
		}
		service bench {
			api_token %[6]s
			admin
		}
		concurrent_spawn_limit -1
	}
}

:%[2]d {
	bind 127.0.0.1
	jupyterhub
}
`, dir, public, proxyAPI, hubAPI, serverPort, token, browserPassword)
}

// hubServerPIDs lists live processes whose environment names our hub API port (every server of
// the hub under test), from one pass over /proc.
func hubServerPIDs(hubAPIPort int) []int {
	api := []byte("JUPYTERHUB_API_URL=http://127.0.0.1:" + strconv.Itoa(hubAPIPort) + "/hub/api\x00")
	entries, _ := os.ReadDir("/proc")
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if env, err := os.ReadFile(filepath.Join("/proc", e.Name(), "environ")); err == nil && bytes.Contains(env, api) {
			pids = append(pids, pid)
		}
	}
	return pids
}

func percentiles(ds []time.Duration) (p50, p95, worst time.Duration) {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2], s[(len(s)*95+99)/100-1], s[len(s)-1]
}

func TestPendingFirstEventSpeed(t *testing.T) {
	if os.Getenv("HUB_ADMIN_BENCH") == "" {
		t.Skip("set HUB_ADMIN_BENCH=1 to measure the delay from a spawn request to its first progress event")
	}
	Require(t, "sleep")
	const users, running, measured = 100_000, 1_000, 50
	dir := t.TempDir()
	public, hubAPI, proxyAPI := FreePort(t), FreePort(t), FreePort(t)
	token := RandomHex(t, 24)

	// Every server's URL: answers at once, or after measuredPause for the measured users (m…).
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/user/m") {
			time.Sleep(measuredPause) // the measured server is slow to answer: its start stays pending
		}
		w.WriteHeader(http.StatusOK)
	})}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })

	// The servers outlive the hub (no cleanup_servers: stopping 1,000 at exit outlasts the harness's
	// stop); they are killed by PID once it has stopped (cleanups run last-registered first).
	t.Cleanup(func() {
		for _, pid := range hubServerPIDs(hubAPI) {
			_ = syscall.Kill(-pid, syscall.SIGKILL)
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	})
	inst := Start(t, dir, progressBenchCaddyfile(dir, public, hubAPI, proxyAPI, ln.Addr().(*net.TCPAddr).Port, token))
	t.Cleanup(func() {
		if inst.Running() {
			inst.Stop()
		}
	})
	base := URL(public, "")
	client := &http.Client{Transport: &http.Transport{Proxy: nil, MaxIdleConnsPerHost: 64}, Timeout: 120 * time.Second}
	call := func(method, path string, body any) (int, []byte, error) {
		var rd io.Reader
		if body != nil {
			b, _ := json.Marshal(body)
			rd = bytes.NewReader(b)
		}
		req, _ := http.NewRequest(method, base+path, rd)
		req.Header.Set("Authorization", "token "+token)
		resp, err := client.Do(req)
		if err != nil {
			return 0, nil, err
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, b, nil
	}

	// The store: 100,000 users, then 1,000 running servers.
	began := time.Now()
	for start := 0; start < users; start += 10_000 {
		names := make([]string, 0, 10_000)
		for i := start; i < start+10_000; i++ {
			names = append(names, fmt.Sprintf("u%06d", i))
		}
		if st, b, err := call("POST", "/hub/api/users", map[string]any{"usernames": names}); err != nil || st != http.StatusCreated {
			t.Fatalf("POST /hub/api/users: %d %v %.200s", st, err, b)
		}
	}
	names := make([]string, measured)
	for i := range names {
		names[i] = fmt.Sprintf("m%03d", i)
	}
	if st, b, err := call("POST", "/hub/api/users", map[string]any{"usernames": names}); err != nil || st != http.StatusCreated {
		t.Fatalf("POST /hub/api/users: %d %v %.200s", st, err, b)
	}
	t.Logf("%d users created in %s", users+measured, time.Since(began).Round(time.Millisecond))
	began = time.Now()
	var wg sync.WaitGroup
	errs := make(chan error, running)
	next := make(chan int)
	for range 16 {
		wg.Go(func() {
			for i := range next {
				u := fmt.Sprintf("u%06d", i*(users/running))
				if st, b, err := call("POST", "/hub/api/users/"+u+"/server", nil); err != nil || st != http.StatusCreated {
					errs <- fmt.Errorf("starting %s: %d %v %.200s", u, st, err, b)
				}
			}
		})
	}
	for i := range running {
		next <- i
	}
	close(next)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	t.Logf("%d servers started in %s", running, time.Since(began).Round(time.Millisecond))

	// The floor: a bare loopback HTTP round trip (the shared listener) and the hub's cheapest answer.
	floor := func(url string) []time.Duration {
		var ds []time.Duration
		for range measured {
			t0 := time.Now()
			resp, err := client.Get(url)
			if err != nil {
				t.Fatal(err)
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			ds = append(ds, time.Since(t0))
		}
		return ds
	}
	bare := floor("http://" + ln.Addr().String() + "/floor")
	hubFloor := floor(base + "/hub/api/")

	// The measured spawns, one after the other: the request is sent, and at once the client asks
	// for the progress stream (again at once while the hub answers 400, not starting: the request
	// may not have reached it yet) and reads it until the first data: line.
	var delays, opened, apiDone []time.Duration
	firsts := map[string]int{}
	retries := 0
	for _, u := range names {
		t0 := time.Now()
		done := make(chan error, 1)
		go func() {
			st, b, err := call("POST", "/hub/api/users/"+u+"/server", nil)
			if err == nil && st != http.StatusCreated && st != http.StatusAccepted {
				err = fmt.Errorf("status %d: %.200s", st, b)
			}
			apiDone = append(apiDone, time.Since(t0)) // read after <-done only
			done <- err
		}()
		var first string
		for first == "" {
			req, _ := http.NewRequest("GET", base+"/hub/api/users/"+u+"/server/progress", nil)
			req.Header.Set("Authorization", "token "+token)
			resp, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode == http.StatusBadRequest {
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				retries++
				if time.Since(t0) > 30*time.Second {
					t.Fatalf("%s: the progress stream never opened", u)
				}
				continue
			}
			if resp.StatusCode != http.StatusOK {
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				t.Fatalf("%s: progress: %d %.200s", u, resp.StatusCode, b)
			}
			opened = append(opened, time.Since(t0))
			sc := bufio.NewScanner(resp.Body)
			for sc.Scan() {
				if data, ok := strings.CutPrefix(sc.Text(), "data:"); ok {
					delays = append(delays, time.Since(t0))
					var ev struct {
						Message string `json:"message"`
					}
					_ = json.Unmarshal([]byte(strings.TrimSpace(data)), &ev)
					first = ev.Message
					break
				}
			}
			resp.Body.Close()
			if first == "" {
				t.Fatalf("%s: the progress stream ended without an event", u)
			}
		}
		firsts[first]++
		if err := <-done; err != nil {
			t.Fatalf("%s: spawn: %v", u, err)
		}
	}
	up, _ := os.ReadFile("/proc/loadavg")
	log := func(what string, ds []time.Duration) {
		p50, p95, worst := percentiles(ds)
		t.Logf("%-46s p50 %7.2f ms  p95 %7.2f ms  worst %7.2f ms  (n=%d)", what, ms(p50), ms(p95), ms(worst), len(ds))
	}
	log("spawn request -> first progress event", delays)
	log("spawn request -> progress stream open (200)", opened)
	log("spawn request -> API answer (server ready)", apiDone)
	log("floor: bare loopback HTTP round trip", bare)
	log("floor: GET /hub/api/ round trip", hubFloor)
	t.Logf("first events: %v; progress requests answered 400 (not starting yet) and retried: %d", firsts, retries)
	t.Logf("store: %d users, %d running servers; load average %s", users+measured, running+measured, strings.TrimSpace(string(up)))
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
