package web

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/caddyhub/caddyhub/auth"
	"github.com/caddyhub/caddyhub/hubapp/store"
)

// apiFuzzEndpoints are the REST endpoints that read a JSON body; {n} is the fuzzed name.
var apiFuzzEndpoints = []struct{ method, path string }{
	{"POST", "users"},
	{"POST", "users/{n}"},
	{"PATCH", "users/{n}"},
	{"POST", "users/{n}/tokens"},
	{"POST", "groups"},
	{"POST", "groups/{n}"},
	{"POST", "groups/{n}/users"},
	{"DELETE", "groups/{n}/users"},
	{"PUT", "groups/{n}/properties"},
	{"POST", "proxy"},
	{"POST", "users/{n}/server"},
	{"POST", "users/alice/servers/{n}"},
	{"POST", "shares/alice/"},
	{"PATCH", "shares/alice/"},
	{"POST", "share-codes/alice/"},
	{"POST", "users/{n}/admin-access"},
}

// FuzzAPIBody: any JSON (or not) body, sent by an admin to any REST endpoint that reads one, with
// any user, group or server name in the path. The API never answers 5xx; errors are JupyterHub's
// {"status": N, "message": "..."} with N the response status; a 2xx body, when there is one, is
// JSON; and whatever was accepted, the store holds only valid names: every user name is a
// normalized one (normalizing it again changes nothing) and every group name a valid group name.
func FuzzAPIBody(f *testing.F) {
	for i, b := range []string{
		`{"usernames": ["dave", "Erin"]}`, `{"usernames": ["a/b"], "admin": true}`, `{"name": "x", "admin": "yes"}`,
		`{"groups": ["g1"], "roles": ["admin"]}`, `{"note": "n", "expires_in": 60, "scopes": ["read:users"]}`,
		`{"expires_in": -1}`, `{"groups": ["staff", "../x"]}`, `{"users": ["alice", "nosuch"]}`, `{"k": {"v": [1, 2.5e308]}}`,
		`{"routes": {}}`, `{"user_options": {"a": 1}}`, `{"user": "bob"}`, `{"group": "staff", "scopes": ["access:servers"]}`,
		`{"expires_in": 1e400}`, `[]`, `null`, `"x"`, ``, `{"usernames": ["` + strings.Repeat("z", 300) + `"]}`, "{\"name\": \"\xff\"}",
	} {
		f.Add(uint8(i), "alice", b)
		f.Add(uint8(i+3), "İ", b)
	}
	h := newAPIHub(f, nil)
	h.user("admin", true)
	h.user("alice", false, "staff")
	h.user("bob", false)
	admin := h.token("admin")
	fixture := map[string]bool{"admin": true, "alice": true, "bob": true}
	f.Fuzz(func(t *testing.T, ep uint8, name, body string) {
		e := apiFuzzEndpoints[int(ep)%len(apiFuzzEndpoints)]
		if name == "" {
			name = "alice"
		}
		path := "/hub/api/" + strings.ReplaceAll(e.path, "{n}", url.PathEscape(name))
		rec := apiFuzzDo(h.Hub, e.method, path, admin, body)
		switch {
		case rec.Code >= 500:
			t.Fatalf("%s %s %q: %d %s", e.method, path, body, rec.Code, rec.Body)
		case rec.Code >= 400:
			if rec.Code != http.StatusNotFound && rec.Code != http.StatusMethodNotAllowed || rec.Body.Len() > 0 {
				errorBody(t, rec)
			}
		case rec.Body.Len() > 0 && rec.Header().Get("Content-Type") == "application/json" && !json.Valid(rec.Body.Bytes()):
			t.Fatalf("%s %s %q: %d with a body that is not JSON: %q", e.method, path, body, rec.Code, rec.Body)
		}
		var users []*store.User
		var groups []*store.Group
		err := h.store.View(func(tx *store.Txn) error {
			var err error
			if users, err = tx.Users(0, 0); err != nil {
				return err
			}
			groups, err = tx.Groups(0, 0)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		for _, u := range users {
			if n, err := auth.NormalizeUsername(u.Name); err != nil || n != u.Name {
				t.Fatalf("after %s %s %q the store holds user %q (normalizes to %q, %v)", e.method, path, body, u.Name, n, err)
			}
		}
		for _, g := range groups {
			if !validGroupName(g.Name) {
				t.Fatalf("after %s %s %q the store holds group %q", e.method, path, body, g.Name)
			}
		}
		// Keep the hub small: what a run creates is deleted again once it piles up.
		if len(users) > 50 {
			for _, u := range users {
				if !fixture[u.Name] {
					apiFuzzDo(h.Hub, "DELETE", "/hub/api/users/"+url.PathEscape(u.Name), admin, "")
				}
			}
		}
		if len(groups) > 50 {
			for _, g := range groups {
				if g.Name != "staff" {
					apiFuzzDo(h.Hub, "DELETE", "/hub/api/groups/"+url.PathEscape(g.Name), admin, "")
				}
			}
		}
	})
}

// apiFuzzDo sends one API request with a token (apiHub.do calls Helper on the fuzz's *testing.F).
func apiFuzzDo(h *Hub, method, path, token, body string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, "http://127.0.0.1:8081"+path, strings.NewReader(body))
	req.Header.Set("Authorization", "token "+token)
	req.Header.Set("Content-Type", "application/json")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

// TestAPIBodyHugeNumber: a number no float64 holds is refused with 400 before anything is stored, so
// a group keeps answering (FuzzAPIBody found a group whose properties held 1e400 answering 500 on
// every later read).
func TestAPIBodyHugeNumber(t *testing.T) {
	h := newAPIHub(t, nil)
	h.user("admin", true)
	admin := h.token("admin")
	if rec := apiFuzzDo(h.Hub, "POST", "/hub/api/groups/g0", admin, ""); rec.Code != http.StatusCreated {
		t.Fatalf("creating g0: %d %s", rec.Code, rec.Body)
	}
	for _, body := range []string{`{"k": 1e400}`, `{"k": [1, {"v": -1e309}]}`} {
		rec := apiFuzzDo(h.Hub, "PUT", "/hub/api/groups/g0/properties", admin, body)
		if rec.Code != http.StatusBadRequest || !strings.Contains(rec.Body.String(), "out of range") {
			t.Fatalf("PUT properties %s: %d %s, want 400 naming the number out of range", body, rec.Code, rec.Body)
		}
		errorBody(t, rec)
	}
	if rec := apiFuzzDo(h.Hub, "PUT", "/hub/api/groups/g0/properties", admin, `{"k": 1.5e308, "n": 1}`); rec.Code != http.StatusOK {
		t.Fatalf("PUT properties in range: %d %s", rec.Code, rec.Body)
	}
	if rec := apiFuzzDo(h.Hub, "GET", "/hub/api/groups/g0", admin, ""); rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), `"n":1`) {
		t.Fatalf("GET g0 after the refused writes: %d %s", rec.Code, rec.Body)
	}
}
