package web

import (
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"
)

func TestAPIVersion(t *testing.T) {
	h := newTestHub(t, newFakeSpawner(), nil)
	for _, p := range []string{"/hub/api", "/hub/api/"} {
		rec := apiDo(t, h, "GET", p, "", "")
		if rec.Code != http.StatusOK || rec.Header().Get("X-JupyterHub-Version") != apiJupyterHubVersion ||
			strings.TrimSpace(rec.Body.String()) != `{"version":"`+apiJupyterHubVersion+`"}` {
			t.Fatalf("GET %s: %d %q %s", p, rec.Code, rec.Header().Get("X-JupyterHub-Version"), rec.Body)
		}
	}
}

func TestWhoamiServerToken(t *testing.T) {
	sp := newFakeSpawner()
	h := newTestHub(t, sp, nil)
	alice := mustUser(t, h, "alice", false)
	if _, err := h.startServer(alice, "", nil); err != nil {
		t.Fatal(err)
	}
	tok := sp.lastRequest().Env["JUPYTERHUB_API_TOKEN"]
	st, m := whoami(t, h, tok)
	scopes := anyList(m["scopes"])
	if st != http.StatusOK || m["name"] != "alice" || m["kind"] != "user" ||
		!slices.Contains(scopes, any("users:activity!user=alice")) || !slices.Contains(scopes, any("access:servers!server=alice/")) {
		t.Fatalf("whoami with the server token: %d %v", st, m)
	}
	if slices.Contains(scopes, any("servers!user=alice")) {
		t.Fatalf("server token holds more than the server role: %v", scopes)
	}
	for _, bad := range []string{"", "0123456789abcdef0123456789abcdef"} {
		rec := apiDo(t, h, "GET", "/hub/api/user", bad, "")
		var body map[string]any
		_ = json.Unmarshal(rec.Body.Bytes(), &body)
		if rec.Code != http.StatusForbidden || body["status"] != float64(403) {
			t.Fatalf("whoami with token %q: %d %s", bad, rec.Code, rec.Body)
		}
	}
	// A user's own full token sees its model with servers.
	st, m = whoami(t, h, userToken(t, h, "alice"))
	servers, _ := m["servers"].(map[string]any)
	if st != http.StatusOK || m["server"] != "/user/alice/" || servers[""] == nil {
		t.Fatalf("whoami with alice's API token: %d %v", st, m)
	}
}
