package caddymodule

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/caddyhub/caddyhub/caddymodule/routetable"
)

const testToken = "s3cret-token"

type apiCall struct {
	name       string
	method     string
	path       string
	auth       string // Authorization header; "-" for none
	body       string
	wantStatus int
	wantBody   string // substring of the body ("" = not checked)
	wantEmpty  bool   // body must be empty
}

func doCall(t *testing.T, srv *httptest.Server, c apiCall) (int, string, http.Header) {
	t.Helper()
	var body io.Reader
	if c.body != "" {
		body = strings.NewReader(c.body)
	}
	req, err := http.NewRequest(c.method, srv.URL+c.path, body)
	if err != nil {
		t.Fatal(err)
	}
	switch c.auth {
	case "":
		req.Header.Set("Authorization", "token "+testToken)
	case "-":
	default:
		req.Header.Set("Authorization", c.auth)
	}
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), resp.Header
}

func TestProxyAPIConformance(t *testing.T) {
	table := routetable.New()
	srv := httptest.NewServer(NewProxyAPI(table, testToken, nil))
	t.Cleanup(srv.Close)

	big := `{"target":"http://127.0.0.1:1","pad":"` + strings.Repeat("x", maxRouteBody) + `"}`
	calls := []apiCall{
		// auth
		{name: "no auth", method: "GET", path: "/api/routes", auth: "-", wantStatus: 403, wantEmpty: true},
		{name: "wrong token", method: "GET", path: "/api/routes", auth: "token nope", wantStatus: 403, wantEmpty: true},
		{name: "bearer is not CHP", method: "GET", path: "/api/routes", auth: "Bearer " + testToken, wantStatus: 403},
		{name: "token prefix of real", method: "GET", path: "/api/routes", auth: "token s3cret", wantStatus: 403},
		{name: "unauth POST", method: "POST", path: "/api/routes/user/x", auth: "-", body: `{"target":"http://127.0.0.1:1"}`, wantStatus: 403},
		{name: "unauth DELETE", method: "DELETE", path: "/api/routes/user/x", auth: "-", wantStatus: 403},
		{name: "token with extra spaces", method: "GET", path: "/api/routes", auth: "token   " + testToken, wantStatus: 200, wantBody: "{}"},
		// routing of the API itself
		{name: "unknown path", method: "GET", path: "/api/other", wantStatus: 404},
		{name: "unknown path unauth", method: "GET", path: "/nope", auth: "-", wantStatus: 404},
		{name: "routes prefix lookalike", method: "GET", path: "/api/routesx", wantStatus: 404},
		{name: "PUT", method: "PUT", path: "/api/routes/user/x", wantStatus: 405, wantBody: "Method not supported"},
		{name: "PATCH unauth", method: "PATCH", path: "/api/routes", auth: "-", wantStatus: 405},
		// empty table
		{name: "list empty", method: "GET", path: "/api/routes", wantStatus: 200, wantBody: "{}"},
		{name: "get missing", method: "GET", path: "/api/routes/user/alice", wantStatus: 404, wantEmpty: true},
		{name: "delete missing", method: "DELETE", path: "/api/routes/user/alice", wantStatus: 404, wantEmpty: true},
		// bad input
		{name: "not JSON", method: "POST", path: "/api/routes/user/alice", body: `target=x`, wantStatus: 400, wantBody: "Body not valid JSON"},
		{name: "empty body", method: "POST", path: "/api/routes/user/alice", wantStatus: 400, wantBody: "Body not valid JSON"},
		{name: "trailing data", method: "POST", path: "/api/routes/user/alice", body: `{"target":"http://127.0.0.1:1"} {}`, wantStatus: 400, wantBody: "Body not valid JSON"},
		{name: "array", method: "POST", path: "/api/routes/user/alice", body: `["http://127.0.0.1:1"]`, wantStatus: 400, wantBody: "Must specify 'target' as string"},
		{name: "null", method: "POST", path: "/api/routes/user/alice", body: `null`, wantStatus: 400, wantBody: "Must specify 'target' as string"},
		{name: "missing target", method: "POST", path: "/api/routes/user/alice", body: `{"user":"alice"}`, wantStatus: 400, wantBody: "Must specify 'target' as string"},
		{name: "numeric target", method: "POST", path: "/api/routes/user/alice", body: `{"target":8000}`, wantStatus: 400, wantBody: "Must specify 'target' as string"},
		{name: "relative target", method: "POST", path: "/api/routes/user/alice", body: `{"target":"127.0.0.1:8000"}`, wantStatus: 400, wantBody: "invalid route target"},
		{name: "ftp target", method: "POST", path: "/api/routes/user/alice", body: `{"target":"ftp://127.0.0.1"}`, wantStatus: 400, wantBody: "invalid route target"},
		{name: "too big", method: "POST", path: "/api/routes/user/alice", body: big, wantStatus: 400, wantBody: "Body larger than"},
		{name: "dot key", method: "POST", path: "/api/routes/user/%2E%2E/alice", body: `{"target":"http://127.0.0.1:1"}`, wantStatus: 400, wantBody: "invalid route key"},
		{name: "control char key", method: "POST", path: "/api/routes/user/a%0Ab", body: `{"target":"http://127.0.0.1:1"}`, wantStatus: 400, wantBody: "invalid route key"},
		{name: "still empty", method: "GET", path: "/api/routes", wantStatus: 200, wantBody: "{}"},
		{name: "bad datestamp", method: "GET", path: "/api/routes?inactive_since=yesterday", wantStatus: 400, wantBody: `Invalid datestamp 'yesterday' must be ISO8601.`},
		{name: "bad datestamp camel", method: "GET", path: "/api/routes?inactiveSince=", wantStatus: 400, wantBody: `Invalid datestamp '' must be ISO8601.`},
		// adds
		{name: "add root", method: "POST", path: "/api/routes/", body: `{"target":"http://127.0.0.1:8081","jupyterhub":true,"hub":true}`, wantStatus: 201, wantEmpty: true},
		{name: "add user", method: "POST", path: "/api/routes/user/alice", body: `{"target":"http://127.0.0.1:54321","jupyterhub":true,"user":"alice","server_name":"","n":12345678901234567890}`, wantStatus: 201},
		{name: "add encoded unicode", method: "POST", path: "/api/routes/user/zo%C3%AB/", body: `{"target":"http://127.0.0.1:5000"}`, wantStatus: 201},
		{name: "add encoded slash", method: "POST", path: "/api/routes/user/bob%2Fgpu", body: `{"target":"http://127.0.0.1:5001"}`, wantStatus: 201},
		{name: "add host route", method: "POST", path: "/api/routes/carol.hub.example.org/user/carol", body: `{"target":"https://127.0.0.1:5002"}`, wantStatus: 201},
		{name: "get user", method: "GET", path: "/api/routes/user/alice/", wantStatus: 200, wantBody: `"user":"alice"`},
		{name: "get unicode", method: "GET", path: "/api/routes/user/zo%C3%AB", wantStatus: 200, wantBody: `"target":"http://127.0.0.1:5000"`},
		{name: "get decoded slash", method: "GET", path: "/api/routes/user/bob/gpu", wantStatus: 200},
		{name: "delete host route", method: "DELETE", path: "/api/routes/carol.hub.example.org/user/carol", wantStatus: 204, wantEmpty: true},
		{name: "delete again", method: "DELETE", path: "/api/routes/carol.hub.example.org/user/carol", wantStatus: 404},
		{name: "all inactive since future", method: "GET", path: "/api/routes?inactive_since=2999-01-01T00:00:00.000Z", wantStatus: 200, wantBody: `"/user/alice"`},
		{name: "none inactive since past", method: "GET", path: "/api/routes?inactive_since=2000-01-01", wantStatus: 200, wantBody: "{}"},
		{name: "inactive_since wins", method: "GET", path: "/api/routes?inactive_since=2000-01-01T00:00:00Z&inactiveSince=2999-01-01", wantStatus: 200, wantBody: "{}"},
	}
	for _, c := range calls {
		status, body, hdr := doCall(t, srv, c)
		if status != c.wantStatus {
			t.Errorf("%s: %s %s = %d %q, want %d", c.name, c.method, c.path, status, body, c.wantStatus)
			continue
		}
		if c.wantBody != "" && !strings.Contains(body, c.wantBody) {
			t.Errorf("%s: body %q does not contain %q", c.name, body, c.wantBody)
		}
		if c.wantEmpty && body != "" {
			t.Errorf("%s: body %q, want empty", c.name, body)
		}
		if status == 400 {
			var e struct {
				Status  int    `json:"status"`
				Message string `json:"message"`
			}
			if err := json.Unmarshal([]byte(body), &e); err != nil || e.Status != 400 || e.Message == "" {
				t.Errorf("%s: error body %q is not {status, message}", c.name, body)
			}
			if ct := hdr.Get("Content-Type"); ct != "application/json" {
				t.Errorf("%s: Content-Type %q", c.name, ct)
			}
		}
	}

	// The full listing, exactly as CHP shapes it.
	status, body, hdr := doCall(t, srv, apiCall{method: "GET", path: "/api/routes"})
	if status != 200 || hdr.Get("Content-Type") != "application/json" {
		t.Fatalf("GET /api/routes: %d %s", status, hdr.Get("Content-Type"))
	}
	var routes map[string]map[string]any
	if err := json.Unmarshal([]byte(body), &routes); err != nil {
		t.Fatal(err)
	}
	if len(routes) != 4 {
		t.Fatalf("routes %v, want /, /user/alice, /user/zoë, /user/bob/gpu", routes)
	}
	alice := routes["/user/alice"]
	if alice["target"] != "http://127.0.0.1:54321" || alice["jupyterhub"] != true || alice["server_name"] != "" || alice["user"] != "alice" {
		t.Errorf("alice = %v", alice)
	}
	if !strings.Contains(body, `"n":12345678901234567890`) {
		t.Errorf("big number not kept verbatim in %s", body)
	}
	la, _ := alice["last_activity"].(string)
	ts, err := time.Parse(chpTimeFormat, la)
	if err != nil || time.Since(ts) > time.Minute || len(la) != len("2024-05-01T12:00:00.000Z") {
		t.Errorf("last_activity %q: %v", la, err)
	}
	if routes["/"]["hub"] != true || routes["/user/zoë"] == nil || routes["/user/bob/gpu"] == nil {
		t.Errorf("routes %v", routes)
	}

	// Re-POST replaces the data; last_activity is reset.
	old := table.Get("/user/alice")
	if err := table.Load([]routetable.Record{{Key: "/user/alice", Target: old.Target(), Data: old.Data(), LastActivity: time.Unix(0, 0)}}); err != nil {
		t.Fatal(err)
	}
	status, _, _ = doCall(t, srv, apiCall{method: "POST", path: "/api/routes/user/alice", body: `{"target":"http://127.0.0.1:6000","user":"alice2"}`})
	if status != 201 {
		t.Fatalf("re-POST: %d", status)
	}
	_, body, _ = doCall(t, srv, apiCall{method: "GET", path: "/api/routes/user/alice"})
	var one map[string]any
	_ = json.Unmarshal([]byte(body), &one)
	if one["user"] != "alice2" || one["jupyterhub"] != nil || one["target"] != "http://127.0.0.1:6000" {
		t.Errorf("after re-POST: %v", one)
	}
	if table.Get("/user/alice").LastActivity().Before(time.Now().Add(-time.Minute)) {
		t.Error("re-POST did not reset last_activity")
	}
}

func TestProxyAPIInactiveSince(t *testing.T) {
	table := routetable.New()
	t0 := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	if err := table.Load([]routetable.Record{
		{Key: "/user/old", Target: "http://127.0.0.1:1", LastActivity: t0},
		{Key: "/user/new", Target: "http://127.0.0.1:2", LastActivity: t0.Add(time.Hour)},
	}); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(NewProxyAPI(table, "", nil)) // open API
	t.Cleanup(srv.Close)
	for _, tc := range []struct {
		query string
		want  []string
	}{
		{"", []string{"/user/new", "/user/old"}},
		{"?inactive_since=2024-05-01T12:30:00.000Z", []string{"/user/old"}},
		{"?inactiveSince=2024-05-01T12:30:00Z", []string{"/user/old"}},
		{"?inactive_since=2024-05-01T12:00:00.000Z", nil}, // strictly before
		{"?inactive_since=2024-05-01T12:00:00.001Z", []string{"/user/old"}},
		{"?inactive_since=2024-05-01T14:30:00%2B01:00", []string{"/user/new", "/user/old"}},
		{"?inactive_since=2024-05-01T12:30", []string{"/user/old"}},
	} {
		status, body, _ := doCall(t, srv, apiCall{method: "GET", path: "/api/routes" + tc.query, auth: "-"})
		var routes map[string]any
		if err := json.Unmarshal([]byte(body), &routes); status != 200 || err != nil {
			t.Errorf("%s: %d %s", tc.query, status, body)
			continue
		}
		if len(routes) != len(tc.want) {
			t.Errorf("%s: got %v, want %v", tc.query, routes, tc.want)
		}
		for _, k := range tc.want {
			if routes[k] == nil {
				t.Errorf("%s: %s missing from %v", tc.query, k, routes)
			}
		}
	}
	if ts := table.Get("/user/old").Record().LastActivity; !ts.Equal(t0) {
		t.Errorf("listing changed last_activity to %v", ts)
	}
	_, body, _ := doCall(t, srv, apiCall{method: "GET", path: "/api/routes/user/old", auth: "-"})
	if !strings.Contains(body, `"last_activity":"2024-05-01T12:00:00.000Z"`) {
		t.Errorf("last_activity format: %s", body)
	}
}
