package localprocess

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"go.uber.org/zap"

	"github.com/caddyhub/caddyhub/spawners"
	"github.com/caddyhub/caddyhub/spawners/spawnertest"
)

// testServer is the built test server, in a directory every account can
// read, so servers started as other users can execute it.
var testServer string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "spawners-localprocess-")
	if err == nil {
		err = os.Chmod(dir, 0o755)
	}
	if err == nil {
		testServer, err = spawnertest.Build(dir)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// requireRoot skips unless the test can create accounts; under
// HUB_REQUIRE_E2E=1 it fails instead.
func requireRoot(t *testing.T) {
	t.Helper()
	why := ""
	switch {
	case os.Geteuid() != 0:
		why = "not root"
	default:
		for _, c := range []string{"useradd", "userdel", "groupadd", "groupdel"} {
			if _, err := exec.LookPath(c); err != nil {
				why = c + " not found"
			}
		}
	}
	if why == "" {
		return
	}
	if os.Getenv("HUB_REQUIRE_E2E") == "1" {
		t.Fatalf("localprocess end-to-end test needs root and useradd: %s", why)
	}
	t.Skipf("localprocess end-to-end test needs root and useradd: %s", why)
}

func randomName(t *testing.T, prefix string) string {
	b := make([]byte, 4)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return prefix + hex.EncodeToString(b)
}

func run(t *testing.T, name string, args ...string) {
	t.Helper()
	if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
}

// throwawayUser creates a system account (with a home if withHome) and a
// supplementary group it belongs to; both are removed when the test ends.
func throwawayUser(t *testing.T, withHome bool) (u *user.User, groupGID uint32) {
	t.Helper()
	name := randomName(t, "chs")
	group := randomName(t, "chg")
	run(t, "groupadd", group)
	t.Cleanup(func() { _ = exec.Command("groupdel", group).Run() })
	args := []string{"-s", "/bin/sh", "-G", group}
	if withHome {
		args = append(args, "-m")
	} else {
		args = append(args, "-M", "-d", "/nonexistent/"+name)
	}
	run(t, "useradd", append(args, name)...)
	t.Cleanup(func() { _ = exec.Command("userdel", "-r", "-f", name).Run() })
	u, err := user.Lookup(name)
	if err != nil {
		t.Fatal(err)
	}
	g, err := user.LookupGroup(group)
	if err != nil {
		t.Fatal(err)
	}
	gid, _ := strconv.ParseUint(g.Gid, 10, 32)
	return u, uint32(gid)
}

func newSpawner(t *testing.T, set func(*Spawner)) *Spawner {
	t.Helper()
	s := &Spawner{}
	s.Cmd = []string{testServer}
	s.HTTPTimeout = caddy.Duration(10 * time.Second)
	if set != nil {
		set(s)
	}
	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	t.Cleanup(cancel)
	if err := s.Provision(ctx); err != nil {
		t.Fatal(err)
	}
	s.logger = zap.NewNop()
	return s
}

func newRequest(t *testing.T, name string) *spawners.StartRequest {
	return &spawners.StartRequest{
		User:          name,
		ServicePrefix: "/user/" + name + "/",
		DataDir:       t.TempDir(),
		Env:           map[string]string{"JUPYTERHUB_API_TOKEN": "tok"},
	}
}

type status struct {
	PID    int               `json:"pid"`
	UID    int               `json:"uid"`
	GID    int               `json:"gid"`
	Groups []int             `json:"groups"`
	Cwd    string            `json:"cwd"`
	Env    map[string]string `json:"env"`
}

func alive(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	i := strings.LastIndexByte(string(b), ')')
	return i > 0 && i+2 < len(b) && b[i+2] != 'Z'
}

func TestRunsAsUser(t *testing.T) {
	requireRoot(t)
	u, extraGID := throwawayUser(t, true)
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	nb := filepath.Join(u.HomeDir, "notebooks")
	if err := os.Mkdir(nb, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(nb, uid, gid); err != nil {
		t.Fatal(err)
	}

	s := newSpawner(t, func(s *Spawner) {
		s.NotebookDir = "~/notebooks"
		s.Args = []string{"-write=flag.txt"}
	})
	req := newRequest(t, u.Username)
	srv, err := spawners.StartAndWait(context.Background(), s, req, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Stop(context.Background(), srv.State) })

	resp, err := http.Get(srv.URL + req.ServicePrefix + "api/status")
	if err != nil {
		t.Fatal(err)
	}
	var st status
	err = json.NewDecoder(resp.Body).Decode(&st)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	if st.UID != uid || st.GID != gid {
		t.Errorf("server runs as %d:%d, want %d:%d", st.UID, st.GID, uid, gid)
	}
	if !slices.Contains(st.Groups, int(extraGID)) || slices.Contains(st.Groups, 0) {
		t.Errorf("server groups %v: want the supplementary group %d and not root's", st.Groups, extraGID)
	}
	if st.Cwd != nb || st.Env["JUPYTERHUB_ROOT_DIR"] != nb {
		t.Errorf("cwd %q, JUPYTERHUB_ROOT_DIR %q; want %q", st.Cwd, st.Env["JUPYTERHUB_ROOT_DIR"], nb)
	}
	for k, v := range map[string]string{"USER": u.Username, "LOGNAME": u.Username, "HOME": u.HomeDir, "SHELL": "/bin/sh", "JUPYTERHUB_API_TOKEN": "tok"} {
		if st.Env[k] != v {
			t.Errorf("env %s = %q, want %q", k, st.Env[k], v)
		}
	}
	fi, err := os.Stat(filepath.Join(nb, "flag.txt"))
	if err != nil {
		t.Fatalf("the server's file: %v", err)
	}
	if sys := fi.Sys().(*syscall.Stat_t); int(sys.Uid) != uid || int(sys.Gid) != gid {
		t.Errorf("file written by the server is owned by %d:%d, want %d:%d", sys.Uid, sys.Gid, uid, gid)
	}
	logPath := filepath.Join(req.DataDir, "logs", u.Username, "server.log")
	li, err := os.Stat(logPath)
	if err != nil {
		t.Fatal(err)
	}
	if sys := li.Sys().(*syscall.Stat_t); sys.Uid != 0 || li.Mode().Perm() != 0o600 {
		t.Errorf("log owned by %d with mode %v, want root 0600", sys.Uid, li.Mode())
	}
	if b, _ := os.ReadFile(logPath); !strings.Contains(string(b), "testserver: listening") {
		t.Errorf("the server's output is not in its log: %q", b)
	}

	if running, err := s.Poll(context.Background(), srv.State); err != nil || !running {
		t.Fatalf("Poll = %v, %v", running, err)
	}
	if err := s.Stop(context.Background(), srv.State); err != nil {
		t.Fatal(err)
	}
	if alive(st.PID) {
		t.Fatal("server alive after Stop")
	}
	if running, _ := s.Poll(context.Background(), srv.State); running {
		t.Fatal("Poll says running after Stop")
	}
}

func TestStartErrors(t *testing.T) {
	requireRoot(t)
	noHome, _ := throwawayUser(t, false)
	for _, c := range []struct {
		name, user string
		set        func(*Spawner)
		kind       error
		want       string
	}{
		{name: "no account", user: "no-such-account-caddyhub", kind: spawners.ErrNoAccount, want: "there is no system account named no-such-account-caddyhub"},
		{name: "root", user: "root", kind: spawners.ErrNoAccount, want: "uid 0"},
		{name: "no home", user: noHome.Username, want: "home directory /nonexistent/" + noHome.Username + " of user " + noHome.Username + " does not exist"},
		{name: "missing notebook_dir", user: noHome.Username, set: func(s *Spawner) { s.NotebookDir = "/nonexistent-nb/{username}" },
			want: "notebook_dir /nonexistent-nb/" + noHome.Username},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := newSpawner(t, c.set)
			srv, err := spawners.StartAndWait(context.Background(), s, newRequest(t, c.user), nil)
			if err == nil {
				_ = s.Stop(context.Background(), srv.State)
				t.Fatal("Start succeeded")
			}
			if c.kind != nil && !errors.Is(err, c.kind) {
				t.Errorf("error %q is not %v", err, c.kind)
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %q does not contain %q", err, c.want)
			}
		})
	}
}

// TestPermissionDenied: a command the user may not execute gives a clear
// error naming the user.
func TestPermissionDenied(t *testing.T) {
	requireRoot(t)
	u, _ := throwawayUser(t, true)
	private := t.TempDir() // 0700, root's
	exe := filepath.Join(private, "server")
	b, err := os.ReadFile(testServer)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(exe, b, 0o755); err != nil {
		t.Fatal(err)
	}
	s := newSpawner(t, func(s *Spawner) { s.Cmd = []string{exe} })
	_, err = spawners.StartAndWait(context.Background(), s, newRequest(t, u.Username), nil)
	if err == nil || !strings.Contains(err.Error(), "permission denied running "+exe+" as user "+u.Username) {
		t.Fatalf("got %v", err)
	}
}

func TestPasswdShell(t *testing.T) {
	for _, c := range []struct {
		line, name, want string
		ok               bool
	}{
		{"alice:x:1000:1000:Alice:/home/alice:/bin/zsh", "alice", "/bin/zsh", true},
		{"alice:x:1000:1000:Alice:/home/alice:", "alice", "", true},
		{"alicia:x:1000:1000::/home/alicia:/bin/sh", "alice", "", false},
		{"garbage", "alice", "", false},
	} {
		got, ok := passwdShell(c.line, c.name)
		if got != c.want || ok != c.ok {
			t.Errorf("passwdShell(%q) = %q, %v", c.line, got, ok)
		}
	}
}

func TestCaddyfileAndJSON(t *testing.T) {
	d := caddyfile.NewTestDispenser("localprocess {\n\tnotebook_dir ~/nb\n\tterm_timeout 10s\n}")
	d.Next()
	unm, err := caddyfile.UnmarshalModule(d, "jupyterhub.spawners.localprocess")
	if err != nil {
		t.Fatal(err)
	}
	s := unm.(*Spawner)
	if s.NotebookDir != "~/nb" || time.Duration(s.TermTimeout) != 10*time.Second {
		t.Fatalf("got %+v", s.Options)
	}
	d = caddyfile.NewTestDispenser("localprocess {\n\tnotebook_dir\n}")
	d.Next()
	if _, err := caddyfile.UnmarshalModule(d, "jupyterhub.spawners.localprocess"); err == nil {
		t.Fatal("notebook_dir without a value was accepted")
	}
	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	defer cancel()
	if _, err := ctx.LoadModuleByID("jupyterhub.spawners.localprocess", json.RawMessage(`{"port":70000}`)); err == nil {
		t.Fatal("port 70000 was accepted")
	}
	mod, err := ctx.LoadModuleByID("jupyterhub.spawners.localprocess", json.RawMessage(`{"ip":"::1","cpu_limit":2}`))
	if err != nil {
		t.Fatal(err)
	}
	if o := mod.(*Spawner); o.IP != "::1" || o.CPULimit != 2 || time.Duration(o.PollInterval) != 30*time.Second {
		t.Fatalf("got %+v", o)
	}
}
