package tests

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// mountTmpfs mounts a tmpfs of size bytes at dir (created) and unmounts it when the test ends.
// It needs root (CAP_SYS_ADMIN): otherwise the test is skipped, or fails under HUB_REQUIRE_E2E=1.
func mountTmpfs(t *testing.T, dir string, size int64) {
	t.Helper()
	mount := Require(t, "mount")
	umount := Require(t, "umount")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(mount, "-t", "tmpfs", "-o", fmt.Sprintf("size=%d,mode=0700", size), "tmpfs", dir).CombinedOutput()
	if err != nil {
		if RequireE2E() {
			t.Fatalf("mounting a tmpfs at %s (needs root; HUB_REQUIRE_E2E=1): %v\n%s", dir, err, out)
		}
		t.Skipf("cannot mount a tmpfs (needs root): %v %s", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command(umount, dir).CombinedOutput(); err != nil {
			t.Logf("umount %s: %v %s; detaching it lazily", dir, err, out)
			_ = exec.Command(umount, "-l", dir).Run()
		}
	})
}

// fillDisk writes path until the filesystem refuses another byte (ENOSPC) and returns its size.
func fillDisk(t *testing.T, path string) int64 {
	t.Helper()
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var n int64
	for _, chunk := range []int{1 << 20, 4 << 10, 1} {
		buf := make([]byte, chunk)
		for {
			m, err := f.Write(buf)
			n += int64(m)
			if errors.Is(err, syscall.ENOSPC) {
				break
			}
			if err != nil {
				t.Fatalf("filling the disk: %v", err)
			}
		}
	}
	return n
}

// TestDiskFullE2E: the hub's data_dir is a small tmpfs filled to the brim. API writes answer 503
// with a JSON message, logins and spawns fail cleanly (no process, no route), proxy API changes
// answer 503, while reads, token authentication and proxying keep working, and the log says once
// that the disk is full. Once the filler is deleted, writes succeed again without a restart, and
// after a restart every write acknowledged before, during and after the episode is there.
func TestDiskFullE2E(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	mountTmpfs(t, data, 64<<20)
	proxyToken := RandomHex(t, 16)
	e := startAPIHubIn(t, dir, "proxy_auth_token "+proxyToken)
	t.Cleanup(func() { endHubProcesses(t, e.hubAPI) })

	// Before: a user with a token and a running server, another user without one, a CHP route.
	for _, u := range []string{"ann", "bob"} {
		if code, b := e.request("POST", "/hub/api/users/"+u, e.adminToken, ""); code != 201 {
			t.Fatalf("creating %s: %d %s", u, code, b)
		}
	}
	code, b := e.request("POST", "/hub/api/users/ann/tokens", e.adminToken, `{}`)
	var tok struct{ Token string }
	if code != 201 || json.Unmarshal(b, &tok) != nil || tok.Token == "" {
		t.Fatalf("ann's token: %d %s", code, b)
	}
	if code, b := e.request("POST", "/hub/api/users/ann/server", e.adminToken, ""); code != 201 && code != 202 {
		t.Fatalf("starting ann's server: %d %s", code, b)
	}
	waitFor(t, "ann's server", 60*time.Second, func() bool { return serverReady(e, "ann") })
	proxyAPI := func(method, key string, body string) int {
		var data []byte
		if body != "" {
			data = []byte(body)
		}
		code, _ := Do(t, method, URL(e.proxyAPI, "/api/routes"+key), proxyToken, data)
		return code
	}
	if code := proxyAPI("POST", "/extra/one", `{"target": "http://127.0.0.1:9"}`); code != 201 {
		t.Fatalf("adding a route: %d", code)
	}

	filler := filepath.Join(data, "filler")
	n := fillDisk(t, filler)
	t.Logf("filler: %d bytes", n)

	// Writes: 503 with a JSON message, every time.
	for i := range 3 {
		code, b := e.request("POST", fmt.Sprintf("/hub/api/users/full%d", i), e.adminToken, "")
		var msg struct {
			Status  int
			Message string
		}
		if code != 503 || json.Unmarshal(b, &msg) != nil || msg.Status != 503 || !strings.Contains(msg.Message, "disk is full") {
			t.Fatalf("creating a user on a full disk: %d %s", code, b)
		}
	}
	if code := proxyAPI("POST", "/extra/two", `{"target": "http://127.0.0.1:9"}`); code != 503 {
		t.Errorf("adding a route on a full disk: %d, want 503", code)
	}
	// A spawn fails at once, leaving no process and no route.
	if code, b := e.request("POST", "/hub/api/users/bob/server", e.adminToken, ""); code != 503 {
		t.Errorf("spawning on a full disk: %d %s", code, b)
	}
	if serverReady(e, "bob") {
		t.Errorf("bob's server is ready after a spawn refused for a full disk")
	}
	if code, _ := GetJSON(t, URL(e.proxyAPI, "/api/routes/user/bob"), proxyToken); code != 404 {
		t.Errorf("bob's route after a refused spawn: %d, want 404", code)
	}
	// A login fails with a page that says why.
	br := newHubBrowser(t, URL(e.public, ""))
	_, page := br.do("GET", "/hub/login", nil, nil)
	resp, body := br.do("POST", "/hub/login", url.Values{"username": {"ann"}, "password": {"s3cret-pass"}, "_xsrf": {hubFormXSRF(t, page)}}, nil)
	if resp.StatusCode != 503 || !strings.Contains(body, "disk is full") {
		t.Errorf("login on a full disk: %d %.300s", resp.StatusCode, body)
	}

	// Reads, token authentication and proxying go on.
	if code, b := e.request("GET", "/hub/api/users/ann", e.adminToken, ""); code != 200 {
		t.Errorf("reading a user on a full disk: %d %s", code, b)
	}
	if code, b := e.request("GET", "/hub/api/user", tok.Token, ""); code != 200 || !strings.Contains(string(b), `"ann"`) {
		t.Errorf("ann's token on a full disk: %d %s", code, b)
	}
	if code, _ := GetJSON(t, URL(e.proxyAPI, "/api/routes"), proxyToken); code != 200 {
		t.Errorf("listing routes on a full disk: %d", code)
	}
	for range 3 {
		if body := WaitHTTP(t, URL(e.public, "/user/ann/lab"), 200, 10*time.Second); body != "user server" {
			t.Errorf("ann's server through the proxy on a full disk: %q", body)
		}
	}
	if got := strings.Count(e.inst.Log(), "disk full:"); got != 1 {
		t.Errorf("%d 'disk full' lines in the log, want 1:\n%s", got, e.inst.Log())
	}

	// Space returns: writes work again, no restart.
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	if code, b := e.request("POST", "/hub/api/users/cat", e.adminToken, ""); code != 201 {
		t.Fatalf("creating a user after space returned: %d %s", code, b)
	}
	if code := proxyAPI("POST", "/extra/two", `{"target": "http://127.0.0.1:9"}`); code != 201 {
		t.Errorf("adding a route after space returned: %d", code)
	}
	br.login("ann", "s3cret-pass")
	if !strings.Contains(e.inst.Log(), "disk space is back") {
		t.Errorf("no recovery line in the log")
	}

	// A restart on the same data_dir: every acknowledged write is there, nothing refused is.
	e.inst.Stop()
	e.inst = Start(t, dir, apiReadConfig(t, e.inst))
	for _, u := range []string{"ann", "bob", "cat"} {
		if code, b := e.request("GET", "/hub/api/users/"+u, e.adminToken, ""); code != 200 {
			t.Errorf("user %s after the restart: %d %s", u, code, b)
		}
	}
	if code, _ := e.request("GET", "/hub/api/users/full0", e.adminToken, ""); code != 404 {
		t.Errorf("a user refused on the full disk exists after the restart: %d", code)
	}
	for _, key := range []string{"/extra/one", "/extra/two"} {
		if code, _ := GetJSON(t, URL(e.proxyAPI, "/api/routes"+key), proxyToken); code != 200 {
			t.Errorf("route %s after the restart: %d", key, code)
		}
	}
	if !serverReady(e, "ann") {
		t.Errorf("ann's server is not ready after the restart")
	}
}

// serverReady reports whether user's default server is ready according to the REST API.
func serverReady(e *apiE2E, user string) bool {
	code, b := e.request("GET", "/hub/api/users/"+user, e.adminToken, "")
	var m struct {
		Servers map[string]struct{ Ready bool } `json:"servers"`
	}
	return code == http.StatusOK && json.Unmarshal(b, &m) == nil && m.Servers[""].Ready
}
