package tests

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// whoamiServerScript is a minimal single-user server that answers every GET with the account it
// runs as: "uid=<uid> user=<name> home=<HOME>".
const whoamiServerScript = `
import os, pwd, http.server, urllib.parse
url = urllib.parse.urlparse(os.environ["JUPYTERHUB_SERVICE_URL"])
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        uid = os.getuid()
        body = ("uid=%d user=%s home=%s" % (uid, pwd.getpwuid(uid).pw_name, os.environ.get("HOME", ""))).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a):
        pass
http.server.HTTPServer((url.hostname or "127.0.0.1", url.port), H).serve_forever()
`

// TestCreateSystemUsersE2E: with create_system_users and the localprocess spawner, a user added
// through the API gets a system account and a home (real useradd), and their server then runs as
// that account; a name useradd refuses gives a clear API error and no hub user.
func TestCreateSystemUsersE2E(t *testing.T) {
	python := Require(t, "/usr/bin/python3")
	Require(t, "useradd")
	Require(t, "userdel")
	if os.Geteuid() != 0 {
		if RequireE2E() {
			t.Fatal("creating system users needs root (HUB_REQUIRE_E2E=1)")
		}
		t.Skip("creating system users needs root")
	}
	name := "chtest" + RandomHex(t, 4)
	long := name + strings.Repeat("x", 40) // longer than useradd allows
	t.Cleanup(func() {
		for _, n := range []string{name, long} {
			if _, err := user.Lookup(n); err == nil {
				if out, err := exec.Command("userdel", "-r", n).CombinedOutput(); err != nil {
					t.Logf("userdel -r %s: %v: %s", n, err, out)
				}
			}
		}
	})
	// The script must be readable by the new account: not under t.TempDir() (0700).
	scriptDir, err := os.MkdirTemp("", "chtest-script-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(scriptDir) })
	script := filepath.Join(scriptDir, "whoami.py")
	if err := os.WriteFile(script, []byte(whoamiServerScript), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(scriptDir, 0o755); err != nil {
		t.Fatal(err)
	}

	dir := t.TempDir()
	e := &apiE2E{t: t, dir: dir, public: FreePort(t), proxyAPI: FreePort(t), hubAPI: FreePort(t), adminToken: RandomHex(t, 16)}
	caddyfile := fmt.Sprintf(`{
	jupyterhub {
		data_dir %[1]s/data
		proxy_api 127.0.0.1:%[3]d
		hub_api 127.0.0.1:%[4]d
		cookie_secret_file %[1]s/cookie_secret
		authenticator dummy {
			password s3cret-pass
			create_system_users
		}
		spawner localprocess {
			cmd %[6]s %[7]s
			start_timeout 30s
			http_timeout 20s
		}
		api_token %[5]s admin
		role admin {
			users admin
		}
	}
}

:%[2]d {
	bind 127.0.0.1
	jupyterhub
}
`, dir, e.public, e.proxyAPI, e.hubAPI, e.adminToken, python, script)
	e.inst = Start(t, dir, caddyfile)
	// Runs before the instance is killed: the server (which outlives Caddy) is stopped, so that
	// userdel can remove the account.
	t.Cleanup(func() {
		if e.inst.Running() {
			e.request("DELETE", "/hub/api/users/"+name+"/server", e.adminToken, "")
		}
	})

	if code, b := e.request("POST", "/hub/api/users/"+name, e.adminToken, ""); code != 201 {
		t.Fatalf("creating %s: %d %s", name, code, b)
	}
	acct, err := user.Lookup(name)
	if err != nil {
		t.Fatalf("no system account after POST /hub/api/users/%s: %v", name, err)
	}
	if st, err := os.Stat(acct.HomeDir); err != nil || !st.IsDir() {
		t.Fatalf("home %q of %s: %v", acct.HomeDir, name, err)
	}

	if code, b := e.request("POST", "/hub/api/users/"+name+"/server", e.adminToken, ""); code != 201 && code != 202 {
		t.Fatalf("starting %s's server: %d %s", name, code, b)
	}
	waitFor(t, name+"'s server ready", 40*time.Second, func() bool {
		code, b := e.request("GET", "/hub/api/users/"+name, e.adminToken, "")
		var m struct {
			Servers map[string]struct{ Ready bool } `json:"servers"`
		}
		return code == 200 && json.Unmarshal(b, &m) == nil && m.Servers[""].Ready
	})
	code, b := e.request("GET", "/user/"+name+"/", "", "")
	want := fmt.Sprintf("uid=%s user=%s home=%s", acct.Uid, name, acct.HomeDir)
	if code != 200 || string(b) != want {
		t.Fatalf("%s's server says %d %q, want %q", name, code, b, want)
	}
	if code, b := e.request("DELETE", "/hub/api/users/"+name+"/server", e.adminToken, ""); code != 204 && code != 202 {
		t.Fatalf("stopping %s's server: %d %s", name, code, b)
	}

	// useradd refuses the name: 400 saying why, no hub user, no account.
	code, b = e.request("POST", "/hub/api/users/"+long, e.adminToken, "")
	var apiErr struct {
		Status  int
		Message string
	}
	if code != 400 || json.Unmarshal(b, &apiErr) != nil || apiErr.Status != 400 ||
		!strings.Contains(apiErr.Message, "Failed to create user "+long) || !strings.Contains(apiErr.Message, "useradd") {
		t.Fatalf("creating %s: %d %s, want 400 naming useradd's failure", long, code, b)
	}
	if code, _ := e.request("GET", "/hub/api/users/"+long, e.adminToken, ""); code != 404 {
		t.Fatalf("GET /hub/api/users/%s after the failure: %d, want 404", long, code)
	}
	if _, err := user.Lookup(long); err == nil {
		t.Fatalf("account %s exists after useradd failed", long)
	}
}
