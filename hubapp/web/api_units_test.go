package web

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"

	"github.com/caddyhub/caddyhub/caddymodule/routetable"
	"github.com/caddyhub/caddyhub/hubapp/services"
	"github.com/caddyhub/caddyhub/hubapp/store"
)

// idleServer records a ready server whose route was last active at last.
func (a *apiHub) idleServer(user, server string, last time.Time) {
	a.t.Helper()
	a.running(user, server, last)
	key := a.routeKey(user, server)
	if _, err := a.table.Delete(key); err != nil {
		a.t.Fatal(err)
	}
	if err := a.table.Load([]routetable.Record{{Key: key, Target: "http://127.0.0.1:9", LastActivity: last,
		Data: map[string]any{"jupyterhub": true, "user": user, "server_name": server}}}); err != nil {
		a.t.Fatal(err)
	}
}

func (a *apiHub) server(user, name string) (*store.Server, error) {
	var s *store.Server
	err := a.store.View(func(tx *store.Txn) error {
		var err error
		s, err = tx.Server(user, name)
		return err
	})
	return s, err
}

func TestCullerCullOnce(t *testing.T) {
	h := newAPIHub(t, nil)
	now := time.Now().UTC()
	for _, u := range []string{"idle", "fresh", "old", "named", "keeper"} {
		h.user(u, u == "keeper")
	}
	h.idleServer("idle", "", now.Add(-2*time.Hour))
	h.idleServer("fresh", "", now.Add(-time.Minute))
	h.idleServer("named", "gpu", now.Add(-3*time.Hour))
	h.idleServer("keeper", "", now.Add(-3*time.Hour))
	// old: active a minute ago, but started a day ago (max_age).
	h.idleServer("old", "", now.Add(-time.Minute))
	_ = h.store.Update(func(tx *store.Txn) error {
		s, _ := tx.Server("old", "")
		s.Started = now.Add(-24 * time.Hour)
		return tx.PutServer(s)
	})
	// A pending server is left alone whatever its activity.
	h.user("pending", false)
	_ = h.store.Update(func(tx *store.Txn) error {
		return tx.PutServer(&store.Server{User: "pending", Pending: "spawn", LastActivity: now.Add(-5 * time.Hour)})
	})
	no := false
	c := h.newCuller(CullerConfig{
		Timeout: caddy.Duration(time.Hour), MaxAge: caddy.Duration(12 * time.Hour),
		RemoveNamedServers: true, CullUsers: true, CullAdminUsers: &no, Concurrency: 2,
	})
	c.Now = func() time.Time { return now }
	n, err := c.CullOnce(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if n != 4 {
		t.Errorf("culled %d servers, want 4 (idle, named/gpu, keeper, old)", n)
	}
	stopped := h.sp.stopped()
	slices.Sort(stopped)
	if !slices.Equal(stopped, []string{"idle/", "keeper/", "named/gpu", "old/"}) {
		t.Errorf("stopped %v", stopped)
	}
	if s, err := h.server("fresh", ""); err != nil || !s.Ready {
		t.Errorf("fresh server: %v %v", s, err)
	}
	if _, err := h.server("named", "gpu"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("named server not removed: %v", err)
	}
	for name, gone := range map[string]bool{"idle": true, "named": true, "keeper": false, "fresh": false, "old": false} {
		var err error
		_ = h.store.View(func(tx *store.Txn) error { _, err = tx.User(name); return nil })
		if gone != errors.Is(err, store.ErrNotFound) {
			t.Errorf("user %s deleted = %v, want %v", name, errors.Is(err, store.ErrNotFound), gone)
		}
	}
}

func TestCheckRoutes(t *testing.T) {
	f := newAPIFixture(t, nil)
	// alice: ready in the store, no route (a route lost, or added by hand elsewhere).
	f.running("alice", "", time.Now())
	if _, err := f.table.Delete("/user/alice"); err != nil {
		t.Fatal(err)
	}
	// ghost: a hub route without a server; foreign: a route of another proxy client.
	_, _ = f.table.Add("/user/ghost", "http://127.0.0.1:7", map[string]any{"jupyterhub": true, "user": "ghost", "server_name": ""})
	_, _ = f.table.Add("/foreign", "http://127.0.0.1:8", nil)
	if code := f.call("POST", "/hub/api/proxy", f.admin, "", nil); code != 200 {
		t.Fatalf("POST /proxy: %d", code)
	}
	if f.table.Get("/user/alice") == nil {
		t.Errorf("missing route not added")
	}
	if f.table.Get("/user/ghost") != nil {
		t.Errorf("stale route kept")
	}
	if f.table.Get("/foreign") == nil {
		t.Errorf("foreign route removed")
	}
	var routes map[string]map[string]any
	f.call("GET", "/hub/api/proxy", f.admin, "", &routes)
	if r := routes["/user/alice/"]; r == nil || r["target"] != "http://127.0.0.1:9" || r["routespec"] != "/user/alice/" {
		t.Errorf("GET /proxy = %v", routes)
	}
}

func TestMetricsEndpoint(t *testing.T) {
	f := newAPIFixture(t, nil)
	if err := f.startAPI(); err != nil {
		t.Fatal(err)
	}
	f.running("alice", "", time.Now())
	f.call("GET", "/hub/api/users", f.admin, "", nil)
	f.observeSpawn("success", 2*time.Second)
	f.observeStop("success", time.Second)
	rec := f.do(apiCall{method: "GET", path: "/hub/metrics", token: f.admin})
	if rec.Code != 200 {
		t.Fatalf("metrics: %d", rec.Code)
	}
	body := rec.Body.String()
	for _, want := range []string{
		"jupyterhub_total_users 4", "jupyterhub_running_servers 1", "caddyhub_routes 1", "caddyhub_websockets_open 0",
		`caddyhub_store_size_bytes{part="lsm"}`, `jupyterhub_active_users{period="24h"}`,
		`jupyterhub_request_duration_seconds_count{code="200",handler="/hub/api/users",method="GET"} 1`,
		`jupyterhub_server_spawn_duration_seconds_count{status="success"} 1`,
		`jupyterhub_server_stop_seconds_count{status="success"} 1`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %q", want)
		}
	}
}

func TestTokenUseRecorded(t *testing.T) {
	f := newAPIFixture(t, nil)
	before := time.Now().Add(-time.Second)
	f.call("GET", "/hub/api/users/alice", f.alice, "", nil)
	deadline := time.Now().Add(5 * time.Second)
	for {
		var tok *store.Token
		var u *store.User
		_ = f.store.View(func(tx *store.Txn) error {
			toks, _ := tx.OwnerTokens(store.OwnerUser("alice"), time.Now())
			if len(toks) > 0 {
				tok = toks[0]
			}
			u, _ = tx.User("alice")
			return nil
		})
		if tok != nil && tok.LastActivity.After(before) && u.LastActivity.After(before) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("token use not recorded: token %v, user %v", tok, u)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestManagedServiceRestartAndAdoption: a managed process that exits is restarted; a config reload
// with the same definition adopts the process; Stop ends it.
func TestManagedServiceRestartAndAdoption(t *testing.T) {
	dir := t.TempDir()
	runs := filepath.Join(dir, "runs")
	envFile := filepath.Join(dir, "env")
	svc := func() *Service {
		return &Service{Name: "flaky", APIToken: "flaky-token-1", OAuthClientID: "service-flaky",
			OAuthRedirectURI: "/services/flaky/oauth_callback", URL: "http://127.0.0.1:10999",
			Command:     []string{"/bin/sh", "-c", `env > "$ENVF.tmp" && mv "$ENVF.tmp" "$ENVF"; echo $$ >> "$RUNS"; sleep 0.3`},
			Environment: map[string]string{"RUNS": runs, "ENVF": envFile}}
	}
	h := newAPIHub(t, func(a *testApp) { a.DataDir = dir; a.Services = []*Service{svc()} })
	if err := h.startAPI(); err != nil {
		t.Fatal(err)
	}
	count := func() int {
		b, _ := os.ReadFile(runs)
		return strings.Count(string(b), "\n")
	}
	deadline := time.Now().Add(10 * time.Second)
	for count() < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("service not restarted: %d runs", count())
		}
		time.Sleep(20 * time.Millisecond)
	}
	env, _ := os.ReadFile(envFile)
	for _, want := range []string{"JUPYTERHUB_API_TOKEN=flaky-token-1", "JUPYTERHUB_SERVICE_NAME=flaky", "JUPYTERHUB_CLIENT_ID=service-flaky", "JUPYTERHUB_SERVICE_PREFIX=/services/flaky/", "JUPYTERHUB_API_URL=http://127.0.0.1:8081/hub/api"} {
		if !strings.Contains(string(env), want+"\n") {
			t.Errorf("environment lacks %s", want)
		}
	}
	// Route and OAuth client are registered.
	if r := h.table.Get("/services/flaky"); r == nil || r.Target() != "http://127.0.0.1:10999" {
		t.Errorf("service route = %v", r)
	}
	var client *store.OAuthClient
	_ = h.store.View(func(tx *store.Txn) (err error) { client, err = tx.OAuthClient("service-flaky"); return })
	if client == nil || client.Service != "flaky" || client.SecretHash != store.Hash("flaky-token-1") || client.RedirectURI != "/services/flaky/oauth_callback" {
		t.Errorf("oauth client = %+v", client)
	}

	// Reload: a second generation with the same definition adopts the process.
	m1 := services.Lookup(h.serviceKey("flaky"))
	h2 := newAPIHub(t, func(a *testApp) { a.DataDir = dir; a.Services = []*Service{svc()} })
	if err := h2.startAPI(); err != nil {
		t.Fatal(err)
	}
	h.stopAPI()
	m2 := services.Lookup(h2.serviceKey("flaky"))
	if m1 != m2 {
		t.Fatalf("reload did not adopt the managed service")
	}
	select {
	case <-m2.Done():
		t.Fatalf("the old generation's stop ended the adopted service")
	default:
	}
	h2.stopAPI()
	select {
	case <-m2.Done():
	case <-time.After(10 * time.Second):
		t.Fatalf("service not stopped")
	}
	n := count()
	time.Sleep(time.Second) // no restart after stop: nothing to poll for, so wait out a restart period
	if count() != n {
		t.Errorf("service restarted after stop")
	}
}

func TestServiceTokenGenerated(t *testing.T) {
	h := newAPIHub(t, func(a *testApp) {
		a.Services = []*Service{{Name: "tokless", OAuthClientID: "service-tokless", Roles: []string{}}}
	})
	if err := h.startAPI(); err != nil {
		t.Fatal(err)
	}
	tok := h.serviceToken(h.cfg.Services[0])
	if len(tok) != 32 {
		t.Fatalf("generated token %q", tok)
	}
	var who map[string]any
	if code := h.call("GET", "/hub/api/user", tok, "", &who); code != 200 || who["name"] != "tokless" {
		t.Errorf("generated service token: %d %v", code, who)
	}
	b, _ := json.Marshal(who)
	if strings.Contains(string(b), tok) {
		t.Errorf("whoami leaks the token")
	}
}

// TestServiceOAuthLogin: a service's OAuth client is registered, so users with access to the
// service log in to it through the hub as they do to their servers (JupyterHub's HubOAuth).
func TestServiceOAuthLogin(t *testing.T) {
	h := newAPIHub(t, func(a *testApp) {
		a.Services = []*Service{{Name: "svc", APIToken: "svc-secret-123", URL: "http://127.0.0.1:10003",
			OAuthNoConfirm: true, OAuthClientID: "service-svc", OAuthRedirectURI: "/services/svc/oauth_callback"}}
		a.Roles = []*Role{{Name: "svc-users", Scopes: []string{"access:services!service=svc"}, Users: []string{"alice"}}}
	})
	h.user("alice", false)
	h.user("carol", false)
	if err := h.startAPI(); err != nil {
		t.Fatal(err)
	}
	login := func(name string) []*http.Cookie {
		var u *store.User
		_ = h.store.View(func(tx *store.Txn) (err error) { u, err = tx.User(name); return })
		rec := httptest.NewRecorder()
		if _, err := h.createSession(rec, httptest.NewRequest("GET", "http://127.0.0.1:8081/hub/login", nil), u); err != nil {
			t.Fatal(err)
		}
		return rec.Result().Cookies()
	}
	authorize := func(cookies []*http.Cookie) *httptest.ResponseRecorder {
		req := httptest.NewRequest("GET", "http://127.0.0.1:8081/hub/api/oauth2/authorize?client_id=service-svc&redirect_uri=/services/svc/oauth_callback&response_type=code&state=st8", nil)
		req.Header.Set("Sec-Fetch-Mode", "navigate")
		for _, c := range cookies {
			req.AddCookie(c)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec
	}
	rec := authorize(login("alice"))
	loc, err := url.Parse(rec.Header().Get("Location"))
	if rec.Code != http.StatusFound || err != nil || loc.Path != "/services/svc/oauth_callback" || loc.Query().Get("state") != "st8" || loc.Query().Get("code") == "" {
		t.Fatalf("authorize: %d %q %s", rec.Code, rec.Header().Get("Location"), rec.Body.String())
	}
	form := url.Values{"client_id": {"service-svc"}, "client_secret": {"svc-secret-123"}, "grant_type": {"authorization_code"},
		"code": {loc.Query().Get("code")}, "redirect_uri": {"/services/svc/oauth_callback"}}
	req := httptest.NewRequest("POST", "http://127.0.0.1:8081/hub/api/oauth2/token", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	if rec.Code != 200 || json.Unmarshal(rec.Body.Bytes(), &tok) != nil || tok.AccessToken == "" {
		t.Fatalf("token exchange: %d %s", rec.Code, rec.Body.String())
	}
	var who map[string]any
	if code := h.call("GET", "/hub/api/user", tok.AccessToken, "", &who); code != 200 || who["name"] != "alice" {
		t.Fatalf("whoami with the service's token: %d %v", code, who)
	}
	if sc, _ := json.Marshal(who["scopes"]); !strings.Contains(string(sc), "access:services!service=svc") {
		t.Errorf("scopes of the service token: %s", sc)
	}
	// carol may not use the service.
	if rec := authorize(login("carol")); rec.Code != http.StatusForbidden {
		t.Errorf("carol authorizing the service: %d, want 403", rec.Code)
	}
}

// TestAPISubdomainURLs: with subdomain_host, server URLs are absolute on the user's origin and
// activity comes from the host-routed key.
func TestAPISubdomainURLs(t *testing.T) {
	f := newAPIFixture(t, func(a *testApp) { a.SubdomainHost = "https://hub.example.org" })
	f.running("alice", "", time.Now().Add(-time.Hour))
	if f.table.Get("/alice.hub.example.org/user/alice") == nil {
		t.Fatalf("route not host-routed: %v", f.table.All())
	}
	var m map[string]any
	if code := f.call("GET", "/hub/api/users/alice", f.admin, "", &m); code != 200 {
		t.Fatal(code)
	}
	if m["server"] != "https://alice.hub.example.org/user/alice/" {
		t.Errorf("server = %v", m["server"])
	}
	s := m["servers"].(map[string]any)[""].(map[string]any)
	if s["full_url"] != "https://alice.hub.example.org/user/alice/" || s["full_progress_url"] != "https://hub.example.org/hub/api/users/alice/server/progress" {
		t.Errorf("server model = %v", s)
	}
	la, _ := time.Parse("2006-01-02T15:04:05.000000Z", s["last_activity"].(string))
	if time.Since(la) > time.Minute {
		t.Errorf("last_activity %v ignores the host-routed route's activity", s["last_activity"])
	}
}
