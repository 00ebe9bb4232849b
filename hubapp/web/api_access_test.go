package web

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/caddyhub/caddyhub/hubapp/store"
)

// TestGHSA_9x4q_3gxw_849f: holding admin:users is not being an admin. A non-admin user manager may
// not create admins, grant admin (flag or role) or modify admins.
func TestGHSA_9x4q_3gxw_849f(t *testing.T) {
	f := newAPIFixture(t, func(a *testApp) {
		a.Roles = []*Role{{Name: "user-manager", Scopes: []string{"admin:users"}, Users: []string{"carol"}}}
	})
	carol := f.token("carol")
	for _, tt := range []struct {
		name, method, path, body string
		want                     int
		msg                      string
	}{
		{"set admin on another user", "PATCH", "/hub/api/users/alice", `{"admin": true}`, 403, "Only admins can grant admin permissions"},
		{"set admin on self", "PATCH", "/hub/api/users/carol", `{"admin": true}`, 403, "Only admins can grant admin permissions"},
		{"grant the admin role", "PATCH", "/hub/api/users/carol", `{"roles": ["admin"]}`, 403, "Only admins can grant admin permissions"},
		{"modify an admin", "PATCH", "/hub/api/users/admin", `{"name": "admin2"}`, 403, "Only admins can modify other admins"},
		{"create admins", "POST", "/hub/api/users", `{"usernames": ["evil"], "admin": true}`, 403, "Only admins can grant admin permissions"},
		{"create one admin", "POST", "/hub/api/users/evil", `{"admin": true}`, 403, "Only admins can grant admin permissions"},
		{"grant a role with more scopes than held", "PATCH", "/hub/api/users/alice", `{"roles": ["user-manager", "user"]}`, 200, ""},
		{"still allowed: ordinary change", "PATCH", "/hub/api/users/alice", `{"admin": false}`, 200, ""},
		{"still allowed: create non-admin", "POST", "/hub/api/users", `{"usernames": ["newbie"]}`, 201, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			rec := f.do(apiCall{method: tt.method, path: tt.path, token: carol, body: tt.body})
			if rec.Code != tt.want {
				t.Fatalf("%d %s, want %d", rec.Code, rec.Body.String(), tt.want)
			}
			if tt.msg != "" && !strings.Contains(errorBody(t, rec), tt.msg) {
				t.Errorf("message %q, want %q", rec.Body.String(), tt.msg)
			}
		})
	}
	var alice *store.User
	_ = f.store.View(func(tx *store.Txn) (err error) { alice, err = tx.User("alice"); return })
	if alice.Admin {
		t.Fatalf("alice became an admin")
	}
	// A role holding scopes the requester lacks cannot be handed out either.
	f2 := newAPIFixture(t, func(a *testApp) {
		a.Roles = []*Role{
			{Name: "user-manager", Scopes: []string{"admin:users"}, Users: []string{"carol"}},
			{Name: "proxy-admin", Scopes: []string{"proxy", "shutdown"}},
		}
	})
	rec := f2.do(apiCall{method: "PATCH", path: "/hub/api/users/carol", token: f2.token("carol"), body: `{"roles": ["proxy-admin"]}`})
	if rec.Code != http.StatusForbidden {
		t.Errorf("self-granting proxy-admin: %d %s", rec.Code, rec.Body.String())
	}
}

// TestGHSA_69wv_m5fw_2fhp: filtered admin scopes do not open unfiltered endpoints (create users,
// create groups); listing endpoints narrow to the filter.
func TestGHSA_69wv_m5fw_2fhp(t *testing.T) {
	f := newAPIFixture(t, func(a *testApp) {
		a.Roles = []*Role{{Name: "staff-admin", Scopes: []string{"admin:users!group=staff", "admin:groups!group=staff"}, Users: []string{"carol"}}}
	})
	carol := f.token("carol")
	for _, tt := range []struct {
		name, method, path, body string
		want                     int
	}{
		{"create users", "POST", "/hub/api/users", `{"usernames": ["mallory"]}`, 403},
		{"create groups", "POST", "/hub/api/groups", `{"groups": ["evil"]}`, 403},
		{"create a user outside the filter", "POST", "/hub/api/users/mallory", ``, 404},
		{"modify a member", "PATCH", "/hub/api/users/bob", `{"auth_state": {"k": "v"}}`, 200},
		{"modify a non-member", "PATCH", "/hub/api/users/alice", `{"auth_state": {}}`, 404},
		{"add to own group", "POST", "/hub/api/groups/staff/users", `{"users": ["alice"]}`, 200},
		{"list users", "GET", "/hub/api/users", ``, 200},
		{"list groups", "GET", "/hub/api/groups", ``, 200},
	} {
		t.Run(tt.name, func(t *testing.T) {
			rec := f.do(apiCall{method: tt.method, path: tt.path, token: carol, body: tt.body})
			if rec.Code != tt.want {
				t.Fatalf("%d %s, want %d", rec.Code, rec.Body.String(), tt.want)
			}
		})
	}
	var groups []map[string]any
	f.call("GET", "/hub/api/groups", carol, "", &groups)
	if len(groups) != 1 || groups[0]["name"] != "staff" {
		t.Errorf("filtered group list = %v", groups)
	}
	if code := f.call("GET", "/hub/api/users/mallory", f.admin, "", nil); code != 404 {
		t.Errorf("mallory was created")
	}
}

// TestAPIAccessMatrix: requesters × endpoints, expected status per cell (docs/protocols.md, "RBAC:
// scopes and roles").
func TestAPIAccessMatrix(t *testing.T) {
	ids := []string{"anonymous", "admin", "user", "member", "narrow", "service", "service-admin"}
	rows := []struct {
		method, path, body string
		want               []int // in the order of ids
	}{
		{"GET", "/hub/api/users", "", []int{403, 200, 403, 200, 403, 200, 200}},
		{"GET", "/hub/api/users/alice", "", []int{403, 200, 200, 404, 200, 200, 200}},
		{"GET", "/hub/api/users/carol", "", []int{403, 200, 404, 404, 404, 200, 200}},
		{"POST", "/hub/api/users/newbie", "", []int{403, 201, 403, 403, 403, 403, 201}},
		{"PATCH", "/hub/api/users/carol", `{"admin": false}`, []int{403, 200, 403, 403, 403, 403, 200}},
		{"DELETE", "/hub/api/users/carol", "", []int{403, 204, 403, 403, 403, 403, 204}},
		{"GET", "/hub/api/groups", "", []int{403, 200, 403, 403, 403, 403, 200}},
		{"GET", "/hub/api/groups/staff", "", []int{403, 200, 403, 403, 403, 403, 200}},
		{"GET", "/hub/api/users/alice/tokens", "", []int{403, 200, 200, 404, 403, 403, 200}},
		{"POST", "/hub/api/users/alice/tokens", "", []int{403, 201, 201, 403, 403, 403, 201}},
		{"GET", "/hub/api/proxy", "", []int{403, 200, 403, 403, 403, 403, 200}},
		{"GET", "/hub/api/services", "", []int{403, 200, 403, 403, 403, 403, 200}},
		{"GET", "/hub/api/services/reader", "", []int{403, 200, 403, 403, 403, 200, 200}},
		{"GET", "/hub/api/info", "", []int{403, 200, 403, 403, 403, 403, 200}},
		{"GET", "/hub/metrics", "", []int{403, 200, 403, 403, 403, 403, 200}},
		{"POST", "/hub/api/shutdown", `{"servers": "x"}`, []int{403, 400, 403, 403, 403, 403, 400}},
	}
	for _, row := range rows {
		for i, id := range ids {
			t.Run(row.method+" "+row.path+" as "+id, func(t *testing.T) {
				f := newAPIFixture(t, func(a *testApp) {
					a.Roles = []*Role{{Name: "staff-reader", Scopes: []string{"read:users!group=staff", "list:users!group=staff"}, Groups: []string{"staff"}}}
					a.Services = []*Service{
						{Name: "reader", APIToken: "reader-token-1", Roles: []string{"reader-role"}},
						{Name: "boss", APIToken: "boss-token-12", Admin: true},
					}
					a.Roles = append(a.Roles, &Role{Name: "reader-role", Scopes: []string{"list:users", "read:users:name", "read:services!service=reader"}})
				})
				token := map[string]string{
					"admin": f.admin, "user": f.alice, "member": f.bob,
					"narrow":  f.token("alice", "read:users!user=alice"),
					"service": "reader-token-1", "service-admin": "boss-token-12",
				}[id]
				rec := f.do(apiCall{method: row.method, path: row.path, token: token, body: row.body})
				if rec.Code != row.want[i] {
					t.Fatalf("%d %s, want %d", rec.Code, rec.Body.String(), row.want[i])
				}
			})
		}
	}
}

// TestAPICookieXSRF: cookie-authenticated API calls need the XSRF token; token calls do not.
func TestAPICookieXSRF(t *testing.T) {
	f := newAPIFixture(t, nil)
	var admin *store.User
	_ = f.store.View(func(tx *store.Txn) (err error) { admin, err = tx.User("admin"); return })
	login := httptest.NewRequest("GET", "http://127.0.0.1:8081/hub/login", nil)
	rec := httptest.NewRecorder()
	sess, err := f.createSession(rec, login, admin)
	if err != nil {
		t.Fatal(err)
	}
	cookies := rec.Result().Cookies()
	send := func(method, path, body string, xsrf bool, mode string) int {
		req := httptest.NewRequest(method, "http://127.0.0.1:8081"+path, strings.NewReader(body))
		for _, c := range cookies {
			req.AddCookie(c)
		}
		if mode != "" {
			req.Header.Set("Sec-Fetch-Mode", mode)
		}
		if xsrf {
			req.Header.Set("X-XSRFToken", f.xsrfToken(req, sess))
		}
		w := httptest.NewRecorder()
		f.ServeHTTP(w, req)
		return w.Code
	}
	if code := send("POST", "/hub/api/users", `{"usernames": ["x1"]}`, false, "cors"); code != 403 {
		t.Errorf("cookie POST without xsrf: %d, want 403", code)
	}
	if code := send("POST", "/hub/api/users", `{"usernames": ["x1"]}`, true, "cors"); code != 201 {
		t.Errorf("cookie POST with xsrf: %d, want 201", code)
	}
	if code := send("GET", "/hub/api/users", "", false, "cors"); code != 403 {
		t.Errorf("cookie fetch() GET without xsrf: %d, want 403", code)
	}
	if code := send("GET", "/hub/api/users", "", false, "navigate"); code != 200 {
		t.Errorf("cookie navigation GET: %d, want 200", code)
	}
	if code := f.call("POST", "/hub/api/users", f.admin, `{"usernames": ["x2"]}`, nil); code != 201 {
		t.Errorf("token POST without xsrf: %d, want 201", code)
	}
}
