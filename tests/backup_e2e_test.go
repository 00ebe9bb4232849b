package tests

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestBackupRestoreE2E: `caddy jupyterhub backup` takes a snapshot of a running hub while API
// writes keep coming; `caddy jupyterhub restore` refuses a non-empty data_dir and fills a new one;
// a new hub started on it (the old one stopped, users' servers still running) serves every user,
// token and running server of the snapshot, and every user whose creation was acknowledged before
// the backup began.
func TestBackupRestoreE2E(t *testing.T) {
	e := startAPIHub(t, "")
	t.Cleanup(func() { endHubProcesses(t, e.hubAPI) })

	users := []string{"ann", "ben", "cat", "dan"}
	tokens := map[string]string{}
	for _, u := range users {
		if code, b := e.request("POST", "/hub/api/users/"+u, e.adminToken, ""); code != 201 {
			t.Fatalf("creating %s: %d %s", u, code, b)
		}
		code, b := e.request("POST", "/hub/api/users/"+u+"/tokens", e.adminToken, `{"note": "backup test"}`)
		var tok struct{ Token string }
		if code != 201 || json.Unmarshal(b, &tok) != nil || tok.Token == "" {
			t.Fatalf("token for %s: %d %s", u, code, b)
		}
		tokens[u] = tok.Token
	}
	running := users[:3]
	for _, u := range running {
		if code, b := e.request("POST", "/hub/api/users/"+u+"/server", e.adminToken, ""); code != 201 && code != 202 {
			t.Fatalf("starting %s's server: %d %s", u, code, b)
		}
	}
	ready := func(e *apiE2E, u string) bool {
		code, b := e.request("GET", "/hub/api/users/"+u, e.adminToken, "")
		var m struct {
			Servers map[string]struct{ Ready bool } `json:"servers"`
		}
		return code == 200 && json.Unmarshal(b, &m) == nil && m.Servers[""].Ready
	}
	waitFor(t, "the servers to be ready", 60*time.Second, func() bool {
		for _, u := range running {
			if !ready(e, u) {
				return false
			}
		}
		return true
	})

	// Write load: users created one after another through the API until told to stop.
	var mu sync.Mutex
	var acked []string
	stop := make(chan struct{})
	loadDone := make(chan struct{})
	go func() {
		defer close(loadDone)
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			name := fmt.Sprintf("load%04d", i)
			code, _, err := tryRequest(e, "POST", "/hub/api/users/"+name, e.adminToken)
			if err == nil && code == 201 {
				mu.Lock()
				acked = append(acked, name)
				mu.Unlock()
			}
		}
	}()
	waitFor(t, "some load", 30*time.Second, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(acked) >= 10
	})
	mu.Lock()
	before := append([]string(nil), acked...)
	mu.Unlock()
	file := filepath.Join(e.dir, "hub.backup")
	out, err := RunCaddy(t, e.dir, "jupyterhub", "backup", file, "--config", e.inst.ConfigFile(), "--adapter", "caddyfile")
	if err != nil {
		t.Fatalf("backup: %v\n%s", err, out)
	}
	// Let a few more writes land after the backup, then stop the load.
	mu.Lock()
	after := len(acked)
	mu.Unlock()
	waitFor(t, "writes after the backup", 30*time.Second, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(acked) >= after+5
	})
	close(stop)
	<-loadDone
	if fi, err := os.Stat(file); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("backup file: %v %v", fi, err)
	}
	t.Logf("backup under load: %d users acknowledged before it began, %d in all; %s", len(before), len(acked), strings.TrimSpace(out))

	// The old hub stops (users' servers keep running); restore refuses its non-empty data_dir.
	e.inst.Stop()
	if out, err := RunCaddy(t, e.dir, "jupyterhub", "restore", file, "--data-dir", filepath.Join(e.dir, "data")); err == nil || !strings.Contains(out, "not empty") {
		t.Fatalf("restore into a non-empty data_dir: %v\n%s", err, out)
	}
	newData := filepath.Join(t.TempDir(), "data")
	if out, err := RunCaddy(t, e.dir, "jupyterhub", "restore", file, "--data-dir", newData); err != nil {
		t.Fatalf("restore: %v\n%s", err, out)
	}

	// A new hub on the restored data_dir, same configuration otherwise (cookie secret included).
	cfg := apiReadConfig(t, e.inst)
	old := "data_dir " + filepath.Join(e.dir, "data")
	if !strings.Contains(cfg, old) {
		t.Fatalf("no %q in the config", old)
	}
	cfg = strings.Replace(cfg, old, "data_dir "+newData, 1)
	n := &apiE2E{t: t, dir: t.TempDir(), public: e.public, proxyAPI: e.proxyAPI, hubAPI: e.hubAPI, adminToken: e.adminToken}
	n.inst = Start(t, n.dir, cfg)

	for _, u := range before {
		if code, b := n.request("GET", "/hub/api/users/"+u, n.adminToken, ""); code != 200 {
			t.Fatalf("user %s, acknowledged before the backup, after restore: %d %s", u, code, b)
		}
	}
	// Acknowledged after the backup had finished: not in the snapshot (the new hub serves the
	// restored copy, not the old data_dir).
	if code, _ := n.request("GET", "/hub/api/users/"+acked[len(acked)-1], n.adminToken, ""); code != 404 {
		t.Errorf("user %s, created after the backup, after restore: %d, want 404", acked[len(acked)-1], code)
	}
	for _, u := range users {
		code, b := n.request("GET", "/hub/api/user", tokens[u], "")
		var who struct{ Name string }
		if code != 200 || json.Unmarshal(b, &who) != nil || who.Name != u {
			t.Fatalf("%s's token after restore: %d %s", u, code, b)
		}
	}
	for _, u := range running {
		if !ready(n, u) {
			t.Errorf("%s's server is not ready after restore", u)
		}
		if body := WaitHTTP(t, URL(n.public, "/user/"+u+"/"), 200, 20*time.Second); body != "user server" {
			t.Errorf("%s's server through the restored hub: %q", u, body)
		}
	}
	if ready(n, users[3]) {
		t.Errorf("%s had no server in the snapshot but has one after restore", users[3])
	}
}

// tryRequest is apiE2E.request returning transport errors instead of failing the test (for use
// from a goroutine).
func tryRequest(e *apiE2E, method, path, token string) (int, []byte, error) {
	req, err := http.NewRequest(method, URL(e.public, path), nil)
	if err != nil {
		return 0, nil, err
	}
	if token != "" {
		req.Header.Set("Authorization", "token "+token)
	}
	resp, err := Client().Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}
