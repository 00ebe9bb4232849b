package web

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/caddyhub/caddyhub/hubapp/store"
)

// TestNamedServerNamesAPI: a new named server with a name JupyterHub 6.0 refuses gets a 400 JSON
// error saying why, through the REST API and the spawn page; a server stored under such a name
// before (older hub) still starts.
func TestNamedServerNamesAPI(t *testing.T) {
	h := newTestHub(t, newFakeSpawner(), func(a *testApp) { a.AllowNamedServers = true })
	mustUser(t, h, "alice", false)
	tok := userToken(t, h, "alice")
	rec := apiDo(t, h, "POST", "/hub/api/users/alice/servers/My_Lab", tok, "")
	var m struct {
		Status  int    `json:"status"`
		Message string `json:"message"`
	}
	if rec.Code != http.StatusBadRequest || json.Unmarshal(rec.Body.Bytes(), &m) != nil || m.Status != 400 || !strings.Contains(m.Message, `Invalid server_name "My_Lab": must start with a lowercase letter`) {
		t.Fatalf("POST servers/My_Lab: %d %s", rec.Code, rec.Body)
	}
	if getServer(t, h, "alice", "My_Lab") != nil {
		t.Error("a refused name left a server record")
	}
	if err := h.store.Update(func(tx *store.Txn) error { return tx.PutServer(&store.Server{User: "alice", Name: "Old_One"}) }); err != nil {
		t.Fatal(err)
	}
	if rec := apiDo(t, h, "POST", "/hub/api/users/alice/servers/Old_One", tok, ""); rec.Code/100 != 2 {
		t.Errorf("an existing server with an old-style name does not start: %d %s", rec.Code, rec.Body)
	}
	waitIdle(t, h, "alice", "Old_One")
}

// TestHomeNamedServerLimit: home shows the default server's last activity, each named server's,
// the limit and how many are used, and no create form at the limit; the spawn page answers a
// refused name with 400 and the reason.
func TestHomeNamedServerLimit(t *testing.T) {
	wh := newWebHub(t, false, func(a *testApp) { a.AllowNamedServers = true; a.NamedServerLimitPerUser = 2 })
	c := wh.client(t)
	wh.mustLogin(t, c, "alice")
	active := time.Date(2026, 11, 30, 9, 15, 0, 0, time.UTC)
	wh.setServer(t, &store.Server{User: "alice", Name: "", LastActivity: active})
	wh.setServer(t, &store.Server{User: "alice", Name: "gpu", UserOptions: map[string]any{"profile": "gpu-large"}})
	home := wh.do(t, c, "GET", "/hub/home", nil)
	for _, want := range []string{
		"Last activity: 2026-11-30 09:15 UTC",
		"gpu <span class=\"muted\">(gpu-large)</span>",
		"You have 1 of at most 2 named servers.",
		`id="new-server"`,
		`pattern="[a-z][a-z0-9\-]{0,29}"`,
	} {
		if !strings.Contains(home.body, want) {
			t.Errorf("home lacks %s", want)
		}
	}
	wh.setServer(t, &store.Server{User: "alice", Name: "cpu"})
	home = wh.do(t, c, "GET", "/hub/home", nil)
	if !strings.Contains(home.body, "You have 2 of at most 2 named servers.") || strings.Contains(home.body, `id="new-server"`) {
		t.Errorf("home at the limit still offers to create a server:\n%s", home.body)
	}
	tok := xsrfOf(t, home.body)
	r := wh.do(t, c, "POST", "/hub/spawn/alice/Bad_Name", map[string][]string{"_xsrf": {tok}})
	if r.status != http.StatusBadRequest || !strings.Contains(r.body, "Invalid server_name") {
		t.Errorf("spawn page with a refused name: %d %s", r.status, r.body)
	}
}
