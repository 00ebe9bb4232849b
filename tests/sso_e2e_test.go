package tests

// End to end: single sign-on through a real OpenID provider (zitadel/oidc's op, in this process)
// with our caddy binary and a real jupyterhub-singleuser: login by following redirects, groups
// allow/deny and admin, encrypted auth_state (readable through the API with admin:auth_state,
// never in clear on disk, crypt key rotation), refresh before spawn, replayed state, tampered ID
// token, end-session logout, the provider down at start, a wrong client secret, and a base_url.

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/caddyhub/caddyhub/auth/oidc/oidctest"
)

func cryptKey(t *testing.T) string {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// ssoProvider starts the provider with the test's people.
func ssoProvider(t *testing.T, addr string) *oidctest.Provider {
	p := oidctest.Start(t, addr)
	p.AddUser(oidctest.User{Username: "alice", Password: "pw-alice", Email: "alice@example.org", Groups: []string{"staff", "hub-admins"}})
	p.AddUser(oidctest.User{Username: "bob", Password: "pw-bob", Email: "bob@example.org", Groups: []string{"staff"}})
	p.AddUser(oidctest.User{Username: "eve", Password: "pw-eve", Groups: []string{"guests"}})
	p.AddUser(oidctest.User{Username: "carol", Password: "pw-carol", Groups: []string{"staff"}})
	return p
}

type ssoHub struct {
	dir                      string
	public, hubAPI, proxyAPI int
	base                     string // http://127.0.0.1:<public>/jh/
}

func newSSOHub(t *testing.T) *ssoHub {
	h := &ssoHub{dir: t.TempDir(), public: FreePort(t), hubAPI: FreePort(t), proxyAPI: FreePort(t)}
	h.base = URL(h.public, "/jh/")
	return h
}

func (h *ssoHub) register(p *oidctest.Provider, secret string) {
	p.AddClient("caddyhub", secret, []string{h.base + "hub/oauth_callback"}, []string{h.base + "hub/login"})
}

// caddyfile is the hub's configuration; keys is the crypt_key value, extra goes into the oidc block.
func (h *ssoHub) caddyfile(issuer, keys, extra string) string {
	args := ""
	if os.Geteuid() == 0 {
		args = "args --allow-root"
	}
	return fmt.Sprintf(`{
	grace_period 2s
	jupyterhub {
		base_url /jh/
		data_dir %[1]s/data
		proxy_api 127.0.0.1:%[3]d
		hub_api 127.0.0.1:%[4]d
		cookie_secret_file %[1]s/cookie_secret
		enable_auth_state
		crypt_key "%[6]s"
		authenticator oidc {
			issuer %[5]s
			client_id caddyhub
			client_secret {env.SSO_TEST_SECRET}
			scopes openid profile email offline_access
			login_service "Test SSO"
			allowed_groups staff
			admin_groups hub-admins
			manage_groups
			refresh_pre_spawn
			end_session
			auth_state_env OIDC_ACCESS_TOKEN access_token
			%[7]s
		}
		spawner simple {
			cmd /usr/bin/jupyterhub-singleuser
			%[8]s
			start_timeout 120s
			http_timeout 90s
		}
	}
}

:%[2]d {
	bind 127.0.0.1
	jupyterhub
}
`, h.dir, h.public, h.proxyAPI, h.hubAPI, issuer, keys, extra, args)
}

// ssoLogin signs user in: the hub's oauth_login, the provider's form, back to the hub. It returns
// the last response and body and the callback URL the provider sent the browser to.
func ssoLogin(t *testing.T, b *hubBrowser, p *oidctest.Provider, user, next string) (*http.Response, string, string) {
	t.Helper()
	resp, page := b.do("GET", "/jh/hub/oauth_login?next="+url.QueryEscape(next), nil, nil)
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Request.URL.String(), p.Issuer+"/login/username") {
		t.Fatalf("oauth_login of %s did not reach the provider's form: %d %v %.300s", user, resp.StatusCode, b.visits, page)
	}
	id := resp.Request.URL.Query().Get("authRequestID")
	resp, page = b.do("POST", p.Issuer+"/login/username", url.Values{"id": {id}, "username": {user}, "password": {"pw-" + user}}, nil)
	callback := ""
	for _, v := range b.visits {
		if _, rest, ok := strings.Cut(v, "/jh/hub/oauth_callback?"); ok {
			callback = b.base + "/jh/hub/oauth_callback?" + strings.Fields(rest)[0]
		}
	}
	return resp, page, callback
}

// apiGet reads the hub's REST API with the browser's login cookie and its XSRF token.
func apiGet(t *testing.T, b *hubBrowser, path string) (int, map[string]any) {
	t.Helper()
	_, home := b.do("GET", "/jh/hub/home", nil, nil)
	resp, body := b.do("GET", "/jh/hub/api"+path, nil, http.Header{"X-Xsrftoken": {hubFormXSRF(t, home)}})
	var m map[string]any
	_ = json.Unmarshal([]byte(body), &m)
	return resp.StatusCode, m
}

func authStateOf(t *testing.T, admin *hubBrowser, user string) map[string]any {
	t.Helper()
	status, m := apiGet(t, admin, "/users/"+user)
	if status != http.StatusOK {
		t.Fatalf("GET /users/%s: %d %v", user, status, m)
	}
	as, _ := m["auth_state"].(map[string]any)
	return as
}

// dataContains reports whether any file under dir contains s.
func dataContains(t *testing.T, dir, s string) bool {
	t.Helper()
	found := false
	_ = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || found {
			return nil
		}
		b, err := os.ReadFile(p)
		if err == nil && bytes.Contains(b, []byte(s)) {
			found = true
		}
		return nil
	})
	return found
}

// ssoProcesses returns the live processes spawned by the hub whose API listens on hubAPI (under
// base_url /jh/), with their environment; user "" matches every user.
func ssoProcesses(hubAPI int, user string) map[int]string {
	api := []byte("JUPYTERHUB_API_URL=http://127.0.0.1:" + strconv.Itoa(hubAPI) + "/jh/hub/api\x00")
	who := []byte("\x00JUPYTERHUB_USER=" + user + "\x00")
	out := map[int]string{}
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		env, err := os.ReadFile(filepath.Join("/proc", e.Name(), "environ"))
		stat, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil || !bytes.Contains(env, api) || bytes.Contains(stat, []byte(") Z ")) {
			continue
		}
		if user != "" && !bytes.Contains(append([]byte{0}, env...), who) {
			continue
		}
		out[pid] = string(bytes.ReplaceAll(env, []byte{0}, []byte{'\n'}))
	}
	return out
}

// endSSOProcesses stops what the hub on hubAPI spawned (its servers outlive it by design).
func endSSOProcesses(t *testing.T, hubAPI int) {
	for pid := range ssoProcesses(hubAPI, "") {
		_ = syscall.Kill(pid, syscall.SIGTERM)
	}
	deadline := time.Now().Add(10 * time.Second)
	for len(ssoProcesses(hubAPI, "")) > 0 && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond) // polling a condition with a deadline
	}
	for pid := range ssoProcesses(hubAPI, "") {
		t.Logf("killing leftover process %d", pid)
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
}

func TestOIDCLoginSpawnE2E(t *testing.T) {
	Require(t, "/usr/bin/jupyterhub-singleuser")
	p := ssoProvider(t, "")
	h := newSSOHub(t)
	h.register(p, "client-secret-1")
	oldKey, newKey := cryptKey(t), cryptKey(t)
	inst := Start(t, h.dir, h.caddyfile(p.Issuer, oldKey, ""), "SSO_TEST_SECRET=client-secret-1")
	t.Cleanup(func() { endSSOProcesses(t, h.hubAPI) })

	// The login page links to the provider.
	alice := newHubBrowser(t, URL(h.public, ""))
	resp, page := alice.do("GET", "/jh/hub/login", nil, nil)
	if resp.StatusCode != http.StatusOK || !strings.Contains(page, "Sign in with Test SSO") || !strings.Contains(page, `/jh/hub/oauth_login`) {
		t.Fatalf("login page: %d %.800s", resp.StatusCode, page)
	}

	// alice: staff and hub-admins → admin; groups synced into hub groups; auth_state encrypted.
	resp, page, _ = ssoLogin(t, alice, p, "alice", "/jh/hub/home")
	if resp.StatusCode != http.StatusOK || !strings.HasSuffix(resp.Request.URL.Path, "/jh/hub/home") || !alice.hasCookie("/jh/hub/", "jupyterhub-hub-login") {
		t.Fatalf("alice's login: %d at %s %v %.300s\n%s", resp.StatusCode, resp.Request.URL, alice.visits, page, inst.Log())
	}
	status, me := apiGet(t, alice, "/user")
	groups := fmt.Sprint(me["groups"])
	if status != http.StatusOK || me["admin"] != true || (groups != "[hub-admins staff]" && groups != "[staff hub-admins]") {
		t.Fatalf("alice's model: %d %v", status, me)
	}
	as := authStateOf(t, alice, "alice")
	access, _ := as["access_token"].(string)
	if access == "" || as["id_token"] == nil || as["refresh_token"] == nil {
		t.Fatalf("alice's auth_state through the API: %v", as)
	}
	if dataContains(t, h.dir+"/data", access) {
		t.Fatal("the access token is stored in clear in the data directory")
	}

	// bob: staff, not admin; he cannot read auth_state (no admin:auth_state).
	bob := newHubBrowser(t, URL(h.public, ""))
	resp, _, bobCallback := ssoLogin(t, bob, p, "bob", "/jh/hub/home")
	if resp.StatusCode != http.StatusOK || bobCallback == "" {
		t.Fatalf("bob's login: %d %v", resp.StatusCode, bob.visits)
	}
	if status, m := apiGet(t, bob, "/users/bob"); status != http.StatusOK || m["admin"] != false || m["auth_state"] != nil {
		t.Fatalf("bob's own model: %d %v (no auth_state without admin:auth_state)", status, m)
	}
	// The provider's callback replayed: refused, with a page that says what to do.
	resp, page = bob.do("GET", bobCallback, nil, nil)
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(page, "expired or was already used") {
		t.Fatalf("replayed callback: %d %.500s", resp.StatusCode, page)
	}

	// eve: only in guests → 403 with words, no trace.
	eve := newHubBrowser(t, URL(h.public, ""))
	resp, page, _ = ssoLogin(t, eve, p, "eve", "/jh/hub/home")
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(page, "not allowed on this hub") || eve.hasCookie("/jh/hub/", "jupyterhub-hub-login") {
		t.Fatalf("eve: %d %.500s", resp.StatusCode, page)
	}

	// A tampered ID token: refused.
	p.TamperIDTokens(true)
	carol := newHubBrowser(t, URL(h.public, ""))
	resp, page, _ = ssoLogin(t, carol, p, "carol", "/jh/hub/home")
	p.TamperIDTokens(false)
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(page, "could not be verified") {
		t.Fatalf("tampered id token: %d %.500s", resp.StatusCode, page)
	}
	// An expired ID token: refused the same way.
	p.SetIDTokenTTL(-time.Minute)
	resp, page, _ = ssoLogin(t, carol, p, "carol", "/jh/hub/home")
	p.SetIDTokenTTL(0)
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(page, "could not be verified") {
		t.Fatalf("expired id token: %d %.500s", resp.StatusCode, page)
	}

	// alice spawns; her server gets the access token (auth_state_env) and answers through the edge.
	resp, body := alice.do("GET", "/jh/hub/spawn", nil, nil)
	if resp.StatusCode >= 500 {
		t.Fatalf("spawn: %d %v %.500s", resp.StatusCode, alice.visits, body)
	}
	waitFor(t, "alice's server", 150*time.Second, func() bool {
		resp, _ := alice.do("GET", "/jh/user/alice/", nil, nil) // through the hub's OAuth to the server
		return resp.StatusCode == http.StatusOK && strings.HasPrefix(resp.Request.URL.Path, "/jh/user/alice/")
	})
	if resp, body := alice.do("GET", "/jh/user/alice/api/status", nil, nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("alice's server API: %d %.300s", resp.StatusCode, body)
	}
	procs := ssoProcesses(h.hubAPI, "alice")
	if len(procs) != 1 {
		t.Fatalf("want one server process of alice, found %d", len(procs))
	}
	for _, env := range procs {
		if !strings.Contains(env, "\nOIDC_ACCESS_TOKEN="+access+"\n") {
			t.Fatal("alice's server does not have her access token in OIDC_ACCESS_TOKEN")
		}
	}
	if len(ssoProcesses(h.hubAPI, "bob")) != 0 {
		t.Fatal("bob has a server before he asked for one")
	}

	// refresh_pre_spawn: bob's next login gets an access token that expires in a second; his spawn
	// refreshes it first.
	p.SetAccessTokenTTL(2 * time.Second) // expires_in is whole seconds, rounded down
	bob = newHubBrowser(t, URL(h.public, ""))
	ssoLogin(t, bob, p, "bob", "/jh/hub/home")
	p.SetAccessTokenTTL(0)
	before := authStateOf(t, alice, "bob")
	exp, _ := before["expires_at"].(float64)
	if exp == 0 {
		t.Fatalf("bob's auth_state has no expires_at: %v", before)
	}
	for time.Now().Unix() <= int64(exp) {
		time.Sleep(100 * time.Millisecond) // waiting for the clock to pass the token's expiry
	}
	tokens := p.TokenRequests()
	_, home := bob.do("GET", "/jh/hub/home", nil, nil)
	resp, body = bob.do("POST", "/jh/hub/api/users/bob/server", nil, http.Header{"X-Xsrftoken": {hubFormXSRF(t, home)}})
	if resp.StatusCode != http.StatusCreated && resp.StatusCode != http.StatusAccepted {
		t.Fatalf("bob's spawn: %d %s\n%s", resp.StatusCode, body, inst.Log())
	}
	after := authStateOf(t, alice, "bob")
	if p.TokenRequests() <= tokens || after["access_token"] == before["access_token"] {
		t.Fatalf("bob's expired token was not refreshed before the spawn (token requests %d → %d)", tokens, p.TokenRequests())
	}

	// Crypt key rotation: a new key first, the old one kept: old auth_state still readable;
	// bob logs in again (sealed with the new key); with the old key gone, only bob's is readable.
	inst.Reload(h.caddyfile(p.Issuer, newKey+";"+oldKey, ""))
	if as := authStateOf(t, alice, "alice"); as["access_token"] != access {
		t.Fatalf("after rotation, alice's auth_state: %v", as)
	}
	bob = newHubBrowser(t, URL(h.public, ""))
	ssoLogin(t, bob, p, "bob", "/jh/hub/home")
	bobState := authStateOf(t, alice, "bob")
	inst.Reload(h.caddyfile(p.Issuer, newKey, ""))
	if as := authStateOf(t, alice, "alice"); as != nil {
		t.Fatalf("alice's auth_state, sealed with the dropped key, read back as %v", as)
	}
	if as := authStateOf(t, alice, "bob"); as["access_token"] != bobState["access_token"] {
		t.Fatalf("bob's auth_state under the new key alone: %v", as)
	}

	// Logout ends the provider's session too, and comes back to the hub's login page.
	_, home = alice.do("GET", "/jh/hub/home", nil, nil)
	ends := p.EndSessions()
	resp, _ = alice.do("POST", "/jh/hub/logout", url.Values{"_xsrf": {hubFormXSRF(t, home)}}, nil)
	if p.EndSessions() != ends+1 || resp.Request.URL.Path != "/jh/hub/login" || alice.hasCookie("/jh/hub/", "jupyterhub-hub-login") {
		t.Fatalf("logout: end sessions %d→%d, at %s, visits %v", ends, p.EndSessions(), resp.Request.URL, alice.visits)
	}
	if !strings.Contains(strings.Join(alice.visits, " "), p.Issuer+"/end_session") {
		t.Fatalf("logout did not go through the provider's end_session: %v", alice.visits)
	}
}

func TestOIDCProviderTroubleE2E(t *testing.T) {
	addr := fmt.Sprintf("127.0.0.1:%d", FreePort(t)) // nobody listens here yet
	h := newSSOHub(t)
	key := cryptKey(t)
	// The provider is down when the hub starts: the hub starts, the login page says so.
	inst := Start(t, h.dir, h.caddyfile("http://"+addr, key, ""), "SSO_TEST_SECRET=client-secret-1")
	b := newHubBrowser(t, URL(h.public, ""))
	waitFor(t, "the login page to say sign-in is unavailable", 30*time.Second, func() bool {
		resp, page := b.do("GET", "/jh/hub/login", nil, nil)
		return resp.StatusCode == http.StatusOK && strings.Contains(page, "unavailable")
	})
	if resp, page := b.do("GET", "/jh/hub/oauth_login", nil, nil); resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(page, "unavailable") {
		t.Fatalf("oauth_login while the provider is down: %d %.300s", resp.StatusCode, page)
	}
	if !strings.Contains(inst.Log(), "identity provider unreachable") {
		t.Fatalf("no log line about the unreachable provider:\n%s", inst.Log())
	}
	// It comes up: sign-in works without restarting the hub.
	p := ssoProvider(t, addr)
	h.register(p, "client-secret-1")
	waitFor(t, "sign-in to work again (a login retries discovery at most every 2 s)", 30*time.Second, func() bool {
		resp, _ := b.do("GET", "/jh/hub/oauth_login", nil, nil)
		return strings.HasPrefix(resp.Request.URL.String(), p.Issuer+"/login/username")
	})
	if resp, page := b.do("GET", "/jh/hub/login", nil, nil); strings.Contains(page, "unavailable") || !strings.Contains(page, "Sign in with Test SSO") {
		t.Fatalf("login page after discovery: %d %.500s", resp.StatusCode, page)
	}
	resp, page, _ := ssoLogin(t, b, p, "bob", "/jh/hub/home")
	if resp.StatusCode != http.StatusOK || !strings.HasSuffix(resp.Request.URL.Path, "/jh/hub/home") {
		t.Fatalf("login after the provider came up: %d %v %.300s", resp.StatusCode, b.visits, page)
	}
	// It goes down again and the hub restarts: bob, logged in, is still served.
	p.Close()
	inst.Stop()
	inst = Start(t, h.dir, h.caddyfile("http://"+addr, key, ""), "SSO_TEST_SECRET=client-secret-1")
	if resp, page := b.do("GET", "/jh/hub/home", nil, nil); resp.StatusCode != http.StatusOK || resp.Request.URL.Path != "/jh/hub/home" {
		t.Fatalf("bob while the provider is down: %d at %s %.300s", resp.StatusCode, resp.Request.URL, page)
	}
	_ = inst

	// A wrong client secret: a page and a log line that say so.
	p2 := ssoProvider(t, "")
	h2 := newSSOHub(t)
	h2.register(p2, "the-right-secret")
	inst2 := Start(t, h2.dir, h2.caddyfile(p2.Issuer, key, ""), "SSO_TEST_SECRET=a-wrong-secret")
	b2 := newHubBrowser(t, URL(h2.public, ""))
	resp, page, _ = ssoLogin(t, b2, p2, "bob", "/jh/hub/home")
	if resp.StatusCode != http.StatusBadGateway || !strings.Contains(page, "refused the hub") {
		t.Fatalf("wrong secret: %d %.500s", resp.StatusCode, page)
	}
	if !regexp.MustCompile(`client_secret`).MatchString(inst2.Log()) {
		t.Fatalf("no log line naming client_secret:\n%s", inst2.Log())
	}
}

func TestOIDCStartRefusedWithoutKeyE2E(t *testing.T) {
	h := newSSOHub(t)
	cfg := strings.Replace(h.caddyfile("http://127.0.0.1:1", "", ""), `crypt_key ""`, "", 1)
	cfg = strings.Replace(cfg, "{env.SSO_TEST_SECRET}", "a-secret", 1)
	path := filepath.Join(h.dir, "Caddyfile")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := RunCaddy(t, h.dir, "validate", "--config", path, "--adapter", "caddyfile")
	if err == nil || !strings.Contains(out, "JUPYTERHUB_CRYPT_KEY") {
		t.Fatalf("enable_auth_state without a key: err=%v\n%s", err, out)
	}
}
