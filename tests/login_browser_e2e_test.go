package tests

// The login form in headless Chromium: pressing "Sign in" turns the button into a busy, disabled
// "Signing in…" at once (a slow authenticator, PAM on a wrong password, answers after seconds), and
// the sign-in then goes through. The page is checked for horizontal overflow.

import (
	"context"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

func TestBrowserLoginBusyE2E(t *testing.T) {
	chromium := Require(t, "chromium")
	dir := t.TempDir()
	shots := screenshotDir(t)
	public, hubAPI, proxyAPI := FreePort(t), FreePort(t), FreePort(t)
	Start(t, dir, browserCaddyfile(dir, public, hubAPI, proxyAPI, "/bin/false", ""))
	base := URL(public, "")

	ctx := newChromium(t, chromium)
	run := func(what string, actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		c, cancel := context.WithTimeout(ctx, 60*time.Second)
		defer cancel()
		if err := chromedp.Do(c, actions...); err != nil {
			failureShot(t, ctx, shots, "login-failure")
			t.Fatalf("%s: %v (at %s)", what, err, browserLocation(ctx))
		}
	}
	run("open the login page", chromedp.Navigate(base+"/hub/login?next=%2Fhub%2Ftoken"), chromedp.WaitVisible(chromedp.ID("username")))
	checkLayout(t, ctx, shots, "login")
	// A listener registered after the page's own sees the button as the page left it, and holds
	// the submission there, so that the busy state can be read before the next page replaces it.
	run("hold the submission",
		chromedp.Evaluate[chromedp.Void](`document.getElementById("login-form").addEventListener("submit", function (ev) {
			var b = document.getElementById("login_submit");
			window.e2eBusy = { disabled: b.disabled, text: b.textContent, busy: b.getAttribute("aria-busy"), status: document.getElementById("login-busy").textContent };
			ev.preventDefault();
		})`),
		chromedp.SendKeys(chromedp.ID("username"), "alice"),
		chromedp.SendKeys(chromedp.ID("password"), browserPassword),
		chromedp.Click(chromedp.ID("login_submit")),
	)
	type busyState struct {
		Disabled   bool
		Text, Busy string
		Status     string
	}
	c, cancel := context.WithTimeout(ctx, 10*time.Second)
	st, err := chromedp.Run(c, chromedp.Evaluate[busyState](`window.e2eBusy || {}`))
	cancel()
	if err != nil || !st.Disabled || st.Text != "Signing in…" || st.Busy != "true" || st.Status != "Signing in…" {
		t.Errorf("the pressed Sign in button: %+v (%v), want disabled, aria-busy, \"Signing in…\" and the status said", st, err)
	}
	checkLayout(t, ctx, shots, "login-busy")
	// Let the held submission go on: the login works from the busy state.
	run("submit", chromedp.Evaluate[chromedp.Void](`document.getElementById("login-form").submit()`))
	deadline := time.Now().Add(30 * time.Second)
	for {
		c, cancel := context.WithTimeout(ctx, 10*time.Second)
		ok, err := chromedp.Run(c, chromedp.Evaluate[bool](`location.pathname === "/hub/token" && document.readyState === "complete"`))
		cancel()
		if err == nil && ok {
			break
		}
		if time.Now().After(deadline) {
			failureShot(t, ctx, shots, "login-failure")
			t.Fatalf("no token page after signing in (at %s; %v)", browserLocation(ctx), err)
		}
		time.Sleep(100 * time.Millisecond) // polling a condition with a deadline
	}
}
