package web

import (
	"context"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/chromedp/chromedp"

	"github.com/caddyhub/caddyhub/hubapp/store"
)

// TestPagesInBrowser loads the hub's pages in headless Chromium: the inline style and scripts run
// under the strict CSP (their nonce), and the scripts' REST calls work — the home page's stop
// button, the token page's request and revoke — with no CSP violation or script error on the way.
func TestPagesInBrowser(t *testing.T) {
	chromium, err := exec.LookPath("chromium")
	if err != nil {
		if os.Getenv("HUB_REQUIRE_E2E") == "1" {
			t.Fatal("chromium is required (HUB_REQUIRE_E2E=1)")
		}
		t.Skip("no chromium on PATH")
	}
	old := slowSpawnTimeout
	slowSpawnTimeout = 10 * time.Millisecond
	t.Cleanup(func() { slowSpawnTimeout = old })
	sp := &gatedSpawner{gate: make(chan struct{}), backend: fakeBackendURL()}
	sp.opts.StartTimeout = caddy.Duration(10 * time.Second)
	sp.opts.HTTPTimeout = caddy.Duration(10 * time.Second)
	sp.opts.PollInterval = caddy.Duration(time.Hour)
	wh := newWebHub(t, false, func(a *testApp) {
		a.spawner = sp
		a.DataDir = t.TempDir()
		a.HubAPI = "127.0.0.1:8081"
		a.ConcurrentSpawnLimit = 10
	})
	t.Cleanup(func() { wh.h.stopSpawn(false) })

	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(chromium),
		chromedp.Flag("headless", true),
		chromedp.Flag("no-sandbox", true),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("no-proxy-server", true),
		chromedp.UserDataDir(t.TempDir()),
	)
	t.Cleanup(cancelAlloc)
	ctx, cancel := chromedp.NewContext(allocCtx, chromedp.WithErrorf(func(string, ...any) {}))
	t.Cleanup(cancel)
	if err := chromedp.Do(ctx, chromedp.Navigate("about:blank")); err != nil {
		t.Fatalf("starting chromium: %v", err)
	}
	var mu sync.Mutex
	var problems []string
	go func() {
		for m, err := range chromedp.Console(ctx) {
			if err != nil {
				return
			}
			if m.IsException() || strings.Contains(m.Text, "Content Security Policy") || m.Source == "security" {
				mu.Lock()
				problems = append(problems, m.String())
				mu.Unlock()
			}
		}
	}()
	run := func(what string, steps ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		c, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		if err := chromedp.Do(c, steps...); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	// poll evaluates expr until it is true; evaluation errors while the page navigates are retried.
	poll := func(what, expr string) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		var lastErr error
		for time.Now().Before(deadline) {
			c, cancel := context.WithTimeout(ctx, 10*time.Second)
			ok, err := chromedp.Run(c, chromedp.Poll[bool](expr, chromedp.WithPollingTimeout(5*time.Second)))
			cancel()
			if err == nil && ok {
				return
			}
			lastErr = err
		}
		loc, _ := chromedp.Run(ctx, chromedp.Location())
		t.Fatalf("%s (at %s): %v", what, loc, lastErr)
	}

	run("log in",
		chromedp.Navigate(wh.srv.URL+"/hub/login"),
		chromedp.WaitVisible(chromedp.ID("username")),
		chromedp.SendKeys(chromedp.ID("username"), "alice"),
		chromedp.SendKeys(chromedp.ID("password"), webTestPassword),
		chromedp.Click(chromedp.CSS(`form[action$="/hub/login"] button[type="submit"]`)),
	)
	// Login goes to /hub/spawn, which starts the server (a same-origin navigation) and shows the
	// pending page; its EventSource script follows the progress and moves on when it is ready
	// (here to /user/alice/, which this hub-only server bounces back to the hub).
	poll("the pending page", `location.pathname === "/hub/spawn-pending/alice" && document.getElementById("progress") !== null`)
	// The layout's inline style applies (its nonce matches the CSP).
	poll("inline style", `getComputedStyle(document.querySelector("header")).borderBottomStyle === "solid"`)
	// Scripts can read the page's XSRF token from the _xsrf cookie (not HttpOnly), as in JupyterHub.
	poll("the _xsrf cookie readable by scripts", `document.cookie.split("; ").some(c => c.startsWith("_xsrf=") && c.length > 20)`)
	poll("a progress message", `document.getElementById("log").textContent.includes("waiting for the gate")`)
	close(sp.gate)
	poll("sent on when ready", `location.pathname.includes("/user/alice/")`)
	wh.waitIdle(t, "alice")
	if s := wh.h.webServer("alice", ""); s == nil || !s.Ready {
		t.Fatalf("server not ready: %+v", s)
	}

	// Token page: request a token, see it, revoke it.
	run("open the token page", chromedp.Navigate(wh.srv.URL+"/hub/token"), chromedp.WaitVisible(chromedp.ID("token-note")))
	run("request a token", chromedp.SendKeys(chromedp.ID("token-note"), "browser token"), chromedp.Click(chromedp.CSS(`#new-token button[type="submit"]`)))
	poll("the new token is shown", `!document.getElementById("token-result").hidden && /^[0-9a-f]{32}$/.test(document.getElementById("token-value").textContent)`)
	run("reload the token page", chromedp.Navigate(wh.srv.URL+"/hub/token"), chromedp.WaitVisible(chromedp.CSS(`button[data-revoke]`)))
	run("revoke it", chromedp.Click(chromedp.CSS(`button[data-revoke]`)))
	poll("the row is gone", `document.querySelectorAll("button[data-revoke]").length === 0`)
	var toks []*store.Token
	_ = wh.h.store.View(func(tx *store.Txn) error {
		var err error
		toks, err = tx.OwnerTokens(store.OwnerUser("alice"), time.Now())
		return err
	})
	for _, tk := range toks {
		if tk.Kind != "server" {
			t.Fatalf("token %+v left after revoking from the page", tk)
		}
	}

	// Home page of a running server: the stop button stops it through the REST API.
	run("open home", chromedp.Navigate(wh.srv.URL+"/hub/home"), chromedp.WaitVisible(chromedp.CSS(`button[data-stop]`)))
	run("press stop", chromedp.Click(chromedp.CSS(`button[data-stop]`)))
	poll("home shows the server stopped", `document.body.textContent.includes("Not running.")`)
	if s := wh.h.webServer("alice", ""); s != nil && s.Active() {
		t.Fatalf("server still active: %+v", s)
	}

	mu.Lock()
	defer mu.Unlock()
	if len(problems) > 0 {
		t.Fatalf("browser console:\n%s", strings.Join(problems, "\n"))
	}
}
