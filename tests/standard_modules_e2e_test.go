package tests

// Caddy's standard modules beside the hub: the real binary runs a Caddyfile that serves a maintenance
// page with file_server and guards a tool with forward_auth (an nginx auth_request rule) next to the
// jupyterhub directive, the front end an operator moving from nginx writes.

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestStandardModulesBesideHub(t *testing.T) {
	dir := t.TempDir()
	const page = "<h1>Back soon: maintenance until 18:00</h1>"
	if err := os.MkdirAll(filepath.Join(dir, "maintenance"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "maintenance", "index.html"), []byte(page), 0o644); err != nil {
		t.Fatal(err)
	}

	// The auth server answers forward_auth's subrequest: 200 with the user for the right key, else 401.
	var authCalls atomic.Int32
	authSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		authCalls.Add(1)
		if r.URL.Path != "/verify" || r.Header.Get("X-Forwarded-Uri") == "" {
			http.Error(w, "unexpected auth request "+r.URL.String(), http.StatusBadRequest)
			return
		}
		if r.Header.Get("X-Api-Key") != "open-sesame" {
			http.Error(w, "who are you?", http.StatusUnauthorized)
			return
		}
		w.Header().Set("X-User", "alice")
		w.WriteHeader(http.StatusOK)
	}))
	defer authSrv.Close()
	// The tool behind it says whom the auth server let in.
	var toolCalls atomic.Int32
	tool := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		toolCalls.Add(1)
		fmt.Fprintf(w, "tool %s for %s", r.URL.Path, r.Header.Get("X-User"))
	}))
	defer tool.Close()

	public, hubAPI, proxyAPI := FreePort(t), FreePort(t), FreePort(t)
	cfg := fmt.Sprintf(`{
	jupyterhub {
		data_dir %[1]s/data
		cookie_secret_file %[1]s/jupyterhub_cookie_secret
		hub_api 127.0.0.1:%[2]d
		proxy_api 127.0.0.1:%[3]d
		authenticator dummy
		spawner simple
	}
}

:%[4]d {
	bind 127.0.0.1
	handle_path /maintenance/* {
		root * %[1]s/maintenance
		file_server
	}
	handle /tools/* {
		forward_auth %[5]s {
			uri /verify
			copy_headers X-User
		}
		reverse_proxy %[6]s
	}
	handle {
		jupyterhub
	}
}
`, dir, hubAPI, proxyAPI, public, strings.TrimPrefix(authSrv.URL, "http://"), strings.TrimPrefix(tool.URL, "http://"))
	Start(t, dir, cfg)
	WaitHTTP(t, URL(public, "/hub/login"), http.StatusOK, 30*time.Second)

	get := func(path string, header http.Header) (int, string) {
		t.Helper()
		req, err := http.NewRequest("GET", URL(public, path), nil)
		if err != nil {
			t.Fatal(err)
		}
		for k, v := range header {
			req.Header[k] = v
		}
		resp, err := Client().Do(req)
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}

	// file_server: the maintenance page, by name and as the folder's index.
	for _, p := range []string{"/maintenance/index.html", "/maintenance/"} {
		if st, body := get(p, nil); st != http.StatusOK || body != page {
			t.Errorf("GET %s: %d %q, want 200 with the maintenance page", p, st, body)
		}
	}
	if st, _ := get("/maintenance/missing.html", nil); st != http.StatusNotFound {
		t.Errorf("GET a missing maintenance file: %d, want 404", st)
	}

	// forward_auth: refused without the key (the auth server's answer, the tool never reached), let
	// through with it, the user header copied from the auth server's answer.
	if st, body := get("/tools/report", nil); st != http.StatusUnauthorized || !strings.Contains(body, "who are you?") {
		t.Errorf("GET /tools/report without a key: %d %q, want the auth server's 401", st, body)
	}
	if n := toolCalls.Load(); n != 0 {
		t.Errorf("the tool was reached %d times without authorization", n)
	}
	st, body := get("/tools/report", http.Header{"X-Api-Key": {"open-sesame"}})
	if st != http.StatusOK || body != "tool /tools/report for alice" {
		t.Errorf("GET /tools/report with the key: %d %q, want the tool's answer for alice", st, body)
	}
	if n := authCalls.Load(); n != 2 {
		t.Errorf("the auth server was asked %d times, want 2", n)
	}

	// The hub beside them: its pages, its API, and /user/<name>/ of a server that is not running,
	// which the jupyterhub handler sends to the hub.
	if st, body := get("/hub/login", nil); st != http.StatusOK || !strings.Contains(body, "<form") {
		t.Errorf("GET /hub/login: %d, want the login form: %.300s", st, body)
	}
	st, body = get("/hub/api", nil)
	var version struct{ Version string }
	if st != http.StatusOK || json.Unmarshal([]byte(body), &version) != nil || version.Version == "" {
		t.Errorf("GET /hub/api: %d %q, want the hub's version", st, body)
	}
	resp, err := Client().Get(URL(public, "/user/alice/lab"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if loc := resp.Header.Get("Location"); resp.StatusCode != http.StatusFound || !strings.HasPrefix(loc, "/hub/user/alice/") {
		t.Errorf("GET /user/alice/lab with no server: %d Location %q, want 302 to /hub/user/alice/…", resp.StatusCode, loc)
	}
}
