package web

import (
	"strings"
	"testing"
	"time"

	"github.com/caddyhub/caddyhub/hubapp/store"
)

func TestActivity(t *testing.T) {
	sp := newFakeSpawner()
	h := newTestHub(t, sp, func(a *testApp) { a.AllowNamedServers = true })
	alice := mustUser(t, h, "alice", false)
	mustUser(t, h, "bob", false)
	mustUser(t, h, "root", true)
	admin := userToken(t, h, "root")
	if _, err := h.startServer(alice, "", nil); err != nil {
		t.Fatal(err)
	}
	tok := sp.lastRequest().Env["JUPYTERHUB_API_TOKEN"]
	now := time.Now().UTC()
	ts := now.Add(-time.Minute).Format("2006-01-02T15:04:05.000000Z")
	future := now.Add(2 * time.Hour).Format("2006-01-02T15:04:05.000000Z")
	tests := []struct {
		name, path, token, body string
		want                    int
		msg                     string
	}{
		{"singleuser's body", "/hub/api/users/alice/activity", tok, `{"servers": {"": {"last_activity": "` + ts + `"}}, "last_activity": "` + ts + `"}`, 200, ""},
		{"naive timestamp", "/hub/api/users/alice/activity", tok, `{"last_activity": "2020-01-01T00:00:00"}`, 200, ""},
		{"no token", "/hub/api/users/alice/activity", "", `{"last_activity": "` + ts + `"}`, 403, ""},
		{"other user", "/hub/api/users/bob/activity", tok, `{"last_activity": "` + ts + `"}`, 404, "No access to resources or resources not found"},
		{"empty body", "/hub/api/users/alice/activity", tok, `{}`, 400, "body must contain at least one of `last_activity` or `servers`"},
		{"not a dict", "/hub/api/users/alice/activity", tok, `[1]`, 400, "body must be a json dict"},
		{"invalid json", "/hub/api/users/alice/activity", tok, `{`, 400, "Invalid JSON in body of request"},
		{"bad timestamp", "/hub/api/users/alice/activity", tok, `{"last_activity": "yesterday"}`, 400, "Not a valid timestamp: 'yesterday'"},
		{"unknown user", "/hub/api/users/carol/activity", admin, `{"last_activity": "` + ts + `"}`, 404, "No such user: 'carol'"},
		{"future", "/hub/api/users/alice/activity", tok, `{"last_activity": "` + future + `"}`, 400, "Rejecting activity from more than an hour in the future"},
		{"unknown server", "/hub/api/users/alice/activity", tok, `{"servers": {"gpu": {"last_activity": "` + ts + `"}}}`, 400, "No such server 'gpu' for user alice"},
		{"server without last_activity", "/hub/api/users/alice/activity", tok, `{"servers": {"": {}}}`, 400, "servers must be a dict"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := apiDo(t, h, "POST", tt.path, tt.token, tt.body)
			if rec.Code != tt.want || !strings.Contains(rec.Body.String(), tt.msg) {
				t.Fatalf("got %d %s, want %d %q", rec.Code, rec.Body, tt.want, tt.msg)
			}
		})
	}
	var u *store.User
	if err := h.store.View(func(tx *store.Txn) error { var err error; u, err = tx.User("alice"); return err }); err != nil {
		t.Fatal(err)
	}
	want, _ := time.Parse(time.RFC3339Nano, ts)
	if !u.LastActivity.Equal(want) {
		t.Fatalf("user last_activity = %s, want %s (older timestamps must not move it back)", u.LastActivity, want)
	}
	if s := getServer(t, h, "alice", ""); !s.LastActivity.Equal(want) && s.LastActivity.Before(want) {
		t.Fatalf("server last_activity = %s, want ≥ %s", s.LastActivity, want)
	}
}
