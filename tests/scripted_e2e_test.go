package tests

// End to end: clients written the way JupyterHub's own scripted tools (load testers, course
// tools) are written, unchanged: log in through the form with the `_xsrf` cookie, GET /hub/spawn,
// follow redirects to the server, run code in a kernel — against the real caddy binary and the
// real jupyterhub-singleuser, under base_url /prefix/ on host localhost, ten users at once. And a
// cross-site GET of /hub/spawn starts nothing.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// scriptedUsers is how many users the crowd test drives at once.
const scriptedUsers = 10

// scriptedPassword is the dummy authenticator's password in these tests.
const scriptedPassword = "scripted-pass"

// loopbackDial dials 127.0.0.1 whatever host name the URL says (localhost here), so that the
// clients use the name a person would type while the traffic stays on 127.0.0.1.
func loopbackDial(ctx context.Context, network, addr string) (net.Conn, error) {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("dialing %s: %w", addr, err)
	}
	var d net.Dialer
	return d.DialContext(ctx, "tcp4", net.JoinHostPort("127.0.0.1", port))
}

// jhClient is a scripted client as JupyterHub's tools write them: a cookie jar, redirects
// followed by net/http, the `_xsrf` token read from the jar. Its methods return errors (they run
// in goroutines, one per user).
type jhClient struct {
	user   string
	origin string // http://localhost:<port>
	prefix string // /prefix/
	jar    *cookiejar.Jar
	follow *http.Client // follows redirects
	once   *http.Client // does not
	mu     sync.Mutex
	visits []string // every URL requested, redirects included
}

func newJHClient(t *testing.T, user, origin, prefix string) *jhClient {
	t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	c := &jhClient{user: user, origin: origin, prefix: prefix, jar: jar}
	tr := &http.Transport{Proxy: nil, DialContext: loopbackDial}
	c.follow = &http.Client{Transport: tr, Jar: jar, CheckRedirect: func(req *http.Request, via []*http.Request) error {
		c.record(req.Method + " " + req.URL.RequestURI())
		if len(via) >= 20 {
			return errors.New("too many redirects")
		}
		return nil
	}}
	c.once = &http.Client{Transport: tr, Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	}}
	return c
}

func (c *jhClient) record(s string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.visits = append(c.visits, s)
}

func (c *jhClient) trail() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return strings.Join(c.visits, "\n  ")
}

// cookie returns the value of the cookie the jar would send to path (the most specific first).
func (c *jhClient) cookie(path, name string) string {
	u, _ := url.Parse(c.origin + path)
	for _, ck := range c.jar.Cookies(u) {
		if ck.Name == name {
			return ck.Value
		}
	}
	return ""
}

// do sends one request (path relative to the origin) and returns the final response, body read.
func (c *jhClient) do(ctx context.Context, hc *http.Client, method, path string, body io.Reader, hdr http.Header) (*http.Response, string, error) {
	req, err := http.NewRequestWithContext(ctx, method, c.origin+path, body)
	if err != nil {
		return nil, "", fmt.Errorf("%s %s: %w", method, path, err)
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	c.record(method + " " + path)
	resp, err := hc.Do(req)
	if err != nil {
		return nil, "", fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, "", fmt.Errorf("%s %s: reading the body: %w", method, path, err)
	}
	return resp, string(b), nil
}

// login GETs the login page, reads `_xsrf` from the jar and POSTs the form with it; the hub answers
// with a redirect to /hub/spawn (redirect_to_server).
func (c *jhClient) login(ctx context.Context) error {
	hub := c.prefix + "hub/"
	resp, body, err := c.do(ctx, c.follow, "GET", hub+"login", nil, nil)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET login: %d %.300s", resp.StatusCode, body)
	}
	xsrf := c.cookie(hub+"login", "_xsrf")
	if xsrf == "" {
		return fmt.Errorf("the login page set no _xsrf cookie (Set-Cookie: %q)", resp.Header.Values("Set-Cookie"))
	}
	form := url.Values{"username": {c.user}, "password": {scriptedPassword}, "_xsrf": {xsrf}}
	resp, body, err = c.do(ctx, c.once, "POST", hub+"login", strings.NewReader(form.Encode()),
		http.Header{"Content-Type": {"application/x-www-form-urlencoded"}})
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != hub+"spawn" {
		return fmt.Errorf("POST login: %d to %q, want 302 to %sspawn: %.300s", resp.StatusCode, resp.Header.Get("Location"), hub, body)
	}
	return nil
}

// waitReady reads the server's progress EventSource (cookie auth, ?_xsrf= from the hub's cookie,
// as the spawn-pending page's script) until the ready or failed event.
func (c *jhClient) waitReady(ctx context.Context) error {
	hub := c.prefix + "hub/"
	xsrf := c.cookie(hub+"api/", "_xsrf")
	if xsrf == "" {
		return errors.New("no hub _xsrf cookie after login")
	}
	path := hub + "api/users/" + c.user + "/server/progress?_xsrf=" + url.QueryEscape(xsrf)
	req, err := http.NewRequestWithContext(ctx, "GET", c.origin+path, nil)
	if err != nil {
		return fmt.Errorf("progress: %w", err)
	}
	req.Header.Set("Accept", "text/event-stream")
	c.record("GET " + path)
	resp, err := c.follow.Do(req)
	if err != nil {
		return fmt.Errorf("progress: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		return fmt.Errorf("progress: %d %.300s", resp.StatusCode, b)
	}
	sc := bufio.NewScanner(resp.Body)
	var last string
	for sc.Scan() {
		data, ok := strings.CutPrefix(sc.Text(), "data:")
		if !ok {
			continue
		}
		last = strings.TrimSpace(data)
		var ev struct {
			Ready  bool `json:"ready"`
			Failed bool `json:"failed"`
		}
		if err := json.Unmarshal([]byte(last), &ev); err != nil {
			return fmt.Errorf("progress event %q: %w", last, err)
		}
		if ev.Failed {
			return fmt.Errorf("spawn failed: %s", last)
		}
		if ev.Ready {
			return nil
		}
	}
	return fmt.Errorf("progress stream ended without ready (last event %q): %v", last, sc.Err())
}

// toServer GETs /hub/spawn and follows redirects until the server's tree (or lab): through the
// spawn-pending page (waiting on the progress stream when the server is still starting) and the
// hub's OAuth provider.
func (c *jhClient) toServer(ctx context.Context) error {
	hub := c.prefix + "hub/"
	resp, body, err := c.do(ctx, c.follow, "GET", hub+"spawn", nil, nil)
	if err != nil {
		return err
	}
	if resp.StatusCode == http.StatusOK && resp.Request.URL.Path == hub+"spawn-pending/"+c.user {
		if err := c.waitReady(ctx); err != nil {
			return err
		}
		// Reload the pending page, as its script does: it sends the browser on to the server.
		resp, body, err = c.do(ctx, c.follow, "GET", resp.Request.URL.RequestURI(), nil, nil)
		if err != nil {
			return err
		}
	}
	server := c.prefix + "user/" + c.user + "/"
	p := resp.Request.URL.Path
	if resp.StatusCode != http.StatusOK || !(strings.HasPrefix(p, server+"tree") || strings.HasPrefix(p, server+"lab")) {
		return fmt.Errorf("GET spawn ended at %s with %d, want %stree or lab: %.300s", resp.Request.URL, resp.StatusCode, server, body)
	}
	if t := c.trail(); !strings.Contains(t, hub+"api/oauth2/authorize?") || !strings.Contains(t, server+"oauth_callback?") {
		return errors.New("the way to the server did not pass the hub's OAuth provider")
	}
	return nil
}

// runKernel starts a kernel through the server's REST API (the server's `_xsrf` cookie as
// X-XSRFToken), runs print(1+1) over its channels websocket and stops it.
func (c *jhClient) runKernel(ctx context.Context) error {
	server := c.prefix + "user/" + c.user + "/"
	xsrf := c.cookie(server+"api/kernels", "_xsrf")
	if xsrf == "" {
		return errors.New("the server set no _xsrf cookie")
	}
	hdr := http.Header{"X-Xsrftoken": {xsrf}, "Content-Type": {"application/json"}}
	resp, body, err := c.do(ctx, c.once, "POST", server+"api/kernels", strings.NewReader(`{}`), hdr)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusCreated {
		return fmt.Errorf("starting a kernel: %d %.300s", resp.StatusCode, body)
	}
	var kernel struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal([]byte(body), &kernel); err != nil || kernel.ID == "" {
		return fmt.Errorf("kernel model %q: %v", body, err)
	}
	if err := c.execute(ctx, server, kernel.ID); err != nil {
		return err
	}
	resp, body, err = c.do(ctx, c.once, "DELETE", server+"api/kernels/"+kernel.ID, nil, hdr)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusNoContent {
		return fmt.Errorf("stopping the kernel: %d %.300s", resp.StatusCode, body)
	}
	return nil
}

// execute sends an execute_request (Jupyter messaging 5.3) on the kernel's channels websocket and
// reads until its stream output "2" and its execute_reply.
func (c *jhClient) execute(ctx context.Context, server, kernelID string) error {
	session := "scripted-" + c.user
	wsURL := "ws" + strings.TrimPrefix(c.origin, "http") + server + "api/kernels/" + kernelID + "/channels?session_id=" + session
	d := websocket.Dialer{NetDialContext: loopbackDial, Jar: c.jar, HandshakeTimeout: 60 * time.Second}
	conn, resp, err := d.DialContext(ctx, wsURL, http.Header{"Origin": {c.origin}})
	if err != nil {
		status := 0
		if resp != nil {
			status = resp.StatusCode
		}
		return fmt.Errorf("kernel websocket: %w (status %d)", err, status)
	}
	defer conn.Close()
	msgID := fmt.Sprintf("%s-%d", session, time.Now().UnixNano())
	msg := map[string]any{
		"header": map[string]any{
			"msg_id": msgID, "username": c.user, "session": session, "msg_type": "execute_request",
			"version": "5.3", "date": time.Now().UTC().Format(time.RFC3339Nano),
		},
		"parent_header": map[string]any{},
		"metadata":      map[string]any{},
		"content": map[string]any{
			"code": "print(1+1)", "silent": false, "store_history": true,
			"user_expressions": map[string]any{}, "allow_stdin": false, "stop_on_error": true,
		},
		"channel": "shell",
		"buffers": []any{},
	}
	if err := conn.WriteJSON(msg); err != nil {
		return fmt.Errorf("sending execute_request: %w", err)
	}
	deadline, _ := ctx.Deadline()
	var output string
	var replied bool
	for output != "2" || !replied {
		_ = conn.SetReadDeadline(deadline)
		var in struct {
			Header       map[string]any `json:"header"`
			ParentHeader map[string]any `json:"parent_header"`
			Content      map[string]any `json:"content"`
		}
		if err := conn.ReadJSON(&in); err != nil {
			return fmt.Errorf("reading from the kernel (output %q, reply %v): %w", output, replied, err)
		}
		if in.ParentHeader["msg_id"] != msgID {
			continue
		}
		switch in.Header["msg_type"] {
		case "stream":
			if in.Content["name"] == "stdout" {
				output += strings.TrimSpace(fmt.Sprint(in.Content["text"]))
			}
		case "execute_reply":
			if in.Content["status"] != "ok" {
				return fmt.Errorf("execute_reply: %v", in.Content)
			}
			replied = true
		}
	}
	return nil
}

// apiUser returns the user's model from GET <prefix>hub/api/user (cookie auth, a read-only
// request: no token needed).
func (c *jhClient) apiUser(ctx context.Context) (map[string]any, error) {
	resp, body, err := c.do(ctx, c.once, "GET", c.prefix+"hub/api/user", nil, http.Header{"Accept": {"application/json"}})
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET api/user: %d %.300s", resp.StatusCode, body)
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(body), &m); err != nil {
		return nil, fmt.Errorf("GET api/user: %w", err)
	}
	return m, nil
}

// stopServer stops the user's server through the hub's REST API (cookie auth + the hub's _xsrf
// cookie as X-XSRFToken).
func (c *jhClient) stopServer(ctx context.Context) error {
	path := c.prefix + "hub/api/users/" + c.user + "/server"
	resp, body, err := c.do(ctx, c.once, "DELETE", path, nil, http.Header{"X-Xsrftoken": {c.cookie(path, "_xsrf")}})
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusNoContent && resp.StatusCode != http.StatusAccepted {
		return fmt.Errorf("stopping the server: %d %.300s", resp.StatusCode, body)
	}
	return nil
}

// endProcessesWithEnv ends, by PID, every process whose environment holds entry (servers outlive
// caddy by design; kernels inherit the environment): SIGTERM, then SIGKILL after a grace.
func endProcessesWithEnv(t *testing.T, entry string) {
	want := []byte("\x00" + entry + "\x00")
	find := func() []int {
		var pids []int
		entries, _ := os.ReadDir("/proc")
		for _, e := range entries {
			pid, err := strconv.Atoi(e.Name())
			if err != nil || pid == os.Getpid() {
				continue
			}
			env, err := os.ReadFile(filepath.Join("/proc", e.Name(), "environ"))
			stat, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
			if err == nil && bytes.Contains(append([]byte{0}, env...), want) && !bytes.Contains(stat, []byte(") Z ")) {
				pids = append(pids, pid)
			}
		}
		return pids
	}
	for _, pid := range find() {
		_ = syscall.Kill(pid, syscall.SIGTERM)
	}
	deadline := time.Now().Add(15 * time.Second)
	for len(find()) > 0 && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond) // polling a condition with a deadline
	}
	for _, pid := range find() {
		t.Logf("killing leftover process %d", pid)
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
}

func TestScriptedClientsE2E(t *testing.T) {
	Require(t, "/usr/bin/jupyterhub-singleuser")
	Require(t, "/usr/bin/python3")
	dir := t.TempDir()
	public, hubAPI, proxyAPI := FreePort(t), FreePort(t), FreePort(t)
	args := ""
	if os.Geteuid() == 0 {
		args = "args --allow-root" // the classic notebook refuses to run as root otherwise
	}
	users := []string{"crosssite"}
	for i := range scriptedUsers {
		users = append(users, fmt.Sprintf("user%d", i))
	}
	cfg := fmt.Sprintf(`{
	grace_period 2s
	jupyterhub {
		base_url /prefix/
		data_dir %[1]s/data
		proxy_api 127.0.0.1:%[3]d
		hub_api 127.0.0.1:%[4]d
		cookie_secret_file %[1]s/cookie_secret
		authenticator dummy {
			password %[5]s
			allowed_users %[6]s
		}
		spawner simple {
			cmd /usr/bin/jupyterhub-singleuser
			%[7]s
			start_timeout 240s
			http_timeout 240s
		}
	}
}

:%[2]d {
	bind 127.0.0.1
	jupyterhub
}
`, dir, public, proxyAPI, hubAPI, scriptedPassword, strings.Join(users, " "), args)
	inst := Start(t, dir, cfg)
	t.Cleanup(func() {
		endProcessesWithEnv(t, "JUPYTERHUB_API_URL=http://127.0.0.1:"+strconv.Itoa(hubAPI)+"/prefix/hub/api")
	})
	origin := "http://localhost:" + strconv.Itoa(public)
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()

	// A cross-site GET of /hub/spawn (a link on another site) gets the page with a Start button
	// and starts nothing.
	cs := newJHClient(t, "crosssite", origin, "/prefix/")
	if err := cs.login(ctx); err != nil {
		t.Fatalf("crosssite: %v\n  %s", err, cs.trail())
	}
	resp, body, err := cs.do(ctx, cs.follow, "GET", "/prefix/hub/spawn", nil, http.Header{
		"Sec-Fetch-Site": {"cross-site"}, "Sec-Fetch-Mode": {"navigate"}, "Sec-Fetch-Dest": {"document"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK || resp.Request.URL.Path != "/prefix/hub/spawn" ||
		!strings.Contains(body, `action="/prefix/hub/spawn/crosssite"`) || !strings.Contains(body, `type="submit"`) {
		t.Fatalf("cross-site GET /prefix/hub/spawn: %d at %s, want the page with a Start button: %.500s", resp.StatusCode, resp.Request.URL, body)
	}
	assertNoServer := func(when string) {
		t.Helper()
		m, err := cs.apiUser(ctx)
		if err != nil {
			t.Fatalf("%s: %v", when, err)
		}
		if m["name"] != "crosssite" || m["server"] != nil || m["pending"] != nil {
			t.Fatalf("%s: the cross-site GET started a server: server %v pending %v", when, m["server"], m["pending"])
		}
		if servers, ok := m["servers"].(map[string]any); ok && len(servers) > 0 {
			t.Fatalf("%s: the cross-site GET started a server: %v", when, servers)
		}
	}
	assertNoServer("right after the cross-site GET")

	// Ten scripted users at once: login, spawn, server, kernel.
	began := time.Now()
	errs := make([]error, scriptedUsers)
	clients := make([]*jhClient, scriptedUsers)
	took := make([]time.Duration, scriptedUsers)
	var wg sync.WaitGroup
	for i := range scriptedUsers {
		c := newJHClient(t, users[i+1], origin, "/prefix/")
		clients[i] = c
		wg.Add(1)
		go func() {
			defer wg.Done()
			start := time.Now()
			defer func() { took[i] = time.Since(start) }()
			if errs[i] = c.login(ctx); errs[i] != nil {
				return
			}
			if errs[i] = c.toServer(ctx); errs[i] != nil {
				return
			}
			errs[i] = c.runKernel(ctx)
		}()
	}
	wg.Wait()
	failed := 0
	for i, err := range errs {
		if err != nil {
			failed++
			t.Errorf("%s: %v\n  %s\n  %s's server log (tail):\n%s", users[i+1], err, clients[i].trail(), users[i+1],
				logTail(filepath.Join(dir, "data", "logs", users[i+1], "server.log"), 60))
		}
	}
	if failed > 0 {
		t.Fatalf("%d of %d scripted users did not complete\ncaddy log:\n%s", failed, scriptedUsers, inst.Log())
	}
	slowest := time.Duration(0)
	for _, d := range took {
		slowest = max(slowest, d)
	}
	t.Logf("%d users from login to a kernel's output in %s (slowest %s)", scriptedUsers, time.Since(began).Round(time.Millisecond), slowest.Round(time.Millisecond))
	t.Logf("%s's way:\n  %s", users[1], clients[0].trail())

	assertNoServer("after the crowd")
	for i, c := range clients {
		if err := c.stopServer(ctx); err != nil {
			t.Errorf("%s: %v", users[i+1], err)
		}
	}
}
