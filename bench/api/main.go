// Command api benchmarks CaddyHub's REST API side by side with JupyterHub 3.0 (sqlite, its own
// configurable-http-proxy), both with the dummy authenticator (issue #4).
//
// Run it from the repository root:
//
//	go run ./bench/api [-caddy /tmp/bench-caddy] [-users 10000] [-out bench/api/RESULTS.md]
//
// For each hub: create -users users through POST /hub/api/users (batches of 500), then, against the
// hub's own port (no proxy in between):
//   - GET /hub/api/users?limit=200 (legacy list), with the pagination header at offset 0 and at a
//     deep offset, and ?state=ready: -n sequential requests each, p50 and p99;
//   - GET /hub/api/users/<random user> from -clients concurrent clients for -duration: requests/s,
//     p50, p99.
//
// The report (Markdown) goes to stdout and to -out.
package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/caddyhub/caddyhub/internal/buildflags"

	"github.com/caddyhub/caddyhub/internal/testport"
)

const adminToken = "0123456789abcdef0123456789abcdef"

var (
	caddyFlag    = flag.String("caddy", "", "our caddy binary (default: go build ./cmd/caddy into a temporary directory)")
	jhFlag       = flag.String("jupyterhub", "/usr/bin/jupyterhub", "JupyterHub 3.0 command")
	usersFlag    = flag.Int("users", 10000, "users to create")
	nFlag        = flag.Int("n", 100, "sequential requests per listing measurement")
	clientsFlag  = flag.Int("clients", 200, "concurrent clients for GET /users/<name>")
	durationFlag = flag.Duration("duration", 10*time.Second, "length of the concurrent measurement")
	outFlag      = flag.String("out", "bench/api/RESULTS.md", "also write the report here (empty: stdout only)")
)

type hub struct {
	name string
	api  string // http://127.0.0.1:port/hub/api of the hub itself
	cmd  *exec.Cmd
	log  *bytes.Buffer
}

func freePort() int {
	p, err := testport.Next()
	if err != nil {
		log.Fatal(err)
	}
	return p
}

var client = &http.Client{Transport: &http.Transport{Proxy: nil, MaxIdleConnsPerHost: 1000}, Timeout: 15 * time.Minute}

func call(method, url string, body any, header map[string]string) (int, []byte, error) {
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Authorization", "token "+adminToken)
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}

func start(name, dir string, env []string, bin string, args ...string) (*hub, error) {
	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	var buf bytes.Buffer
	cmd.Stdout, cmd.Stderr = &buf, &buf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	return &hub{name: name, cmd: cmd, log: &buf}, nil
}

func (h *hub) stop() {
	_ = syscall.Kill(-h.cmd.Process.Pid, syscall.SIGTERM)
	done := make(chan struct{})
	go func() { _ = h.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		_ = syscall.Kill(-h.cmd.Process.Pid, syscall.SIGKILL)
		<-done
	}
}

func (h *hub) waitUp() error {
	deadline := time.Now().Add(120 * time.Second)
	for time.Now().Before(deadline) {
		if code, _, err := call("GET", h.api+"/users?limit=1", nil, nil); err == nil && code == 200 {
			return nil
		}
		time.Sleep(200 * time.Millisecond)
	}
	return fmt.Errorf("%s did not come up:\n%s", h.name, h.log.String())
}

func startOurs(bin, dir string) (*hub, error) {
	hubAPI, papi, admin, pub := freePort(), freePort(), freePort(), freePort()
	cf := fmt.Sprintf(`{
	admin 127.0.0.1:%d
	persist_config off
	jupyterhub {
		data_dir %s/data
		hub_api 127.0.0.1:%d
		proxy_api 127.0.0.1:%d
		cookie_secret_file %s/cookie_secret
		authenticator dummy
		spawner simple {
			cmd /bin/false
		}
		service bench {
			api_token %s
			admin
		}
	}
}
http://127.0.0.1:%d {
	jupyterhub
}
`, admin, dir, hubAPI, papi, dir, adminToken, pub)
	if err := os.WriteFile(filepath.Join(dir, "Caddyfile"), []byte(cf), 0o600); err != nil {
		return nil, err
	}
	h, err := start("CaddyHub", dir, []string{"HOME=" + dir, "XDG_DATA_HOME=" + dir, "XDG_CONFIG_HOME=" + dir}, bin, "run", "--config", filepath.Join(dir, "Caddyfile"), "--adapter", "caddyfile")
	if err != nil {
		return nil, err
	}
	h.api = fmt.Sprintf("http://127.0.0.1:%d/hub/api", hubAPI)
	return h, h.waitUp()
}

func startJupyterHub(dir string) (*hub, error) {
	pub, hubPort, papi := freePort(), freePort(), freePort()
	cfg := fmt.Sprintf(`c = get_config()  # noqa
c.JupyterHub.bind_url = "http://127.0.0.1:%d/"
c.JupyterHub.hub_bind_url = "http://127.0.0.1:%d"
c.ConfigurableHTTPProxy.api_url = "http://127.0.0.1:%d"
c.ConfigurableHTTPProxy.pid_file = %q
c.JupyterHub.db_url = "sqlite:///%s/jupyterhub.sqlite"
c.JupyterHub.cookie_secret_file = "%s/cookie_secret"
c.JupyterHub.pid_file = "%s/jupyterhub.pid"
c.JupyterHub.authenticator_class = "dummy"
c.JupyterHub.services = [{"name": "bench", "api_token": %q, "admin": True}]
`, pub, hubPort, papi, filepath.Join(dir, "proxy.pid"), dir, dir, dir, adminToken)
	if err := os.WriteFile(filepath.Join(dir, "jupyterhub_config.py"), []byte(cfg), 0o600); err != nil {
		return nil, err
	}
	h, err := start("JupyterHub 3.0", dir, []string{"NODE_PATH=/usr/share/nodejs", "HOME=" + dir, "CONFIGPROXY_AUTH_TOKEN=bench-proxy-token"}, *jhFlag, "-f", filepath.Join(dir, "jupyterhub_config.py"))
	if err != nil {
		return nil, err
	}
	h.api = fmt.Sprintf("http://127.0.0.1:%d/hub/api", hubPort)
	return h, h.waitUp()
}

type result struct {
	hub                string
	create             time.Duration
	rows               []row
	rps, cp50, cp99    float64
	concurrentRequests int
	errors             int
}

type row struct {
	name     string
	p50, p99 float64 // ms
	items    int
}

func pct(d []time.Duration, p int) float64 {
	if len(d) == 0 {
		return 0
	}
	slices.Sort(d)
	return float64(d[min(len(d)-1, len(d)*p/100)].Microseconds()) / 1000
}

func measure(h *hub, r *result) error {
	names := make([]string, *usersFlag)
	for i := range names {
		names[i] = fmt.Sprintf("user%05d", i)
	}
	t0 := time.Now()
	for i := 0; i < len(names); i += 500 {
		code, b, err := call("POST", h.api+"/users", map[string]any{"usernames": names[i:min(i+500, len(names))]}, nil)
		if err != nil || code != 201 {
			return fmt.Errorf("%s: creating users: %d %v %.200s", h.name, code, err, b)
		}
		if (i/500)%4 == 3 {
			log.Printf("%s: %d users after %s", h.name, i+500, time.Since(t0).Round(time.Second))
		}
	}
	r.create = time.Since(t0)
	pag := map[string]string{"Accept": "application/jupyterhub-pagination+json"}
	for _, m := range []struct {
		name, path string
		header     map[string]string
	}{
		{"GET /users?limit=200 (legacy list)", "/users?limit=200", nil},
		{"GET /users?limit=200 (paginated)", "/users?limit=200", pag},
		{fmt.Sprintf("GET /users?limit=200&offset=%d (paginated)", *usersFlag-300), fmt.Sprintf("/users?limit=200&offset=%d", *usersFlag-300), pag},
		{"GET /users?state=ready (no servers)", "/users?state=ready", pag},
		{"GET /users/<name>", "/users/user00042", nil},
	} {
		var d []time.Duration
		items := 0
		for range *nFlag {
			t := time.Now()
			code, b, err := call("GET", h.api+m.path, nil, m.header)
			if err != nil || code != 200 {
				return fmt.Errorf("%s %s: %d %v", h.name, m.path, code, err)
			}
			d = append(d, time.Since(t))
			var list []any
			var env struct{ Items *[]any }
			switch {
			case json.Unmarshal(b, &list) == nil:
				items = len(list)
			case json.Unmarshal(b, &env) == nil && env.Items != nil:
				items = len(*env.Items)
			default:
				items = 1 // one model
			}
		}
		r.rows = append(r.rows, row{m.name, pct(d, 50), pct(d, 99), items})
	}
	// Concurrent clients on GET /users/<name>.
	var (
		mu   sync.Mutex
		all  []time.Duration
		errs int
		wg   sync.WaitGroup
	)
	stop := time.Now().Add(*durationFlag)
	for range *clientsFlag {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var local []time.Duration
			bad := 0
			for time.Now().Before(stop) {
				t := time.Now()
				code, _, err := call("GET", fmt.Sprintf("%s/users/user%05d", h.api, rand.IntN(*usersFlag)), nil, nil)
				if err != nil || code != 200 {
					bad++
					continue
				}
				local = append(local, time.Since(t))
			}
			mu.Lock()
			all = append(all, local...)
			errs += bad
			mu.Unlock()
		}()
	}
	wg.Wait()
	r.concurrentRequests, r.errors = len(all), errs
	r.rps = float64(len(all)) / durationFlag.Seconds()
	r.cp50, r.cp99 = pct(all, 50), pct(all, 99)
	return nil
}

func main() {
	log.SetFlags(log.Ltime)
	flag.Parse()
	tmp, err := os.MkdirTemp("", "bench-api-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(tmp)
	bin := *caddyFlag
	if bin == "" {
		bin = filepath.Join(tmp, "caddy")
		log.Printf("building caddy")
		if out, err := exec.Command("go", "build", "-tags", buildflags.Tags, "-o", bin, "./cmd/caddy").CombinedOutput(); err != nil {
			log.Fatalf("go build: %v\n%s", err, out)
		}
	}
	var results []*result
	for _, which := range []string{"ours", "jupyterhub"} {
		dir := filepath.Join(tmp, which)
		if err := os.MkdirAll(dir, 0o700); err != nil {
			log.Fatal(err)
		}
		var h *hub
		if which == "ours" {
			h, err = startOurs(bin, dir)
		} else {
			h, err = startJupyterHub(dir)
		}
		if err != nil {
			log.Fatal(err)
		}
		log.Printf("%s up; creating %d users and measuring", h.name, *usersFlag)
		r := &result{hub: h.name}
		err = measure(h, r)
		h.stop()
		if err != nil {
			log.Fatal(err)
		}
		results = append(results, r)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "# REST API: CaddyHub vs JupyterHub 3.0\n\n")
	fmt.Fprintf(&b, "`go run ./bench/api -users %d -n %d -clients %d -duration %s` on %s, %s. Requests go to each hub's own port (no proxy).\n\n",
		*usersFlag, *nFlag, *clientsFlag, *durationFlag, time.Now().UTC().Format("2006-01-02"), machine())
	fmt.Fprintf(&b, "| measurement | %s | %s |\n|---|---|---|\n", results[0].hub, results[1].hub)
	fmt.Fprintf(&b, "| create %d users (POST /users, batches of 500) | %.1f s | %.1f s |\n", *usersFlag, results[0].create.Seconds(), results[1].create.Seconds())
	for i := range results[0].rows {
		a, j := results[0].rows[i], results[1].rows[i]
		fmt.Fprintf(&b, "| %s: p50 / p99 (items) | %.1f / %.1f ms (%d) | %.1f / %.1f ms (%d) |\n", a.name, a.p50, a.p99, a.items, j.p50, j.p99, j.items)
	}
	fmt.Fprintf(&b, "| GET /users/<name>, %d clients: requests/s | %.0f | %.0f |\n", *clientsFlag, results[0].rps, results[1].rps)
	fmt.Fprintf(&b, "| … p50 / p99 | %.1f / %.1f ms | %.1f / %.1f ms |\n", results[0].cp50, results[0].cp99, results[1].cp50, results[1].cp99)
	fmt.Fprintf(&b, "| … failed requests | %d | %d |\n", results[0].errors, results[1].errors)
	fmt.Print(b.String())
	if *outFlag != "" {
		if err := os.WriteFile(*outFlag, []byte(b.String()), 0o644); err != nil {
			log.Fatal(err)
		}
	}
}

func machine() string {
	n := 0
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		n = strings.Count(string(b), "processor\t:")
	}
	return fmt.Sprintf("%d CPUs (shared with other work)", n)
}
