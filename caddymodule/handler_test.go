package caddymodule

import (
	"bufio"
	"bytes"
	"cmp"
	"compress/gzip"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/gorilla/websocket"

	"github.com/caddyhub/caddyhub/caddymodule/routetable"
	"github.com/caddyhub/caddyhub/internal/testport"
)

// testApp is a stand-in for the hub app (module ID "jupyterhub"), whose state
// each test sets through appState.
type testApp struct{}

type testAppState struct {
	table       *routetable.Table
	hub         Hub
	errorTarget string
	ready       chan struct{} // nil: started
}

var appState atomic.Pointer[testAppState]

func init() { caddy.RegisterModule(testApp{}) }

func (testApp) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{ID: "jupyterhub", New: func() caddy.Module { return new(testApp) }}
}
func (testApp) Start() error { return nil }
func (testApp) Stop() error  { return nil }
func (testApp) RouteTable() *routetable.Table {
	if s := appState.Load(); s != nil {
		return s.table
	}
	return nil
}

// closedReady makes the test app count as started at once.
var closedReady = func() chan struct{} { c := make(chan struct{}); close(c); return c }()

func (testApp) Ready() <-chan struct{} {
	if s := appState.Load(); s != nil && s.ready != nil {
		return s.ready
	}
	return closedReady
}
func (testApp) Hub() Hub {
	if s := appState.Load(); s != nil && s.hub != nil {
		return s.hub
	}
	return nil
}
func (testApp) ErrorTarget() string {
	if s := appState.Load(); s != nil {
		return s.errorTarget
	}
	return ""
}

type fakeHub struct {
	mu          sync.Mutex
	proxyErrors []string
}

func (*fakeHub) Prefix() string { return "/hub/" }
func (*fakeHub) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("X-Served-By", "hub")
	fmt.Fprintf(w, "hub %s", r.URL.Path)
}
func (h *fakeHub) ServeProxyError(w http.ResponseWriter, r *http.Request, status int, route *routetable.Route) {
	h.mu.Lock()
	h.proxyErrors = append(h.proxyErrors, fmt.Sprintf("%d %s", status, route.Key()))
	h.mu.Unlock()
	w.WriteHeader(http.StatusServiceUnavailable)
	fmt.Fprintf(w, "your server is not running (%d %s)", status, route.Key())
}

// freePort returns a port on 127.0.0.1 that was free a moment ago (see internal/testport).
func freePort(t *testing.T) int {
	t.Helper()
	return testport.Free(t)
}

// startCaddy runs Caddy in process with one server whose only handler is
// handlerJSON, and returns its base URL.
func startCaddy(t *testing.T, state *testAppState, handlerJSON string) string {
	t.Helper()
	appState.Store(state)
	port := freePort(t)
	cfg := fmt.Sprintf(`{
		"admin": {"disabled": true},
		"logging": {"logs": {"default": {"level": "ERROR"}}},
		"apps": {
			"jupyterhub": {},
			"http": {"servers": {"edge": {
				"listen": ["127.0.0.1:%d"],
				"automatic_https": {"disable": true},
				"routes": [{"handle": [%s]}]
			}}}
		}
	}`, port, handlerJSON)
	if err := caddy.Load([]byte(cfg), true); err != nil {
		t.Fatalf("loading caddy config: %v", err)
	}
	t.Cleanup(func() {
		if err := caddy.Stop(); err != nil {
			t.Errorf("stopping caddy: %v", err)
		}
		appState.Store(nil)
	})
	return fmt.Sprintf("http://127.0.0.1:%d", port)
}

// seen is what the test backend reports about a request it received.
type seen struct {
	Backend    string
	RequestURI string
	Host       string
	XFF        string
	XFProto    string
	XFHost     string
	XFPort     string
	// AcceptEncoding is the request's Accept-Encoding ("-" when absent).
	AcceptEncoding string
}

// newBackend starts a user server stand-in named name.
func newBackend(t *testing.T, name string) *httptest.Server {
	t.Helper()
	up := websocket.Upgrader{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case strings.HasSuffix(r.URL.Path, "/ws"):
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
				if err := c.WriteMessage(mt, append([]byte(name+":"), msg...)); err != nil {
					return
				}
			}
		case strings.HasSuffix(r.URL.Path, "/missing"):
			http.NotFound(w, r)
		default:
			w.Header().Set("Content-Type", "application/json")
			_ = json.NewEncoder(w).Encode(seen{
				Backend: name, RequestURI: r.RequestURI, Host: r.Host,
				XFF: r.Header.Get("X-Forwarded-For"), XFProto: r.Header.Get("X-Forwarded-Proto"),
				XFHost: r.Header.Get("X-Forwarded-Host"), XFPort: r.Header.Get("X-Forwarded-Port"),
				AcceptEncoding: cmp.Or(strings.Join(r.Header.Values("Accept-Encoding"), ","), "-"),
			})
		}
	}))
	t.Cleanup(srv.Close)
	return srv
}

func get(t *testing.T, rawURL, host string) (int, string, http.Header) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, rawURL, nil)
	if err != nil {
		t.Fatal(err)
	}
	if host != "" {
		req.Host = host
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", rawURL, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), resp.Header
}

func addRoute(t *testing.T, tb *routetable.Table, key, target string) *routetable.Route {
	t.Helper()
	r, err := tb.Add(key, target, nil)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestHandlerHealthzAndNotStarted(t *testing.T) {
	base := startCaddy(t, &testAppState{}, `{"handler": "jupyterhub"}`)
	status, body, hdr := get(t, base+"/_chp_healthz", "")
	if status != 200 || body != `{"status":"OK"}` || hdr.Get("Content-Type") != "application/json" {
		t.Errorf("healthz: %d %q %q", status, body, hdr.Get("Content-Type"))
	}
	if status, _, _ := get(t, base+"/user/alice/", ""); status != http.StatusServiceUnavailable {
		t.Errorf("before the app started: %d, want 503", status)
	}
}

func TestHandlerHubMode(t *testing.T) {
	alice := newBackend(t, "alice")
	zoe := newBackend(t, "zoe")
	svc := newBackend(t, "svc")
	hostAlice := newBackend(t, "host-alice")
	tb := routetable.New()
	addRoute(t, tb, "/user/alice", alice.URL)
	addRoute(t, tb, "/user/zoë", zoe.URL)
	addRoute(t, tb, "/services/svc", svc.URL+"/prefix/")
	addRoute(t, tb, "/alice.hub.test/user/alice", hostAlice.URL)
	hub := &fakeHub{}
	base := startCaddy(t, &testAppState{table: tb, hub: hub}, `{"handler": "jupyterhub"}`)
	port := strings.TrimPrefix(base, "http://127.0.0.1:")

	for _, tc := range []struct {
		path, host  string
		wantBackend string // "" = served by the hub
		wantURI     string // as the backend saw it
	}{
		{path: "/user/alice/api/kernels?x=1", wantBackend: "alice", wantURI: "/user/alice/api/kernels?x=1"},
		{path: "/user/alice", wantBackend: "alice", wantURI: "/user/alice"},
		{path: "/user/alice/", wantBackend: "alice", wantURI: "/user/alice/"},
		{path: "/user/al", wantBackend: ""},
		{path: "/user/alicex/", wantBackend: ""},
		{path: "/user/bob/", wantBackend: ""},
		{path: "/", wantBackend: ""},
		{path: "/hub/login", wantBackend: ""},
		{path: "/hub/user/alice/", wantBackend: ""},
		{path: "/user/alice%2Fgpu/x", wantBackend: "alice", wantURI: "/user/alice%2Fgpu/x"},
		{path: "/user/alice%2F..%2Fbob/x", wantBackend: ""},
		{path: "/user/bob/../alice/x", wantBackend: "alice", wantURI: "/user/bob/../alice/x"},
		{path: "/user/zo%C3%AB/tree", wantBackend: "zoe", wantURI: "/user/zo%C3%AB/tree"},
		{path: "/user/zo/tree", wantBackend: ""},
		{path: "/services/svc/api?a=b", wantBackend: "svc", wantURI: "/prefix/services/svc/api?a=b"},
		{path: "/user/alice/lab", host: "alice.hub.test:" + port, wantBackend: "host-alice", wantURI: "/user/alice/lab"},
		{path: "/user/alice/lab", host: "ALICE.hub.test", wantBackend: "host-alice", wantURI: "/user/alice/lab"},
		{path: "/user/alice/lab", host: "bob.hub.test", wantBackend: "alice", wantURI: "/user/alice/lab"},
		{path: "/alice.hub.test/user/alice", wantBackend: ""},
	} {
		status, body, hdr := get(t, base+tc.path, tc.host)
		if tc.wantBackend == "" {
			if status != 200 || hdr.Get("X-Served-By") != "hub" {
				t.Errorf("%s (host %q): %d %q, want the hub", tc.path, tc.host, status, body)
			}
			continue
		}
		var s seen
		if err := json.Unmarshal([]byte(body), &s); err != nil || status != 200 {
			t.Errorf("%s (host %q): %d %q, want backend %s", tc.path, tc.host, status, body, tc.wantBackend)
			continue
		}
		if s.Backend != tc.wantBackend || s.RequestURI != tc.wantURI {
			t.Errorf("%s (host %q): backend %s saw %q, want %s %q", tc.path, tc.host, s.Backend, s.RequestURI, tc.wantBackend, tc.wantURI)
		}
	}

	// Forwarded headers, Host kept (CHP without --change-origin).
	_, body, _ := get(t, base+"/user/alice/x", "")
	var s seen
	_ = json.Unmarshal([]byte(body), &s)
	if s.Host != "127.0.0.1:"+port || s.XFF != "127.0.0.1" || s.XFProto != "http" || s.XFHost != "127.0.0.1:"+port || s.XFPort != port {
		t.Errorf("forwarded headers: %+v", s)
	}
	req, _ := http.NewRequest("GET", base+"/user/alice/x", nil)
	req.Header.Set("X-Forwarded-Port", "1")
	req.Header.Set("X-Forwarded-For", "6.6.6.6")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_ = json.NewDecoder(resp.Body).Decode(&s)
	resp.Body.Close()
	if s.XFPort != port || s.XFF != "127.0.0.1" {
		t.Errorf("untrusted client's forwarded headers kept: %+v", s)
	}

	// An upstream that is down: the hub's "not running" page.
	addRoute(t, tb, "/user/dead", "http://127.0.0.1:"+fmt.Sprint(freePort(t)))
	status, body, _ := get(t, base+"/user/dead/lab", "")
	if status != http.StatusServiceUnavailable || !strings.Contains(body, "not running (502 /user/dead)") {
		t.Errorf("dead upstream: %d %q", status, body)
	}
}

func TestHandlerActivity(t *testing.T) {
	alice := newBackend(t, "alice")
	tb := routetable.New()
	old := time.Now().Add(-time.Hour).UTC().Truncate(time.Millisecond)
	if err := tb.Load([]routetable.Record{{Key: "/user/alice", Target: alice.URL, LastActivity: old}}); err != nil {
		t.Fatal(err)
	}
	route := tb.Get("/user/alice")
	base := startCaddy(t, &testAppState{table: tb, hub: &fakeHub{}}, `{"handler": "jupyterhub"}`)

	// Error responses do not count.
	if status, _, _ := get(t, base+"/user/alice/missing", ""); status != 404 {
		t.Fatalf("missing: %d", status)
	}
	if !route.LastActivity().Equal(old) {
		t.Errorf("a 404 moved last_activity to %v", route.LastActivity())
	}

	// Websocket frames do.
	wsURL := "ws" + strings.TrimPrefix(base, "http") + "/user/alice/api/kernels/k1/ws"
	conn, resp, err := websocket.DefaultDialer.Dial(wsURL, nil)
	if err != nil {
		t.Fatalf("websocket dial: %v (%v)", err, resp)
	}
	defer conn.Close()
	for i := range 5 {
		msg := fmt.Sprintf("hello %d", i)
		if err := conn.WriteMessage(websocket.TextMessage, []byte(msg)); err != nil {
			t.Fatal(err)
		}
		_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		_, got, err := conn.ReadMessage()
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != "alice:"+msg {
			t.Fatalf("echo %q, want %q", got, "alice:"+msg)
		}
	}
	if la := route.LastActivity(); time.Since(la) > time.Minute {
		t.Errorf("websocket traffic left last_activity at %v", la)
	}

	// Plain successful responses do too.
	if err := tb.Load([]routetable.Record{{Key: "/user/alice", Target: alice.URL, LastActivity: old}}); err != nil {
		t.Fatal(err)
	}
	route = tb.Get("/user/alice")
	if status, _, _ := get(t, base+"/user/alice/api", ""); status != 200 {
		t.Fatal(status)
	}
	if la := route.LastActivity(); time.Since(la) > time.Minute {
		t.Errorf("a 200 left last_activity at %v", la)
	}
}

// TestHandlerEventSource checks that each event reaches the client before the
// next one is written: the backend waits for the client's acknowledgement.
func TestHandlerEventSource(t *testing.T) {
	ack := make(chan struct{})
	var acked atomic.Bool
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		w.Header().Set("Cache-Control", "no-cache")
		for i := range 3 {
			fmt.Fprintf(w, "data: event %d\n\n", i)
			w.(http.Flusher).Flush()
			select {
			case <-ack:
				acked.Store(true)
			case <-time.After(5 * time.Second):
				acked.Store(false)
				return
			case <-r.Context().Done():
				return
			}
		}
	}))
	t.Cleanup(backend.Close)
	tb := routetable.New()
	addRoute(t, tb, "/hub/api/users/alice/server/progress", backend.URL)
	base := startCaddy(t, &testAppState{table: tb}, `{"handler": "jupyterhub"}`)

	resp, err := http.Get(base + "/hub/api/users/alice/server/progress")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	rd := bufio.NewReader(resp.Body)
	for i := range 3 {
		line, err := rd.ReadString('\n')
		if err != nil {
			t.Fatalf("event %d: %v", i, err)
		}
		if want := fmt.Sprintf("data: event %d\n", i); line != want {
			t.Fatalf("got %q, want %q", line, want)
		}
		if _, err := rd.ReadString('\n'); err != nil {
			t.Fatal(err)
		}
		ack <- struct{}{}
	}
	if !acked.Load() {
		t.Error("backend timed out waiting: events were buffered")
	}
}

func TestHandlerProxyOnly(t *testing.T) {
	var errReqs atomic.Pointer[url.URL]
	errTarget := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u := *r.URL
		errReqs.Store(&u)
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.WriteHeader(http.StatusOK) // CHP relays the body with its own status
		fmt.Fprintf(w, "custom page %s", r.URL.Path)
	}))
	t.Cleanup(errTarget.Close)
	alice := newBackend(t, "alice")
	tb := routetable.New()
	addRoute(t, tb, "/user/alice", alice.URL)
	addRoute(t, tb, "/user/dead", "http://127.0.0.1:"+fmt.Sprint(freePort(t)))
	state := &testAppState{table: tb}
	base := startCaddy(t, state, `{"handler": "jupyterhub", "dial_timeout": "1s"}`)

	if status, body, _ := get(t, base+"/user/alice/x", ""); status != 200 || !strings.Contains(body, `"Backend":"alice"`) {
		t.Errorf("proxy_only route: %d %q", status, body)
	}
	status, body, hdr := get(t, base+"/user/<b>nobody", "")
	if status != 404 || !strings.Contains(body, "&lt;b&gt;nobody") || !strings.HasPrefix(hdr.Get("Content-Type"), "text/html") {
		t.Errorf("no route: %d %q", status, body)
	}
	if status, body, _ := get(t, base+"/user/dead/x", ""); status != 503 || !strings.Contains(body, "not answering") {
		t.Errorf("dead upstream: %d %q", status, body)
	}

	// With an error target, as CHP's --error-target.
	appState.Store(&testAppState{table: tb, errorTarget: errTarget.URL + "/hub/error"})
	status, body, hdr = get(t, base+"/user/nobody/tree?x=1", "")
	u := errReqs.Load()
	if status != 404 || body != "custom page /hub/error/404" || hdr.Get("Content-Type") != "text/html; charset=utf-8" ||
		u == nil || u.Query().Get("url") != "/user/nobody/tree?x=1" {
		t.Errorf("error target 404: %d %q, error request %v", status, body, u)
	}
	status, body, _ = get(t, base+"/user/dead/x", "")
	if status != 503 || body != "custom page /hub/error/503" || errReqs.Load().Query().Get("url") != "/user/dead/x" {
		t.Errorf("error target 503: %d %q", status, body)
	}
	// An error target that is down: the bare status text.
	errTarget.Close()
	if status, body, _ := get(t, base+"/user/nobody", ""); status != 404 || body != "Not Found" {
		t.Errorf("error target down: %d %q", status, body)
	}
}

// TestHandlerLeavesEncodingAlone checks that the edge forwards Accept-Encoding
// as the client sent it, adding none (Go's transport would add gzip and then
// decompress the answer itself), and relays a compressed answer as it is, as
// configurable-http-proxy does.
func TestHandlerLeavesEncodingAlone(t *testing.T) {
	alice := newBackend(t, "alice")
	gzipped := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Encoding", "gzip")
		w.Header().Set("Content-Type", "text/plain")
		zw := gzip.NewWriter(w)
		_, _ = zw.Write([]byte("compressed by the server"))
		_ = zw.Close()
	}))
	t.Cleanup(gzipped.Close)
	tb := routetable.New()
	addRoute(t, tb, "/user/alice", alice.URL)
	addRoute(t, tb, "/user/zip", gzipped.URL)
	base := startCaddy(t, &testAppState{table: tb}, `{"handler": "jupyterhub"}`)

	client := &http.Client{Transport: &http.Transport{DisableCompression: true}}
	t.Cleanup(client.CloseIdleConnections)
	do := func(path, acceptEncoding string) (*http.Response, []byte) {
		t.Helper()
		req, err := http.NewRequest(http.MethodGet, base+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		if acceptEncoding != "" {
			req.Header.Set("Accept-Encoding", acceptEncoding)
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return resp, body
	}
	for _, ae := range []string{"", "br", "gzip, deflate"} {
		_, body := do("/user/alice/api", ae)
		var got seen
		if err := json.Unmarshal(body, &got); err != nil {
			t.Fatalf("Accept-Encoding %q: %v in %q", ae, err, body)
		}
		if want := cmp.Or(ae, "-"); got.AcceptEncoding != want {
			t.Errorf("client sent Accept-Encoding %q, server got %q", want, got.AcceptEncoding)
		}
	}
	resp, body := do("/user/zip/file", "gzip")
	if resp.Header.Get("Content-Encoding") != "gzip" {
		t.Fatalf("compressed answer relayed with Content-Encoding %q", resp.Header.Get("Content-Encoding"))
	}
	zr, err := gzip.NewReader(bytes.NewReader(body))
	if err != nil {
		t.Fatalf("relayed body is not gzip: %v", err)
	}
	if plain, err := io.ReadAll(zr); err != nil || string(plain) != "compressed by the server" {
		t.Errorf("relayed body decompresses to %q, %v", plain, err)
	}
}

// TestHandlerDeleteUnderTraffic deletes a route while requests flow: each
// request is answered by the server or by the hub, never with an error.
func TestHandlerDeleteUnderTraffic(t *testing.T) {
	alice := newBackend(t, "alice")
	tb := routetable.New()
	addRoute(t, tb, "/user/alice", alice.URL)
	base := startCaddy(t, &testAppState{table: tb, hub: &fakeHub{}}, `{"handler": "jupyterhub"}`)

	var backendN, hubN atomic.Int64
	var wg sync.WaitGroup
	stop := make(chan struct{})
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 8}}
	for range 4 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				resp, err := client.Get(base + "/user/alice/api/status")
				if err != nil {
					t.Error(err)
					return
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				switch {
				case resp.StatusCode == 200 && strings.Contains(string(b), `"Backend":"alice"`):
					backendN.Add(1)
				case resp.StatusCode == 200 && resp.Header.Get("X-Served-By") == "hub":
					hubN.Add(1)
				default:
					t.Errorf("during delete: %d %q", resp.StatusCode, b)
					return
				}
			}
		})
	}
	waitFor(t, func() bool { return backendN.Load() >= 50 })
	if existed, err := tb.Delete("/user/alice"); !existed || err != nil {
		t.Fatalf("delete: %v %v", existed, err)
	}
	seenHub := hubN.Load()
	waitFor(t, func() bool { return hubN.Load() >= seenHub+50 })
	close(stop)
	wg.Wait()
	if n := hubN.Load(); n < 50 {
		t.Errorf("only %d requests reached the hub after the delete", n)
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 10s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestHandlerHTTPSTarget(t *testing.T) {
	var gotHost atomic.Pointer[string]
	backend := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := r.Host
		gotHost.Store(&h)
		fmt.Fprint(w, "secure backend")
	}))
	t.Cleanup(backend.Close)
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	pemBytes := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: backend.Certificate().Raw})
	if err := os.WriteFile(caFile, pemBytes, 0o600); err != nil {
		t.Fatal(err)
	}
	tb := routetable.New()
	addRoute(t, tb, "/user/alice", backend.URL)
	hub := &fakeHub{}
	caJSON, _ := json.Marshal(caFile)

	// Without trusting the backend's certificate: the hub's error page.
	base := startCaddy(t, &testAppState{table: tb, hub: hub}, `{"handler": "jupyterhub"}`)
	if status, body, _ := get(t, base+"/user/alice/x", ""); status != 503 || !strings.Contains(body, "not running (502 /user/alice)") {
		t.Errorf("untrusted https target: %d %q", status, body)
	}
	if err := caddy.Stop(); err != nil {
		t.Fatal(err)
	}

	base = startCaddy(t, &testAppState{table: tb, hub: hub},
		`{"handler": "jupyterhub", "tls": {"ca": {"provider": "file", "pem_files": [`+string(caJSON)+`]}}}`)
	status, body, _ := get(t, base+"/user/alice/x", "")
	if status != 200 || body != "secure backend" {
		t.Fatalf("https target: %d %q", status, body)
	}
	if h := gotHost.Load(); h == nil || *h != strings.TrimPrefix(base, "http://") {
		t.Errorf("https target saw Host %v, want the client's %s", h, strings.TrimPrefix(base, "http://"))
	}
}

// TestHandlerWaitsForApp checks that a request arriving before the app is
// ready waits for it and is then routed, rather than refused.
func TestHandlerWaitsForApp(t *testing.T) {
	alice := newBackend(t, "alice")
	tb := routetable.New()
	addRoute(t, tb, "/user/alice", alice.URL)
	ready := make(chan struct{})
	base := startCaddy(t, &testAppState{table: tb, ready: ready}, `{"handler": "jupyterhub"}`)

	impatient := &http.Client{Timeout: 300 * time.Millisecond}
	if resp, err := impatient.Get(base + "/user/alice/x"); err == nil {
		resp.Body.Close()
		t.Fatalf("request answered %d before the app was ready", resp.StatusCode)
	}
	done := make(chan string, 1)
	go func() {
		resp, err := http.Get(base + "/user/alice/x")
		if err != nil {
			done <- err.Error()
			return
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		done <- string(b)
	}()
	close(ready)
	select {
	case body := <-done:
		if !strings.Contains(body, `"Backend":"alice"`) {
			t.Errorf("after ready: %q", body)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("request still waiting after the app became ready")
	}
}

func TestHandlerUnixSocketTarget(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "alice.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Skipf("unix sockets unavailable: %v", err)
	}
	backend := &httptest.Server{Listener: ln, Config: &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "unix backend %s", r.RequestURI)
	})}}
	backend.Start()
	t.Cleanup(backend.Close)
	tb := routetable.New()
	addRoute(t, tb, "/user/alice", "http+unix://"+url.PathEscape(sock))
	base := startCaddy(t, &testAppState{table: tb}, `{"handler": "jupyterhub"}`)
	if status, body, _ := get(t, base+"/user/alice/api?x=1", ""); status != 200 || body != "unix backend /user/alice/api?x=1" {
		t.Errorf("unix socket target: %d %q", status, body)
	}
}
