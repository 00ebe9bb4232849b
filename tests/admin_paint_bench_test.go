package tests

// The admin page's paint time in headless Chromium (HUB_ADMIN_BENCH=1; docs/benchmarks.md, "Admin
// page at 100,000 users"): ours at 10,000 and at 100,000 users, and JupyterHub 3.0's React admin
// page at 10,000 users in the same run. A script installed before each page load notes when the
// table's rows are in the document and, two animation frames later, painted (performance.now(),
// from the navigation's start); first-contentful-paint and the response's timing come from the
// Performance API.

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
)

const paintObserver = `(() => {
  const mark = localStorage.getItem("benchMark");
  if (!mark) { return; }
  const min = +localStorage.getItem("benchMin") || 1;
  const check = () => {
    if (window.benchRowsAt || !document.body) { return; }
    if (document.querySelectorAll("tbody tr").length >= min && document.body.textContent.includes(mark)) {
      window.benchRowsAt = performance.now();
      requestAnimationFrame(() => requestAnimationFrame(() => { window.benchPaintedAt = performance.now(); }));
    }
  };
  new MutationObserver(check).observe(document, { childList: true, subtree: true, characterData: true });
})();`

// paintTiming is one page load's figures, in milliseconds from the navigation's start.
type paintTiming struct {
	Painted  float64 // rows in the document and painted
	FCP      float64 // first-contentful-paint
	Response float64 // responseStart - requestStart of the document (server time + loopback)
}

func measurePaint(t *testing.T, ctx context.Context, url, mark string, minRows, rounds int) []paintTiming {
	t.Helper()
	var out []paintTiming
	for range rounds {
		c, cancel := context.WithTimeout(ctx, 120*time.Second)
		err := chromedp.Do(c,
			chromedp.Evaluate[chromedp.Void](fmt.Sprintf(`localStorage.setItem("benchMark", %q); localStorage.setItem("benchMin", "%d")`, mark, minRows)),
			chromedp.Navigate(url))
		if err != nil {
			cancel()
			t.Fatalf("loading %s: %v", url, err)
		}
		var pt paintTiming
		for {
			v, err := chromedp.Run(c, chromedp.Evaluate[[]float64](`window.benchPaintedAt ? [window.benchPaintedAt,
				(performance.getEntriesByName("first-contentful-paint")[0] || {startTime: 0}).startTime,
				performance.getEntriesByType("navigation")[0].responseStart - performance.getEntriesByType("navigation")[0].requestStart] : []`))
			if err == nil && len(v) == 3 {
				pt = paintTiming{Painted: v[0], FCP: v[1], Response: v[2]}
				break
			}
			if c.Err() != nil {
				cancel()
				t.Fatalf("%s: rows with %q never painted", url, mark)
			}
			time.Sleep(50 * time.Millisecond) // polling a condition with a deadline
		}
		cancel()
		out = append(out, pt)
	}
	return out
}

func logPaint(t *testing.T, what string, ts []paintTiming) {
	t.Helper()
	med := func(f func(paintTiming) float64) float64 {
		v := make([]float64, len(ts))
		for i, x := range ts {
			v[i] = f(x)
		}
		slices.Sort(v)
		return v[len(v)/2]
	}
	t.Logf("%-44s rows painted median %7.1f ms (worst %7.1f); FCP %6.1f ms; response %6.1f ms (%d loads)", what,
		med(func(p paintTiming) float64 { return p.Painted }), slices.MaxFunc(ts, func(a, b paintTiming) int { return int(a.Painted - b.Painted) }).Painted,
		med(func(p paintTiming) float64 { return p.FCP }), med(func(p paintTiming) float64 { return p.Response }), len(ts))
}

func TestAdminPaintSpeed(t *testing.T) {
	if os.Getenv("HUB_ADMIN_BENCH") == "" {
		t.Skip("set HUB_ADMIN_BENCH=1 to measure the admin page's paint time in Chromium")
	}
	chromium := Require(t, "chromium")
	const rounds = 7
	dir := t.TempDir()
	public, hubAPI, proxyAPI := FreePort(t), FreePort(t), FreePort(t)
	token := RandomHex(t, 24)
	Start(t, dir, adminCaddyfile(dir, public, hubAPI, proxyAPI, "/bin/false", "", token))
	base := URL(public, "")
	addUsers := func(from, to int) {
		for start := from; start < to; start += 10000 {
			names := make([]string, 0, 10000)
			for i := start; i < min(start+10000, to); i++ {
				names = append(names, fmt.Sprintf("u%06d", i))
			}
			body, _ := json.Marshal(map[string]any{"usernames": names})
			if st, b := Do(t, "POST", base+"/hub/api/users", token, body); st != http.StatusCreated {
				t.Fatalf("POST /hub/api/users: %d %.200s", st, b)
			}
		}
	}
	ctx := newChromium(t, chromium)
	if _, err := chromedp.Call(ctx, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{Source: paintObserver}); err != nil {
		t.Fatal(err)
	}
	login := func(base, user, pass, userSel, passSel, submitSel string) {
		t.Helper()
		c, cancel := context.WithTimeout(ctx, 60*time.Second)
		defer cancel()
		if err := chromedp.Do(c, chromedp.Navigate(base+"/hub/login"), chromedp.WaitVisible(chromedp.CSS(userSel)),
			chromedp.SendKeys(chromedp.CSS(userSel), user), chromedp.SendKeys(chromedp.CSS(passSel), pass),
			chromedp.Click(chromedp.CSS(submitSel)), chromedp.WaitReady(chromedp.CSS("body"))); err != nil {
			t.Fatalf("login at %s: %v", base, err)
		}
		for c.Err() == nil && strings.Contains(browserLocation(ctx), "/hub/login") {
			time.Sleep(50 * time.Millisecond) // polling a condition with a deadline
		}
	}
	login(base, "root", browserPassword, "#username", "#password", `form[action*="/hub/login"] button[type="submit"]`)

	addUsers(0, 10000)
	logPaint(t, "CaddyHub /hub/admin, 10,001 users", measurePaint(t, ctx, base+"/hub/admin", "u000000", 50, rounds))
	addUsers(10000, 100000)
	logPaint(t, "CaddyHub /hub/admin, 100,001 users", measurePaint(t, ctx, base+"/hub/admin", "u000000", 50, rounds))
	logPaint(t, "CaddyHub /hub/admin?q=u05432, 100,001 users", measurePaint(t, ctx, base+"/hub/admin?q=u05432", "u054329", 10, rounds))

	// JupyterHub 3.0 with 10,000 users written into its database while it is stopped.
	jh, err := exec.LookPath("jupyterhub")
	if err != nil {
		t.Skipf("no jupyterhub for the side-by-side: %v", err)
	}
	jdir := filepath.Join(dir, "jh")
	if err := os.MkdirAll(jdir, 0o755); err != nil {
		t.Fatal(err)
	}
	jpub, jhub, jproxy := FreePort(t), FreePort(t), FreePort(t)
	cfg := fmt.Sprintf(`c = get_config()  # noqa
c.JupyterHub.bind_url = "http://127.0.0.1:%d/"
c.JupyterHub.hub_bind_url = "http://127.0.0.1:%d"
c.ConfigurableHTTPProxy.api_url = "http://127.0.0.1:%d"
c.ConfigurableHTTPProxy.auth_token = "bench-proxy-token-0123456789abcdef"
c.JupyterHub.db_url = "sqlite:///%[4]s/jupyterhub.sqlite"
c.JupyterHub.cookie_secret_file = "%[4]s/cookie_secret"
c.JupyterHub.pid_file = "%[4]s/jupyterhub.pid"
c.ConfigurableHTTPProxy.pid_file = "%[4]s/proxy.pid"
c.JupyterHub.authenticator_class = "dummy"
c.DummyAuthenticator.password = %q
c.Authenticator.admin_users = {"root"}
`, jpub, jhub, jproxy, jdir, browserPassword)
	if err := os.WriteFile(filepath.Join(jdir, "jupyterhub_config.py"), []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	startJH := func() *exec.Cmd {
		cmd := exec.Command(jh, "-f", filepath.Join(jdir, "jupyterhub_config.py"))
		cmd.Dir = jdir
		cmd.Env = append(os.Environ(), "NODE_PATH=/usr/share/nodejs", "HOME="+jdir)
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		logf, _ := os.Create(filepath.Join(jdir, "jupyterhub.log"))
		cmd.Stdout, cmd.Stderr = logf, logf
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL); _ = cmd.Wait() })
		WaitHTTP(t, URL(jpub, "/hub/health"), http.StatusOK, 120*time.Second)
		return cmd
	}
	first := startJH()
	_ = syscall.Kill(-first.Process.Pid, syscall.SIGTERM)
	_ = first.Wait()
	py := fmt.Sprintf(`import sqlite3, uuid, datetime
db = sqlite3.connect(%q)
now = datetime.datetime.utcnow().isoformat(" ")
db.executemany("INSERT INTO users (name, admin, created, cookie_id, state) VALUES (?, 0, ?, ?, '{}')",
    [("u%%06d" %% i, now, uuid.uuid4().hex) for i in range(10000)])
db.commit()
`, filepath.Join(jdir, "jupyterhub.sqlite"))
	if out, err := exec.Command("python3", "-c", py).CombinedOutput(); err != nil {
		t.Fatalf("writing users into JupyterHub's database: %v\n%s", err, out)
	}
	startJH()
	jbase := URL(jpub, "")
	login(jbase, "root", browserPassword, "#username_input", "#password_input", "#login_submit")
	logPaint(t, "JupyterHub 3.0 /hub/admin, 10,001 users", measurePaint(t, ctx, jbase+"/hub/admin", "u000000", 50, rounds))
}
