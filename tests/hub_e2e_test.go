package tests

// End to end: the real /usr/bin/jupyterhub-singleuser (JupyterHub 3.0, classic notebook) spawned by
// our hub behind our edge, driven like a hubBrowser: login, spawn, the OAuth dance through
// /hub/api/oauth2/authorize, the server's API, a kernel round trip over the websocket, another
// user refused, logout, and kill -9 of caddy with the server adopted by the restarted hub.

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// hubBrowser is an HTTP client with a cookie jar that follows redirects itself, recording them.
type hubBrowser struct {
	t       *testing.T
	jar     *cookiejar.Jar
	c       *http.Client
	base    string   // http://127.0.0.1:<public>
	visits  []string // of the last do
	history []string // of every do
}

func newHubBrowser(t *testing.T, base string) *hubBrowser {
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	c := Client()
	c.Jar = jar
	c.Timeout = 60 * time.Second
	return &hubBrowser{t: t, jar: jar, c: c, base: base}
}

// do sends one request and follows redirects (GET), returning the last response (body read).
func (b *hubBrowser) do(method, target string, form url.Values, hdr http.Header) (*http.Response, string) {
	b.t.Helper()
	b.visits = nil
	u := target
	if strings.HasPrefix(u, "/") {
		u = b.base + u
	}
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	for i := 0; i < 20; i++ {
		req, err := http.NewRequest(method, u, body)
		if err != nil {
			b.t.Fatal(err)
		}
		if form != nil && method == "POST" {
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		}
		for k, v := range hdr {
			req.Header[k] = v
		}
		resp, err := b.c.Do(req)
		if err != nil {
			b.t.Fatalf("%s %s: %v (after %v)", method, u, err, b.visits)
		}
		data, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		b.visits = append(b.visits, fmt.Sprintf("%s %s → %d", method, strings.TrimPrefix(u, b.base), resp.StatusCode))
		b.history = append(b.history, b.visits[len(b.visits)-1])
		loc := resp.Header.Get("Location")
		if resp.StatusCode < 300 || resp.StatusCode > 399 || loc == "" {
			return resp, string(data)
		}
		next, err := resp.Request.URL.Parse(loc)
		if err != nil {
			b.t.Fatalf("bad Location %q: %v", loc, err)
		}
		u, method, body, form, hdr = next.String(), "GET", nil, nil, nil
	}
	b.t.Fatalf("too many redirects: %v", b.visits)
	return nil, ""
}

var hubXSRFField = regexp.MustCompile(`name="_xsrf" value="([^"]+)"`)

func hubFormXSRF(t *testing.T, page string) string {
	t.Helper()
	m := hubXSRFField.FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("no _xsrf field in page: %.500s", page)
	}
	return html.UnescapeString(m[1])
}

func (b *hubBrowser) login(user, password string) {
	b.t.Helper()
	_, page := b.do("GET", "/hub/login", nil, nil)
	resp, body := b.do("POST", "/hub/login", url.Values{"username": {user}, "password": {password}, "_xsrf": {hubFormXSRF(b.t, page)}}, nil)
	if resp.StatusCode != http.StatusOK || !b.hasCookie("/hub/", "jupyterhub-hub-login") {
		b.t.Fatalf("login as %s: %d %v %.300s", user, resp.StatusCode, b.visits, body)
	}
}

func (b *hubBrowser) hasCookie(path, name string) bool {
	return b.cookie(path, name) != ""
}

func (b *hubBrowser) cookie(path, name string) string {
	u, _ := url.Parse(b.base + path)
	for _, c := range b.jar.Cookies(u) {
		if c.Name == name {
			return c.Value
		}
	}
	return ""
}

// singleuserPIDs returns the processes whose environment says they are jupyterhub-singleuser
// servers of this hub (JUPYTERHUB_API_URL names our hub API port) for user.
func singleuserPIDs(t *testing.T, hubAPIPort int, user string) []int {
	t.Helper()
	entries, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	api := []byte("JUPYTERHUB_API_URL=http://127.0.0.1:" + strconv.Itoa(hubAPIPort) + "/hub/api\x00")
	who := []byte("\x00JUPYTERHUB_USER=" + user + "\x00")
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		env, err := os.ReadFile(filepath.Join("/proc", e.Name(), "environ"))
		if err != nil || !bytes.Contains(env, api) || !bytes.Contains(append([]byte{0}, env...), who) {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil || bytes.Contains(stat, []byte(") Z ")) {
			continue
		}
		cmd, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if bytes.Contains(cmd, []byte("jupyterhub-singleuser")) {
			pids = append(pids, pid)
		}
	}
	return pids
}

// endHubProcesses ends what this test's hub started and left running (servers outlive caddy by
// design): every process whose environment names this hub's API port (servers and the kernels
// they started, which inherit it), by PID: SIGTERM, then SIGKILL after a grace.
func endHubProcesses(t *testing.T, hubAPIPort int) {
	endProcessesWithEnv(t, "JUPYTERHUB_API_URL=http://127.0.0.1:"+strconv.Itoa(hubAPIPort)+"/hub/api")
}

func hubCaddyfile(dir string, public, hubAPI, proxyAPI int, args string) string {
	return fmt.Sprintf(`{
	grace_period 2s
	jupyterhub {
		data_dir %[1]s/data
		proxy_api 127.0.0.1:%[3]d
		hub_api 127.0.0.1:%[4]d
		cookie_secret_file %[1]s/cookie_secret
		allow_named_servers
		authenticator dummy {
			password s3cret-pass
			allowed_users alice bob
		}
		spawner simple {
			cmd /usr/bin/jupyterhub-singleuser
			%[5]s
			start_timeout 120s
			http_timeout 90s
		}
	}
}

:%[2]d {
	bind 127.0.0.1
	jupyterhub
}
`, dir, public, proxyAPI, hubAPI, args)
}

func TestHubSingleuserE2E(t *testing.T) {
	Require(t, "/usr/bin/jupyterhub-singleuser")
	Require(t, "/usr/bin/python3")
	dir := t.TempDir()
	public, hubAPI, proxyAPI := FreePort(t), FreePort(t), FreePort(t)
	args := ""
	if os.Geteuid() == 0 {
		args = "args --allow-root" // the classic notebook refuses to run as root otherwise
	}
	cfg := hubCaddyfile(dir, public, hubAPI, proxyAPI, args)
	inst := Start(t, dir, cfg)
	t.Cleanup(func() { endHubProcesses(t, hubAPI) })
	base := URL(public, "")

	// Log in and start the server (GET /hub/spawn starts it when there is no options form).
	alice := newHubBrowser(t, base)
	alice.login("alice", "s3cret-pass")
	resp, body := alice.do("GET", "/hub/spawn", nil, nil)
	if resp.StatusCode >= 500 {
		t.Fatalf("spawn: %d %v %.500s", resp.StatusCode, alice.visits, body)
	}

	// Wait for it through the progress EventSource (cookie auth, ?_xsrf= as the page's script).
	_, home := alice.do("GET", "/hub/home", nil, nil)
	xsrf := hubFormXSRF(t, home)
	deadline := time.Now().Add(150 * time.Second)
	for {
		resp, stream := alice.do("GET", "/hub/api/users/alice/server/progress?_xsrf="+url.QueryEscape(xsrf), nil, nil)
		if resp.StatusCode == http.StatusOK && strings.Contains(stream, `"ready":true`) {
			break
		}
		if strings.Contains(stream, `"failed":true`) {
			t.Fatalf("spawn failed: %s\ncaddy log:\n%s", stream, inst.Log())
		}
		if time.Now().After(deadline) {
			t.Fatalf("server not ready: %d %s", resp.StatusCode, stream)
		}
		time.Sleep(200 * time.Millisecond) // polling a condition with a deadline
	}
	pids := singleuserPIDs(t, hubAPI, "alice")
	if len(pids) != 1 {
		t.Fatalf("want one singleuser process for alice, found %v", pids)
	}
	serverPID := pids[0]

	// Through the edge to the server: it sends us through the hub's OAuth provider and back (maybe
	// already while following the spawn form's redirects, when the server was up within 10 s).
	resp, body = alice.do("GET", "/user/alice/", nil, nil)
	chain := strings.Join(alice.history, "\n")
	if resp.StatusCode != http.StatusOK || !strings.Contains(chain, "/hub/api/oauth2/authorize?") ||
		!strings.Contains(chain, "/user/alice/oauth_callback?code=") ||
		!(strings.HasPrefix(resp.Request.URL.Path, "/user/alice/tree") || strings.HasPrefix(resp.Request.URL.Path, "/user/alice/lab")) {
		t.Fatalf("OAuth login to the server: %d at %s\n%s\n%.300s", resp.StatusCode, resp.Request.URL, chain, body)
	}
	t.Logf("alice's way to her server:\n%s", chain)
	resp, body = alice.do("GET", "/user/alice/api/status", nil, nil)
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, "started") {
		t.Fatalf("/user/alice/api/status: %d %s", resp.StatusCode, body)
	}

	// A kernel, and one execute_request round trip over its websocket.
	xs := alice.cookie("/user/alice/", "_xsrf")
	resp, body = alice.do("POST", "/user/alice/api/kernels", url.Values{}, http.Header{"X-Xsrftoken": {xs}, "Content-Type": {"application/json"}})
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("starting a kernel: %d %s", resp.StatusCode, body)
	}
	var kernel struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal([]byte(body), &kernel); err != nil || kernel.ID == "" {
		t.Fatalf("kernel model %q: %v", body, err)
	}
	kernelRoundTrip(t, alice, public, kernel.ID)

	// Another user is refused by the server (through the hub's authorize: 403).
	bob := newHubBrowser(t, base)
	bob.login("bob", "s3cret-pass")
	resp, body = bob.do("GET", "/user/alice/tree", nil, nil)
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("bob on alice's server: %d at %s %v %.300s", resp.StatusCode, resp.Request.URL, bob.visits, body)
	}
	t.Logf("bob's way to alice's server: %v", bob.visits)
	if resp, _ := bob.do("GET", "/user/alice/api/status", nil, nil); resp.StatusCode == http.StatusOK {
		t.Fatalf("bob reached alice's API")
	}

	// A named server: its own client (jupyterhub-user-alice-gpu), prefix and route, started through
	// the REST API with the login cookie and the XSRF header.
	_, home = alice.do("GET", "/hub/home", nil, nil)
	xsrf = hubFormXSRF(t, home)
	resp, body = alice.do("POST", "/hub/api/users/alice/servers/gpu", nil, http.Header{"X-Xsrftoken": {xsrf}})
	if resp.StatusCode != http.StatusCreated && resp.StatusCode != http.StatusAccepted {
		t.Fatalf("starting alice's named server: %d %s", resp.StatusCode, body)
	}
	resp, stream := alice.do("GET", "/hub/api/users/alice/servers/gpu/progress?_xsrf="+url.QueryEscape(xsrf), nil, nil)
	if resp.StatusCode != http.StatusOK || !strings.Contains(stream, `"url":"/user/alice/gpu/"`) {
		t.Fatalf("named server progress: %d %s\n%s", resp.StatusCode, stream, inst.Log())
	}
	resp, body = alice.do("GET", "/user/alice/gpu/api/status", nil, nil)
	if resp.StatusCode != http.StatusForbidden && resp.StatusCode != http.StatusOK {
		t.Fatalf("named server API before its OAuth login: %d %s", resp.StatusCode, body)
	}
	resp, body = alice.do("GET", "/user/alice/gpu/tree", nil, nil)
	if resp.StatusCode != http.StatusOK || !strings.Contains(strings.Join(alice.visits, " "), "client_id=jupyterhub-user-alice-gpu") {
		t.Fatalf("named server via OAuth: %d %v %.300s", resp.StatusCode, alice.visits, body)
	}
	if resp, body := alice.do("GET", "/user/alice/gpu/api/status", nil, nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("named server api/status: %d %s", resp.StatusCode, body)
	}
	resp, body = alice.do("DELETE", "/hub/api/users/alice/servers/gpu", url.Values{}, http.Header{"X-Xsrftoken": {xsrf}, "Content-Type": {"application/json"}})
	if resp.StatusCode != http.StatusNoContent && resp.StatusCode != http.StatusAccepted {
		t.Fatalf("stopping alice's named server: %d %s", resp.StatusCode, body)
	}
	deadline = time.Now().Add(30 * time.Second)
	for len(singleuserPIDs(t, hubAPI, "alice")) != 1 {
		if time.Now().After(deadline) {
			t.Fatalf("alice's named server still runs after its stop: %v", singleuserPIDs(t, hubAPI, "alice"))
		}
		time.Sleep(100 * time.Millisecond) // polling a condition with a deadline
	}

	// Logout revokes: the hub deletes the session's OAuth tokens and clears jupyterhub-session-id,
	// which is part of singleuser's cache key, so the next request is checked with the hub again
	// (a client that kept the old session-id cookie could be served from that cache for up to
	// cache_max_age, 5 minutes: singleuser 3.0's documented behaviour).
	_, home = alice.do("GET", "/hub/home", nil, nil)
	alice.do("POST", "/hub/logout", url.Values{"_xsrf": {hubFormXSRF(t, home)}}, nil)
	if alice.hasCookie("/hub/", "jupyterhub-hub-login") || alice.hasCookie("/", "jupyterhub-session-id") {
		t.Fatalf("login cookies left after logout")
	}
	resp, body = alice.do("GET", "/user/alice/api/status", nil, nil)
	t.Logf("after logout: %v", alice.visits)
	if resp.StatusCode == http.StatusOK {
		t.Fatalf("alice's server still answers after logout: %v %s", alice.visits, body)
	}

	// kill -9 of caddy: the server lives on; the restarted hub adopts it, no new spawn.
	inst.Kill9()
	if err := syscall.Kill(serverPID, 0); err != nil {
		t.Fatalf("the server died with caddy: %v", err)
	}
	inst2 := Start(t, dir, cfg)
	alice = newHubBrowser(t, base)
	alice.login("alice", "s3cret-pass")
	resp, body = alice.do("GET", "/user/alice/api/status", nil, nil)
	if resp.StatusCode != http.StatusForbidden && resp.StatusCode != http.StatusOK {
		t.Fatalf("after restart: %d %v %s", resp.StatusCode, alice.visits, body)
	}
	resp, body = alice.do("GET", "/user/alice/tree", nil, nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("after restart, alice's server: %d %v %.300s\n%s", resp.StatusCode, alice.visits, body, inst2.Log())
	}
	resp, body = alice.do("GET", "/user/alice/api/status", nil, nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("after restart, api/status: %d %s", resp.StatusCode, body)
	}
	if pids := singleuserPIDs(t, hubAPI, "alice"); len(pids) != 1 || pids[0] != serverPID {
		t.Fatalf("after restart alice's servers are %v, want the same process %d", pids, serverPID)
	}
	if strings.Contains(inst2.Log(), "spawning server") {
		t.Fatalf("the restarted hub spawned a new server:\n%s", inst2.Log())
	}

	// A config reload keeps the server, its route and alice's login to it.
	inst2.Reload(strings.Replace(cfg, "grace_period 2s", "grace_period 3s", 1))
	resp, body = alice.do("GET", "/user/alice/api/status", nil, nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("after reload, api/status: %d %v %s", resp.StatusCode, alice.visits, body)
	}
	if pids := singleuserPIDs(t, hubAPI, "alice"); len(pids) != 1 || pids[0] != serverPID {
		t.Fatalf("after reload alice's servers are %v, want the same process %d", pids, serverPID)
	}

	// Stopping through the API (cookie auth + XSRF header) ends the process and the route.
	_, home = alice.do("GET", "/hub/home", nil, nil)
	resp, body = alice.do("DELETE", "/hub/api/users/alice/server", nil, http.Header{"X-Xsrftoken": {hubFormXSRF(t, home)}})
	if resp.StatusCode != http.StatusNoContent && resp.StatusCode != http.StatusAccepted {
		t.Fatalf("stopping alice's server: %d %s", resp.StatusCode, body)
	}
	deadline = time.Now().Add(30 * time.Second)
	for syscall.Kill(serverPID, 0) == nil {
		if time.Now().After(deadline) {
			t.Fatalf("server process %d still runs after the stop", serverPID)
		}
		time.Sleep(100 * time.Millisecond) // polling a condition with a deadline
	}
	if resp, _ := alice.do("GET", "/user/alice/api/status", nil, nil); resp.StatusCode == http.StatusOK {
		t.Fatalf("alice's server still answers after the stop: %v", alice.visits)
	}
}

// kernelRoundTrip sends print("hello") to a kernel over its websocket (Jupyter messaging 5.3) and
// reads until the stream output and the execute_reply.
func kernelRoundTrip(t *testing.T, b *hubBrowser, public int, kernelID string) {
	t.Helper()
	wsURL := fmt.Sprintf("ws://127.0.0.1:%d/user/alice/api/kernels/%s/channels?session_id=e2e", public, kernelID)
	u, _ := url.Parse(fmt.Sprintf("http://127.0.0.1:%d/user/alice/", public))
	var cookies []string
	for _, c := range b.jar.Cookies(u) {
		cookies = append(cookies, c.Name+"="+c.Value)
	}
	hdr := http.Header{"Cookie": {strings.Join(cookies, "; ")}, "Origin": {fmt.Sprintf("http://127.0.0.1:%d", public)}}
	d := websocket.Dialer{HandshakeTimeout: 30 * time.Second}
	conn, resp, err := d.Dial(wsURL, hdr)
	if err != nil {
		status := 0
		if resp != nil {
			status = resp.StatusCode
		}
		t.Fatalf("websocket to the kernel: %v (status %d)", err, status)
	}
	defer conn.Close()
	msgID := fmt.Sprintf("e2e-%d", time.Now().UnixNano())
	msg := map[string]any{
		"header": map[string]any{
			"msg_id": msgID, "username": "alice", "session": "e2e", "msg_type": "execute_request",
			"version": "5.3", "date": time.Now().UTC().Format(time.RFC3339Nano),
		},
		"parent_header": map[string]any{},
		"metadata":      map[string]any{},
		"content": map[string]any{
			"code": `print("hello")`, "silent": false, "store_history": true,
			"user_expressions": map[string]any{}, "allow_stdin": false, "stop_on_error": true,
		},
		"channel": "shell",
		"buffers": []any{},
	}
	if err := conn.WriteJSON(msg); err != nil {
		t.Fatal(err)
	}
	var sawHello, sawReply bool
	deadline := time.Now().Add(90 * time.Second)
	for !(sawHello && sawReply) {
		_ = conn.SetReadDeadline(deadline)
		var in struct {
			Channel      string         `json:"channel"`
			Header       map[string]any `json:"header"`
			ParentHeader map[string]any `json:"parent_header"`
			Content      map[string]any `json:"content"`
		}
		if err := conn.ReadJSON(&in); err != nil {
			var ce *websocket.CloseError
			if errors.As(err, &ce) {
				t.Fatalf("kernel websocket closed: %v", ce)
			}
			t.Fatalf("reading from the kernel (hello %v, reply %v): %v", sawHello, sawReply, err)
		}
		if in.ParentHeader["msg_id"] != msgID {
			continue
		}
		switch in.Header["msg_type"] {
		case "stream":
			if in.Content["name"] == "stdout" && strings.Contains(fmt.Sprint(in.Content["text"]), "hello") {
				sawHello = true
			}
		case "execute_reply":
			if in.Content["status"] != "ok" {
				t.Fatalf("execute_reply: %v", in.Content)
			}
			sawReply = true
		}
	}
}
