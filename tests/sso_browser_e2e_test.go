package tests

// End to end in a real browser: headless Chromium clicks "Sign in with Test SSO" on the hub's
// login page, signs in on the OpenID provider's form (zitadel/oidc's op in this process), and
// lands in its jupyterhub-singleuser server.

import (
	"fmt"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
)

func TestOIDCBrowserE2E(t *testing.T) {
	chromium := Require(t, "chromium")
	Require(t, "/usr/bin/jupyterhub-singleuser")
	p := ssoProvider(t, "")
	h := newSSOHub(t)
	h.register(p, "client-secret-1")
	Start(t, h.dir, h.caddyfile(p.Issuer, cryptKey(t), ""), "SSO_TEST_SECRET=client-secret-1")
	t.Cleanup(func() { endSSOProcesses(t, h.hubAPI) })
	base := URL(h.public, "")

	ctx := newChromium(t, chromium)
	var mu sync.Mutex
	var pages []string
	if err := chromedp.Listen(ctx, func(ev any) {
		if e, ok := ev.(*network.EventRequestWillBeSent); ok && e.Type == network.ResourceTypeDocument {
			mu.Lock()
			pages = append(pages, redactQuery(e.Request.URL))
			mu.Unlock()
		}
	}); err != nil {
		t.Fatal(err)
	}
	visited := func() []string {
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), pages...)
	}
	step := browserStep(t, ctx, "", "", func() string { return fmt.Sprintf("pages: %v", visited()) })

	step("open the hub's login page and click the sign-in button",
		chromedp.Navigate(base+"/jh/hub/login"),
		chromedp.WaitVisible(chromedp.ID("sso-login")),
		chromedp.Click(chromedp.ID("sso-login")),
	)
	waitLocation(t, ctx, "the provider's sign-in form", 30*time.Second, func(u *url.URL) bool {
		return strings.HasPrefix(u.String(), p.Issuer+"/login/username")
	}, visited)
	step("sign in at the provider",
		chromedp.WaitVisible(chromedp.ID("username")),
		chromedp.SendKeys(chromedp.ID("username"), "alice"),
		chromedp.SendKeys(chromedp.ID("password"), "pw-alice"),
		chromedp.Click(chromedp.ID("submit")),
	)
	// Back at the hub: /hub/spawn starts the server (or shows its button, pressed here).
	u := waitLocation(t, ctx, "the hub's spawn page", 60*time.Second, func(u *url.URL) bool {
		return strings.HasPrefix(u.Path, "/jh/hub/spawn") || strings.HasPrefix(u.Path, "/jh/user/alice/")
	}, visited)
	if u.Path == "/jh/hub/spawn" {
		step("press the start button", chromedp.Click(chromedp.CSS(`form[action*="/hub/spawn"] button[type="submit"]`)))
	}
	waitLocation(t, ctx, "alice's notebook", 240*time.Second, func(u *url.URL) bool {
		return strings.HasPrefix(u.Path, "/jh/user/alice/tree") || strings.HasPrefix(u.Path, "/jh/user/alice/lab")
	}, visited)
	joined := strings.Join(visited(), "\n")
	for _, want := range []string{"/jh/hub/oauth_login", p.Issuer + "/authorize?", "/jh/hub/oauth_callback?code=…", "/jh/user/alice/oauth_callback?code=…"} {
		if !strings.Contains(joined, want) {
			t.Errorf("the browser never passed %s; pages:\n%s", want, joined)
		}
	}
}
