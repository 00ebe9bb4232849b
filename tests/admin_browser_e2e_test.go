package tests

// The admin page in headless Chromium against the real binary: 10,000 users created through the
// REST API in one call, an admin finds one of them by searching, starts and stops that user's
// server (the real jupyterhub-singleuser), adds three users at once, makes one admin and deletes
// one; a non-admin sees no link and gets 403. Every page is checked for horizontal overflow at
// 1280×800 and 390×844, and screenshotted into screenshotDir.

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
)

// screenshotDir is where browser tests keep their screenshots: $HUB_SCREENSHOT_DIR, else
// caddyhub-screenshots under the system's temporary directory (kept after the test, so that
// .ci/run can list it).
func screenshotDir(t *testing.T) string {
	t.Helper()
	d := os.Getenv("HUB_SCREENSHOT_DIR")
	if d == "" {
		d = filepath.Join(os.TempDir(), "caddyhub-screenshots")
	}
	if err := os.MkdirAll(d, 0o755); err != nil {
		t.Fatal(err)
	}
	return d
}

// browserViewports are the sizes every page is checked at: a laptop and a phone.
var browserViewports = []struct {
	name          string
	width, height int64
}{{"1280x800", 1280, 800}, {"390x844", 390, 844}}

// checkLayout screenshots the current page at each viewport into dir/<name>-<size>.png and fails
// when the page scrolls sideways (document.documentElement.scrollWidth > clientWidth).
func checkLayout(t *testing.T, ctx context.Context, dir, name string) {
	t.Helper()
	c, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for _, vp := range browserViewports {
		if err := chromedp.Do(c, chromedp.EmulateViewport(vp.width, vp.height)); err != nil {
			t.Fatalf("%s: viewport %s: %v", name, vp.name, err)
		}
		widths, err := chromedp.Run(c, chromedp.Evaluate[[]int](`[document.documentElement.scrollWidth, document.documentElement.clientWidth]`))
		if err != nil {
			t.Fatalf("%s: measuring at %s: %v", name, vp.name, err)
		}
		if len(widths) == 2 && widths[0] > widths[1] {
			t.Errorf("%s at %s scrolls sideways: scrollWidth %d > clientWidth %d", name, vp.name, widths[0], widths[1])
		}
		shot, err := chromedp.Run(c, chromedp.FullScreenshot(100))
		if err != nil {
			t.Fatalf("%s: screenshot at %s: %v", name, vp.name, err)
		}
		p := filepath.Join(dir, name+"-"+vp.name+".png")
		if err := os.WriteFile(p, shot, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := chromedp.Do(c, chromedp.EmulateViewport(1280, 800)); err != nil {
		t.Fatal(err)
	}
}

// failureShot saves what the browser shows when a step fails.
func failureShot(t *testing.T, ctx context.Context, dir, name string) {
	c, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if shot, err := chromedp.Run(c, chromedp.FullScreenshot(100)); err == nil {
		p := filepath.Join(dir, name+".png")
		_ = os.WriteFile(p, shot, 0o644)
		t.Logf("failure screenshot: %s", p)
	}
}

func adminCaddyfile(dir string, public, hubAPI, proxyAPI int, singleuser, args, serviceToken string) string {
	return fmt.Sprintf(`{
	grace_period 2s
	jupyterhub {
		data_dir %[1]s/data
		proxy_api 127.0.0.1:%[3]d
		hub_api 127.0.0.1:%[4]d
		cookie_secret_file %[1]s/cookie_secret
		authenticator dummy {
			password %[7]s
			admin_users root
			allowed_users alice
		}
		spawner simple {
			cmd %[5]s
			%[6]s
			start_timeout 120s
			http_timeout 90s
		}
		service bulk {
			api_token %[8]s
			admin
		}
		cleanup_servers
		# the Open links to other users' servers need the admin role's access:servers
		admin_access
	}
}

:%[2]d {
	bind 127.0.0.1
	jupyterhub
}
`, dir, public, proxyAPI, hubAPI, singleuser, args, browserPassword, serviceToken)
}

func TestBrowserAdminE2E(t *testing.T) {
	chromium := Require(t, "chromium")
	singleuser := Require(t, "/usr/bin/jupyterhub-singleuser")
	dir := t.TempDir()
	shots := screenshotDir(t)
	public, hubAPI, proxyAPI := FreePort(t), FreePort(t), FreePort(t)
	args := ""
	if os.Geteuid() == 0 {
		args = "args --allow-root"
	}
	token := RandomHex(t, 24)
	inst := Start(t, dir, adminCaddyfile(dir, public, hubAPI, proxyAPI, singleuser, args, token))
	const target = "u05432"
	t.Cleanup(func() {
		if inst.Running() {
			inst.Stop()
		}
		for _, pid := range browserServerPIDs(hubAPI, target) {
			_ = syscall.Kill(-pid, syscall.SIGKILL)
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	})
	base := URL(public, "")

	// 10,000 users in one call.
	names := make([]string, 10000)
	for i := range names {
		names[i] = fmt.Sprintf("u%05d", i)
	}
	body, _ := json.Marshal(map[string]any{"usernames": names})
	start := time.Now()
	if st, b := Do(t, "POST", base+"/hub/api/users", token, body); st != http.StatusCreated {
		t.Fatalf("POST /hub/api/users with 10,000 names: %d %s", st, b)
	}
	t.Logf("10,000 users created in one call in %s", time.Since(start).Round(time.Millisecond))

	ctx := newChromium(t, chromium)
	step := browserStep(t, ctx, shots, "admin-failure", nil)
	waitFor := browserWaitFor(t, ctx, shots, "admin-failure")
	// act runs a page action (a click whose script calls the API and reloads the page when the
	// call succeeds) and waits for that reload: navigating or reloading before it would cancel the
	// page's request in flight. A failed call leaves the page with its message in #admin-status.
	act := func(what string, actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		step(what+" (mark the document)", chromedp.Evaluate[chromedp.Void](`window.e2eBefore = true`))
		step(what, actions...)
		deadline := time.Now().Add(60 * time.Second)
		for {
			c, cancel := context.WithTimeout(ctx, 10*time.Second)
			reloaded, err := chromedp.Run(c, chromedp.Evaluate[bool](`window.e2eBefore !== true && document.readyState === "complete"`))
			cancel()
			if err == nil && reloaded {
				return
			}
			if time.Now().After(deadline) {
				c, cancel := context.WithTimeout(ctx, 10*time.Second)
				msg, _ := chromedp.Run(c, chromedp.Evaluate[string](`(document.getElementById("admin-status") || {}).textContent || ""`))
				cancel()
				failureShot(t, ctx, shots, "admin-failure")
				t.Fatalf("%s: the page did not reload after its API call within 60s (status %q, at %s; last error %v)", what, msg, browserLocation(ctx), err)
			}
			time.Sleep(100 * time.Millisecond) // polling a condition with a deadline
		}
	}
	login := func(user string) {
		t.Helper()
		if _, err := chromedp.Call(ctx, network.ClearBrowserCookies, cdp.Empty{}); err != nil {
			t.Fatalf("clearing cookies: %v", err)
		}
		step("open the login page", chromedp.Navigate(base+"/hub/login?next=%2Fhub%2Fhome"))
		step("log in as "+user,
			chromedp.WaitVisible(chromedp.ID("username")),
			chromedp.SendKeys(chromedp.ID("username"), user),
			chromedp.SendKeys(chromedp.ID("password"), browserPassword),
			chromedp.Click(chromedp.CSS(`form[action*="/hub/login"] button[type="submit"]`)),
		)
		waitFor("home page after login", `location.pathname === "/hub/home" && document.readyState === "complete"`, false, 30*time.Second)
	}

	// The admin: link in the header, the first page, a search.
	login("root")
	step("follow the Admin link", chromedp.Click(chromedp.CSS(`header a[href="/hub/admin"]`)))
	waitFor("the admin page", `location.pathname === "/hub/admin" && document.querySelectorAll("tr[data-user]").length === 50`, false, 30*time.Second)
	count, _ := chromedp.Run(ctx, chromedp.Text(chromedp.ID("count")))
	if !strings.Contains(count, "of 10001") { // 10,000 + root
		t.Errorf("admin page count %q, want … of 10001", count)
	}
	checkLayout(t, ctx, shots, "admin-first-page")

	step("search for "+target,
		chromedp.SendKeys(chromedp.ID("q"), target),
		chromedp.Click(chromedp.CSS(`form[role="search"] button[type="submit"]`)),
	)
	one := fmt.Sprintf(`document.querySelectorAll("tr[data-user]").length === 1 && document.querySelector('tr[data-user=%q]') !== null`, target)
	waitFor("one row for "+target, one, false, 30*time.Second)
	checkLayout(t, ctx, shots, "admin-search")

	// Start the server from its row, see it running (and its Open link), stop it.
	row := fmt.Sprintf(`tr[data-user=%q]`, target)
	act("press Start", chromedp.Click(chromedp.CSS(row+` button[data-action="start"]`)))
	waitFor(target+" running", fmt.Sprintf(`document.querySelector('%s .state-running') !== null && document.querySelector('%s a[href="/user/%s/"]') !== null`, row, row, target), true, 120*time.Second)
	checkLayout(t, ctx, shots, "admin-running")
	act("press Stop", chromedp.Click(chromedp.CSS(row+` button[data-action="stop"]`)))
	waitFor(target+" stopped", fmt.Sprintf(`document.querySelector('%s .state-stopped') !== null`, row), true, 60*time.Second)
	if pids := browserServerPIDs(hubAPI, target); len(pids) > 0 {
		t.Errorf("%s's server processes still run after Stop: %v", target, pids)
	}

	// Add three users at once; make one admin; delete one.
	step("open the admin page", chromedp.Navigate(base+"/hub/admin"))
	act("add three users",
		chromedp.SendKeys(chromedp.ID("new-users"), "zeta1 zeta2, zeta3"),
		chromedp.Click(chromedp.CSS(`#add-users button[type="submit"]`)),
	)
	if count, _ := chromedp.Run(ctx, chromedp.Text(chromedp.ID("count"))); !strings.Contains(count, "of 10004") {
		t.Errorf("admin page count after adding three users %q, want … of 10004", count)
	}
	step("search for them", chromedp.Navigate(base+"/hub/admin?q=zeta"))
	waitFor("three new rows", `document.querySelectorAll("tr[data-user]").length === 3`, true, 30*time.Second)
	act("edit zeta2: admin on",
		chromedp.Click(chromedp.CSS(`tr[data-user="zeta2"] button[data-action="edit"]`)),
		chromedp.WaitVisible(chromedp.ID("edit-dialog")),
		chromedp.Click(chromedp.ID("edit-admin")),
		chromedp.Click(chromedp.ID("edit-save")),
	)
	waitFor("zeta2 shown as admin", `(document.querySelector('tr[data-user="zeta2"] td[data-label="Admin"]') || {}).textContent === "admin"`, true, 30*time.Second)
	checkLayout(t, ctx, shots, "admin-added")
	step("delete zeta3",
		chromedp.Click(chromedp.CSS(`tr[data-user="zeta3"] button[data-action="delete"]`)),
		chromedp.WaitVisible(chromedp.ID("delete-dialog")),
	)
	checkLayout(t, ctx, shots, "admin-delete-dialog")
	act("confirm", chromedp.Click(chromedp.ID("delete-confirm")))
	waitFor("two rows left", `document.querySelectorAll("tr[data-user]").length === 2 && document.querySelector('tr[data-user="zeta3"]') === null`, true, 30*time.Second)
	for user, want := range map[string]bool{"zeta1": false, "zeta2": true} {
		st, b := GetJSON(t, base+"/hub/api/users/"+user, token)
		var m struct{ Admin bool }
		if st != http.StatusOK || json.Unmarshal(b, &m) != nil || m.Admin != want {
			t.Errorf("GET user %s: %d %s, want admin=%v", user, st, b, want)
		}
	}
	if st, _ := GetJSON(t, base+"/hub/api/users/zeta3", token); st != http.StatusNotFound {
		t.Errorf("GET user zeta3 after delete: %d, want 404", st)
	}
	step("open the groups view", chromedp.Navigate(base+"/hub/admin/groups"))
	act("create a group", chromedp.SendKeys(chromedp.ID("group-name"), "staff"), chromedp.Click(chromedp.CSS(`#create-group button`)))
	waitFor("group staff", `document.querySelector('section[data-group="staff"]') !== null`, true, 30*time.Second)
	checkLayout(t, ctx, shots, "admin-groups")

	// A user without admin-ui: no link, 403.
	login("alice")
	has, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`document.querySelector('a[href="/hub/admin"]') !== null`))
	if err != nil || has {
		t.Errorf("alice's home page links to the admin page (%v)", err)
	}
	checkLayout(t, ctx, shots, "home-nonadmin")
	c, cancel := context.WithTimeout(ctx, 30*time.Second)
	resp, err := chromedp.Run(c, chromedp.NavigateResponse(base+"/hub/admin"))
	cancel()
	if err != nil {
		t.Fatalf("navigate /hub/admin as alice: %v", err)
	}
	if resp.Status != http.StatusForbidden {
		t.Errorf("GET /hub/admin as alice in the browser: %d, want 403", resp.Status)
	}
	checkLayout(t, ctx, shots, "admin-403")
	t.Logf("screenshots in %s", shots)
}
