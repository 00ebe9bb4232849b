package caddymodule

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/caddyhub/caddyhub/caddymodule/routetable"
)

// FuzzProxyAPIRoute: POST /api/routes/<path> with any body answers 201 or a 4xx with a JSON error
// body, never 5xx; after a 201 the route is listed with the posted target and every extra field of
// the body, GET of the same path returns it, and DELETE removes it (then 404).
func FuzzProxyAPIRoute(f *testing.F) {
	f.Add("/user/alice", `{"target": "http://127.0.0.1:8888", "user": "alice", "server_name": ""}`)
	f.Add("/user/%E2%82%AC", `{"target": "https://h:1/p", "n": 12345678901234567890}`)
	f.Add("/user/a%2Fb", `{"target": "http://127.0.0.1:1", "target2": null}`)
	f.Add("", `{"target": "http://127.0.0.1:1"}`)
	f.Add("/x", `{"target": 1}`)
	f.Add("/x", `[]`)
	f.Add("/x/../y", `{"target": "http://127.0.0.1:1", "last_activity": "2020"}`)
	f.Add("/%zz", `{}`)
	f.Fuzz(func(t *testing.T, path, body string) {
		if strings.ContainsAny(path, "?#") {
			return // a query or fragment is not part of the route path
		}
		api := NewProxyAPI(routetable.New(), "", nil)
		do := func(method, p, body string) *httptest.ResponseRecorder {
			req := httptest.NewRequest(method, "http://127.0.0.1/", strings.NewReader(body))
			req.URL = &url.URL{Path: mustUnescape(p), RawPath: p}
			if req.URL.Path == "" {
				req.URL.Path, req.URL.RawPath = p, ""
			}
			w := httptest.NewRecorder()
			api.ServeHTTP(w, req)
			return w
		}
		w := do(http.MethodPost, "/api/routes"+path, body)
		if w.Code >= 500 {
			t.Fatalf("POST %q %q: %d %s", path, body, w.Code, w.Body)
		}
		if w.Code != http.StatusCreated {
			if w.Code != http.StatusNotFound && w.Code != http.StatusMethodNotAllowed {
				var e struct{ Status int }
				if json.Unmarshal(w.Body.Bytes(), &e) != nil || e.Status != w.Code {
					t.Fatalf("POST %q %q: %d with a non-JSON error %q", path, body, w.Code, w.Body)
				}
			}
			return
		}
		var posted map[string]any
		if err := json.Unmarshal([]byte(body), &posted); err != nil {
			t.Fatalf("POST %q accepted a body that is not a JSON object: %q", path, body)
		}
		w = do(http.MethodGet, "/api/routes", "")
		var all map[string]map[string]any
		if w.Code != 200 || json.Unmarshal(w.Body.Bytes(), &all) != nil || len(all) != 1 {
			t.Fatalf("GET /api/routes after POST %q: %d %s", path, w.Code, w.Body)
		}
		var key string
		var got map[string]any
		for key, got = range all {
		}
		if got["target"] != posted["target"] {
			t.Fatalf("route %q: target %v, posted %v", key, got["target"], posted["target"])
		}
		for k, v := range posted {
			if k == "last_activity" {
				continue
			}
			if gb, _ := json.Marshal(got[k]); string(gb) != mustJSON(v) {
				t.Fatalf("route %q: field %q = %s, posted %s", key, k, gb, mustJSON(v))
			}
		}
		escaped := (&url.URL{Path: key}).EscapedPath()
		// GET /api/routes/ is the listing, as in CHP: the root route is read from the list only.
		if w := do(http.MethodGet, "/api/routes"+escaped, ""); key != "/" && w.Code != 200 {
			t.Fatalf("GET the listed key %q (%q): %d", key, escaped, w.Code)
		}
		if w := do(http.MethodDelete, "/api/routes"+escaped, ""); w.Code != http.StatusNoContent {
			t.Fatalf("DELETE %q: %d", key, w.Code)
		}
		if w := do(http.MethodGet, "/api/routes", ""); w.Body.String() != "{}" {
			t.Fatalf("routes after DELETE %q: %s", key, w.Body)
		}
	})
}

func mustUnescape(p string) string {
	u, err := url.PathUnescape(p)
	if err != nil {
		return ""
	}
	return u
}

func mustJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}
