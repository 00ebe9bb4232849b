package simple

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"

	"github.com/caddyhub/caddyhub/spawners/spawnertest"
)

const singleuser = "/usr/bin/jupyterhub-singleuser"

// TestRealSingleuser starts the real jupyterhub-singleuser (JupyterHub 3.0,
// Debian's package) with the simple spawner against a stub hub API, waits
// for it to answer at its prefix, and stops it.
func TestRealSingleuser(t *testing.T) {
	if _, err := os.Stat(singleuser); err != nil {
		if os.Getenv("HUB_REQUIRE_E2E") == "1" {
			t.Fatalf("%s is missing (apt-get install jupyterhub): %v", singleuser, err)
		}
		t.Skipf("%s is missing: %v", singleuser, err)
	}
	// singleuser checks the hub's version at startup and retries, slowly,
	// while the hub API does not answer.
	hub := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-JupyterHub-Version", "3.0.0")
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"version": "3.0.0"}`))
	}))
	defer hub.Close()

	s := newSpawner(t, func(s *Spawner) {
		s.Cmd = []string{singleuser}
		if os.Geteuid() == 0 {
			s.Args = []string{"--allow-root"} // the simple spawner runs servers as the hub's account
		}
		s.HTTPTimeout = caddy.Duration(90 * time.Second)
		s.StartTimeout = caddy.Duration(120 * time.Second)
		s.TermTimeout = caddy.Duration(10 * time.Second)
	})
	req := newRequest(t, "alice")
	req.Env = map[string]string{
		"JUPYTERHUB_API_TOKEN":           "0123456789abcdef0123456789abcdef",
		"JUPYTERHUB_CLIENT_ID":           "jupyterhub-user-alice",
		"JUPYTERHUB_API_URL":             hub.URL + "/hub/api",
		"JUPYTERHUB_ACTIVITY_URL":        hub.URL + "/hub/api/users/alice/activity",
		"JUPYTERHUB_BASE_URL":            "/",
		"JUPYTERHUB_SERVICE_PREFIX":      "/user/alice/",
		"JUPYTERHUB_OAUTH_CALLBACK_URL":  "/user/alice/oauth_callback",
		"JUPYTERHUB_OAUTH_ACCESS_SCOPES": `["access:servers!server=alice/", "access:servers!user=alice"]`,
		"JUPYTERHUB_USER":                "alice",
		"JUPYTERHUB_SERVER_NAME":         "",
		"JUPYTERHUB_HOST":                "",
	}
	srv, _ := start(t, s, req)
	pid := statePID(t, srv.State)

	// Unauthenticated, the server sends the browser to the hub's OAuth.
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Get(srv.URL + "/user/alice/tree")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if loc := resp.Header.Get("Location"); resp.StatusCode != http.StatusFound || !strings.Contains(loc, "/hub/api/oauth2/authorize") {
		t.Errorf("GET /user/alice/tree: %d to %q, want a redirect to the hub's OAuth", resp.StatusCode, loc)
	}
	if err := s.Stop(context.Background(), srv.State); err != nil {
		t.Fatal(err)
	}
	if spawnertest.Alive(pid) {
		t.Fatal("jupyterhub-singleuser survived Stop")
	}
}
