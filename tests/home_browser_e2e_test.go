package tests

// Named servers from the home page in headless Chromium against the real binary: create one
// (which starts the real jupyterhub-singleuser), open it, stop it, delete it.

import (
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

func TestBrowserNamedServersE2E(t *testing.T) {
	chromium := Require(t, "chromium")
	singleuser := Require(t, "/usr/bin/jupyterhub-singleuser")
	dir := t.TempDir()
	shots := screenshotDir(t)
	public, hubAPI, proxyAPI := FreePort(t), FreePort(t), FreePort(t)
	args := ""
	if os.Geteuid() == 0 {
		args = "args --allow-root"
	}
	cf := browserCaddyfile(dir, public, hubAPI, proxyAPI, singleuser, args)
	cf = strings.Replace(cf, "cleanup_servers", "cleanup_servers\n\t\tallow_named_servers\n\t\tnamed_server_limit_per_user 3", 1)
	inst := Start(t, dir, cf)
	t.Cleanup(func() {
		if inst.Running() {
			inst.Stop()
		}
		for _, pid := range browserServerPIDs(hubAPI, "alice") {
			_ = syscall.Kill(-pid, syscall.SIGKILL)
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	})
	base := URL(public, "")
	ctx := newChromium(t, chromium)
	step := browserStep(t, ctx, shots, "named-failure", nil)
	waitFor := browserWaitFor(t, ctx, shots, "named-failure")
	step("log in",
		chromedp.Navigate(base+"/hub/login?next=%2Fhub%2Fhome"),
		chromedp.WaitVisible(chromedp.ID("username")),
		chromedp.SendKeys(chromedp.ID("username"), "alice"),
		chromedp.SendKeys(chromedp.ID("password"), browserPassword),
		chromedp.Click(chromedp.CSS(`form[action*="/hub/login"] button[type="submit"]`)),
	)
	waitFor("home", `location.pathname === "/hub/home" && document.querySelector("#new-server") !== null`, false, 30*time.Second)
	if text, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.getElementById("named-limit").textContent + "|" + document.getElementById("last-activity").textContent`)); text != "You have 0 of at most 3 named servers.|Last activity: never" {
		t.Errorf("home's limit and last activity read %q", text)
	}
	checkLayout(t, ctx, shots, "home-named-empty")
	step("create lab1", chromedp.SendKeys(chromedp.ID("server-name"), "lab1"), chromedp.Click(chromedp.CSS(`#new-server button[type="submit"]`)))
	// The start form goes to spawn-pending, then on to the server.
	waitFor("the lab1 server", `location.pathname.startsWith("/user/alice/lab1/")`, false, 180*time.Second)
	step("back home", chromedp.Navigate(base+"/hub/home"))
	waitFor("lab1 running with Open", `document.querySelector('a[href="/user/alice/lab1/"]') !== null`, true, 30*time.Second)
	checkLayout(t, ctx, shots, "home-named-running")
	step("open lab1", chromedp.Click(chromedp.CSS(`a.button[href="/user/alice/lab1/"]`)))
	waitFor("lab1 opened", `location.pathname.startsWith("/user/alice/lab1/")`, false, 60*time.Second)
	step("back home", chromedp.Navigate(base+"/hub/home"))
	// The proxy saw the notebook's traffic: lab1's row has a last activity.
	waitFor("lab1's last activity", `/^lab1[\s\S]*running[\s\S]*\d{4}-\d\d-\d\d \d\d:\d\d UTC/.test(document.querySelector('tr:has(a[href="/user/alice/lab1/"])').innerText)`, true, 30*time.Second)
	// Stop and Delete call the API and then reload the page themselves: reloading before that
	// would cancel their request in flight, so each waits for the page's own reload first.
	ownReload := func(what string) {
		t.Helper()
		waitFor(what+" (the page's own reload)", `window.e2eBefore !== true && document.readyState === "complete"`, false, 60*time.Second)
	}
	step("mark the document", chromedp.Evaluate[chromedp.Void](`window.e2eBefore = true`))
	step("stop lab1", chromedp.Click(chromedp.CSS(`button[data-stop$="/servers/lab1"]`)))
	ownReload("stop lab1")
	waitFor("lab1 stopped", `document.querySelector('button[data-delete$="/servers/lab1"]') !== null`, true, 60*time.Second)
	step("mark the document", chromedp.Evaluate[chromedp.Void](`window.e2eBefore = true`))
	step("delete lab1", chromedp.Click(chromedp.CSS(`button[data-delete$="/servers/lab1"]`)))
	ownReload("delete lab1")
	waitFor("lab1 gone", `document.querySelector('[data-delete$="/servers/lab1"], [action$="/spawn/alice/lab1"]') === null && document.body.innerText.includes("No named servers yet.")`, true, 30*time.Second)
	checkLayout(t, ctx, shots, "home-named-deleted")
}
