package tests

// End to end: a spawn in flight when the hub is killed with SIGKILL (issue #3 item 8). The simple
// spawner runs the test server held back by -wait-file, so the process exists but does not answer;
// caddy is killed; the restarted hub adopts that very process as a pending spawn, routes it once it
// answers, and stops it through the API.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/caddyhub/caddyhub/spawners/spawnertest"
)

// inflightServer is what the test reads of alice's default server in the user model.
type inflightServer struct {
	Pending any  `json:"pending"`
	Ready   bool `json:"ready"`
	State   struct {
		PID int `json:"pid"`
	} `json:"state"`
}

// inflightUserServer returns alice's default server from GET /hub/api/users/alice, nil when none.
func inflightUserServer(t *testing.T, public int, token string) *inflightServer {
	t.Helper()
	code, body := GetJSON(t, URL(public, "/hub/api/users/alice"), token)
	if code != http.StatusOK {
		t.Fatalf("GET /hub/api/users/alice: %d %s", code, body)
	}
	var u struct {
		Servers map[string]*inflightServer `json:"servers"`
	}
	if err := json.Unmarshal(body, &u); err != nil {
		t.Fatalf("user model %s: %v", body, err)
	}
	return u.Servers[""]
}

func TestInflightSpawnSurvivesKill9(t *testing.T) {
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		if RequireE2E() {
			t.Fatalf("no /proc (HUB_REQUIRE_E2E=1): %v", err)
		}
		t.Skipf("no /proc: %v", err)
	}
	testserver, err := spawnertest.Build(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	gate := filepath.Join(dir, "gate")
	public, hubAPI, proxyAPI := FreePort(t), FreePort(t), FreePort(t)
	token := RandomHex(t, 16)
	cfg := fmt.Sprintf(`{
	grace_period 2s
	jupyterhub {
		data_dir %[1]s/data
		proxy_api 127.0.0.1:%[3]d
		hub_api 127.0.0.1:%[4]d
		cookie_secret_file %[1]s/cookie_secret
		authenticator dummy {
			password s3cret-pass
		}
		spawner simple {
			cmd %[6]s -wait-file=%[7]s
			start_timeout 120s
			http_timeout 90s
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
`, dir, public, proxyAPI, hubAPI, token, testserver, gate)
	t.Cleanup(func() {
		for _, pid := range runningServers(t, testserver) {
			_ = syscall.Kill(-pid, syscall.SIGKILL) // each leads its own process group
		}
	})

	inst := Start(t, dir, cfg)
	if code, body := Do(t, "POST", URL(public, "/hub/api/users/alice"), token, nil); code != http.StatusCreated {
		t.Fatalf("creating alice: %d %s", code, body)
	}
	// The start answers only after slow_spawn_timeout (10 s) or never (caddy is killed first): send
	// it in the background and watch the record instead.
	go func() {
		req, _ := http.NewRequest("POST", URL(public, "/hub/api/users/alice/server"), nil)
		req.Header.Set("Authorization", "token "+token)
		c := Client()
		c.Timeout = time.Minute
		if resp, err := c.Do(req); err == nil {
			resp.Body.Close()
		}
	}()
	var pid int
	waitFor(t, "the spawn to record the launched process", 30*time.Second, func() bool {
		s := inflightUserServer(t, public, token)
		if s != nil && s.State.PID > 0 {
			pid = s.State.PID
			if s.Pending != "spawn" || s.Ready {
				t.Fatalf("server record with a pid before it answers: %+v", s)
			}
			return true
		}
		return false
	})
	if !spawnertest.Alive(pid) {
		t.Fatalf("the recorded process %d does not run", pid)
	}

	inst.Kill9()
	if !spawnertest.Alive(pid) {
		t.Fatalf("the server process %d died with caddy", pid)
	}
	inst2 := Start(t, dir, cfg)
	// Still held back: the restarted hub shows a pending spawn, and a second start launches nothing.
	if s := inflightUserServer(t, public, token); s == nil || s.Pending != "spawn" || s.Ready || s.State.PID != pid {
		t.Fatalf("after the restart alice's server is %+v, want pending spawn of pid %d\n%s", s, pid, inst2.Log())
	}
	if code, body := Do(t, "POST", URL(public, "/hub/api/users/alice/server"), token, nil); code != http.StatusAccepted {
		t.Fatalf("second start while pending: %d %s, want 202", code, body)
	}
	if pids := runningServers(t, testserver); len(pids) != 1 || pids[0] != pid {
		t.Fatalf("server processes %v, want only %d", pids, pid)
	}

	if err := os.WriteFile(gate, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the adopted server to be ready", 60*time.Second, func() bool {
		s := inflightUserServer(t, public, token)
		return s != nil && s.Ready && s.Pending == nil
	})
	body := WaitHTTP(t, URL(public, "/user/alice/api/status"), http.StatusOK, 20*time.Second)
	var st struct {
		PID  int    `json:"pid"`
		Path string `json:"path"`
	}
	if err := json.Unmarshal([]byte(body), &st); err != nil || st.PID != pid || st.Path != "/user/alice/api/status" {
		t.Fatalf("through the edge /user/alice/ answered %q (%v), want the test server of pid %d", body, err, pid)
	}
	if pids := runningServers(t, testserver); len(pids) != 1 || pids[0] != pid {
		t.Fatalf("server processes after adoption %v, want only %d", pids, pid)
	}
	log, err := os.ReadFile(filepath.Join(dir, "data", "logs", "alice", "server.log"))
	if err != nil {
		t.Fatal(err)
	}
	if n := bytes.Count(log, []byte("] starting ")); n != 1 {
		t.Fatalf("the server log shows %d launches, want 1:\n%s", n, log)
	}

	code, b := Do(t, "DELETE", URL(public, "/hub/api/users/alice/server"), token, nil)
	if code != http.StatusNoContent && code != http.StatusAccepted {
		t.Fatalf("stop: %d %s", code, b)
	}
	waitFor(t, "the adopted process to end", 30*time.Second, func() bool { return !spawnertest.Alive(pid) })
	waitFor(t, "the server to be recorded stopped", 30*time.Second, func() bool {
		s := inflightUserServer(t, public, token)
		return s == nil || (!s.Ready && s.Pending == nil)
	})
	if code, _ := GetJSON(t, URL(public, "/user/alice/api/status"), ""); code == http.StatusOK {
		t.Fatal("/user/alice/ still answers 200 after the stop")
	}
}

// runningServers lists the live test-server processes.
func runningServers(t *testing.T, exe string) []int {
	t.Helper()
	pids, err := spawnertest.Running(exe)
	if err != nil {
		t.Fatal(err)
	}
	return pids
}
