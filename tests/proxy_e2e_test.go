package tests

// Issue #2 end to end: an unmodified Python JupyterHub 3.0 uses our caddy (proxy_only) as its
// external configurable-http-proxy (should_start = False, api_url, shared CONFIGPROXY_AUTH_TOKEN;
// docs/protocols.md, "How JupyterHub drives an external proxy"). A user logs in through OUR public port, spawns, reaches
// /user/<name>/ through the OAuth dance, and runs code in a kernel over a websocket that our edge
// carries.

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

const jupyterhubConfig = `# written by tests/proxy_e2e_test.go
import os
c = get_config()  # noqa
tmp = %[1]q
c.JupyterHub.bind_url = 'http://127.0.0.1:%[2]d'
c.JupyterHub.hub_bind_url = 'http://127.0.0.1:%[3]d'
c.ConfigurableHTTPProxy.should_start = False
c.ConfigurableHTTPProxy.api_url = 'http://127.0.0.1:%[4]d'
# auth_token: not set here; JupyterHub reads CONFIGPROXY_AUTH_TOKEN, the variable our caddy reads too.
c.JupyterHub.authenticator_class = 'dummy'
c.DummyAuthenticator.password = os.environ['HUB_TEST_PASSWORD']
c.JupyterHub.spawner_class = 'simple'
c.SimpleLocalProcessSpawner.home_dir_template = os.path.join(tmp, 'home', '{username}')
c.Spawner.cmd = ['/usr/bin/jupyterhub-singleuser']
if os.geteuid() == 0:
    c.Spawner.args = ['--allow-root']  # CI runs as root; notebook refuses without this
c.Spawner.start_timeout = 90
c.Spawner.http_timeout = 60
c.JupyterHub.db_url = 'sqlite:///' + os.path.join(tmp, 'jupyterhub.sqlite')
c.JupyterHub.cookie_secret_file = os.path.join(tmp, 'jupyterhub_cookie_secret')
c.JupyterHub.pid_file = os.path.join(tmp, 'jupyterhub.pid')
c.JupyterHub.cleanup_servers = True
c.JupyterHub.last_activity_interval = 5
`

// pythonHub is a running /usr/bin/jupyterhub started by the test.
type pythonHub struct {
	cmd  *exec.Cmd
	log  string
	done chan struct{}
}

func startPythonHub(t *testing.T, dir string, public, hubPort, api int, token, password string) *pythonHub {
	t.Helper()
	cfg := filepath.Join(dir, "jupyterhub_config.py")
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf(jupyterhubConfig, dir, public, hubPort, api)), 0o600); err != nil {
		t.Fatal(err)
	}
	logPath := filepath.Join(dir, "jupyterhub.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	h := &pythonHub{log: logPath, done: make(chan struct{})}
	h.cmd = exec.Command("/usr/bin/jupyterhub", "-f", cfg, "--debug")
	h.cmd.Dir = dir
	// /usr/bin first: the single-user server and its kernel must be Debian's Python, not a pyenv one.
	h.cmd.Env = append(os.Environ(),
		"PATH=/usr/bin:/bin:"+os.Getenv("PATH"),
		"CONFIGPROXY_AUTH_TOKEN="+token,
		"HUB_TEST_PASSWORD="+password,
		"PYENV_VERSION=system",
	)
	h.cmd.Stdout, h.cmd.Stderr = logFile, logFile
	if err := h.cmd.Start(); err != nil {
		logFile.Close()
		t.Fatalf("starting jupyterhub: %v", err)
	}
	go func() {
		_ = h.cmd.Wait()
		logFile.Close()
		close(h.done)
	}()
	t.Cleanup(func() {
		h.stop(t, dir)
		if t.Failed() {
			b, _ := os.ReadFile(logPath)
			t.Logf("jupyterhub log:\n%s", b)
		}
	})
	return h
}

// stop sends SIGTERM (JupyterHub then stops users' servers: cleanup_servers = True), waits, and
// kills by PID whatever the test started that is still alive: the hub, then any single-user
// server the hub's database still records.
func (h *pythonHub) stop(t *testing.T, dir string) {
	select {
	case <-h.done:
	default:
		_ = h.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-h.done:
		case <-time.After(30 * time.Second):
			t.Logf("jupyterhub did not exit on SIGTERM within 30s; killing pid %d", h.cmd.Process.Pid)
			_ = h.cmd.Process.Kill()
			<-h.done
		}
	}
	for _, pid := range spawnedPIDs(dir) {
		if syscall.Kill(pid, 0) == nil {
			t.Logf("killing leftover single-user server pid %d", pid)
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
}

// spawnedPIDs reads the pids LocalProcessSpawner recorded in the hub's sqlite database.
func spawnedPIDs(dir string) []int {
	out, err := exec.Command("/usr/bin/python3", "-c", `
import json, sqlite3, sys
db = sqlite3.connect(sys.argv[1])
for (state,) in db.execute("select state from spawners"):
    pid = json.loads(state or "{}").get("pid")
    if pid: print(pid)
`, filepath.Join(dir, "jupyterhub.sqlite")).Output()
	if err != nil {
		return nil
	}
	var pids []int
	for _, f := range strings.Fields(string(out)) {
		if pid, err := strconv.Atoi(f); err == nil && pid > 1 {
			pids = append(pids, pid)
		}
	}
	return pids
}

// pyBrowser is a cookie-jar client that follows redirects, as a user's browser would.
func pyBrowser(t *testing.T) *http.Client {
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	c := Client()
	c.Jar = jar
	c.Timeout = 30 * time.Second
	c.CheckRedirect = nil
	c.Transport = pyAcceptHTML{c.Transport}
	return c
}

// pyAcceptHTML sends a browser's Accept header (JupyterHub 3.0's /hub/user/… handler fails with 500
// on a request that has none).
type pyAcceptHTML struct{ next http.RoundTripper }

func (a pyAcceptHTML) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Header.Get("Accept") == "" {
		r = r.Clone(r.Context())
		r.Header.Set("Accept", "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8")
	}
	return a.next.RoundTrip(r)
}

var pyXSRFInput = regexp.MustCompile(`name="_xsrf"\s+value="([^"]+)"`)

func TestPythonJupyterHubWithCaddyProxy(t *testing.T) {
	Require(t, "/usr/bin/jupyterhub")
	Require(t, "/usr/bin/jupyterhub-singleuser")

	p := newProxyOnly(t)
	p.start(p.caddyfile("", ""))
	hubPort := FreePort(t)
	password := RandomHex(t, 8)
	startPythonHub(t, p.dir, p.public, hubPort, p.api, p.token, password)

	// The hub adds its own route "/" through our proxy API, then answers through our public port.
	WaitHTTP(t, URL(p.public, "/hub/api"), http.StatusOK, 60*time.Second)
	routes := p.routes()
	if r := routes["/"]; r == nil || r["jupyterhub"] != true || r["hub"] != true ||
		r["target"] != fmt.Sprintf("http://127.0.0.1:%d", hubPort) {
		t.Fatalf("hub route = %v, want jupyterhub and hub true, target the hub; all routes %v", r, routes)
	}
	// …and it could only do that with the shared token.
	if status, _ := GetJSON(t, URL(p.api, "/api/routes"), ""); status != http.StatusForbidden {
		t.Fatalf("GET /api/routes without a token: %d, want 403", status)
	}

	// Log in through our public port.
	const user = "alice"
	b := pyBrowser(t)
	pub := URL(p.public, "")
	resp, err := b.Get(pub + "/hub/login")
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(page), "password") {
		t.Fatalf("GET /hub/login: %d %.500s", resp.StatusCode, page)
	}
	form := url.Values{"username": {user}, "password": {password}}
	if m := pyXSRFInput.FindSubmatch(page); m != nil {
		form.Set("_xsrf", string(m[1]))
	}
	resp, err = b.PostForm(pub+"/hub/login?next="+url.QueryEscape("/hub/home"), form)
	if err != nil {
		t.Fatal(err)
	}
	page, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Request.URL.Path != "/hub/home" {
		t.Fatalf("login ended at %s with %d: %.500s", resp.Request.URL, resp.StatusCode, page)
	}

	// Spawn (GET /hub/spawn spawns when there is no options form), then follow the user's way to
	// the server: /user/alice/tree → hub OAuth → /user/alice/oauth_callback → /user/alice/tree.
	resp, err = b.Get(pub + "/hub/spawn")
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /hub/spawn ended at %s with %d", resp.Request.URL, resp.StatusCode)
	}
	treePath := "/user/" + user + "/tree"
	deadline := time.Now().Add(90 * time.Second)
	for {
		resp, err = b.Get(pub + treePath)
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK && resp.Request.URL.Path == treePath {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("server of %s not reachable at %s within 90s: last %v %v", user, treePath, resp, err)
		}
		time.Sleep(200 * time.Millisecond) // poll interval, not synchronisation
	}
	status, body := pyGet(t, b, pub+"/user/"+user+"/api/status")
	if status != http.StatusOK || !strings.Contains(body, `"started"`) {
		t.Fatalf("GET /user/%s/api/status through caddy: %d %s", user, status, body)
	}

	// The route the hub added for the server, with the hub's data and last_activity.
	routes = p.routes()
	ur := routes["/user/"+user]
	if ur == nil || ur["jupyterhub"] != true || ur["user"] != user || ur["server_name"] != "" {
		t.Fatalf("user route = %v; all routes %v", ur, routes)
	}
	before := routeActivity(t, ur)
	// Activity has one-second resolution: the traffic below must fall in a later second than the
	// route's last activity for the move to be visible. Wait on the clock, not for anything else.
	for time.Now().Truncate(time.Second).Compare(before.Truncate(time.Second)) <= 0 {
		time.Sleep(10 * time.Millisecond)
	}

	// A kernel, and one execute_request round trip over its websocket through our edge.
	xsrf := jarCookie(b, pub+"/user/"+user+"/", "_xsrf")
	req, _ := http.NewRequest(http.MethodPost, pub+"/user/"+user+"/api/kernels", strings.NewReader(`{"name":"python3"}`))
	req.Header.Set("Content-Type", "application/json")
	if xsrf != "" {
		req.Header.Set("X-XSRFToken", xsrf)
	}
	resp, err = b.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	kb, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var kernel struct {
		ID string `json:"id"`
	}
	if resp.StatusCode != http.StatusCreated || json.Unmarshal(kb, &kernel) != nil || kernel.ID == "" {
		t.Fatalf("POST /user/%s/api/kernels: %d %s", user, resp.StatusCode, kb)
	}
	out := pyExecute(t, b, p.public, user, kernel.ID, "print(6 * 7)")
	if !strings.Contains(out, "42") {
		t.Fatalf("stream output %q, want 42", out)
	}

	after := routeActivity(t, p.routes()["/user/"+user])
	if !after.After(before) {
		t.Fatalf("last_activity of /user/%s did not move with traffic: before %s, after %s", user, before, after)
	}

	// Where configurable-http-proxy would lose every route: kill -9 our proxy and start it again.
	// The Python hub is not told; the user's server must answer at once, and the hub too.
	p.inst.Kill9()
	p.start(p.caddyfile("", ""))
	status, body = pyGet(t, b, pub+"/user/"+user+"/api/status")
	if status != http.StatusOK || !strings.Contains(body, `"started"`) {
		t.Fatalf("after kill -9 of caddy: GET /user/%s/api/status: %d %.300s", user, status, body)
	}
	if status, body = pyGet(t, b, pub+"/hub/api"); status != http.StatusOK || !strings.Contains(body, `"version"`) {
		t.Fatalf("after kill -9 of caddy: GET /hub/api: %d %.300s", status, body)
	}
}

// pyGet GETs url with the browser client and returns status and body.
func pyGet(t *testing.T, b *http.Client, u string) (int, string) {
	t.Helper()
	resp, err := b.Get(u)
	if err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

func routeActivity(t *testing.T, route map[string]any) time.Time {
	t.Helper()
	s, _ := route["last_activity"].(string)
	ts, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		t.Fatalf("route %v: last_activity %q: %v", route, s, err)
	}
	return ts
}

func jarCookie(b *http.Client, rawURL, name string) string {
	u, _ := url.Parse(rawURL)
	for _, c := range b.Jar.Cookies(u) {
		if c.Name == name {
			return c.Value
		}
	}
	return ""
}

// pyExecute runs code in the kernel over /api/kernels/<id>/channels (Jupyter message
// protocol 5.3, JSON frames) and returns the text of the stream outputs seen before execute_reply.
func pyExecute(t *testing.T, b *http.Client, port int, user, kernelID, code string) string {
	t.Helper()
	session := RandomHex(t, 16)
	wsURL := fmt.Sprintf("ws://127.0.0.1:%d/user/%s/api/kernels/%s/channels?session_id=%s", port, user, kernelID, session)
	httpURL, _ := url.Parse(fmt.Sprintf("http://127.0.0.1:%d/user/%s/", port, user))
	hdr := http.Header{}
	var cookies []string
	for _, c := range b.Jar.Cookies(httpURL) {
		cookies = append(cookies, c.Name+"="+c.Value)
	}
	hdr.Set("Cookie", strings.Join(cookies, "; "))
	d := websocket.Dialer{HandshakeTimeout: 20 * time.Second}
	conn, resp, err := d.Dial(wsURL, hdr)
	if err != nil {
		status := 0
		if resp != nil {
			status = resp.StatusCode
		}
		t.Fatalf("kernel websocket through caddy: %v (status %d)", err, status)
	}
	defer conn.Close()

	msgID := RandomHex(t, 16)
	msg := map[string]any{
		"header": map[string]any{
			"msg_id": msgID, "username": user, "session": session, "msg_type": "execute_request",
			"version": "5.3", "date": time.Now().UTC().Format(time.RFC3339Nano),
		},
		"parent_header": map[string]any{},
		"metadata":      map[string]any{},
		"content": map[string]any{
			"code": code, "silent": false, "store_history": true, "user_expressions": map[string]any{},
			"allow_stdin": false, "stop_on_error": true,
		},
		"channel": "shell",
		"buffers": []any{},
	}
	if err := conn.WriteJSON(msg); err != nil {
		t.Fatalf("sending execute_request: %v", err)
	}
	// execute_reply comes on shell, the stream on iopub: the order between channels is not fixed, so
	// read until both the reply and iopub's "idle" for our request (sent after the output) arrived.
	var out strings.Builder
	replied, idle := false, false
	_ = conn.SetReadDeadline(time.Now().Add(60 * time.Second))
	for {
		var m struct {
			Header struct {
				MsgType string `json:"msg_type"`
			} `json:"header"`
			ParentHeader struct {
				MsgID string `json:"msg_id"`
			} `json:"parent_header"`
			Content map[string]any `json:"content"`
		}
		if err := conn.ReadJSON(&m); err != nil {
			t.Fatalf("reading kernel messages (stream so far %q): %v", out.String(), err)
		}
		if m.ParentHeader.MsgID != msgID {
			continue
		}
		switch m.Header.MsgType {
		case "stream":
			s, _ := m.Content["text"].(string)
			out.WriteString(s)
		case "execute_reply":
			if m.Content["status"] != "ok" {
				t.Fatalf("execute_reply %v", m.Content)
			}
			replied = true
		case "status":
			idle = idle || m.Content["execution_state"] == "idle"
		}
		if replied && idle {
			return out.String()
		}
	}
}
