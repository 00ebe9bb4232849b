package web

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/caddyhub/caddyhub/hubapp/rbac"
	"github.com/caddyhub/caddyhub/hubapp/store"
)

// newShareHub: alice may share her servers (JupyterHub 5's opt-in `shares!user`); bob and carol
// (group team) are plain users; root is an admin. alice has a named server "lab".
func newShareHub(t *testing.T) (*apiHub, map[string]string) {
	a := newAPIHub(t, func(a *testApp) {
		a.Roles = []*Role{
			{Name: "sharer", Scopes: []string{"shares!user", "read:users:name", "read:groups:name"}, Users: []string{"alice"}},
			{Name: "half-sharer", Scopes: []string{"shares!user"}, Users: []string{"dave"}},
		}
	})
	a.user("alice", false)
	a.user("bob", false)
	a.user("carol", false, "team")
	a.user("root", true)
	a.user("dave", false)
	if err := a.store.Update(func(tx *store.Txn) error { return tx.PutServer(&store.Server{User: "alice", Name: "lab"}) }); err != nil {
		t.Fatal(err)
	}
	tok := map[string]string{}
	for _, n := range []string{"alice", "bob", "carol", "root", "dave"} {
		tok[n] = a.token(n)
	}
	return a, tok
}

// canAccess reports whether user passes the access check for owner's server, by cookie (no token)
// and by an inheriting API token.
func canAccess(t *testing.T, a *apiHub, user, owner, server string) bool {
	t.Helper()
	var u *store.User
	if err := a.store.View(func(tx *store.Txn) error { var err error; u, err = tx.User(user); return err }); err != nil {
		t.Fatal(err)
	}
	res := rbac.ServerResource(owner, server)
	cookie := &Identity{User: u}
	if err := a.resolveScopes(cookie); err != nil {
		t.Fatal(err)
	}
	tok := &Identity{User: u, Token: &store.Token{User: user, Kind: "api_token", Scopes: []string{"inherit"}}}
	if err := a.resolveScopes(tok); err != nil {
		t.Fatal(err)
	}
	c, k := cookie.Scopes.Allows("access:servers", res, u.Groups), tok.Scopes.Allows("access:servers", res, u.Groups)
	if c != k {
		t.Fatalf("%s on %s/%s: cookie access %v, token access %v", user, owner, server, c, k)
	}
	return c
}

type pageResp struct {
	Items      []map[string]any `json:"items"`
	Pagination struct {
		Total int `json:"total"`
	} `json:"_pagination"`
}

func TestSharesAPI(t *testing.T) {
	a, tok := newShareHub(t)
	if canAccess(t, a, "bob", "alice", "") {
		t.Fatal("bob has access to alice's server before any share")
	}
	steps := []struct {
		name, method, path, who, body string
		status                        int
		contains                      string
	}{
		{"share default server with bob", "POST", "/hub/api/shares/alice/", "alice", `{"user": "bob"}`, 200, `"access:servers!server=alice/"`},
		{"share lab with team", "POST", "/hub/api/shares/alice/lab", "alice", `{"group": "team"}`, 200, `"kind":"group"`},
		{"extend bob's share", "POST", "/hub/api/shares/alice/", "alice", `{"user": "bob", "scopes": ["read:servers!server=alice/"]}`, 200, `"read:servers!server=alice/"`},
		{"anonymous", "POST", "/hub/api/shares/alice/", "", `{"user": "bob"}`, 403, "Missing or invalid credentials"},
		{"bob cannot share alice's server", "POST", "/hub/api/shares/alice/", "bob", `{"user": "carol"}`, 403, "requires any of [shares]"},
		{"bob cannot share his own (no shares scope)", "POST", "/hub/api/shares/bob/", "bob", `{"user": "carol"}`, 403, "requires any of [shares]"},
		{"with the owner", "POST", "/hub/api/shares/alice/", "alice", `{"user": "alice"}`, 400, "owner"},
		{"unknown user", "POST", "/hub/api/shares/alice/", "alice", `{"user": "nobody"}`, 400, "No such user"},
		{"unknown group", "POST", "/hub/api/shares/alice/", "alice", `{"group": "nobody"}`, 400, "No such group"},
		{"user and group", "POST", "/hub/api/shares/alice/", "alice", `{"user": "bob", "group": "team"}`, 400, "not both"},
		{"neither", "POST", "/hub/api/shares/alice/", "alice", `{}`, 400, "exactly one"},
		{"unknown key", "POST", "/hub/api/shares/alice/", "alice", `{"user": "bob", "x": 1}`, 400, "Invalid JSON keys"},
		{"scope for another server", "POST", "/hub/api/shares/alice/", "alice", `{"user": "bob", "scopes": ["access:servers!server=alice/lab"]}`, 400, "not allowed on sharing"},
		{"scope filtered to a user", "POST", "/hub/api/shares/alice/", "alice", `{"user": "bob", "scopes": ["access:servers!user=alice"]}`, 400, "not allowed on sharing"},
		{"unknown scope", "POST", "/hub/api/shares/alice/", "alice", `{"user": "bob", "scopes": ["nope:nope"]}`, 400, "Invalid scope"},
		{"scopes not a list", "POST", "/hub/api/shares/alice/", "alice", `{"user": "bob", "scopes": "access:servers"}`, 400, "share.scopes must be"},
		{"without read:users:name", "POST", "/hub/api/shares/dave/", "dave", `{"user": "bob"}`, 403, "read:users:name"},
		{"without read:groups:name", "POST", "/hub/api/shares/dave/", "dave", `{"group": "team"}`, 403, "read:groups:name"},
		{"no server in path", "POST", "/hub/api/shares/alice", "alice", `{"user": "bob"}`, 405, ""},
		{"no server in path (codes)", "DELETE", "/hub/api/share-codes/alice", "alice", "", 405, ""},
		{"unfiltered scope", "POST", "/hub/api/shares/alice/", "alice", `{"user": "bob", "scopes": ["admin:servers"]}`, 403, "Do not have permission to grant share with scope admin:servers!server=alice/"},
		{"scope not held", "POST", "/hub/api/shares/alice/", "alice", `{"user": "bob", "scopes": ["admin:servers!server=alice/"]}`, 403, "Do not have permission"},
		{"no such named server", "POST", "/hub/api/shares/alice/nope", "alice", `{"user": "bob"}`, 404, "No such server"},
		{"no such owner (admin)", "POST", "/hub/api/shares/nobody/", "root", `{"user": "bob"}`, 404, "not found"},
		{"bad JSON", "POST", "/hub/api/shares/alice/", "alice", `{`, 400, "Invalid JSON"},
		{"owner lists all", "GET", "/hub/api/shares/alice", "alice", "", 200, `"total":2`},
		{"owner lists one server", "GET", "/hub/api/shares/alice/lab", "alice", "", 200, `"total":1`},
		{"bob cannot list alice's", "GET", "/hub/api/shares/alice", "bob", "", 404, ""},
		{"bob lists what he received", "GET", "/hub/api/users/bob/shared", "bob", "", 200, `"total":1`},
		{"bob reads one", "GET", "/hub/api/users/bob/shared/alice/", "bob", "", 200, `"name":"bob"`},
		{"bob: no share of lab", "GET", "/hub/api/users/bob/shared/alice/lab", "bob", "", 404, "No such share"},
		{"carol cannot read bob's", "GET", "/hub/api/users/bob/shared", "carol", "", 404, ""},
		{"unknown user's shared (admin)", "GET", "/hub/api/users/nobody/shared", "root", "", 404, "No such user: nobody"},
		{"carol's list includes her group's shares", "GET", "/hub/api/users/carol/shared", "carol", "", 200, `"group":{"name":"team"}`},
		{"unknown user's one share (admin)", "GET", "/hub/api/users/nobody/shared/alice/", "root", "", 404, "No such share for user nobody on alice/"},
		{"group's shares (admin)", "GET", "/hub/api/groups/team/shared", "root", "", 200, `"total":1`},
		{"group's one share (admin)", "GET", "/hub/api/groups/team/shared/alice/lab", "root", "", 200, `"kind":"group"`},
		{"group's shares (member, no scope)", "GET", "/hub/api/groups/team/shared", "carol", "", 403, ""},
		{"unknown group (admin)", "GET", "/hub/api/groups/nope/shared", "root", "", 404, "No such group"},
		{"pagination", "GET", "/hub/api/shares/alice?limit=1", "alice", "", 200, `"next":{"limit":1,"offset":1`},
		{"bad pagination", "GET", "/hub/api/shares/alice?limit=x", "alice", "", 400, "integers"},
	}
	for _, s := range steps {
		rec := a.do(apiCall{method: s.method, path: s.path, token: tok[s.who], body: s.body})
		if rec.Code != s.status || !strings.Contains(rec.Body.String(), s.contains) {
			t.Fatalf("%s: %s %s: %d %s; want %d containing %q", s.name, s.method, s.path, rec.Code, rec.Body.String(), s.status, s.contains)
		}
		if rec.Code >= 400 {
			errorBody(t, rec)
		}
	}
	if !canAccess(t, a, "bob", "alice", "") || canAccess(t, a, "bob", "alice", "lab") {
		t.Fatal("bob: want access to alice/ only")
	}
	if !canAccess(t, a, "carol", "alice", "lab") || canAccess(t, a, "carol", "alice", "") {
		t.Fatal("carol (team): want access to alice/lab only")
	}

	// Revoking one scope keeps the share; revoking access removes bob's access.
	var m map[string]any
	if code := a.call("PATCH", "/hub/api/shares/alice/", tok["alice"], `{"user": "bob", "scopes": ["access:servers!server=alice/"]}`, &m); code != 200 || m["scopes"] == nil {
		t.Fatalf("PATCH: %d %v", code, m)
	}
	if canAccess(t, a, "bob", "alice", "") {
		t.Fatal("bob keeps access after access:servers was revoked")
	}
	m = nil
	if code := a.call("PATCH", "/hub/api/shares/alice/", tok["alice"], `{"user": "bob"}`, &m); code != 200 || len(m) != 0 {
		t.Fatalf("PATCH without scopes: %d %v", code, m)
	}
	var pr pageResp
	if code := a.call("GET", "/hub/api/users/bob/shared", tok["bob"], "", &pr); code != 200 || pr.Pagination.Total != 0 || pr.Items == nil {
		t.Fatalf("bob's shares after revoke: %d %+v", code, pr)
	}
	if code := a.call("PATCH", "/hub/api/shares/alice/", tok["alice"], `{"user": "nobody"}`, &m); code != 200 {
		t.Fatalf("PATCH for an unknown user: %d %v", code, m)
	}
	// carol gives up her group's access? Not through /users (it is the group's share): 404.
	if code := a.call("DELETE", "/hub/api/users/carol/shared/alice/lab", tok["carol"], "", nil); code != 404 {
		t.Fatalf("carol deleting the group's share: %d", code)
	}
	// A recipient may give up a share of its own.
	a.call("POST", "/hub/api/shares/alice/", tok["alice"], `{"user": "bob"}`, nil)
	if code := a.call("DELETE", "/hub/api/users/bob/shared/alice/", tok["bob"], "", nil); code != 204 || canAccess(t, a, "bob", "alice", "") {
		t.Fatalf("bob giving up his share: %d", code)
	}
	// An admin removes a group's share; DELETE /shares/{owner}/{server} revokes everyone's.
	if code := a.call("DELETE", "/hub/api/groups/team/shared/alice/lab", tok["root"], "", nil); code != 204 || canAccess(t, a, "carol", "alice", "lab") {
		t.Fatalf("deleting the group's share: %d", code)
	}
	if code := a.call("DELETE", "/hub/api/groups/team/shared/alice/lab", tok["root"], "", nil); code != 404 {
		t.Fatalf("deleting the group's share again: %d", code)
	}
	a.call("POST", "/hub/api/shares/alice/lab", tok["alice"], `{"group": "team"}`, nil)
	if code := a.call("DELETE", "/hub/api/shares/alice/lab", tok["bob"], "", nil); code != 403 {
		t.Fatalf("bob deleting alice's shares: %d", code)
	}
	if code := a.call("DELETE", "/hub/api/shares/alice/lab", tok["alice"], "", nil); code != 204 || canAccess(t, a, "carol", "alice", "lab") {
		t.Fatalf("deleting lab's shares: %d", code)
	}
}

func TestShareCodesAPIAndAcceptPage(t *testing.T) {
	a, tok := newShareHub(t)
	var created map[string]any
	if code := a.call("POST", "/hub/api/share-codes/alice/", tok["alice"], `{"expires_in": 3600}`, &created); code != 200 {
		t.Fatalf("creating a share code: %d %v", code, created)
	}
	code, _ := created["code"].(string)
	if code == "" || created["accept_url"] != "/hub/accept-share?code="+url.QueryEscape(code) || created["exchange_count"] != float64(0) {
		t.Fatalf("share code model: %v", created)
	}
	for _, s := range []struct {
		name, method, path, who, body string
		status                        int
	}{
		{"bob cannot create", "POST", "/hub/api/share-codes/alice/", "bob", "", 403},
		{"bad expiry", "POST", "/hub/api/share-codes/alice/", "alice", `{"expires_in": -1}`, 400},
		{"expiry too short", "POST", "/hub/api/share-codes/alice/", "alice", `{"expires_in": 59}`, 400},
		{"expiry too long", "POST", "/hub/api/share-codes/alice/", "alice", `{"expires_in": 31536001}`, 400},
		{"scope not held", "POST", "/hub/api/share-codes/alice/", "alice", `{"scopes": ["admin:servers"]}`, 403},
		{"no such server", "POST", "/hub/api/share-codes/alice/nope", "alice", "", 404},
		{"delete by a wrong code", "DELETE", "/hub/api/share-codes/alice/?code=sc_nope", "alice", "", 404},
		{"expiry not int", "POST", "/hub/api/share-codes/alice/", "alice", `{"expires_in": "1"}`, 400},
		{"bob cannot list", "GET", "/hub/api/share-codes/alice", "bob", "", 404},
		{"delete unknown id", "DELETE", "/hub/api/share-codes/alice/?id=sc_nope", "alice", "", 404},
	} {
		if got := a.call(s.method, s.path, tok[s.who], s.body, nil); got != s.status {
			t.Fatalf("%s: %d, want %d", s.name, got, s.status)
		}
	}
	var list pageResp
	if c := a.call("GET", "/hub/api/share-codes/alice", tok["alice"], "", &list); c != 200 || len(list.Items) != 1 || list.Items[0]["code"] != nil {
		t.Fatalf("listing codes: %d %+v (the code itself must not be listed)", c, list)
	}
	// A share code is not a token: it authenticates nothing.
	if c := a.call("GET", "/hub/api/user", code, "", nil); c != 403 {
		t.Fatalf("share code used as a token: %d", c)
	}

	cookies, sess := login(t, a.Hub, "bob")
	page := browserDo(t, a.Hub, "GET", "/hub/accept-share?code="+url.QueryEscape(code), cookies, nil)
	if page.Code != 200 || !strings.Contains(page.Body.String(), `name="_xsrf"`) || !strings.Contains(page.Body.String(), "alice") {
		t.Fatalf("accept page: %d %s", page.Code, page.Body.String())
	}
	// Cross-site POSTs without the form's token fail, no-cors ones too (GHSA-m68r-v472-jgq9).
	for _, mode := range []string{"", "no-cors", "navigate"} {
		req := httptest.NewRequest("POST", "http://hub.test/hub/accept-share", strings.NewReader(url.Values{"code": {code}}.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if mode != "" {
			req.Header.Set("Sec-Fetch-Mode", mode)
			req.Header.Set("Sec-Fetch-Site", "cross-site")
		}
		for _, c := range cookies {
			req.AddCookie(c)
		}
		rec := httptest.NewRecorder()
		a.ServeHTTP(rec, req)
		if rec.Code != http.StatusForbidden {
			t.Fatalf("POST without _xsrf (mode %q): %d", mode, rec.Code)
		}
	}
	if canAccess(t, a, "bob", "alice", "") {
		t.Fatal("bob has access after refused accepts")
	}
	form := url.Values{"code": {code}, "_xsrf": {a.xsrfToken(httptest.NewRequest("GET", "/", nil), sess)}}
	rec := browserDo(t, a.Hub, "POST", "/hub/accept-share", cookies, form)
	if rec.Code != http.StatusSeeOther || rec.Header().Get("Location") != a.fullServerURL("alice", "") {
		t.Fatalf("accept: %d %v", rec.Code, rec.Header())
	}
	if !canAccess(t, a, "bob", "alice", "") {
		t.Fatal("bob has no access after accepting")
	}
	if c := a.call("GET", "/hub/api/share-codes/alice/", tok["alice"], "", &list); c != 200 || len(list.Items) != 1 || list.Items[0]["exchange_count"] != float64(1) {
		t.Fatalf("exchange count: %d %+v", c, list)
	}
	// The owner cannot accept her own code; a wrong code is refused.
	ac, asess := login(t, a.Hub, "alice")
	if rec := browserDo(t, a.Hub, "POST", "/hub/accept-share", ac, url.Values{"code": {code}, "_xsrf": {a.xsrfToken(httptest.NewRequest("GET", "/", nil), asess)}}); rec.Code != 400 {
		t.Fatalf("owner accepting: %d", rec.Code)
	}
	if rec := browserDo(t, a.Hub, "GET", "/hub/accept-share?code=sc_wrong", cookies, nil); rec.Code != 404 {
		t.Fatalf("wrong code: %d", rec.Code)
	}
	// Anonymous visitors are sent to log in.
	if rec := browserDo(t, a.Hub, "GET", "/hub/accept-share?code=x", nil, nil); rec.Code != http.StatusFound || !strings.Contains(rec.Header().Get("Location"), "/hub/login?next=") {
		t.Fatalf("anonymous: %d %v", rec.Code, rec.Header())
	}
	// Expired codes cannot be accepted.
	err := a.store.Update(func(tx *store.Txn) error {
		c, err := tx.ShareCodeBySecret(code, time.Now())
		if err != nil {
			return err
		}
		c.ExpiresAt = c.Created // putShareCode drops an expired code
		return tx.ExchangeShareCode(c, time.Now())
	})
	if err != nil {
		t.Fatal(err)
	}
	if rec := browserDo(t, a.Hub, "GET", "/hub/accept-share?code="+url.QueryEscape(code), cookies, nil); rec.Code != 404 {
		t.Fatalf("expired code: %d", rec.Code)
	}
	// Revoking one code by its value, then all codes; then deleting alice drops bob's share.
	var second map[string]any
	a.call("POST", "/hub/api/share-codes/alice/", tok["alice"], "", &second)
	if c := a.call("DELETE", "/hub/api/share-codes/alice/?code="+url.QueryEscape(second["code"].(string)), tok["alice"], "", nil); c != 204 {
		t.Fatalf("deleting a code by value: %d", c)
	}
	a.call("POST", "/hub/api/share-codes/alice/", tok["alice"], "", nil)
	if c := a.call("DELETE", "/hub/api/share-codes/alice/", tok["alice"], "", nil); c != 204 {
		t.Fatalf("deleting codes: %d", c)
	}
	if c := a.call("GET", "/hub/api/share-codes/alice", tok["alice"], "", &list); c != 200 || len(list.Items) != 0 {
		t.Fatalf("codes after delete: %d %+v", c, list)
	}
	if c := a.call("DELETE", "/hub/api/users/alice", tok["root"], "", nil); c != 204 {
		t.Fatalf("deleting alice: %d", c)
	}
	if c := a.call("GET", "/hub/api/users/bob/shared", tok["bob"], "", &list); c != 200 || len(list.Items) != 0 || canAccess(t, a, "bob", "alice", "") {
		t.Fatalf("bob's shares after alice was deleted: %d %+v", c, list)
	}
}

// TestAcceptPageEscapes: names in the page are escaped (GHSA-c4gm-pwx9-9w8j).
func TestAcceptPageEscapes(t *testing.T) {
	a, _ := newShareHub(t)
	bad := `x" onmouseover="alert(1)`
	if err := a.store.Update(func(tx *store.Txn) error { return tx.PutServer(&store.Server{User: "alice", Name: bad}) }); err != nil {
		t.Fatal(err)
	}
	c := &store.ShareCode{Owner: "alice", Server: bad, Scopes: []string{"access:servers!server=alice/" + bad}, ExpiresAt: time.Now().Add(time.Hour)}
	if err := a.store.Update(func(tx *store.Txn) error { return tx.CreateShareCode(c, "sc_evil") }); err != nil {
		t.Fatal(err)
	}
	cookies, sess := login(t, a.Hub, "bob")
	for _, next := range []string{`/hub/home" onmouseover="alert(1)`, "javascript:alert(1)", "//evil.example/", "/hub/home?x=<b>"} {
		rec := browserDo(t, a.Hub, "GET", "/hub/accept-share?code=sc_evil&next="+url.QueryEscape(next), cookies, nil)
		body := rec.Body.String()
		if rec.Code != 200 || strings.Contains(body, `" onmouseover="`) || strings.Contains(body, "javascript:") ||
			strings.Contains(body, "evil.example") || strings.Contains(body, "<b>") {
			t.Fatalf("accept page with next=%q: %d, unescaped or unchecked: %s", next, rec.Code, body)
		}
	}
	// A valid next= is where accepting leads; an invalid one falls back to the server.
	xsrf := a.xsrfToken(httptest.NewRequest("GET", "/", nil), sess)
	for next, want := range map[string]string{"/hub/home": "/hub/home", "https://evil.example/": a.fullServerURL("alice", bad)} {
		rec := browserDo(t, a.Hub, "POST", "/hub/accept-share", cookies, url.Values{"code": {"sc_evil"}, "_xsrf": {xsrf}, "next": {next}})
		if rec.Code != http.StatusSeeOther || rec.Header().Get("Location") != want {
			t.Fatalf("accept with next=%q: %d %q, want %q", next, rec.Code, rec.Header().Get("Location"), want)
		}
	}
}

// TestShareOAuthAccess: a recipient may log in to the shared server through OAuth (the server's own
// access check), and may not once the share is revoked.
func TestShareOAuthAccess(t *testing.T) {
	f := newOAuthFixture(t)
	bob, _ := login(t, f.h, "bob")
	authorize := func() int {
		t.Helper()
		return browserDo(t, f.h, "GET", authorizeURL(nil), bob, nil).Code
	}
	if c := authorize(); c != http.StatusForbidden {
		t.Fatalf("bob authorizing for alice's server before a share: %d", c)
	}
	share := &store.Share{Owner: "alice", User: "bob", Scopes: []string{"access:servers!server=alice/"}}
	if err := f.h.store.Update(func(tx *store.Txn) error { return tx.PutShare(share) }); err != nil {
		t.Fatal(err)
	}
	if c := authorize(); c == http.StatusForbidden || c >= 500 {
		t.Fatalf("bob authorizing for alice's server with a share: %d", c)
	}
	if err := f.h.store.Update(func(tx *store.Txn) error { return tx.DeleteShare(share) }); err != nil {
		t.Fatal(err)
	}
	if c := authorize(); c != http.StatusForbidden {
		t.Fatalf("bob authorizing after the share was revoked: %d", c)
	}
}
