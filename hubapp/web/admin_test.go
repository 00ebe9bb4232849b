package web

import (
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/caddyhub/caddyhub/hubapp/store"
)

var adminRowRE = regexp.MustCompile(`<tr data-user="([^"]+)">`)

func adminRowNames(body string) []string {
	var out []string
	for _, m := range adminRowRE.FindAllStringSubmatch(body, -1) {
		out = append(out, m[1])
	}
	return out
}

func TestAdminPage(t *testing.T) {
	// admin_access: the "Open" links to other users' servers need access:servers.
	wh := newWebHub(t, false, func(a *testApp) { a.AdminAccess = true })
	err := wh.h.store.Update(func(tx *store.Txn) error {
		for i := range 120 {
			if err := tx.CreateUser(&store.User{Name: fmt.Sprintf("user%03d", i), Created: time.Now()}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	wh.setServer(t, &store.Server{User: "user007", Name: "", Ready: true, Started: time.Now()})
	wh.setServer(t, &store.Server{User: "user008", Name: "", Pending: "spawn", Started: time.Now()})

	admin := wh.client(t)
	wh.mustLogin(t, admin, "root") // admin_users root: the admin role, which holds admin-ui
	home := wh.do(t, admin, "GET", "/hub/home", nil)
	if !strings.Contains(home.body, `href="/hub/admin"`) {
		t.Errorf("an admin's home page has no link to the admin page")
	}

	tests := []struct {
		query    string
		rows     []string // the first rows, in order
		count    int      // rows on the page
		contains []string
	}{
		{query: "", rows: []string{"alice", "root", "user000"}, count: 50, contains: []string{"Users 1–50 of 122", `rel="next"`}},
		{query: "?offset=100", rows: []string{"user098"}, count: 22, contains: []string{"Users 101–122 of 122", `rel="prev"`}},
		{query: "?sort=-name", rows: []string{"user119", "user118"}, count: 50},
		{query: "?q=USER05", rows: []string{"user050", "user051"}, count: 10, contains: []string{"Users 1–10 of 10"}},
		{query: "?q=nobody", count: 0, contains: []string{"No users match."}},
		{query: "?state=active", rows: []string{"user007", "user008"}, count: 2, contains: []string{"state-running", "state-starting", `data-action="stop"`}},
		{query: "?state=ready", rows: []string{"user007"}, count: 1, contains: []string{`href="/user/user007/"`}},
		{query: "?state=inactive&q=user00", rows: []string{"user000", "user001", "user002", "user003", "user004", "user005", "user006", "user009"}, count: 8},
		{query: "?limit=5&state=bogus", rows: []string{"alice"}, count: 5},
	}
	// alice exists: create her record as a login would.
	wh.mustLogin(t, wh.client(t), "alice")
	for _, tc := range tests {
		r := wh.do(t, admin, "GET", "/hub/admin"+tc.query, nil)
		if r.status != http.StatusOK {
			t.Fatalf("GET /hub/admin%s: %d\n%s", tc.query, r.status, r.body)
		}
		got := adminRowNames(r.body)
		if len(got) != tc.count {
			t.Errorf("GET /hub/admin%s: %d rows %v, want %d", tc.query, len(got), got, tc.count)
		}
		for i, want := range tc.rows {
			if i >= len(got) || got[i] != want {
				t.Errorf("GET /hub/admin%s: row %d is not %q: %v", tc.query, i, want, got)
				break
			}
		}
		for _, s := range tc.contains {
			if !strings.Contains(r.body, s) {
				t.Errorf("GET /hub/admin%s: body lacks %q", tc.query, s)
			}
		}
	}

	// The page's actions go through the API with the page's XSRF token.
	page := wh.do(t, admin, "GET", "/hub/admin", nil)
	xsrf := xsrfOf(t, page.body)
	r := wh.doJSON(t, admin, "POST", "/hub/api/users", `{"usernames": ["new1", "new2"], "admin": true}`, "X-XSRFToken", xsrf)
	if r.status != http.StatusCreated {
		t.Fatalf("POST /hub/api/users from the admin page: %d %s", r.status, r.body)
	}
	if !wh.user(t, "new2").Admin {
		t.Errorf("new2 was not made an admin")
	}
	if r := wh.doJSON(t, admin, "POST", "/hub/api/users", `{"usernames": ["new3"]}`); r.status != http.StatusForbidden {
		t.Errorf("a cookie request without X-XSRFToken: %d, want 403", r.status)
	}

	// A user without admin-ui: 403 and no link.
	alice := wh.client(t)
	wh.mustLogin(t, alice, "alice")
	if r := wh.do(t, alice, "GET", "/hub/admin", nil); r.status != http.StatusForbidden || !strings.Contains(r.body, "admin-ui") {
		t.Errorf("GET /hub/admin as alice: %d, want 403 naming admin-ui", r.status)
	}
	if r := wh.do(t, alice, "GET", "/hub/admin/groups", nil); r.status != http.StatusForbidden {
		t.Errorf("GET /hub/admin/groups as alice: %d, want 403", r.status)
	}
	if r := wh.do(t, alice, "GET", "/hub/home", nil); strings.Contains(r.body, `href="/hub/admin"`) {
		t.Errorf("alice's home page links to the admin page")
	}
	if r := wh.do(t, wh.client(t), "GET", "/hub/admin", nil); r.status != http.StatusFound {
		t.Errorf("GET /hub/admin anonymous: %d, want a redirect to login", r.status)
	}
}

func TestAdminGroupsPage(t *testing.T) {
	wh := newWebHub(t, false)
	admin := wh.client(t)
	wh.mustLogin(t, admin, "root")
	page := wh.do(t, admin, "GET", "/hub/admin/groups", nil)
	if page.status != http.StatusOK || !strings.Contains(page.body, "No groups yet.") {
		t.Fatalf("GET /hub/admin/groups: %d\n%s", page.status, page.body)
	}
	xsrf := xsrfOf(t, page.body)
	if r := wh.doJSON(t, admin, "POST", "/hub/api/groups/staff", "", "X-XSRFToken", xsrf); r.status != http.StatusCreated {
		t.Fatalf("create group: %d %s", r.status, r.body)
	}
	if r := wh.doJSON(t, admin, "POST", "/hub/api/groups/staff/users", `{"users": ["root"]}`, "X-XSRFToken", xsrf); r.status != http.StatusOK {
		t.Fatalf("add member: %d %s", r.status, r.body)
	}
	if r := wh.doJSON(t, admin, "PUT", "/hub/api/groups/staff/properties", `{"room": "B12"}`, "X-XSRFToken", xsrf); r.status != http.StatusOK {
		t.Fatalf("set properties: %d %s", r.status, r.body)
	}
	page = wh.do(t, admin, "GET", "/hub/admin/groups", nil)
	for _, s := range []string{`data-group="staff"`, "Members: root", "&#34;room&#34;: &#34;B12&#34;"} {
		if !strings.Contains(page.body, s) {
			t.Errorf("groups page lacks %q", s)
		}
	}
	if r := wh.do(t, admin, "GET", "/hub/admin?q=root", nil); !strings.Contains(r.body, "staff") {
		t.Errorf("the admin table does not show root's group")
	}
}

// doJSON sends a JSON body (none when body is "").
func (wh *webHub) doJSON(t *testing.T, c *http.Client, method, path, body string, hdr ...string) webResp {
	t.Helper()
	req, err := http.NewRequest(method, wh.srv.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return webResp{status: resp.StatusCode, header: resp.Header, body: string(b), resp: resp}
}

func TestFailureText(t *testing.T) {
	for in, want := range map[string]string{
		"Spawn failed: Spawn failed: no such file": "no such file",
		"spawn failed:x":    "x",
		"the server exited": "the server exited",
		"":                  "",
	} {
		if got := failureText(in); got != want {
			t.Errorf("failureText(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestHomeNamedServers(t *testing.T) {
	wh := newWebHub(t, false, func(a *testApp) { a.AllowNamedServers = true })
	c := wh.client(t)
	wh.mustLogin(t, c, "alice")
	wh.setServer(t, &store.Server{User: "alice", Name: "gpu", Ready: true})
	wh.setServer(t, &store.Server{User: "alice", Name: "old"})
	r := wh.do(t, c, "GET", "/hub/home", nil)
	for _, s := range []string{
		`id="new-server"`, `data-base="/hub/spawn/alice"`, `id="server-name" required pattern=`,
		`href="/user/alice/gpu/"`, `data-stop="/hub/api/users/alice/servers/gpu"`,
		`data-delete="/hub/api/users/alice/servers/old"`, `action="/hub/spawn/alice/old"`,
	} {
		if !strings.Contains(r.body, s) {
			t.Errorf("home page lacks %q", s)
		}
	}
}
