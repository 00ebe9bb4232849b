package tests

// End to end: an OpenID Connect (redirect) login on a hub with subdomain_host, where each user's
// server has its own origin. The provider (zitadel/oidc's op, in this process) sends the browser
// back to the hub's origin; a login that starts on a user's origin (the server's own OAuth with the
// hub) goes through the provider and ends back on that origin; the hub's and the provider flow's
// cookies never reach a user's origin.

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

const ssoSubdomainHost = "hub.sso.test"

func TestOIDCSubdomainHostE2E(t *testing.T) {
	p := ssoProvider(t, "")
	dir, public, hubAPI := t.TempDir(), FreePort(t), FreePort(t)
	hubOrigin := fmt.Sprintf("http://%s:%d", ssoSubdomainHost, public)
	userOrigin := func(user string) string { return fmt.Sprintf("http://%s.%s:%d", user, ssoSubdomainHost, public) }
	p.AddClient("caddyhub", "client-secret-sub", []string{hubOrigin + "/hub/oauth_callback"}, []string{hubOrigin + "/hub/login"})
	cfg := fmt.Sprintf(`{
	grace_period 2s
	jupyterhub {
		data_dir %[1]s/data
		proxy_api 127.0.0.1:%[2]d
		hub_api 127.0.0.1:%[3]d
		cookie_secret_file %[1]s/cookie_secret
		subdomain_host %[4]s
		authenticator oidc {
			issuer %[5]s
			client_id caddyhub
			client_secret {env.SSO_TEST_SECRET}
			login_service "Test SSO"
			allowed_groups staff
			auto_login
		}
		spawner simple {
			cmd %[6]s
			http_timeout 30s
		}
	}
}

:%[7]d {
	bind 127.0.0.1
	jupyterhub
}
`, dir, FreePort(t), hubAPI, hubOrigin, p.Issuer, echoServer(t), public)
	inst := Start(t, dir, cfg, "SSO_TEST_SECRET=client-secret-sub")
	th := &tlsHub{t: t, hubAPI: hubAPI}
	t.Cleanup(th.killServers)

	// browser resolves every name to 127.0.0.1 (the hub's origin, users' origins, the provider).
	browser := func() *hubBrowser {
		b := newHubBrowser(t, hubOrigin)
		b.c.Transport = tlsTransport(nil)
		return b
	}
	// signIn fills in the provider's login form the browser was sent to.
	signIn := func(b *hubBrowser, resp *http.Response, user string) (*http.Response, string) {
		t.Helper()
		if !strings.HasPrefix(resp.Request.URL.String(), p.Issuer+"/login/username") {
			t.Fatalf("%s was not sent to the provider's form: %d at %s\nvisits %v\n%s", user, resp.StatusCode, resp.Request.URL, b.visits, inst.Log())
		}
		id := resp.Request.URL.Query().Get("authRequestID")
		return b.do("POST", p.Issuer+"/login/username", url.Values{"id": {id}, "username": {user}, "password": {"pw-" + user}}, nil)
	}

	// alice signs in on the hub's origin: auto_login sends her to the provider, which sends her
	// back to the hub's origin (the callback registered there), and she lands on her home page.
	alice := browser()
	resp, _ := alice.do("GET", "/hub/login?next="+url.QueryEscape("/hub/home"), nil, nil)
	resp, page := signIn(alice, resp, "alice")
	chain := strings.Join(alice.visits, "\n")
	if resp.StatusCode != http.StatusOK || resp.Request.URL.Host != fmt.Sprintf("%s:%d", ssoSubdomainHost, public) ||
		resp.Request.URL.Path != "/hub/home" || !alice.hasCookie("/hub/", "jupyterhub-hub-login") {
		t.Fatalf("alice's login: %d at %s\n%s\n%.300s\n%s", resp.StatusCode, resp.Request.URL, chain, page, inst.Log())
	}
	if !strings.Contains(chain, "GET /hub/oauth_callback?code=") {
		t.Errorf("the provider did not send alice back to the hub's origin:\n%s", chain)
	}

	// Her server, on her own origin.
	alice.do("GET", "/hub/spawn", nil, nil)
	_, home := alice.do("GET", "/hub/home", nil, nil)
	xsrf := hubFormXSRF(t, home)
	waitFor(t, "alice's server", 60*time.Second, func() bool {
		_, stream := alice.do("GET", "/hub/api/users/alice/server/progress?_xsrf="+url.QueryEscape(xsrf), nil, nil)
		if strings.Contains(stream, `"failed":true`) {
			t.Fatalf("spawn failed: %s\n%s", stream, inst.Log())
		}
		return strings.Contains(stream, `"ready":true`)
	})
	report := func(b *hubBrowser, u string) echoReport {
		t.Helper()
		resp, body := b.do("GET", u, nil, nil)
		var rep echoReport
		if resp.StatusCode != http.StatusOK || json.Unmarshal([]byte(body), &rep) != nil {
			t.Fatalf("GET %s: %d at %s\nvisits %v\n%.400s", u, resp.StatusCode, resp.Request.URL, b.visits, body)
		}
		return rep
	}
	rep := report(alice, userOrigin("alice")+"/user/alice/login")
	if rep.Visitor != "alice" || rep.Host != fmt.Sprintf("alice.%s:%d", ssoSubdomainHost, public) {
		t.Fatalf("alice on her origin: visitor %q host %q; visits %v", rep.Visitor, rep.Host, alice.visits)
	}

	// A browser with no session starts on alice's origin: her server's OAuth sends it to the hub's
	// authorize, the hub's login (auto_login) to the provider; after the provider, the hub's
	// callback on the hub's origin, then back through authorize to alice's origin, logged in.
	fresh := browser()
	resp, _ = fresh.do("GET", userOrigin("alice")+"/user/alice/login", nil, nil)
	before := strings.Join(fresh.visits, "\n")
	resp, body := signIn(fresh, resp, "alice")
	after := strings.Join(fresh.visits, "\n")
	if resp.StatusCode != http.StatusOK || resp.Request.URL.Host != fmt.Sprintf("alice.%s:%d", ssoSubdomainHost, public) ||
		json.Unmarshal([]byte(body), &rep) != nil || rep.Visitor != "alice" {
		t.Fatalf("login started on alice's origin ended at %s (%d)\nbefore the form:\n%s\nafter:\n%s\n%.300s",
			resp.Request.URL, resp.StatusCode, before, after, body)
	}
	if !strings.Contains(before, "GET /hub/api/oauth2/authorize?") || !strings.Contains(before, "GET /hub/oauth_login?") ||
		!strings.Contains(after, "GET /hub/oauth_callback?code=") ||
		!strings.Contains(after, fmt.Sprintf("GET %s/user/alice/oauth_callback?code=", userOrigin("alice"))) {
		t.Errorf("the login did not go hub authorize → provider → hub callback → alice's origin:\nbefore the form:\n%s\nafter:\n%s", before, after)
	}

	t.Logf("login started on alice's origin:\n%s\n%s", before, after)

	// No cookie of the hub or of the login flow reaches a user's origin, and no cookie of alice's
	// origin reaches bob's.
	for _, b := range []*hubBrowser{alice, fresh} {
		for _, u := range []string{userOrigin("alice") + "/user/alice/", userOrigin("bob") + "/user/bob/", userOrigin("alice") + "/hub/"} {
			pu, _ := url.Parse(u)
			for _, c := range b.jar.Cookies(pu) {
				if strings.HasPrefix(c.Name, "jupyterhub-") || strings.Contains(c.Name, "oidc") ||
					(strings.Contains(u, "bob") && c.Name == "echo-session") {
					t.Errorf("cookie %s would be sent to %s", c.Name, u)
				}
			}
		}
	}

	// The redirect login is the hub's: on a user's origin its endpoints send the browser to the
	// hub's origin, so the provider's state cookie is never set there.
	plain := &http.Client{Transport: tlsTransport(nil), Timeout: 10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	for _, path := range []string{"/hub/oauth_login", "/hub/oauth_callback?code=x&state=y"} {
		r, err := plain.Get(userOrigin("alice") + path)
		if err != nil {
			t.Fatal(err)
		}
		r.Body.Close()
		if loc := r.Header.Get("Location"); !strings.HasPrefix(loc, hubOrigin+"/hub/") || len(r.Header.Values("Set-Cookie")) != 0 {
			t.Errorf("%s on alice's origin: %d Location %q Set-Cookie %v", path, r.StatusCode, loc, r.Header.Values("Set-Cookie"))
		}
	}

	// bob (staff) signs in, but alice's server is not his: the hub refuses him on her origin.
	bob := browser()
	resp, _ = bob.do("GET", "/hub/login?next="+url.QueryEscape("/hub/home"), nil, nil)
	if resp, _ := signIn(bob, resp, "bob"); resp.StatusCode != http.StatusOK || resp.Request.URL.Path != "/hub/home" {
		t.Fatalf("bob's login: %d at %s; visits %v", resp.StatusCode, resp.Request.URL, bob.visits)
	}
	resp, body = bob.do("GET", userOrigin("alice")+"/user/alice/login", nil, nil)
	if resp.StatusCode != http.StatusForbidden || strings.Contains(body, `"visitor"`) {
		t.Errorf("bob on alice's origin: %d at %s\nvisits %v\n%.300s", resp.StatusCode, resp.Request.URL, bob.visits, body)
	}
}
