package web

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"

	"github.com/caddyserver/caddy/v2"

	"github.com/caddyhub/caddyhub/auth"
	"github.com/caddyhub/caddyhub/auth/dummy"
)

// TestUsernameMapChainAPI: with username_map a→b, b→c the REST API applies the map once, as
// JupyterHub does: names in a bulk creation are login names ("A" is user b, "b" is user c), while a
// name in the path or a new name in a rename already is a user name and is not normalized a second
// time (user b can be created and a user renamed to b, although normalizing "b" gives "c"); "a",
// which no login produces, is refused.
func TestUsernameMapChainAPI(t *testing.T) {
	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	t.Cleanup(cancel)
	d := &dummy.Dummy{Options: auth.Options{UsernameMap: map[string]string{"a": "b", "b": "c"}}}
	if err := d.Provision(ctx); err != nil {
		t.Fatal(err)
	}
	h := newAPIHub(t, func(a *testApp) { a.authenticator = d })
	h.user("admin", true)
	admin := h.token("admin")
	for _, step := range []struct {
		method, path, body string
		want               int
	}{
		{"POST", "/hub/api/users/b", "", http.StatusCreated},
		{"POST", "/hub/api/users/a", "", http.StatusBadRequest},
		{"POST", "/hub/api/users", `{"usernames": ["A"]}`, http.StatusConflict}, // login "A" is user b, which exists
		{"POST", "/hub/api/users", `{"usernames": ["b"]}`, http.StatusCreated},  // login "b" is user c
		{"GET", "/hub/api/users/c", "", http.StatusOK},
		{"DELETE", "/hub/api/users/b", "", http.StatusNoContent},
		{"PATCH", "/hub/api/users/c", `{"name": "b"}`, http.StatusOK},
		{"PATCH", "/hub/api/users/b", `{"name": "a"}`, http.StatusBadRequest},
		{"GET", "/hub/api/users/b", "", http.StatusOK},
	} {
		rec := apiFuzzDo(h.Hub, step.method, step.path, admin, step.body)
		if rec.Code != step.want {
			t.Fatalf("%s %s %s: %d %s, want %d", step.method, step.path, step.body, rec.Code, rec.Body, step.want)
		}
		if step.want == http.StatusCreated && step.body != "" {
			var created []struct{ Name string }
			if err := json.Unmarshal(rec.Body.Bytes(), &created); err != nil || len(created) != 1 || created[0].Name != "c" {
				t.Fatalf("bulk creation of login b made %s, want user c", rec.Body)
			}
		}
	}
}
