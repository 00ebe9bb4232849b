package tests

// Persistence and lifecycle of the real binary in proxy_only mode (the drop-in
// configurable-http-proxy of issue #2): routes added through the proxy API survive `caddy stop`,
// kill -9 and `caddy reload`, and are back before the first request is served. Reloads are the hard part:
// Caddy starts the new config before it stops the old one (docs/design-notes.md, "State and restarts").

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/caddyhub/caddyhub/spawners/docker/dockertest"
)

func TestMain(m *testing.M) {
	code := m.Run()
	CleanupBuild()
	dockertest.StopAll()
	os.Exit(code)
}

// TestHarness checks the harness itself: start, admin injection, reload, a refused reload, stop,
// start again in the same directory, kill -9.
func TestHarness(t *testing.T) {
	dir := t.TempDir()
	port := FreePort(t)
	inst := Start(t, dir, fmt.Sprintf(":%d {\n\tbind 127.0.0.1\n\trespond \"one\"\n}\n", port))
	if got := WaitHTTP(t, URL(port, "/"), http.StatusOK, StartTimeout); got != "one" {
		t.Fatalf("body %q, want one", got)
	}
	inst.Reload(fmt.Sprintf("{\n\tgrace_period 1s\n}\n:%d {\n\tbind 127.0.0.1\n\trespond \"two\"\n}\n", port))
	if got := WaitHTTP(t, URL(port, "/"), http.StatusOK, StartTimeout); got != "two" {
		t.Fatalf("after reload: body %q, want two", got)
	}
	if err := inst.TryReload(fmt.Sprintf(":%d {\n\tbogus_directive\n}\n", port)); err == nil {
		t.Fatal("reload of a bad Caddyfile succeeded")
	}
	if got := WaitHTTP(t, URL(port, "/"), http.StatusOK, StartTimeout); got != "two" {
		t.Fatalf("after refused reload: body %q, want two", got)
	}
	inst.Stop()
	if inst.Running() {
		t.Fatal("still running after Stop")
	}
	inst2 := Start(t, dir, fmt.Sprintf(":%d {\n\tbind 127.0.0.1\n\trespond \"three\"\n}\n", port))
	if got := WaitHTTP(t, URL(port, "/"), http.StatusOK, StartTimeout); got != "three" {
		t.Fatalf("second instance: body %q, want three", got)
	}
	inst2.Kill9()
	if err := inst2.Wait(0); err == nil || !strings.Contains(err.Error(), "killed") {
		t.Fatalf("exit after Kill9: %v, want killed", err)
	}
}

func TestHarnessAdminAddress(t *testing.T) {
	for _, tc := range []struct {
		name, caddyfile, want string
	}{
		{"no global block", ":80 {\n\tadmin 127.0.0.1:1\n}\n", ""},
		{"global admin", "# c\n{\n\tdebug\n\tadmin 127.0.0.1:5\n}\n:80\n", "127.0.0.1:5"},
		{"global admin with block", "{\n\tadmin 127.0.0.1:6 {\n\t\torigins x\n\t}\n}\n", "127.0.0.1:6"},
		{"admin of a service", "{\n\tjupyterhub {\n\t\tservice s {\n\t\t\tadmin true\n\t\t}\n\t}\n}\n", ""},
		{"after the global block", "{\n\tdebug\n}\n:80 {\n\tadmin x\n}\n", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := globalAdmin(tc.caddyfile); got != tc.want {
				t.Fatalf("globalAdmin = %q, want %q", got, tc.want)
			}
			if tc.want != "" {
				return
			}
			injected := injectAdmin(tc.caddyfile, "127.0.0.1:9")
			if got := globalAdmin(injected); got != "127.0.0.1:9" {
				t.Fatalf("after injectAdmin, globalAdmin = %q in:\n%s", got, injected)
			}
			if strings.Count(injected, "admin 127.0.0.1:9") != 1 {
				t.Fatalf("injected more than once:\n%s", injected)
			}
		})
	}
}

// proxyOnly is one proxy_only CaddyHub: the public edge and the CHP-compatible proxy API.
type proxyOnly struct {
	t      *testing.T
	dir    string
	public int // public port (the `jupyterhub` site)
	api    int // proxy API port
	token  string
	inst   *Instance
}

func newProxyOnly(t *testing.T) *proxyOnly {
	t.Helper()
	return &proxyOnly{t: t, dir: t.TempDir(), public: FreePort(t), api: FreePort(t), token: RandomHex(t, 16)}
}

// caddyfile returns the proxy_only configuration; extraGlobal goes into the jupyterhub
// block and extraSites after the public site.
func (p *proxyOnly) caddyfile(extraGlobal, extraSites string) string {
	return fmt.Sprintf(`{
	grace_period 2s
	jupyterhub {
		proxy_only
		data_dir %s
		proxy_api 127.0.0.1:%d
		proxy_auth_token {env.CONFIGPROXY_AUTH_TOKEN}
%s	}
}

:%d {
	bind 127.0.0.1
	jupyterhub
}
%s`, filepath.Join(p.dir, "data"), p.api, extraGlobal, p.public, extraSites)
}

func (p *proxyOnly) start(caddyfile string) {
	p.t.Helper()
	p.inst = Start(p.t, p.dir, caddyfile, "CONFIGPROXY_AUTH_TOKEN="+p.token)
}

// addRoute POSTs a route like JupyterHub's ConfigurableHTTPProxy.add_route and returns the status
// (0 on a transport error) and any error text.
func (p *proxyOnly) addRoute(client *http.Client, key, target string, data map[string]any) (int, error) {
	body := map[string]any{"target": target}
	for k, v := range data {
		body[k] = v
	}
	b, _ := json.Marshal(body)
	req, _ := http.NewRequest(http.MethodPost, URL(p.api, "/api/routes"+key), strings.NewReader(string(b)))
	req.Header.Set("Authorization", "token "+p.token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	msg, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		return resp.StatusCode, fmt.Errorf("POST /api/routes%s: %d %s", key, resp.StatusCode, msg)
	}
	return resp.StatusCode, nil
}

// routes returns GET /api/routes.
func (p *proxyOnly) routes() map[string]map[string]any {
	p.t.Helper()
	status, body := GetJSON(p.t, URL(p.api, "/api/routes"), p.token)
	if status != http.StatusOK {
		p.t.Fatalf("GET /api/routes: %d %s", status, body)
	}
	var out map[string]map[string]any
	if err := json.Unmarshal(body, &out); err != nil {
		p.t.Fatalf("GET /api/routes: %v: %s", err, body)
	}
	return out
}

// echoBackend is a user server stand-in: it answers "backend <id> <path>" and echoes websockets.
type echoBackend struct {
	id  string
	srv *httptest.Server
}

func newEchoBackend(t testing.TB, id string) *echoBackend {
	t.Helper()
	up := websocket.Upgrader{}
	b := &echoBackend{id: id}
	b.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if websocket.IsWebSocketUpgrade(r) {
			c, err := up.Upgrade(w, r, nil)
			if err != nil {
				return
			}
			defer c.Close()
			for {
				mt, msg, err := c.ReadMessage()
				if err != nil {
					return
				}
				if err := c.WriteMessage(mt, append([]byte(id+":"), msg...)); err != nil {
					return
				}
			}
		}
		fmt.Fprintf(w, "backend %s %s", id, r.URL.Path)
	}))
	t.Cleanup(b.srv.Close)
	return b
}

// lcUserKey is the route key of the i-th test user, as JupyterHub spells user routes.
func lcUserKey(i int) string { return fmt.Sprintf("/user/u%03d", i) }

// addRoutes adds n user routes, 10 at a time like JupyterHub's proxy client, spread over backends.
func (p *proxyOnly) addRoutes(n int, backends []*echoBackend) {
	p.t.Helper()
	var wg sync.WaitGroup
	errs := make(chan error, n)
	sem := make(chan struct{}, 10)
	client := Client()
	for i := range n {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			b := backends[i%len(backends)]
			if _, err := p.addRoute(client, lcUserKey(i), b.srv.URL,
				map[string]any{"jupyterhub": true, "user": fmt.Sprintf("u%03d", i), "server_name": ""}); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		p.t.Fatal(err)
	}
}

// checkRoutes asserts that the API lists the n user routes with their targets and extra data, and
// that each one routes to its backend through the public port.
func (p *proxyOnly) checkRoutes(n int, backends []*echoBackend) {
	p.t.Helper()
	routes := p.routes()
	for i := range n {
		b := backends[i%len(backends)]
		r, ok := routes[lcUserKey(i)]
		if !ok {
			p.t.Fatalf("route %s missing; have %d routes", lcUserKey(i), len(routes))
		}
		if r["target"] != b.srv.URL || r["jupyterhub"] != true || r["user"] != fmt.Sprintf("u%03d", i) {
			p.t.Fatalf("route %s = %v, want target %s with its data", lcUserKey(i), r, b.srv.URL)
		}
		if _, ok := r["last_activity"].(string); !ok {
			p.t.Fatalf("route %s has no last_activity: %v", lcUserKey(i), r)
		}
		path := lcUserKey(i) + "/api/status"
		status, body := GetJSON(p.t, URL(p.public, path), "")
		if want := "backend " + b.id + " " + path; status != http.StatusOK || string(body) != want {
			p.t.Fatalf("GET %s through the edge: %d %q, want 200 %q", path, status, body, want)
		}
	}
}

// firstResponse polls url from now on until some server answers it, and delivers that first
// response (status and body). Start it before the server starts to see what the very first
// request after the listener accepts gets.
func firstResponse(url string, timeout time.Duration) <-chan string {
	ch := make(chan string, 1)
	go func() {
		c := Client()
		c.Timeout = 5 * time.Second
		deadline := time.Now().Add(timeout)
		for time.Now().Before(deadline) {
			resp, err := c.Get(url)
			if err != nil {
				time.Sleep(2 * time.Millisecond) // poll interval, not synchronisation
				continue
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			ch <- fmt.Sprintf("%d %s", resp.StatusCode, body)
			return
		}
		ch <- "no response within " + timeout.String()
	}()
	return ch
}

// TestProxyOnlyRoutesSurviveRestart: 100 routes added through the proxy API are all back after
// `caddy stop` + start and after kill -9 + start, before the first request is served — which
// configurable-http-proxy cannot do (it forgets every route).
func TestProxyOnlyRoutesSurviveRestart(t *testing.T) {
	for _, tc := range []struct {
		name string
		down func(*Instance)
	}{
		{"caddy stop", (*Instance).Stop},
		{"kill -9", (*Instance).Kill9},
	} {
		t.Run(tc.name, func(t *testing.T) {
			const n = 100
			p := newProxyOnly(t)
			backends := []*echoBackend{newEchoBackend(t, "a"), newEchoBackend(t, "b"), newEchoBackend(t, "c")}
			cfg := p.caddyfile("", "")
			p.start(cfg)
			p.addRoutes(n, backends)
			if got := len(p.routes()); got != n {
				t.Fatalf("%d routes after adding %d", got, n)
			}
			p.checkRoutes(n, backends)

			tc.down(p.inst)
			if status, _ := probeOnce(URL(p.public, "/")); status != 0 {
				t.Fatalf("public port still answers after %s (status %d)", tc.name, status)
			}
			path := lcUserKey(n-1) + "/tree"
			first := firstResponse(URL(p.public, path), StartTimeout)
			p.start(cfg)
			want := fmt.Sprintf("200 backend %s %s", backends[(n-1)%len(backends)].id, path)
			if got := <-first; got != want {
				// A bare 503 here means the http app served before the jupyterhub app had started (Caddy
				// starts apps in random order) and the handler did not wait for the route table.
				t.Fatalf("first request after restart got %q, want %q", got, want)
			}
			p.checkRoutes(n, backends)
			if got := len(p.routes()); got != n {
				t.Fatalf("%d routes after restart, want %d", got, n)
			}
		})
	}
}

// probeOnce GETs url once; status 0 means nothing answered.
func probeOnce(url string) (int, string) {
	resp, err := Client().Get(url)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestProxyOnlyReload: `caddy reload` with a changed config (another error_target, an added site)
// keeps every route, keeps an open websocket through the edge alive, and loses none of the routes
// added through the API while the reloads happen.
func TestProxyOnlyReload(t *testing.T) {
	const n = 100
	p := newProxyOnly(t)
	backends := []*echoBackend{newEchoBackend(t, "a"), newEchoBackend(t, "b")}
	ws := newEchoBackend(t, "ws")
	p.start(p.caddyfile("", ""))
	p.addRoutes(n, backends)
	client := Client()
	if _, err := p.addRoute(client, "/user/wsuser", ws.srv.URL, map[string]any{"jupyterhub": true, "user": "wsuser"}); err != nil {
		t.Fatal(err)
	}

	dialer := websocket.Dialer{HandshakeTimeout: 10 * time.Second}
	conn, resp, err := dialer.Dial(fmt.Sprintf("ws://127.0.0.1:%d/user/wsuser/api/kernels/k1/channels", p.public), nil)
	if err != nil {
		t.Fatalf("websocket through the edge: %v (response %v)", err, resp)
	}
	defer conn.Close()
	echo := func(msg string) {
		t.Helper()
		_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		if err := conn.WriteMessage(websocket.TextMessage, []byte(msg)); err != nil {
			t.Fatalf("websocket write %q: %v", msg, err)
		}
		_, got, err := conn.ReadMessage()
		if err != nil {
			t.Fatalf("websocket read after %q: %v", msg, err)
		}
		if string(got) != "ws:"+msg {
			t.Fatalf("websocket echo %q, want %q", got, "ws:"+msg)
		}
	}
	echo("before reload")

	// API clients keep adding routes while the config is reloaded several times.
	var (
		stop    atomic.Bool
		wg      sync.WaitGroup
		mu      sync.Mutex
		added   []string
		failed  []string
		errorTo = newEchoBackend(t, "errors")
	)
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := Client()
			for i := 0; !stop.Load(); i++ {
				key := fmt.Sprintf("/user/live-%d-%d", w, i)
				_, err := p.addRoute(c, key, backends[0].srv.URL, map[string]any{"jupyterhub": true})
				mu.Lock()
				if err != nil {
					failed = append(failed, err.Error())
				} else {
					added = append(added, key)
				}
				mu.Unlock()
			}
		}()
	}
	extraPort := FreePort(t)
	const reloads = 6
	for i := range reloads {
		global := fmt.Sprintf("\t\terror_target %s/reload-%d\n", errorTo.srv.URL, i)
		site := fmt.Sprintf(":%d {\n\tbind 127.0.0.1\n\trespond \"extra site %d\"\n}\n", extraPort, i)
		p.inst.Reload(p.caddyfile(global, site))
		if got := WaitHTTP(t, URL(extraPort, "/"), http.StatusOK, 10*time.Second); got != fmt.Sprintf("extra site %d", i) {
			t.Fatalf("added site after reload %d answers %q", i, got)
		}
	}
	stop.Store(true)
	wg.Wait()
	if len(failed) > 0 {
		// Resets and EOFs here mean the old config generation closed its proxy API listener (each
		// generation binding its own SO_REUSEPORT socket drops the connections queued on the old
		// one); JupyterHub's client would retry, curl and other API clients do not.
		t.Fatalf("%d of %d route adds failed during reloads, e.g. %s", len(failed), len(failed)+len(added), failed[0])
	}
	if len(added) < 10 {
		t.Fatalf("only %d routes added during the reloads; the test did not exercise concurrency", len(added))
	}

	echo("after reload")
	p.checkRoutes(n, backends)
	routes := p.routes()
	for _, key := range added {
		if _, ok := routes[key]; !ok {
			t.Fatalf("route %s, added (201) during a reload, is missing", key)
		}
	}
	if want := n + 1 + len(added); len(routes) != want {
		t.Fatalf("%d routes after reloads, want %d", len(routes), want)
	}
	t.Logf("%d routes added during %d reloads", len(added), reloads)

	// The changed error_target is in effect: a route whose server is gone gets its page.
	dead := httptest.NewServer(http.NotFoundHandler())
	deadURL := dead.URL
	dead.Close()
	if _, err := p.addRoute(client, "/user/gone", deadURL, map[string]any{"jupyterhub": true}); err != nil {
		t.Fatal(err)
	}
	status, body := GetJSON(t, URL(p.public, "/user/gone/tree"), "")
	if want := fmt.Sprintf("/reload-%d/503", reloads-1); status != http.StatusServiceUnavailable || !strings.Contains(string(body), want) {
		t.Fatalf("dead route after reload: %d %q, want 503 from error_target ...%s", status, body, want)
	}
}

// TestProxyOnlyValidateWhileRunning: `caddy validate` of the running config succeeds, so Provision
// opens nothing (the Badger directory lock, the listeners), and the server keeps serving.
func TestProxyOnlyValidateWhileRunning(t *testing.T) {
	p := newProxyOnly(t)
	b := newEchoBackend(t, "a")
	cfg := p.caddyfile("", "")
	p.start(cfg)
	p.addRoutes(3, []*echoBackend{b})
	for _, args := range [][]string{
		{"validate", "--config", p.inst.ConfigFile(), "--adapter", "caddyfile"},
		{"adapt", "--config", p.inst.ConfigFile(), "--adapter", "caddyfile", "--validate"},
	} {
		out, err := RunCaddy(t, p.dir, args...)
		if err != nil {
			t.Fatalf("caddy %s while the server runs: %v\n%s", args[0], err, out)
		}
	}
	p.checkRoutes(3, []*echoBackend{b})
	if !p.inst.Running() {
		t.Fatal("server exited during validate")
	}
}

// TestProxyOnlyFailedReload: a reload that is refused — by the adapter, or because the new
// generation cannot start (its proxy API port is taken) — leaves the running config serving every
// route and the API working, and what is added afterwards still persists.
func TestProxyOnlyFailedReload(t *testing.T) {
	const n = 20
	p := newProxyOnly(t)
	backends := []*echoBackend{newEchoBackend(t, "a")}
	cfg := p.caddyfile("", "")
	p.start(cfg)
	p.addRoutes(n, backends)

	if err := p.inst.TryReload(p.caddyfile("\t\tfrobnicate yes\n", "")); err == nil {
		t.Fatal("reload with an unknown jupyterhub option succeeded")
	}
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	bad := strings.Replace(cfg, fmt.Sprintf("proxy_api 127.0.0.1:%d", p.api), "proxy_api "+taken.Addr().String(), 1)
	if err := p.inst.TryReload(bad); err == nil {
		t.Fatalf("reload onto a taken proxy_api port %s succeeded", taken.Addr())
	} else if !strings.Contains(err.Error(), "address already in use") {
		t.Fatalf("reload onto a taken proxy_api port failed, but not for that: %v", err)
	}
	if !p.inst.Running() {
		t.Fatal("caddy exited after a failed reload")
	}
	p.checkRoutes(n, backends)
	if _, err := p.addRoute(Client(), "/user/after", backends[0].srv.URL, map[string]any{"jupyterhub": true}); err != nil {
		t.Fatalf("proxy API after a failed reload: %v", err)
	}

	p.inst.Stop()
	p.start(cfg)
	p.checkRoutes(n, backends)
	if _, ok := p.routes()["/user/after"]; !ok {
		t.Fatal("route added after a failed reload did not survive a restart")
	}
}

// TestHubValidateWhileRunning: with the whole hub running (store open, hub API and proxy API
// listening, cookie secret read, authenticator and spawner provisioned), `caddy validate` of the
// same config succeeds: Provision of the app and its guest modules does no I/O.
func TestHubValidateWhileRunning(t *testing.T) {
	dir := t.TempDir()
	public, hubAPI, proxyAPI := FreePort(t), FreePort(t), FreePort(t)
	cfg := fmt.Sprintf(`{
	jupyterhub {
		data_dir %[1]s/data
		cookie_secret_file %[1]s/jupyterhub_cookie_secret
		hub_api 127.0.0.1:%[2]d
		proxy_api 127.0.0.1:%[3]d
		authenticator dummy {
			password {env.HUB_TEST_PASSWORD}
		}
		spawner simple
	}
}

:%[4]d {
	bind 127.0.0.1
	jupyterhub
}
`, dir, hubAPI, proxyAPI, public)
	env := "HUB_TEST_PASSWORD=" + RandomHex(t, 8)
	inst := Start(t, dir, cfg, env)
	WaitHTTP(t, URL(public, "/hub/login"), http.StatusOK, 30*time.Second)
	WaitHTTP(t, URL(hubAPI, "/hub/api"), http.StatusOK, 30*time.Second)
	for _, args := range [][]string{
		{"validate", "--config", inst.ConfigFile(), "--adapter", "caddyfile"},
		{"adapt", "--config", inst.ConfigFile(), "--adapter", "caddyfile", "--validate"},
	} {
		out, err := runCaddy(t, dir, []string{env}, args...)
		if err != nil {
			t.Fatalf("caddy %s while the hub runs: %v\n%s", args[0], err, out)
		}
	}
	if !inst.Running() {
		t.Fatal("hub exited during validate")
	}
	WaitHTTP(t, URL(public, "/hub/login"), http.StatusOK, 10*time.Second)

	// Validating a config whose hub never ran creates neither its store nor its cookie secret.
	fresh := t.TempDir()
	freshCfg := filepath.Join(fresh, "Caddyfile")
	if err := os.WriteFile(freshCfg, []byte(strings.ReplaceAll(cfg, dir, fresh)), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := runCaddy(t, fresh, []string{env}, "validate", "--config", freshCfg, "--adapter", "caddyfile"); err != nil {
		t.Fatalf("caddy validate of a fresh hub config: %v\n%s", err, out)
	}
	for _, name := range []string{"data", "jupyterhub_cookie_secret"} {
		if _, err := os.Stat(filepath.Join(fresh, name)); err == nil {
			t.Errorf("caddy validate created %s", name)
		}
	}
}
