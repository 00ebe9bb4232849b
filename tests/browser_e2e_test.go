package tests

// End to end in a real browser: headless Chromium (Debian's /usr/bin/chromium) driven by chromedp
// against our caddy with the dummy authenticator and the simple spawner running the real
// /usr/bin/jupyterhub-singleuser. The browser types a name and password into /hub/login, starts
// its server, watches the spawn-pending page (its EventSource script sends it on), lands in the
// notebook at /user/<name>/tree (or /lab), logs out from there and is sent back to the login page
// when it opens /hub/home.

import (
	"bytes"
	"context"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
)

// browserSpawnDelay holds the single-user server back so that its start outlasts the time the
// spawn page waits before it sends the browser to the spawn-pending page (1 s, as JupyterHub 3.0's
// page handler; the REST API waits slow_spawn_timeout, 10 s): the browser then really sees the
// spawn-pending page and its progress stream for several seconds, whatever the machine's speed.
const browserSpawnDelay = 8 * time.Second

const browserPassword = "browser-pass-0123"

// browserCaddyfile is a hub on 127.0.0.1 whose spawner runs the wrapper script.
func browserCaddyfile(dir string, public, hubAPI, proxyAPI int, wrapper, args string) string {
	return fmt.Sprintf(`{
	grace_period 2s
	jupyterhub {
		data_dir %[1]s/data
		proxy_api 127.0.0.1:%[3]d
		hub_api 127.0.0.1:%[4]d
		cookie_secret_file %[1]s/cookie_secret
		authenticator dummy {
			password %[7]s
			allowed_users alice
		}
		spawner simple {
			cmd %[5]s
			%[6]s
			start_timeout 180s
			http_timeout 120s
		}
		cleanup_servers
	}
}

:%[2]d {
	bind 127.0.0.1
	jupyterhub
}
`, dir, public, proxyAPI, hubAPI, wrapper, args, browserPassword)
}

// browserServerPIDs lists live processes whose environment names our hub API port and user.
func browserServerPIDs(hubAPIPort int, user string) []int {
	entries, _ := os.ReadDir("/proc")
	api := []byte("JUPYTERHUB_API_URL=http://127.0.0.1:" + strconv.Itoa(hubAPIPort) + "/hub/api\x00")
	who := []byte("\x00JUPYTERHUB_USER=" + user + "\x00")
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		env, err := os.ReadFile(filepath.Join("/proc", e.Name(), "environ"))
		if err != nil || !bytes.Contains(env, api) || !bytes.Contains(append([]byte{0}, env...), who) {
			continue
		}
		pids = append(pids, pid)
	}
	return pids
}

// newChromium starts headless Chromium with a fresh profile and returns a chromedp context for one
// tab. The browser is stopped (by chromedp, which started it) when the test ends.
func newChromium(t *testing.T, chromium string) context.Context {
	t.Helper()
	var out syncBuffer
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(chromium),
		chromedp.Flag("headless", true),
		chromedp.Flag("no-sandbox", true),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("no-proxy-server", true), // only 127.0.0.1 is spoken to, never through a proxy
		chromedp.WindowSize(1280, 900),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.CombinedOutput(&out),
	)
	ctx, cancel := chromedp.NewContext(allocCtx, chromedp.WithErrorf(func(string, ...any) {}))
	t.Cleanup(func() {
		cancel()
		cancelAlloc()
		if t.Failed() {
			t.Logf("chromium output:\n%s", out.String())
		}
	})
	// The first Run starts the browser; it must not carry a deadline (chromedp.Run).
	if err := chromedp.Do(ctx, chromedp.Navigate("about:blank")); err != nil {
		t.Fatalf("starting chromium: %v\n%s", err, out.String())
	}
	return ctx
}

// redactQuery keeps a URL's path and its query's parameter names: OAuth codes and states stay
// out of test logs.
func redactQuery(s string) string {
	path, query, ok := strings.Cut(s, "?")
	if !ok {
		return s
	}
	v, err := url.ParseQuery(query)
	if err != nil {
		return path + "?…"
	}
	var keys []string
	for k := range v {
		keys = append(keys, k+"=…")
	}
	slices.Sort(keys)
	return path + "?" + strings.Join(keys, "&")
}

// browserLocation returns the tab's current URL ("" while it cannot be read, e.g. mid-navigation).
func browserLocation(ctx context.Context) string {
	c, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	loc, err := chromedp.Run(c, chromedp.Location())
	if err != nil {
		return ""
	}
	return loc
}

// waitLocation polls the tab's URL until ok accepts its path, and returns the URL.
func waitLocation(t *testing.T, ctx context.Context, what string, timeout time.Duration, ok func(u *url.URL) bool, visited func() []string) *url.URL {
	t.Helper()
	deadline := time.Now().Add(timeout)
	last := ""
	for {
		if loc := browserLocation(ctx); loc != "" {
			last = loc
			if u, err := url.Parse(loc); err == nil && ok(u) {
				return u
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("browser never got to %s within %s; last at %s; pages: %v", what, timeout, last, visited())
		}
		time.Sleep(100 * time.Millisecond) // polling a condition with a deadline
	}
}

func TestBrowserLoginSpawnLogout(t *testing.T) {
	chromium := Require(t, "chromium")
	singleuser := Require(t, "/usr/bin/jupyterhub-singleuser")
	dir := t.TempDir()
	public, hubAPI, proxyAPI := FreePort(t), FreePort(t), FreePort(t)
	wrapper := filepath.Join(dir, "slow-singleuser")
	script := fmt.Sprintf("#!/bin/sh\nsleep %d\nexec %s \"$@\"\n", int(browserSpawnDelay/time.Second), singleuser)
	if err := os.WriteFile(wrapper, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	args := ""
	if os.Geteuid() == 0 {
		args = "args --allow-root" // the classic notebook refuses to run as root otherwise
	}
	inst := Start(t, dir, browserCaddyfile(dir, public, hubAPI, proxyAPI, wrapper, args))
	t.Cleanup(func() {
		if inst.Running() {
			inst.Stop() // cleanup_servers: the hub stops alice's server as it exits
		}
		for _, pid := range browserServerPIDs(hubAPI, "alice") { // whatever is left, by PID
			_ = syscall.Kill(-pid, syscall.SIGKILL)
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	})
	base := URL(public, "")

	ctx := newChromium(t, chromium)
	var navMu sync.Mutex
	var navigated []string
	if err := chromedp.Listen(ctx, func(ev any) {
		// Every document request, redirect hops included (each hop is a new request).
		if e, ok := ev.(*network.EventRequestWillBeSent); ok && e.Type == network.ResourceTypeDocument {
			navMu.Lock()
			navigated = append(navigated, redactQuery(strings.TrimPrefix(e.Request.URL, base)))
			navMu.Unlock()
		}
	}); err != nil {
		t.Fatal(err)
	}
	visited := func() []string {
		navMu.Lock()
		defer navMu.Unlock()
		return append([]string(nil), navigated...)
	}
	step := browserStep(t, ctx, "", "", func() string { return fmt.Sprintf("pages: %v", visited()) })

	// Sign in through the form, as a person would.
	step("open the login page", chromedp.Navigate(base+"/hub/login"))
	step("fill in and submit the login form",
		chromedp.WaitVisible(chromedp.ID("username")),
		chromedp.SendKeys(chromedp.ID("username"), "alice"),
		chromedp.SendKeys(chromedp.ID("password"), browserPassword),
		chromedp.Click(chromedp.CSS(`form[action$="/hub/login"] button[type="submit"]`)),
	)
	// Login goes to GET /hub/spawn, which starts the server (a same-origin navigation) and goes on
	// to spawn-pending; a cross-site one would show a "Start my server" button: press it if shown.
	u := waitLocation(t, ctx, "the spawn form or spawn-pending", 60*time.Second, func(u *url.URL) bool {
		return strings.HasPrefix(u.Path, "/hub/spawn")
	}, visited)
	if !strings.HasPrefix(u.Path, "/hub/spawn-pending/") {
		step("press the start button", chromedp.Click(chromedp.CSS(`form[action*="/hub/spawn"] button[type="submit"]`)))
	}
	waitLocation(t, ctx, "/hub/spawn-pending/alice", 60*time.Second, func(u *url.URL) bool {
		return u.Path == "/hub/spawn-pending/alice"
	}, visited)
	step("see the progress bar of the spawn-pending page", chromedp.WaitVisible(chromedp.ID("progress")))
	// The page's EventSource (cookie + _xsrf, under the hub's CSP) delivers progress events: the
	// server is held back for browserSpawnDelay, so they arrive while the page is still shown.
	// The event log is folded in a closed <details>, whose content Chromium does not render:
	// innerText is "" there, so the lines are read with textContent.
	c, cancel := context.WithTimeout(ctx, 30*time.Second)
	events, err := chromedp.Run(c, chromedp.Poll[string](`(() => {
		const log = document.querySelector("#log");
		return log !== null && log.children.length > 0 ?
			[...log.children].map(e => e.textContent).join("\n") : false;
	})()`, chromedp.WithPollingTimeout(30*time.Second)))
	cancel()
	if err != nil || events == "" {
		t.Fatalf("the spawn-pending page showed no progress event (%v); at %s", err, browserLocation(ctx))
	}
	t.Logf("progress shown while pending: %q", events)
	if !strings.Contains(events, "Server requested") {
		t.Errorf("the spawn-pending page's event log %q lacks the hub's first event, Server requested", events)
	}

	// The page's EventSource script sends the browser on when the server is ready; the server
	// sends it through the hub's OAuth provider and back.
	waitLocation(t, ctx, "the notebook (/user/alice/tree or /lab)", 240*time.Second, func(u *url.URL) bool {
		return strings.HasPrefix(u.Path, "/user/alice/tree") || strings.HasPrefix(u.Path, "/user/alice/lab")
	}, visited)
	c, cancel = context.WithTimeout(ctx, 60*time.Second)
	// The notebook shows its page only once its scripts have run (the classic notebook keeps
	// #site hidden until then): wait for the file list (or JupyterLab's shell) to be visible.
	isJupyter, err := chromedp.Run(c, chromedp.Poll[bool](`(() => {
		const e = document.querySelector("#notebook_list, .jp-LabShell");
		return e !== null && e.offsetParent !== null && e.getBoundingClientRect().height > 0 &&
			/Jupyter/.test(document.title + " " + document.body.innerHTML);
	})()`, chromedp.WithPollingTimeout(60*time.Second)))
	cancel()
	if err != nil || !isJupyter {
		html, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.documentElement.outerHTML`))
		// What the page loaded, and how long each took (a request the edge held or dropped shows here).
		loads, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`performance.getEntriesByType("resource").map(e =>
			Math.round(e.duration) + " ms " + (e.responseStatus || "") + " " + e.name).join("\n")`))
		t.Fatalf("the page at %s does not look like Jupyter (%v): %.1000s\nresources loaded:\n%s\nalice's server log (tail):\n%s",
			browserLocation(ctx), err, html, loads, logTail(filepath.Join(dir, "data", "logs", "alice", "server.log"), 60))
	}
	// jupyterhub-singleuser shows the hub's logo (<hub>/hub/logo; docs/protocols.md, "Pages") in its header.
	if ok, _ := chromedp.Run(ctx, chromedp.Evaluate[bool](`[...document.images].some(i => i.src.endsWith("/hub/logo") && i.naturalWidth > 0)`)); !ok {
		t.Errorf("the notebook's header shows no hub logo (GET /hub/logo)")
	}
	title, err := chromedp.Run(ctx, chromedp.Title())
	if err != nil {
		t.Fatal(err)
	}
	pages := visited()
	joined := strings.Join(pages, "\n")
	for _, want := range []string{"/hub/spawn-pending/alice", "/user/alice/oauth_callback?code=…"} {
		if !strings.Contains(joined, want) {
			t.Errorf("the browser never passed %s; pages:\n%s", want, joined)
		}
	}
	t.Logf("title %q after:\n%s", title, joined)

	shot, err := chromedp.Run(ctx, chromedp.FullScreenshot(100)) // 100: PNG
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	if len(shot) < 1000 {
		t.Fatalf("screenshot is only %d bytes", len(shot))
	}
	shotPath := filepath.Join(t.TempDir(), "notebook.png")
	if err := os.WriteFile(shotPath, shot, 0o644); err != nil {
		t.Fatal(err)
	}
	if d := os.Getenv("HUB_E2E_ARTIFACTS"); d != "" { // keep a copy to look at
		_ = os.WriteFile(filepath.Join(d, "browser-notebook.png"), shot, 0o644)
	}
	t.Logf("screenshot: %s (%d bytes)", shotPath, len(shot))

	// Log out with the notebook's own Logout button (the server clears its cookie and sends the
	// browser to the hub's /hub/logout), or through the hub's URL when the page has none.
	hasLogout, _ := chromedp.Run(ctx, chromedp.Evaluate[bool](`document.querySelector("#logout") !== null`))
	if hasLogout {
		step("press Logout", chromedp.Click(chromedp.ID("logout")))
	} else {
		step("open /hub/logout", chromedp.Navigate(base+"/hub/logout"))
	}
	waitLocation(t, ctx, "/hub/login after logout", 60*time.Second, func(u *url.URL) bool {
		return u.Path == "/hub/login"
	}, visited)

	// Logged out: the hub's home page sends the browser to the login page.
	step("open /hub/home", chromedp.Navigate(base+"/hub/home"))
	u = waitLocation(t, ctx, "/hub/login from /hub/home", 30*time.Second, func(u *url.URL) bool {
		return u.Path == "/hub/login"
	}, visited)
	if next := u.Query().Get("next"); next != "/hub/home" {
		t.Errorf("login page after /hub/home has next=%q, want /hub/home", next)
	}
	visible, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`document.querySelector("#username") !== null`))
	if err != nil || !visible {
		t.Errorf("no login form at %s after logout (%v)", browserLocation(ctx), err)
	}
}
