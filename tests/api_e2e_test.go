package tests

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// apiServiceScript is a managed service: it calls the hub API with its own token, writes what it
// saw to $OUT_FILE, and serves "hello from service" at JUPYTERHUB_SERVICE_URL.
const apiServiceScript = `
import json, os, urllib.request, http.server, urllib.parse
api = os.environ["JUPYTERHUB_API_URL"]
tok = os.environ["JUPYTERHUB_API_TOKEN"]
def get(path):
    req = urllib.request.Request(api + path, headers={"Authorization": "token " + tok})
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.load(r)
out = {"whoami": get("/user"), "users": get("/users"), "env": {k: v for k, v in os.environ.items() if k.startswith("JUPYTERHUB_") and k != "JUPYTERHUB_API_TOKEN"}}
tmp = os.environ["OUT_FILE"] + ".tmp"
with open(tmp, "w") as f:
    json.dump(out, f)
os.rename(tmp, os.environ["OUT_FILE"])
url = urllib.parse.urlparse(os.environ["JUPYTERHUB_SERVICE_URL"])
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = b"hello from service " + self.path.encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a):
        pass
http.server.HTTPServer((url.hostname, url.port), H).serve_forever()
`

// apiUserServerScript is a minimal single-user server: 200 for everything at
// JUPYTERHUB_SERVICE_URL (the culler test needs only HTTP answers and route activity).
const apiUserServerScript = `
import os, http.server, urllib.parse
url = urllib.parse.urlparse(os.environ["JUPYTERHUB_SERVICE_URL"])
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = b"user server"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a):
        pass
http.server.HTTPServer((url.hostname or "127.0.0.1", url.port), H).serve_forever()
`

type apiE2E struct {
	t                        *testing.T
	dir                      string
	inst                     *Instance
	public, proxyAPI, hubAPI int
	adminToken               string
}

func (e *apiE2E) request(method, path, token, body string) (int, []byte) {
	e.t.Helper()
	req, err := http.NewRequest(method, URL(e.public, path), strings.NewReader(body))
	if err != nil {
		e.t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "token "+token)
	}
	resp, err := Client().Do(req)
	if err != nil {
		e.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func startAPIHub(t *testing.T, extra string) *apiE2E {
	return startAPIHubIn(t, t.TempDir(), extra)
}

// startAPIHubIn is startAPIHub in a directory the caller prepared (data_dir is <dir>/data).
func startAPIHubIn(t *testing.T, dir, extra string) *apiE2E {
	python := Require(t, "/usr/bin/python3")
	e := &apiE2E{t: t, dir: dir, public: FreePort(t), proxyAPI: FreePort(t), hubAPI: FreePort(t), adminToken: RandomHex(t, 16)}
	userScript := filepath.Join(dir, "userserver.py")
	if err := os.WriteFile(userScript, []byte(apiUserServerScript), 0o644); err != nil {
		t.Fatal(err)
	}
	caddyfile := fmt.Sprintf(`{
	jupyterhub {
		data_dir %[1]s/data
		proxy_api 127.0.0.1:%[3]d
		hub_api 127.0.0.1:%[4]d
		cookie_secret_file %[1]s/cookie_secret
		authenticator dummy {
			password s3cret-pass
		}
		spawner simple {
			cmd %[6]s %[7]s
			start_timeout 30s
			http_timeout 20s
		}
		api_token %[5]s admin
		role admin {
			users admin
		}
		%[8]s
	}
}

:%[2]d {
	bind 127.0.0.1
	jupyterhub
}
`, dir, e.public, e.proxyAPI, e.hubAPI, e.adminToken, python, userScript, extra)
	e.inst = Start(t, dir, caddyfile)
	return e
}

// TestAPIManagedServiceE2E: a managed service process gets its environment and token, calls the
// API with it, is routed at /services/<name>/, and stops with Caddy; the token command works both
// through the running Caddy and on the database directly.
func TestAPIManagedServiceE2E(t *testing.T) {
	python := Require(t, "/usr/bin/python3")
	tmp := t.TempDir()
	script := filepath.Join(tmp, "service.py")
	if err := os.WriteFile(script, []byte(apiServiceScript), 0o644); err != nil {
		t.Fatal(err)
	}
	outFile := filepath.Join(tmp, "service-out.json")
	svcPort := FreePort(t)
	e := startAPIHub(t, fmt.Sprintf(`role lister {
			scopes list:users read:users:name
			services reporter
		}
		service reporter {
			command %s %s
			url http://127.0.0.1:%d
			environment OUT_FILE %s
		}`, python, script, svcPort, outFile))
	for _, u := range []string{"alice", "bob"} {
		if code, b := e.request("POST", "/hub/api/users/"+u, e.adminToken, ""); code != 201 {
			t.Fatalf("creating %s: %d %s", u, code, b)
		}
	}
	var out struct {
		Whoami map[string]any    `json:"whoami"`
		Users  []map[string]any  `json:"users"`
		Env    map[string]string `json:"env"`
	}
	// The service may have started before alice and bob existed; it lists at least admin.
	waitFor(t, "the service's report", 30*time.Second, func() bool {
		b, err := os.ReadFile(outFile)
		return err == nil && json.Unmarshal(b, &out) == nil
	})
	if out.Whoami["kind"] != "service" || out.Whoami["name"] != "reporter" {
		t.Errorf("service whoami = %v", out.Whoami)
	}
	if len(out.Users) == 0 || out.Users[0]["name"] == nil {
		t.Errorf("service's user list = %v", out.Users)
	}
	for k, want := range map[string]string{
		"JUPYTERHUB_SERVICE_NAME":       "reporter",
		"JUPYTERHUB_SERVICE_PREFIX":     "/services/reporter/",
		"JUPYTERHUB_CLIENT_ID":          "service-reporter",
		"JUPYTERHUB_OAUTH_CALLBACK_URL": "/services/reporter/oauth_callback",
		"JUPYTERHUB_API_URL":            fmt.Sprintf("http://127.0.0.1:%d/hub/api", e.hubAPI),
		"JUPYTERHUB_SERVICE_URL":        fmt.Sprintf("http://127.0.0.1:%d", svcPort),
	} {
		if out.Env[k] != want {
			t.Errorf("%s = %q, want %q", k, out.Env[k], want)
		}
	}
	body := WaitHTTP(t, URL(e.public, "/services/reporter/x?y=1"), 200, 20*time.Second)
	if !strings.HasPrefix(body, "hello from service /services/reporter/x") {
		t.Errorf("service through the proxy: %q", body)
	}
	code, b := e.request("GET", "/hub/api/services/reporter", e.adminToken, "")
	var svc map[string]any
	if code != 200 || json.Unmarshal(b, &svc) != nil {
		t.Fatalf("service model: %d %s", code, b)
	}
	pid := int(svc["pid"].(float64))
	if pid <= 0 || svc["prefix"] != "/services/reporter/" {
		t.Fatalf("service model = %v", svc)
	}

	// A reload with the same definition keeps the process (the new config adopts it); a changed
	// definition replaces it.
	servicePID := func() int {
		code, b := e.request("GET", "/hub/api/services/reporter", e.adminToken, "")
		var m map[string]any
		if code != 200 || json.Unmarshal(b, &m) != nil {
			t.Fatalf("service model: %d %s", code, b)
		}
		return int(m["pid"].(float64))
	}
	e.inst.Reload(apiReadConfig(t, e.inst))
	if got := servicePID(); got != pid {
		t.Errorf("after a reload the service's pid is %d, want %d (adopted)", got, pid)
	}
	WaitHTTP(t, URL(e.public, "/services/reporter/"), 200, 10*time.Second)
	changed := strings.Replace(apiReadConfig(t, e.inst), "environment OUT_FILE", "environment EXTRA 1\n\t\t\tenvironment OUT_FILE", 1)
	e.inst.Reload(changed)
	waitFor(t, "the old service process to exit", 15*time.Second, func() bool {
		return errors.Is(syscall.Kill(pid, 0), syscall.ESRCH)
	})
	waitFor(t, "a new service process", 15*time.Second, func() bool {
		p := servicePID()
		return p > 0 && p != pid
	})
	pid = servicePID()

	// A new token through the running Caddy's admin API.
	tokOut, err := RunCaddy(t, e.dir, "jupyterhub", "token", "alice", "--address", e.inst.Admin())
	if err != nil {
		t.Fatalf("token command: %v\n%s", err, tokOut)
	}
	tok := strings.TrimSpace(lastLine(tokOut))
	if code, b := e.request("GET", "/hub/api/users/alice", tok, ""); code != 200 {
		t.Fatalf("token from the command: %d %s", code, b)
	}
	// --config finds the running Caddy at the admin address the config sets (the harness gives every
	// instance a non-default one), not at the default localhost:2019 nor in the locked database.
	tokOut, err = RunCaddy(t, e.dir, "jupyterhub", "token", "alice", "--config", e.inst.ConfigFile(), "--adapter", "caddyfile")
	if err != nil {
		t.Fatalf("token command with --config: %v\n%s", err, tokOut)
	}
	if code, b := e.request("GET", "/hub/api/users/alice", strings.TrimSpace(lastLine(tokOut)), ""); code != 200 {
		t.Fatalf("token from the command with --config: %d %s", code, b)
	}
	if out, err := RunCaddy(t, e.dir, "jupyterhub", "token", "nobody", "--address", e.inst.Admin()); err == nil {
		t.Errorf("token for an unknown user succeeded: %s", out)
	}

	// Caddy stops: the managed service stops with it.
	e.inst.Stop()
	waitFor(t, "the service process to exit", 10*time.Second, func() bool {
		return errors.Is(syscall.Kill(pid, 0), syscall.ESRCH)
	})
	// No Caddy runs: the command opens the database itself.
	tokOut, err = RunCaddy(t, e.dir, "jupyterhub", "token", "bob", "--address", fmt.Sprintf("127.0.0.1:%d", FreePort(t)), "--data-dir", filepath.Join(e.dir, "data"))
	if err != nil || len(strings.TrimSpace(lastLine(tokOut))) != 32 {
		t.Fatalf("offline token command: %v\n%s", err, tokOut)
	}
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}

// TestAPICullerE2E: the built-in culler stops a server started through the API once it is idle,
// and leaves a server that keeps receiving traffic alone. The log says where the hub is once it
// serves, and at exit that the busy server keeps running (cleanup_servers off).
func TestAPICullerE2E(t *testing.T) {
	e := startAPIHub(t, `culler {
			timeout 4s
			every 1s
		}`)
	// Once the hub serves, the log says where (the site is ":<port>" bound to 127.0.0.1).
	readyLine := fmt.Sprintf("hub ready at http://localhost:%d/", e.public)
	waitFor(t, "the log line "+readyLine, 10*time.Second, func() bool { return strings.Contains(e.inst.Log(), readyLine) })
	for _, u := range []string{"idle", "busy"} {
		if code, b := e.request("POST", "/hub/api/users/"+u, e.adminToken, ""); code != 201 {
			t.Fatalf("creating %s: %d %s", u, code, b)
		}
		if code, b := e.request("POST", "/hub/api/users/"+u+"/server", e.adminToken, ""); code != 201 && code != 202 {
			t.Fatalf("starting %s's server: %d %s", u, code, b)
		}
	}
	ready := func(u string) bool {
		code, b := e.request("GET", "/hub/api/users/"+u, e.adminToken, "")
		var m struct {
			Servers map[string]struct{ Ready bool } `json:"servers"`
		}
		return code == 200 && json.Unmarshal(b, &m) == nil && m.Servers[""].Ready
	}
	waitFor(t, "both servers ready", 40*time.Second, func() bool { return ready("idle") && ready("busy") })
	// state=ready lists both (what jupyterhub-idle-culler asks for).
	code, b := e.request("GET", "/hub/api/users?state=ready", e.adminToken, "")
	if code != 200 || !strings.Contains(string(b), `"idle"`) || !strings.Contains(string(b), `"busy"`) {
		t.Fatalf("state=ready: %d %s", code, b)
	}
	// Keep busy's server busy through the proxy until idle's server is culled.
	waitFor(t, "the idle server to be culled", 30*time.Second, func() bool {
		resp, err := Client().Get(URL(e.public, "/user/busy/"))
		if err != nil {
			t.Fatalf("busy's server: %v", err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("busy's server stopped answering: %d (Location %q)", resp.StatusCode, resp.Header.Get("Location"))
		}
		return !ready("idle")
	})
	if !ready("busy") {
		t.Fatalf("the culler stopped the busy server")
	}
	code, b = e.request("GET", "/hub/api/users?state=ready", e.adminToken, "")
	if code != 200 || strings.Contains(string(b), `"idle"`) || !strings.Contains(string(b), `"busy"`) {
		t.Errorf("after culling, state=ready: %d %s", code, b)
	}
	if !strings.Contains(e.inst.Log(), "culling idle server") {
		t.Errorf("no culling in the log")
	}
	// Caddy exits with busy's server running and cleanup_servers off: the log says it keeps running.
	e.inst.Stop()
	if want := "1 server keeps running after this exit"; !strings.Contains(e.inst.Log(), want) {
		t.Errorf("no %q line in the log at exit", want)
	}
}

// apiReadConfig returns the Caddyfile the instance runs with.
func apiReadConfig(t *testing.T, inst *Instance) string {
	t.Helper()
	b, err := os.ReadFile(inst.ConfigFile())
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
