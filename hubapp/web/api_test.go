package web

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddyhub/caddyhub/hubapp/store"
)

// apiFixture: admin (admin), alice, bob (group staff), carol; tokens with the token role.
type apiFixture struct {
	*apiHub
	admin, alice, bob string
}

func newAPIFixture(t *testing.T, mutate func(a *testApp)) *apiFixture {
	h := newAPIHub(t, mutate)
	h.user("admin", true)
	h.user("alice", false)
	h.user("bob", false, "staff")
	h.user("carol", false)
	return &apiFixture{apiHub: h, admin: h.token("admin"), alice: h.token("alice"), bob: h.token("bob")}
}

// TestAPIConformance walks the endpoints in order: success, each error, error shape and messages.
func TestAPIConformance(t *testing.T) {
	var shutdowns atomic.Int32
	old := apiShutdownSignal
	apiShutdownSignal = func() { shutdowns.Add(1) }
	t.Cleanup(func() { apiShutdownSignal = old })

	f := newAPIFixture(t, func(a *testApp) {
		a.Services = []*Service{{Name: "cull", APIToken: "cull-token-123", Admin: false, URL: "http://127.0.0.1:10101", OAuthClientID: "service-cull"}}
	})
	if err := f.startAPI(); err != nil {
		t.Fatal(err)
	}
	huge := `{"usernames": ["` + strings.Repeat("x", 2<<20) + `"]}`
	for _, tt := range []struct {
		name         string
		method, path string
		token, body  string
		header       map[string]string
		want         int
		msg          string // substring of the error message
	}{
		// Users.
		{"list users", "GET", "/hub/api/users", f.admin, "", nil, 200, ""},
		{"list users without credentials", "GET", "/hub/api/users", "", "", nil, 403, "Missing or invalid credentials."},
		{"list users with a bad token", "GET", "/hub/api/users", "not-a-token-at-all", "", nil, 403, "Missing or invalid credentials."},
		{"list users as a user", "GET", "/hub/api/users", f.alice, "", nil, 403, "requires any of [list:users]"},
		{"bad state filter", "GET", "/hub/api/users?state=bogus", f.admin, "", nil, 400, "Unrecognized state filter"},
		{"bad offset", "GET", "/hub/api/users?offset=x", f.admin, "", nil, 400, "offset and limit must be integers"},
		{"bad limit", "GET", "/hub/api/users?limit=1.5", f.admin, "", nil, 400, "offset and limit must be integers"},
		{"bad sort", "GET", "/hub/api/users?sort=age", f.admin, "", nil, 400, "sort must be one of"},
		{"create users", "POST", "/hub/api/users", f.admin, `{"usernames": ["dave", "Erin"]}`, nil, 201, ""},
		{"create existing users", "POST", "/hub/api/users", f.admin, `{"usernames": ["dave", "erin"]}`, nil, 409, "All 2 users already exist"},
		{"create invalid username", "POST", "/hub/api/users", f.admin, `{"usernames": ["a/b"]}`, nil, 400, "Invalid username: a/b"},
		{"create no usernames", "POST", "/hub/api/users", f.admin, `{}`, nil, 400, "Must specify at least one user to create"},
		{"create empty body", "POST", "/hub/api/users", f.admin, ``, nil, 400, "Must specify at least one user to create"},
		{"create bad JSON", "POST", "/hub/api/users", f.admin, `{"usernames": [`, nil, 400, "Invalid JSON in body of request"},
		{"create trailing garbage", "POST", "/hub/api/users", f.admin, `{"usernames": ["x"]} {}`, nil, 400, "Invalid JSON in body of request"},
		{"create invalid UTF-8", "POST", "/hub/api/users", f.admin, "{\"usernames\": [\"\xff\xfe\"]}", nil, 400, "Invalid JSON in body of request"},
		{"create wrong admin type", "POST", "/hub/api/users", f.admin, `{"usernames": ["x"], "admin": "yes"}`, nil, 400, "user.admin must be <class 'bool'>, not: <class 'str'>"},
		{"create unknown key", "POST", "/hub/api/users", f.admin, `{"usernames": ["x"], "shoe_size": 42}`, nil, 400, "Invalid JSON keys"},
		{"create usernames not a list", "POST", "/hub/api/users", f.admin, `{"usernames": "x"}`, nil, 400, "Must specify at least one user"},
		{"create usernames of numbers", "POST", "/hub/api/users", f.admin, `{"usernames": [1]}`, nil, 400, "usernames must be str"},
		{"create body not an object", "POST", "/hub/api/users", f.admin, `["x"]`, nil, 400, "Invalid JSON data"},
		{"create huge body", "POST", "/hub/api/users", f.admin, huge, nil, 413, "larger than"},
		{"create as a user", "POST", "/hub/api/users", f.alice, `{"usernames": ["x"]}`, nil, 403, "requires any of [admin:users]"},
		{"get self", "GET", "/hub/api/users/alice", f.alice, "", nil, 200, ""},
		{"get other user: filtered scope misses", "GET", "/hub/api/users/carol", f.alice, "", nil, 404, "No access to resources or resources not found"},
		{"get unknown user", "GET", "/hub/api/users/nosuch", f.admin, "", nil, 404, "User nosuch not found"},
		{"get user anonymously", "GET", "/hub/api/users/alice", "", "", nil, 403, "Missing or invalid credentials."},
		{"create one user", "POST", "/hub/api/users/frank", f.admin, "", nil, 201, ""},
		{"create one existing user", "POST", "/hub/api/users/frank", f.admin, "", nil, 409, "User frank already exists"},
		{"create one invalid user", "POST", "/hub/api/users/Frank", f.admin, "", nil, 400, "Invalid username: Frank"},
		{"create one with bad body", "POST", "/hub/api/users/gina", f.admin, `{"admin": 1}`, nil, 400, "user.admin must be <class 'bool'>, not: <class 'int'>"},
		{"patch admin", "PATCH", "/hub/api/users/dave", f.admin, `{"admin": true}`, nil, 200, ""},
		{"patch unknown user", "PATCH", "/hub/api/users/nosuch", f.admin, `{"admin": true}`, nil, 404, ""},
		{"patch rename onto existing", "PATCH", "/hub/api/users/erin", f.admin, `{"name": "alice"}`, nil, 400, "User alice already exists, username must be unique"},
		{"patch rename", "PATCH", "/hub/api/users/erin", f.admin, `{"name": "erin2"}`, nil, 200, ""},
		{"patch groups", "PATCH", "/hub/api/users/erin2", f.admin, `{"groups": ["staff"]}`, nil, 200, ""},
		{"patch unknown group", "PATCH", "/hub/api/users/erin2", f.admin, `{"groups": ["nope"]}`, nil, 400, "No such group: nope"},
		{"patch unknown role", "PATCH", "/hub/api/users/erin2", f.admin, `{"roles": ["nope"]}`, nil, 400, "Role nope does not exist"},
		{"patch no body", "PATCH", "/hub/api/users/erin2", f.admin, ``, nil, 400, "Invalid JSON data"},
		{"patch wrong type", "PATCH", "/hub/api/users/erin2", f.admin, `{"auth_state": []}`, nil, 400, "user.auth_state must be <class 'dict'>, not: <class 'list'>"},
		{"delete self", "DELETE", "/hub/api/users/admin", f.admin, "", nil, 400, "Cannot delete yourself!"},
		{"delete user", "DELETE", "/hub/api/users/frank", f.admin, "", nil, 204, ""},
		{"delete deleted user", "DELETE", "/hub/api/users/frank", f.admin, "", nil, 404, ""},
		{"delete as user", "DELETE", "/hub/api/users/carol", f.alice, "", nil, 403, "requires any of [delete:users]"},
		{"get unknown named server", "GET", "/hub/api/users/alice/servers/gpu", f.admin, "", nil, 404, "alice has no server named gpu"},
		{"admin-access is disabled", "POST", "/hub/api/users/alice/admin-access", f.admin, "", nil, 403, "admin access to user servers disabled"},
		// Tokens.
		{"list own tokens", "GET", "/hub/api/users/alice/tokens", f.alice, "", nil, 200, ""},
		{"list tokens of unknown user", "GET", "/hub/api/users/nosuch/tokens", f.admin, "", nil, 404, "No such user: nosuch"},
		{"list other's tokens", "GET", "/hub/api/users/bob/tokens", f.alice, "", nil, 404, "No access to resources"},
		{"create token", "POST", "/hub/api/users/alice/tokens", f.alice, `{"note": "mine", "expires_in": 3600}`, nil, 201, ""},
		{"create token without body", "POST", "/hub/api/users/alice/tokens", f.alice, ``, nil, 201, ""},
		{"create token with expires_in 0", "POST", "/hub/api/users/alice/tokens", f.alice, `{"expires_in": 0}`, nil, 201, ""},
		{"create token with bad expires_in", "POST", "/hub/api/users/alice/tokens", f.alice, `{"expires_in": "soon"}`, nil, 400, "expires_in must be an integer"},
		{"create token with scopes and roles", "POST", "/hub/api/users/alice/tokens", f.alice, `{"scopes": ["read:users"], "roles": ["user"]}`, nil, 400, "Can only assign one of scopes or roles"},
		{"create token with scopes not held", "POST", "/hub/api/users/alice/tokens", f.alice, `{"scopes": ["admin:users"]}`, nil, 400, "Not assigning requested scopes admin:users not held by User alice"},
		{"create token with unknown scope", "POST", "/hub/api/users/alice/tokens", f.alice, `{"scopes": ["make:coffee"]}`, nil, 400, "Unknown scope"},
		{"create token with unknown role", "POST", "/hub/api/users/alice/tokens", f.alice, `{"roles": ["wizard"]}`, nil, 400, "Role(s) not found"},
		{"create token with narrowed scopes", "POST", "/hub/api/users/alice/tokens", f.alice, `{"scopes": ["read:users!user=alice"]}`, nil, 201, ""},
		{"create token for other user", "POST", "/hub/api/users/bob/tokens", f.alice, `{}`, nil, 403, "User bob not found or no permissions to generate tokens"},
		{"create token body not a dict", "POST", "/hub/api/users/alice/tokens", f.alice, `[1]`, nil, 400, "Body must be a JSON dict or empty"},
		{"create token anonymously", "POST", "/hub/api/users/alice/tokens", "", `{}`, nil, 403, ""},
		{"admin creates token for user", "POST", "/hub/api/users/bob/tokens", f.admin, `{}`, nil, 201, ""},
		{"get token with bad id", "GET", "/hub/api/users/alice/tokens/zzz", f.alice, "", nil, 404, "No such token zzz for user alice"},
		{"delete token with bad id", "DELETE", "/hub/api/users/alice/tokens/zzz", f.alice, "", nil, 404, "No such token"},
		// Groups.
		{"list groups", "GET", "/hub/api/groups", f.admin, "", nil, 200, ""},
		{"list groups as user", "GET", "/hub/api/groups", f.alice, "", nil, 403, "requires any of [list:groups]"},
		{"create groups", "POST", "/hub/api/groups", f.admin, `{"groups": ["g1", "g2"], "users": ["alice"]}`, nil, 201, ""},
		{"create existing group", "POST", "/hub/api/groups", f.admin, `{"groups": ["g1"]}`, nil, 409, "Group g1 already exists"},
		{"create group with unknown user", "POST", "/hub/api/groups", f.admin, `{"groups": ["g9"], "users": ["nobody"]}`, nil, 400, "No such user: nobody"},
		{"create no groups", "POST", "/hub/api/groups", f.admin, `{"groups": []}`, nil, 400, "Must specify at least one group to create"},
		{"create group with bad key", "POST", "/hub/api/groups", f.admin, `{"groups": ["g9"], "members": []}`, nil, 400, "Invalid JSON keys"},
		{"create groups as user", "POST", "/hub/api/groups", f.alice, `{"groups": ["g9"]}`, nil, 403, "requires any of [admin:groups]"},
		{"get group", "GET", "/hub/api/groups/g1", f.admin, "", nil, 200, ""},
		{"get unknown group", "GET", "/hub/api/groups/nope", f.admin, "", nil, 404, "No such group: nope"},
		{"create one group", "POST", "/hub/api/groups/g3", f.admin, `{"users": ["bob"]}`, nil, 201, ""},
		{"create one existing group", "POST", "/hub/api/groups/g3", f.admin, ``, nil, 409, "Group g3 already exists"},
		{"add group users", "POST", "/hub/api/groups/g1/users", f.admin, `{"users": ["bob"]}`, nil, 200, ""},
		{"add group users without users", "POST", "/hub/api/groups/g1/users", f.admin, `{}`, nil, 400, "Must specify users to add"},
		{"add unknown group users", "POST", "/hub/api/groups/g1/users", f.admin, `{"users": ["zed"]}`, nil, 400, "No such user: zed"},
		{"add users to unknown group", "POST", "/hub/api/groups/nope/users", f.admin, `{"users": ["bob"]}`, nil, 404, "No such group: nope"},
		{"remove group users", "DELETE", "/hub/api/groups/g1/users", f.admin, `{"users": ["bob"]}`, nil, 200, ""},
		{"remove group users without users", "DELETE", "/hub/api/groups/g1/users", f.admin, `{"users": null}`, nil, 400, "group.users must be <class 'list'>"},
		{"set group properties", "PUT", "/hub/api/groups/g1/properties", f.admin, `{"course": "ds101"}`, nil, 200, ""},
		{"set group properties not a dict", "PUT", "/hub/api/groups/g1/properties", f.admin, `[1]`, nil, 400, "must be a JSON dict"},
		{"delete group", "DELETE", "/hub/api/groups/g3", f.admin, "", nil, 204, ""},
		{"delete deleted group", "DELETE", "/hub/api/groups/g3", f.admin, "", nil, 404, "No such group: g3"},
		// Services.
		{"list services", "GET", "/hub/api/services", f.admin, "", nil, 200, ""},
		{"list services as user", "GET", "/hub/api/services", f.alice, "", nil, 403, "requires any of [list:services]"},
		{"get service", "GET", "/hub/api/services/cull", f.admin, "", nil, 200, ""},
		{"get unknown service", "GET", "/hub/api/services/nope", f.admin, "", nil, 404, "No such service: nope"},
		{"service reads itself", "GET", "/hub/api/user", "cull-token-123", "", nil, 200, ""},
		// Proxy.
		{"get proxy", "GET", "/hub/api/proxy", f.admin, "", nil, 200, ""},
		{"get proxy as user", "GET", "/hub/api/proxy", f.alice, "", nil, 403, "requires any of [proxy]"},
		{"sync proxy", "POST", "/hub/api/proxy", f.admin, "", nil, 200, ""},
		{"patch proxy", "PATCH", "/hub/api/proxy", f.admin, `{"api_url": "http://127.0.0.1:8001"}`, nil, 200, ""},
		{"patch proxy without body", "PATCH", "/hub/api/proxy", f.admin, ``, nil, 400, "need JSON body"},
		{"patch proxy with a list", "PATCH", "/hub/api/proxy", f.admin, `[]`, nil, 400, "Request body must be JSON dict"},
		// Hub.
		{"info", "GET", "/hub/api/info", f.admin, "", nil, 200, ""},
		{"info as user", "GET", "/hub/api/info", f.alice, "", nil, 403, "requires any of [read:hub]"},
		{"health", "GET", "/hub/api/health", "", "", nil, 200, ""},
		{"hub health", "GET", "/hub/health", "", "", nil, 200, ""},
		{"metrics anonymously", "GET", "/hub/metrics", "", "", nil, 403, "Access to metrics requires scope 'read:metrics'"},
		{"metrics", "GET", "/hub/metrics", f.admin, "", nil, 200, ""},
		{"api metrics", "GET", "/hub/api/metrics", f.admin, "", nil, 200, ""},
		{"authorizations/token", "GET", "/hub/api/authorizations/token/" + f.alice, f.admin, "", nil, 200, ""},
		{"authorizations/token unknown", "GET", "/hub/api/authorizations/token/abcdefghijkl", f.admin, "", nil, 404, ""},
		{"authorizations/token without token", "GET", "/hub/api/authorizations/token/" + f.alice, "", "", nil, 403, ""},
		{"authorizations/token POST is gone", "POST", "/hub/api/authorizations/token", f.admin, "", nil, 404, "removed in JupyterHub 2.0"},
		{"authorizations/cookie unknown", "GET", "/hub/api/authorizations/cookie/jupyterhub-hub-login/nonsense", f.admin, "", nil, 404, ""},
		{"shutdown as user", "POST", "/hub/api/shutdown", f.alice, "", nil, 403, "requires any of [shutdown]"},
		{"shutdown with bad servers", "POST", "/hub/api/shutdown", f.admin, `{"servers": "yes"}`, nil, 400, "servers must be true or false"},
		{"shutdown", "POST", "/hub/api/shutdown", f.admin, `{"servers": false, "proxy": false}`, nil, 202, ""},
		// Anything else.
		{"unknown endpoint", "GET", "/hub/api/nope", f.admin, "", nil, 404, "Not Found"},
		{"options", "OPTIONS", "/hub/api/users", "", "", nil, 200, ""},
		{"bearer token", "GET", "/hub/api/users", "", "", map[string]string{"Authorization": "Bearer " + f.admin}, 200, ""},
		{"token in the URL is not accepted", "GET", "/hub/api/users?token=" + f.admin, "", "", nil, 403, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			rec := f.do(apiCall{method: tt.method, path: tt.path, token: tt.token, body: tt.body, header: tt.header})
			if rec.Code != tt.want {
				t.Fatalf("%s %s: %d %s, want %d", tt.method, tt.path, rec.Code, rec.Body.String(), tt.want)
			}
			if strings.HasPrefix(tt.path, "/hub/api/") && rec.Header().Get("X-JupyterHub-Version") == "" {
				t.Errorf("no X-JupyterHub-Version header")
			}
			if rec.Code >= 400 {
				if msg := errorBody(t, rec); !strings.Contains(msg, tt.msg) {
					t.Errorf("message %q, want it to contain %q", msg, tt.msg)
				}
			}
		})
	}
	deadline := time.Now().Add(5 * time.Second)
	for shutdowns.Load() == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if shutdowns.Load() != 1 {
		t.Errorf("shutdown signalled %d times, want 1", shutdowns.Load())
	}
}

// TestAPIModels checks the JSON shapes (docs/protocols.md, "Models") and field filtering by scope.
func TestAPIModels(t *testing.T) {
	f := newAPIFixture(t, nil)
	now := time.Now().UTC()
	f.running("alice", "", now.Add(-time.Hour))

	var full map[string]any
	if code := f.call("GET", "/hub/api/users/alice", f.admin, "", &full); code != 200 {
		t.Fatalf("get alice: %d", code)
	}
	for _, k := range []string{"kind", "name", "admin", "roles", "groups", "server", "pending", "created", "last_activity", "servers", "auth_state"} {
		if _, ok := full[k]; !ok {
			t.Errorf("admin's view of alice lacks %q: %v", k, full)
		}
	}
	if full["server"] != "/user/alice/" {
		t.Errorf("server = %v", full["server"])
	}
	srv := full["servers"].(map[string]any)[""].(map[string]any)
	for _, k := range []string{"name", "last_activity", "started", "pending", "ready", "stopped", "url", "user_options", "progress_url", "state"} {
		if _, ok := srv[k]; !ok {
			t.Errorf("server model lacks %q: %v", k, srv)
		}
	}
	if srv["progress_url"] != "/hub/api/users/alice/server/progress" || srv["ready"] != true || srv["stopped"] != false {
		t.Errorf("server model = %v", srv)
	}
	// The route was just added: its activity is newer than the stored hour-old time.
	la, err := time.Parse("2006-01-02T15:04:05.000000Z", full["last_activity"].(string))
	if err != nil || now.Sub(la) > time.Minute {
		t.Errorf("last_activity = %v (%v), want max(stored, route activity) ≈ now", full["last_activity"], err)
	}
	if !strings.HasSuffix(full["created"].(string), "Z") || len(full["created"].(string)) != len("2006-01-02T15:04:05.000000Z") {
		t.Errorf("created = %v, want ISO 8601 with microseconds and Z", full["created"])
	}

	// A token narrowed to read:users:name sees kind, name, admin only.
	narrow := f.token("admin", "read:users:name")
	var m map[string]any
	if code := f.call("GET", "/hub/api/users/alice", narrow, "", &m); code != 200 {
		t.Fatalf("narrow: %d", code)
	}
	keys := slices.Sorted(mapsKeys(m))
	if !slices.Equal(keys, []string{"admin", "kind", "name"}) {
		t.Errorf("read:users:name view = %v", keys)
	}
	// A user does not see their own auth_state nor spawner state.
	if code := f.call("GET", "/hub/api/users/alice", f.alice, "", &m); code != 200 {
		t.Fatal(code)
	}
	if _, ok := m["auth_state"]; ok {
		t.Errorf("user sees own auth_state")
	}
	if s := m["servers"].(map[string]any)[""].(map[string]any); s["state"] != nil {
		t.Errorf("user sees spawner state: %v", s)
	}

	// Group and token models.
	var g map[string]any
	if f.call("GET", "/hub/api/groups/staff", f.admin, "", &g); g["kind"] != "group" || fmt.Sprint(g["users"]) != "[bob]" || g["properties"] == nil {
		t.Errorf("group model = %v", g)
	}
	var tok map[string]any
	if code := f.call("POST", "/hub/api/users/alice/tokens", f.alice, `{"note": "n", "scopes": ["read:users!user=alice"]}`, &tok); code != 201 {
		t.Fatal(code)
	}
	if tok["user"] != "alice" || tok["note"] != "n" || tok["kind"] != "api_token" || tok["oauth_client"] != "JupyterHub" || tok["token"] == "" {
		t.Errorf("token model = %v", tok)
	}
	if sc := fmt.Sprint(tok["scopes"]); !strings.Contains(sc, "read:users!user=alice") || strings.Contains(sc, "servers") {
		t.Errorf("token scopes = %v", sc)
	}
	secret := tok["token"].(string)
	var me map[string]any
	if code := f.call("GET", "/hub/api/users/alice", secret, "", &me); code != 200 || me["name"] != "alice" {
		t.Errorf("new token cannot read its owner: %d %v", code, me)
	}
	if code := f.call("GET", "/hub/api/users/alice/tokens", secret, "", nil); code != 403 {
		t.Errorf("narrowed token lists tokens: %d", code)
	}
	var one map[string]any
	id := tok["id"].(string)
	if code := f.call("GET", "/hub/api/users/alice/tokens/"+id, f.alice, "", &one); code != 200 || one["id"] != id || one["token"] != nil {
		t.Errorf("get token: %d %v", code, one)
	}
	if code := f.call("GET", "/hub/api/users/bob/tokens/"+id, f.admin, "", nil); code != 404 {
		t.Errorf("token of alice under bob: %d", code)
	}
	if code := f.call("DELETE", "/hub/api/users/alice/tokens/"+id, f.alice, "", nil); code != 204 {
		t.Errorf("delete token: %d", code)
	}
	if code := f.call("GET", "/hub/api/users/alice", secret, "", nil); code != 403 {
		t.Errorf("deleted token still works: %d", code)
	}

	// Services are an object keyed by name (docs/protocols.md, "Surprises"), not a list.
	var svcs map[string]any
	if f.call("GET", "/hub/api/services", f.admin, "", &svcs); svcs == nil {
		t.Errorf("services is not an object")
	}
}

func mapsKeys(m map[string]any) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// TestAPIPagination checks the envelope, the next URL, the legacy 200-item cap and filters.
func TestAPIPagination(t *testing.T) {
	h := newAPIHub(t, nil)
	h.user("admin", true)
	err := h.store.Update(func(tx *store.Txn) error {
		for i := range 250 {
			if err := tx.CreateUser(&store.User{Name: fmt.Sprintf("u%03d", i)}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	admin := h.token("admin")
	h.running("u007", "", time.Now())
	h.running("u017", "", time.Now())
	pag := map[string]string{"Accept": "application/jupyterhub-pagination+json"}

	get := func(path string, header map[string]string) (int, []byte) {
		rec := h.do(apiCall{method: "GET", path: path, token: admin, header: header})
		if rec.Code != 200 {
			t.Fatalf("GET %s: %d %s", path, rec.Code, rec.Body.String())
		}
		return rec.Code, rec.Body.Bytes()
	}
	// Legacy: a bare list, capped at 200.
	code, body := get("/hub/api/users", nil)
	var list []map[string]any
	if code != 200 || json.Unmarshal(body, &list) != nil || len(list) != 200 {
		t.Fatalf("legacy list: %d, %d items", code, len(list))
	}
	_, body = get("/hub/api/users?limit=1000", nil)
	if json.Unmarshal(body, &list); len(list) != 200 {
		t.Fatalf("legacy limit=1000: %d items, want the 200 cap", len(list))
	}
	// Envelope with default limit 50 and next.
	type page struct {
		Items      []map[string]any `json:"items"`
		Pagination struct {
			Offset, Limit, Total int
			Next                 *struct {
				Offset, Limit int
				URL           string
			}
		} `json:"_pagination"`
	}
	var p page
	_, body = get("/hub/api/users?name_filter=u", pag)
	if code != 200 || json.Unmarshal(body, &p) != nil {
		t.Fatalf("page: %d %s", code, body)
	}
	if len(p.Items) != 50 || p.Pagination.Limit != 50 || p.Pagination.Total != 250 || p.Pagination.Next == nil || p.Pagination.Next.Offset != 50 {
		t.Fatalf("first page: %d items, %+v", len(p.Items), p.Pagination)
	}
	if u := p.Pagination.Next.URL; !strings.Contains(u, "offset=50") || !strings.Contains(u, "limit=50") || !strings.Contains(u, "name_filter=u") || !strings.HasPrefix(u, "http://127.0.0.1:8081/hub/api/users?") {
		t.Errorf("next url = %q", u)
	}
	_, body = get("/hub/api/users?offset=240&limit=-20", pag)
	if json.Unmarshal(body, &p); len(p.Items) != 11 || p.Pagination.Next != nil || p.Pagination.Limit != 20 {
		t.Errorf("last page: %d items, %+v", len(p.Items), p.Pagination)
	}
	if p.Items[10]["name"] != "u249" {
		t.Errorf("last item %v", p.Items[10]["name"])
	}
	// Filters.
	_, body = get("/hub/api/users?state=ready", pag)
	if json.Unmarshal(body, &p); p.Pagination.Total != 2 || len(p.Items) != 2 || p.Items[0]["name"] != "u007" {
		t.Errorf("state=ready: %s", body)
	}
	_, body = get("/hub/api/users?state=inactive&limit=1", pag)
	if json.Unmarshal(body, &p); p.Pagination.Total != 249 {
		t.Errorf("state=inactive total %d, want 249", p.Pagination.Total)
	}
	_, body = get("/hub/api/users?name_filter=U01", pag)
	if json.Unmarshal(body, &p); p.Pagination.Total != 10 {
		t.Errorf("name_filter=U01 total %d, want 10 (case-insensitive)", p.Pagination.Total)
	}
	_, body = get("/hub/api/users?sort=-name&limit=1", pag)
	if json.Unmarshal(body, &p); len(p.Items) != 1 || p.Items[0]["name"] != "u249" {
		t.Errorf("sort=-name: %s", body)
	}
	// The admin's token use counts as activity too; u017 was active after u007.
	_, body = get("/hub/api/users?sort=-last_activity&limit=3", pag)
	if json.Unmarshal(body, &p); len(p.Items) != 3 || slices.IndexFunc(p.Items, func(m map[string]any) bool { return m["name"] == "u017" }) > slices.IndexFunc(p.Items, func(m map[string]any) bool { return m["name"] == "u007" }) {
		t.Errorf("sort=-last_activity: %s", body)
	}
	_, body = get("/hub/api/users?sort=id&limit=1&offset=1", pag)
	if json.Unmarshal(body, &p); len(p.Items) != 1 || p.Items[0]["name"] != "u000" {
		t.Errorf("sort=id: %s (admin was created first)", body)
	}
	// Groups and proxy paginate too.
	code, body = get("/hub/api/proxy", pag)
	var pp struct {
		Items      map[string]any      `json:"items"`
		Pagination struct{ Total int } `json:"_pagination"`
	}
	if json.Unmarshal(body, &pp); code != 200 || pp.Pagination.Total != 2 || pp.Items["/user/u007/"] == nil {
		t.Errorf("proxy page: %d %s", code, body)
	}
	code, body = get("/hub/api/groups?limit=5", pag)
	if code != 200 || !strings.Contains(string(body), `"_pagination"`) {
		t.Errorf("groups page: %d %s", code, body)
	}
}

// TestAPIFilteredListing: list:users filtered by group shows only the group's members.
func TestAPIFilteredListing(t *testing.T) {
	f := newAPIFixture(t, func(a *testApp) {
		a.Roles = []*Role{{Name: "teacher", Scopes: []string{"list:users!group=staff", "read:users!group=staff"}, Users: []string{"carol"}}}
	})
	carol := f.token("carol")
	var list []map[string]any
	if code := f.call("GET", "/hub/api/users", carol, "", &list); code != 200 {
		t.Fatalf("teacher lists users: %d", code)
	}
	if len(list) != 1 || list[0]["name"] != "bob" {
		t.Errorf("teacher sees %v, want only bob", list)
	}
	if code := f.call("GET", "/hub/api/users/bob", carol, "", nil); code != 200 {
		t.Errorf("teacher reads bob: %d", code)
	}
	if code := f.call("GET", "/hub/api/users/alice", carol, "", nil); code != 404 {
		t.Errorf("teacher reads alice: %d, want 404", code)
	}
	// A server-filtered list:users must not widen to every user.
	srvOnly := newAPIFixture(t, func(a *testApp) {
		a.Roles = []*Role{{Name: "odd", Scopes: []string{"list:users!server=bob/"}, Users: []string{"carol"}}}
	})
	if code := srvOnly.call("GET", "/hub/api/users", srvOnly.token("carol"), "", nil); code != 403 {
		t.Errorf("list:users!server=… lists users: %d, want 403", code)
	}
}

// TestAPIStateReadyAndDelete: DELETE /users stops servers through the spawn flow first.
func TestAPIDeleteUserStopsServers(t *testing.T) {
	f := newAPIFixture(t, nil)
	f.running("alice", "", time.Now())
	if code := f.call("DELETE", "/hub/api/users/alice", f.admin, "", nil); code != 204 {
		t.Fatalf("delete alice: %d", code)
	}
	if got := f.sp.stopped(); !slices.Contains(got, "alice/") {
		t.Errorf("stops = %v, want alice/", got)
	}
	if f.table.Get("/user/alice") != nil {
		t.Errorf("route of deleted user remains")
	}
	if code := f.call("GET", "/hub/api/users/alice", f.admin, "", nil); code != 404 {
		t.Errorf("deleted user: %d", code)
	}
}

// TestAPIUserIndexFollowsStore: users created or deleted outside the API (logins, pages) appear in
// and vanish from listings served by the in-memory index.
func TestAPIUserIndexFollowsStore(t *testing.T) {
	f := newAPIFixture(t, nil)
	names := func() []string {
		var list []map[string]any
		f.call("GET", "/hub/api/users", f.admin, "", &list)
		var out []string
		for _, m := range list {
			out = append(out, m["name"].(string))
		}
		return out
	}
	if got := names(); !slices.Equal(got, []string{"admin", "alice", "bob", "carol"}) {
		t.Fatalf("users = %v", got)
	}
	if _, err := f.ensureUser("zoe"); err != nil {
		t.Fatal(err)
	}
	if err := f.store.Update(func(tx *store.Txn) error { return tx.DeleteUser("carol") }); err != nil {
		t.Fatal(err)
	}
	want := []string{"admin", "alice", "bob", "zoe"}
	deadline := time.Now().Add(5 * time.Second)
	for !slices.Equal(names(), want) {
		if time.Now().After(deadline) {
			t.Fatalf("users = %v, want %v", names(), want)
		}
		time.Sleep(10 * time.Millisecond)
	}
	// Changes made through the API are visible to the very next request.
	f.call("POST", "/hub/api/users", f.admin, `{"usernames": ["yann"]}`, nil)
	if got := names(); !slices.Contains(got, "yann") {
		t.Errorf("created user missing at once: %v", got)
	}
}

// TestAPIConcurrentClients: many clients creating, reading, listing and deleting at once (run
// with -race) leave a consistent state.
func TestAPIConcurrentClients(t *testing.T) {
	f := newAPIFixture(t, nil)
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			name := fmt.Sprintf("c%02d", i)
			if code := f.call("POST", "/hub/api/users/"+name, f.admin, "", nil); code != 201 {
				t.Errorf("create %s: %d", name, code)
				return
			}
			var tok map[string]any
			if code := f.call("POST", "/hub/api/users/"+name+"/tokens", f.admin, `{}`, &tok); code != 201 {
				t.Errorf("token for %s: %d", name, code)
				return
			}
			secret := tok["token"].(string)
			for range 5 {
				if code := f.call("GET", "/hub/api/users/"+name, secret, "", nil); code != 200 {
					t.Errorf("get %s with own token: %d", name, code)
				}
				if code := f.call("GET", "/hub/api/users?limit=5", f.admin, "", nil); code != 200 {
					t.Errorf("list: %d", code)
				}
			}
			if i%2 == 0 {
				if code := f.call("DELETE", "/hub/api/users/"+name, f.admin, "", nil); code != 204 {
					t.Errorf("delete %s: %d", name, code)
				}
				if code := f.call("GET", "/hub/api/users/"+name, secret, "", nil); code != 403 {
					t.Errorf("token of deleted user %s: %d", name, code)
				}
			}
		}()
	}
	wg.Wait()
	var list []map[string]any
	f.call("GET", "/hub/api/users", f.admin, "", &list)
	if len(list) != 4+10 {
		t.Errorf("%d users after the run, want 14", len(list))
	}
}

// TestAPIBulkChanges: one POST /users may name more users than one store transaction holds (JupyterHub
// takes any number); a change that cannot be split, such as setting a group's members, is refused with
// 413 and a message instead of a 500, and changes nothing.
func TestAPIBulkChanges(t *testing.T) {
	a := newAPIHub(t, nil)
	a.user("root", true)
	tok := a.token("root")
	const n = 12_000 // Badger takes ~6,500 writes per transaction with the store's 4 MiB memtables
	names := make([]string, n)
	for i := range names {
		names[i] = fmt.Sprintf("bulk%05d", i)
	}
	body, _ := json.Marshal(map[string]any{"usernames": names})
	var created []map[string]any
	if code := a.call("POST", "/hub/api/users", tok, string(body), &created); code != 201 || len(created) != n {
		t.Fatalf("creating %d users in one request: %d, %d created", n, code, len(created))
	}
	var listed []map[string]any
	if code := a.call("GET", "/hub/api/users?offset=11990&limit=200", tok, "", &listed); code != 200 || len(listed) != 11 {
		t.Fatalf("listing the end of %d+1 users: %d, %d listed", n, code, len(listed))
	}

	if code := a.call("POST", "/hub/api/groups/everyone", tok, "", nil); code != 201 {
		t.Fatalf("creating a group: %d", code)
	}
	members, _ := json.Marshal(map[string]any{"users": names})
	rec := a.do(apiCall{method: "POST", path: "/hub/api/groups/everyone/users", token: tok, body: string(members)})
	if rec.Code != 413 || !strings.Contains(errorBody(t, rec), "too many records at once") {
		t.Fatalf("adding %d members at once: %d %s", n, rec.Code, rec.Body.String())
	}
	var g struct{ Users []string }
	if code := a.call("GET", "/hub/api/groups/everyone", tok, "", &g); code != 200 || len(g.Users) != 0 {
		t.Fatalf("group after the refused change: %d, %d members", code, len(g.Users))
	}
	var u struct{ Groups []string }
	if code := a.call("GET", "/hub/api/users/bulk00000", tok, "", &u); code != 200 || len(u.Groups) != 0 {
		t.Fatalf("user after the refused change: %d, groups %v", code, u.Groups)
	}
}
