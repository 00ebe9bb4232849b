package caddymodule

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gorilla/websocket"

	"github.com/caddyhub/caddyhub/caddymodule/routetable"
)

// TestHandlerStripsHubLoginCookie: whatever cookies a client sends to a user's server, the hub's
// login cookie never reaches it; the others pass unchanged. The hub's own route keeps it.
func TestHandlerStripsHubLoginCookie(t *testing.T) {
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte(strings.Join(r.Header.Values("Cookie"), " | ")))
	}))
	t.Cleanup(backend.Close)
	tb := routetable.New()
	addRoute(t, tb, "/user/alice", backend.URL)
	if _, err := tb.Add("/", backend.URL, map[string]any{"jupyterhub": true, "hub": true}); err != nil {
		t.Fatal(err)
	}
	base := startCaddy(t, &testAppState{table: tb}, `{"handler": "jupyterhub"}`)

	for _, c := range []struct{ sent, want string }{
		{"jupyterhub-hub-login=secret; _xsrf=abc; jupyterhub-user-alice=tok", "_xsrf=abc; jupyterhub-user-alice=tok"},
		{"jupyterhub-hub-login=secret", ""},
		{"_xsrf=abc", "_xsrf=abc"},
		{"not-jupyterhub-hub-login=x; a=b", "not-jupyterhub-hub-login=x; a=b"},
	} {
		// A Python JupyterHub behind us (proxy_only) is the "hub" route: it keeps its own cookie.
		req, _ := http.NewRequest(http.MethodGet, base+"/hub/home", nil)
		req.Header.Set("Cookie", c.sent)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if string(b) != c.sent {
			t.Errorf("hub route: sent %q, hub saw %q", c.sent, b)
		}

		req, _ = http.NewRequest(http.MethodGet, base+"/user/alice/api/status", nil)
		req.Header.Set("Cookie", c.sent)
		resp, err = http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ = io.ReadAll(resp.Body)
		resp.Body.Close()
		if string(b) != c.want {
			t.Errorf("sent %q: backend saw %q, want %q", c.sent, b, c.want)
		}
	}
}

// TestOpenWebsocketsCount: an upgraded connection through the edge is counted while open.
func TestOpenWebsocketsCount(t *testing.T) {
	alice := newBackend(t, "alice")
	tb := routetable.New()
	addRoute(t, tb, "/user/alice", alice.URL)
	base := startCaddy(t, &testAppState{table: tb, hub: &fakeHub{}}, `{"handler": "jupyterhub"}`)
	before := OpenWebsockets()
	conn, resp, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(base, "http")+"/user/alice/ws", nil)
	if err != nil {
		t.Fatalf("websocket dial: %v (%v)", err, resp)
	}
	waitFor(t, func() bool { return OpenWebsockets() == before+1 })
	conn.Close()
	waitFor(t, func() bool { return OpenWebsockets() == before })
}
