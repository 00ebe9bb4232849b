package web

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"

	"github.com/caddyhub/caddyhub/hubapp/store"
	"github.com/caddyhub/caddyhub/spawners"
)

// apiSpawner is a spawner whose servers are map entries (state {"id": "<user>/<server>"}).
type apiSpawner struct {
	opts  spawners.Options
	mu    sync.Mutex
	alive map[string]bool
	stops []string
}

func newAPISpawner() *apiSpawner {
	s := &apiSpawner{alive: map[string]bool{}}
	s.opts.PollInterval = caddy.Duration(time.Hour)
	s.opts.StartTimeout = caddy.Duration(5 * time.Second)
	s.opts.HTTPTimeout = caddy.Duration(5 * time.Second)
	return s
}

func (s *apiSpawner) Start(_ context.Context, req *spawners.StartRequest, _ func(spawners.Event)) (*spawners.Server, error) {
	id := req.User + "/" + req.ServerName
	s.mu.Lock()
	s.alive[id] = true
	s.mu.Unlock()
	b, _ := json.Marshal(map[string]string{"id": id})
	return &spawners.Server{URL: fakeBackendURL(), State: b}, nil
}

func (s *apiSpawner) Poll(_ context.Context, state json.RawMessage) (bool, error) {
	var st struct{ ID string }
	_ = json.Unmarshal(state, &st)
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.alive[st.ID], nil
}

func (s *apiSpawner) Stop(_ context.Context, state json.RawMessage) error {
	var st struct{ ID string }
	_ = json.Unmarshal(state, &st)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.alive[st.ID] = false
	s.stops = append(s.stops, st.ID)
	return nil
}

func (s *apiSpawner) Common() *spawners.Options { return &s.opts }

func (s *apiSpawner) stopped() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.stops...)
}

// apiHub is a hub over a fresh store, without Caddy, with helpers for API tests.
type apiHub struct {
	*Hub
	t  testing.TB
	sp *apiSpawner
}

func newAPIHub(t testing.TB, mutate func(a *testApp)) *apiHub {
	t.Helper()
	sp := newAPISpawner()
	h := newTestHub(t, sp, mutate)
	t.Cleanup(h.stopAPI) // runs before newTestHub's stopSpawn: the order of Hub.stop
	return &apiHub{Hub: h, t: t, sp: sp}
}

// user creates a user (admin or not) in groups.
func (a *apiHub) user(name string, admin bool, groups ...string) {
	a.t.Helper()
	err := a.store.Update(func(tx *store.Txn) error {
		if err := tx.CreateUser(&store.User{Name: name, Admin: admin}); err != nil {
			return err
		}
		for _, g := range groups {
			grp, err := tx.Group(g)
			if err != nil {
				grp = &store.Group{Name: g}
			}
			if err := tx.SetGroupMembers(grp, append(grp.Users, name)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		a.t.Fatal(err)
	}
}

// token creates an API token of user (or service with owner "s:<name>") with scopes; nil scopes:
// inherit.
func (a *apiHub) token(user string, scopes ...string) string {
	a.t.Helper()
	if scopes == nil {
		scopes = []string{"inherit"}
	}
	secret := store.NewToken()
	err := a.store.Update(func(tx *store.Txn) error {
		return tx.CreateToken(&store.Token{User: user, Kind: "api_token", Scopes: scopes}, secret)
	})
	if err != nil {
		a.t.Fatal(err)
	}
	return secret
}

// running records a ready server with a route, as the spawn flow leaves it.
func (a *apiHub) running(user, server string, lastActivity time.Time) {
	a.t.Helper()
	b, _ := json.Marshal(map[string]string{"id": user + "/" + server})
	a.sp.mu.Lock()
	a.sp.alive[user+"/"+server] = true
	a.sp.mu.Unlock()
	err := a.store.Update(func(tx *store.Txn) error {
		return tx.PutServer(&store.Server{User: user, Name: server, Ready: true, Target: "http://127.0.0.1:9",
			Started: lastActivity, LastActivity: lastActivity, State: b})
	})
	if err != nil {
		a.t.Fatal(err)
	}
	if _, err := a.table.Add(a.routeKey(user, server), "http://127.0.0.1:9", map[string]any{"jupyterhub": true, "user": user, "server_name": server}); err != nil {
		a.t.Fatal(err)
	}
}

type apiCall struct {
	method, path, token, body string
	header                    map[string]string
}

// do sends a request to the hub and returns the recorder.
func (a *apiHub) do(c apiCall) *httptest.ResponseRecorder {
	a.t.Helper()
	req := httptest.NewRequest(c.method, "http://127.0.0.1:8081"+c.path, strings.NewReader(c.body))
	if c.token != "" {
		req.Header.Set("Authorization", "token "+c.token)
	}
	for k, v := range c.header {
		req.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	a.ServeHTTP(rec, req)
	return rec
}

// call is do with the common arguments, decoding a JSON answer into out (if not nil).
func (a *apiHub) call(method, path, token, body string, out any) int {
	a.t.Helper()
	rec := a.do(apiCall{method: method, path: path, token: token, body: body})
	if out != nil && rec.Body.Len() > 0 {
		if err := json.Unmarshal(rec.Body.Bytes(), out); err != nil {
			a.t.Fatalf("%s %s: decoding %q: %v", method, path, rec.Body.String(), err)
		}
	}
	return rec.Code
}

// errorBody checks JupyterHub's error shape and returns the message.
func errorBody(t testing.TB, rec *httptest.ResponseRecorder) string {
	t.Helper()
	var e struct {
		Status  int    `json:"status"`
		Message string `json:"message"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil {
		t.Fatalf("error body %q is not JSON: %v", rec.Body.String(), err)
	}
	if e.Status != rec.Code {
		t.Fatalf("error body status %d, response status %d", e.Status, rec.Code)
	}
	if ct := rec.Header().Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Fatalf("error content type %q", ct)
	}
	return e.Message
}

var _ http.Handler = (*Hub)(nil)
