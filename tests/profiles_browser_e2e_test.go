package tests

// Profiles on the spawn page, in headless Chromium against the real binary: the simple spawner
// offers three profiles. A new user (alice) logs in, sees the choice, picks "science" (its own
// environment variable and default_url), watches the progress bar move, and lands in the real
// jupyterhub-singleuser at the profile's default_url; the server process has the profile's
// variable. A second new user (bob) picks "broken", whose command exits with an error: the progress
// page turns into the failure page (its heading, a failed bar, the cause said once, Try again).

import (
	"bytes"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// profilesCaddyfile is a hub on 127.0.0.1 for alice and bob whose simple spawner offers the
// profiles classic (default), science and broken.
func profilesCaddyfile(dir string, public, hubAPI, proxyAPI int, wrapper, failing, args string) string {
	return fmt.Sprintf(`{
	grace_period 2s
	jupyterhub {
		data_dir %[1]s/data
		proxy_api 127.0.0.1:%[3]d
		hub_api 127.0.0.1:%[4]d
		cookie_secret_file %[1]s/cookie_secret
		authenticator dummy {
			password %[8]s
			allowed_users alice bob
		}
		spawner simple {
			cmd %[5]s
			%[7]s
			start_timeout 180s
			http_timeout 120s
			environment CADDYHUB_PROFILE none
			profile classic {
				display_name "Classic notebook"
				description "The hub's usual server"
				default
			}
			profile science {
				display_name "Science notebook"
				description "Opens the science folder"
				environment CADDYHUB_PROFILE science
				default_url /tree/science
				mem_limit 1G
			}
			profile broken {
				display_name "Broken server"
				description "Its command fails"
				cmd %[6]s
			}
		}
		cleanup_servers
	}
}

:%[2]d {
	bind 127.0.0.1
	jupyterhub
}
`, dir, public, proxyAPI, hubAPI, wrapper, failing, args, browserPassword)
}

// procEnv returns the environment of the live process of our hub's user, or nil when none runs.
func procEnv(hubAPIPort int, user string) map[string]string {
	for _, pid := range browserServerPIDs(hubAPIPort, user) {
		raw, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "environ"))
		if err != nil {
			continue
		}
		env := map[string]string{}
		for _, kv := range bytes.Split(raw, []byte{0}) {
			if k, v, ok := strings.Cut(string(kv), "="); ok {
				env[k] = v
			}
		}
		return env
	}
	return nil
}

func TestBrowserSpawnProfilesE2E(t *testing.T) {
	chromium := Require(t, "chromium")
	singleuser := Require(t, "/usr/bin/jupyterhub-singleuser")
	dir := t.TempDir()
	shots := screenshotDir(t)
	public, hubAPI, proxyAPI := FreePort(t), FreePort(t), FreePort(t)
	wrapper := filepath.Join(dir, "slow-singleuser")
	script := fmt.Sprintf("#!/bin/sh\nsleep %d\nexec %s \"$@\"\n", int(browserSpawnDelay/time.Second), singleuser)
	if err := os.WriteFile(wrapper, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	// The broken profile's command outlasts the spawn page's one-second wait, so the browser is on
	// the progress page when it fails, as a server that crashes while starting does.
	failing := filepath.Join(dir, "broken-singleuser")
	if err := os.WriteFile(failing, []byte("#!/bin/sh\nsleep 3\necho 'profile broken: no notebook here' >&2\nexit 3\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	// The science profile's default_url is a folder of alice's home (the simple spawner's
	// data_dir/users/<name>), with a file to recognize it by.
	science := filepath.Join(dir, "data", "users", "alice", "science")
	if err := os.MkdirAll(science, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(science, "profile-science-marker.txt"), []byte("science\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	args := ""
	if os.Geteuid() == 0 {
		args = "args --allow-root" // the classic notebook refuses to run as root otherwise
	}
	inst := Start(t, dir, profilesCaddyfile(dir, public, hubAPI, proxyAPI, wrapper, failing, args))
	t.Cleanup(func() {
		if inst.Running() {
			inst.Stop() // cleanup_servers: the hub stops the servers as it exits
		}
		for _, user := range []string{"alice", "bob"} {
			for _, pid := range browserServerPIDs(hubAPI, user) { // whatever is left, by PID
				_ = syscall.Kill(-pid, syscall.SIGKILL)
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
		}
	})
	base := URL(public, "")
	ctx := newChromium(t, chromium)
	step := browserStep(t, ctx, shots, "profiles-error", nil)
	noVisits := func() []string { return nil }
	login := func(user string) {
		t.Helper()
		step("log in as "+user,
			chromedp.Navigate(base+"/hub/login"),
			chromedp.WaitVisible(chromedp.ID("username")),
			chromedp.SendKeys(chromedp.ID("username"), user),
			chromedp.SendKeys(chromedp.ID("password"), browserPassword),
			chromedp.Click(chromedp.CSS(`form[action*="/hub/login"] button[type="submit"]`)),
		)
		// Login goes to /hub/spawn, which asks for a profile first: nothing starts yet.
		waitLocation(t, ctx, "the spawn page of "+user, 60*time.Second, func(u *url.URL) bool {
			return u.Path == "/hub/spawn" || u.Path == "/hub/spawn/"+user
		}, noVisits)
		step("see the profile choice", chromedp.WaitVisible(chromedp.ID("profiles")))
	}

	// alice: the choice, then the science profile.
	login("alice")
	type choice struct {
		Name    string `json:"name"`
		Label   string `json:"label"`
		Checked bool   `json:"checked"`
	}
	choices, err := chromedp.Run(ctx, chromedp.Evaluate[[]choice](`[...document.querySelectorAll("#profiles input[name=profile]")].map(i => ({
		name: i.value, label: i.closest("label").innerText.replace(/\s+/g, " ").trim(), checked: i.checked,
	}))`))
	if err != nil {
		t.Fatal(err)
	}
	want := []choice{
		{"classic", "Classic notebook The hub's usual server", true},
		{"science", "Science notebook Opens the science folder", false},
		{"broken", "Broken server Its command fails", false},
	}
	if fmt.Sprint(choices) != fmt.Sprint(want) {
		t.Errorf("the spawn page offers %+v, want %+v", choices, want)
	}
	if env := procEnv(hubAPI, "alice"); env != nil {
		t.Fatalf("a server of alice runs before she chose a profile")
	}
	checkLayout(t, ctx, shots, "profiles-spawn")
	step("choose the science profile and start",
		chromedp.Click(chromedp.CSS(`label[for="profile-science"]`)),
		chromedp.Click(chromedp.CSS(`#profiles ~ .actions button[type="submit"]`)),
	)
	waitLocation(t, ctx, "/hub/spawn-pending/alice", 60*time.Second, func(u *url.URL) bool {
		return u.Path == "/hub/spawn-pending/alice"
	}, noVisits)
	// The bar moves: the server is held back for browserSpawnDelay, so it shows the spawner's
	// progress (above 0, below 100) before the server is ready.
	moved, err := pollPage[float64](ctx, 30*time.Second, `(() => {
		const b = document.querySelector("#progress");
		if (location.pathname !== "/hub/spawn-pending/alice" || b === null || !(b.value > 0 && b.value < 100)) throw new Error("not yet");
		return b.value;
	})()`)
	if err != nil {
		failureShot(t, ctx, shots, "profiles-error")
		t.Fatalf("the progress bar never moved (%v); at %s", err, browserLocation(ctx))
	}
	t.Logf("progress bar at %v%% while pending", moved)
	checkLayout(t, ctx, shots, "profiles-pending")

	// The page sends the browser on; the server lands it at the profile's default_url.
	waitLocation(t, ctx, "the science folder in the notebook", 240*time.Second, func(u *url.URL) bool {
		return strings.HasPrefix(u.Path, "/user/alice/tree/science")
	}, noVisits)
	listed, err := pollPage[bool](ctx, 60*time.Second, `(() => {
		const e = document.querySelector("#notebook_list");
		if (e === null || !e.textContent.includes("profile-science-marker.txt")) throw new Error("not yet");
		return /Jupyter/.test(document.title + " " + document.body.innerHTML);
	})()`)
	if err != nil || !listed {
		failureShot(t, ctx, shots, "profiles-error")
		t.Fatalf("the notebook at %s does not list the science folder (%v)", browserLocation(ctx), err)
	}
	env := procEnv(hubAPI, "alice")
	if env["CADDYHUB_PROFILE"] != "science" || env["JUPYTERHUB_DEFAULT_URL"] != "/tree/science" || env["MEM_LIMIT"] != "1073741824" {
		t.Errorf("alice's server runs with CADDYHUB_PROFILE=%q JUPYTERHUB_DEFAULT_URL=%q MEM_LIMIT=%q, want the science profile's",
			env["CADDYHUB_PROFILE"], env["JUPYTERHUB_DEFAULT_URL"], env["MEM_LIMIT"])
	}
	checkLayout(t, ctx, shots, "profiles-notebook")
	// Home says which profile the server runs.
	step("open home", chromedp.Navigate(base+"/hub/home"))
	home, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.body.innerText`))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(home, "(science)") {
		t.Errorf("home does not show the server's profile, science:\n%s", home)
	}

	// bob: the broken profile fails on the progress page.
	step("log out alice", chromedp.Navigate(base+"/hub/logout"))
	waitLocation(t, ctx, "/hub/login after logout", 60*time.Second, func(u *url.URL) bool { return u.Path == "/hub/login" }, noVisits)
	login("bob")
	step("choose the broken profile and start",
		chromedp.Click(chromedp.CSS(`label[for="profile-broken"]`)),
		chromedp.Click(chromedp.CSS(`#profiles ~ .actions button[type="submit"]`)),
	)
	page := checkFailurePage(t, ctx, shots, "bob", "profiles-error")
	if !strings.Contains(page.Failure, "status 3") || !strings.Contains(page.Failure, "no notebook here") {
		t.Errorf("the cause %q does not say the broken profile's exit status and output", page.Failure)
	}
	checkLayout(t, ctx, shots, "profiles-failed")
}
