package tests

// The spawn-pending page when a start fails, in headless Chromium against the real binary: the
// server program outlasts the hub's slow-spawn wait, so the browser is on the progress page, then
// exits with an error. The page must turn into a failure page: its heading, a failed bar, the
// cause said once, the event log folded away, and a "Try again" button.

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// pendingPage is what the failure page shows, read from the DOM.
type pendingPage struct {
	Visible     string `json:"visible"`
	Failure     string `json:"failure"`
	BarFailed   bool   `json:"barFailed"`
	LogOpen     bool   `json:"logOpen"`
	LogLines    int    `json:"logLines"`
	RetryShown  bool   `json:"retryShown"`
	RetryAction string `json:"retryAction"`
}

func TestBrowserSpawnFailureE2E(t *testing.T) {
	chromium := Require(t, "chromium")
	dir := t.TempDir()
	shots := screenshotDir(t)
	public, hubAPI, proxyAPI := FreePort(t), FreePort(t), FreePort(t)
	failing := filepath.Join(dir, "failing-singleuser")
	script := fmt.Sprintf("#!/bin/sh\nsleep %d\necho 'no notebook here' >&2\nexit 3\n", int(browserSpawnDelay/time.Second))
	if err := os.WriteFile(failing, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	inst := Start(t, dir, browserCaddyfile(dir, public, hubAPI, proxyAPI, failing, ""))
	t.Cleanup(func() {
		if inst.Running() {
			inst.Stop()
		}
	})
	base := URL(public, "")
	ctx := newChromium(t, chromium)
	step := browserStep(t, ctx, shots, "pending-failure-error", nil)
	step("log in",
		chromedp.Navigate(base+"/hub/login"),
		chromedp.WaitVisible(chromedp.ID("username")),
		chromedp.SendKeys(chromedp.ID("username"), "alice"),
		chromedp.SendKeys(chromedp.ID("password"), browserPassword),
		chromedp.Click(chromedp.CSS(`form[action*="/hub/login"] button[type="submit"]`)),
	)
	// Login → GET /hub/spawn (starts) → spawn-pending after the hub's 10 s slow-spawn wait.
	checkFailurePage(t, ctx, shots, "alice", "pending-failure-error")
	checkLayout(t, ctx, shots, "pending-failed")

	// The hub's own page for the failed server (a reload) says it once too, with a start button.
	step("reload the progress page", chromedp.Navigate(base+"/hub/spawn-pending/alice"))
	text, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.body.innerText`))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(text, "Your server failed to start") || strings.Contains(strings.ToLower(text), "spawn failed") {
		t.Errorf("the failed server's page:\n%s", text)
	}
	checkLayout(t, ctx, shots, "not-running-failed")
}

// checkFailurePage waits (90 s at most) for user's progress page to show that the spawn failed, and
// checks what every failure page must show: the heading "Your server failed to start", the cause said
// exactly once, no "Spawn failed" or "starting up" left, the bar marked failed, the event log folded
// but not empty, and a Try again button that starts the server again. It returns what it read, for a
// test's own checks of the cause. errShot names the screenshot taken when no failure shows.
func checkFailurePage(t *testing.T, ctx context.Context, shots, user, errShot string) pendingPage {
	t.Helper()
	heading, err := pollPage[string](ctx, 90*time.Second, `(() => {
		const h = document.querySelector("#heading");
		if (location.pathname !== "/hub/spawn-pending/`+user+`" || h === null || !h.textContent.includes("failed")) throw new Error("not yet");
		return h.textContent;
	})()`)
	if err != nil {
		failureShot(t, ctx, shots, errShot)
		t.Fatalf("the progress page never showed a failure (%v; at %s)", err, browserLocation(ctx))
	}
	if heading != "Your server failed to start" {
		t.Errorf("heading %q, want %q", heading, "Your server failed to start")
	}
	page, err := chromedp.Run(ctx, chromedp.Evaluate[pendingPage](`({
		visible: document.body.innerText,
		failure: document.querySelector("#failure").textContent,
		barFailed: document.querySelector("#progress").classList.contains("failed"),
		logOpen: document.querySelector("#events").open,
		logLines: document.querySelectorAll("#log > div").length,
		retryShown: !document.querySelector("#retry").hidden,
		retryAction: document.querySelector("#retry").getAttribute("action"),
	})`))
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("failure shown: %q", page.Failure)
	if page.Failure == "" || strings.Count(page.Visible, page.Failure) != 1 {
		t.Errorf("the cause %q is not said exactly once in the visible page:\n%s", page.Failure, page.Visible)
	}
	if strings.Contains(strings.ToLower(page.Visible), "spawn failed") || strings.Contains(page.Visible, "starting up") {
		t.Errorf("the failure page still says \"Spawn failed\" or \"starting up\":\n%s", page.Visible)
	}
	if !page.BarFailed || page.LogOpen || page.LogLines == 0 || !page.RetryShown || page.RetryAction != "/hub/spawn/"+user {
		t.Errorf("failure page: bar failed %v, log open %v with %d lines, retry shown %v (action %q)", page.BarFailed, page.LogOpen, page.LogLines, page.RetryShown, page.RetryAction)
	}
	return page
}
