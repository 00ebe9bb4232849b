package localprocess

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"

	"github.com/caddyhub/caddyhub/spawners"
)

const singleuser = "/usr/bin/jupyterhub-singleuser"

// TestRealSingleuserAsUser starts the real jupyterhub-singleuser as a
// throwaway account against a stub hub API and checks whose process it is.
func TestRealSingleuserAsUser(t *testing.T) {
	requireRoot(t)
	if _, err := os.Stat(singleuser); err != nil {
		if os.Getenv("HUB_REQUIRE_E2E") == "1" {
			t.Fatalf("%s is missing (apt-get install jupyterhub): %v", singleuser, err)
		}
		t.Skipf("%s is missing: %v", singleuser, err)
	}
	hub := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-JupyterHub-Version", "3.0.0")
		_, _ = w.Write([]byte(`{"version": "3.0.0"}`))
	}))
	defer hub.Close()
	u, _ := throwawayUser(t, true)
	s := newSpawner(t, func(s *Spawner) {
		s.Cmd = []string{singleuser}
		s.HTTPTimeout = caddy.Duration(90 * time.Second)
		s.StartTimeout = caddy.Duration(120 * time.Second)
	})
	req := newRequest(t, u.Username)
	req.Env = map[string]string{
		"JUPYTERHUB_API_TOKEN":          "0123456789abcdef0123456789abcdef",
		"JUPYTERHUB_CLIENT_ID":          "jupyterhub-user-" + u.Username,
		"JUPYTERHUB_API_URL":            hub.URL + "/hub/api",
		"JUPYTERHUB_OAUTH_CALLBACK_URL": req.ServicePrefix + "oauth_callback",
	}
	srv, err := spawners.StartAndWait(context.Background(), s, req, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Stop(context.Background(), srv.State) })
	var st struct {
		PID int `json:"pid"`
	}
	if err := json.Unmarshal(srv.State, &st); err != nil {
		t.Fatal(err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	if got := procUID(t, st.PID); got != uid {
		t.Errorf("jupyterhub-singleuser runs as uid %d, want %d", got, uid)
	}
	if err := s.Stop(context.Background(), srv.State); err != nil {
		t.Fatal(err)
	}
	if alive(st.PID) {
		t.Fatal("jupyterhub-singleuser survived Stop")
	}
}

// procUID returns the real uid of a process from /proc/<pid>/status.
func procUID(t *testing.T, pid int) int {
	t.Helper()
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) > 1 && f[0] == "Uid:" {
			n, _ := strconv.Atoi(f[1])
			return n
		}
	}
	t.Fatalf("no Uid line in /proc/%d/status", pid)
	return -1
}
