package simple

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"go.uber.org/zap"

	"github.com/caddyhub/caddyhub/spawners"
	"github.com/caddyhub/caddyhub/spawners/spawnertest"
)

// testServer is the path of the built test server.
var testServer string

func TestMain(m *testing.M) {
	if os.Getenv(helperEnv) != "" {
		helperHub()
		return
	}
	dir, err := os.MkdirTemp("", "spawners-simple-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	testServer, err = spawnertest.Build(dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// status is the test server's JSON report (testserver.Status).
type status struct {
	PID      int               `json:"pid"`
	PGID     int               `json:"pgid"`
	SID      int               `json:"sid"`
	UID      int               `json:"uid"`
	Cwd      string            `json:"cwd"`
	Args     []string          `json:"args"`
	Env      map[string]string `json:"env"`
	ChildPID int               `json:"child_pid"`
	Path     string            `json:"path"`
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

func newRequest(t *testing.T, user string) *spawners.StartRequest {
	t.Helper()
	return &spawners.StartRequest{
		User:          user,
		ServicePrefix: "/user/" + user + "/",
		DataDir:       t.TempDir(),
		Env: map[string]string{
			"JUPYTERHUB_API_TOKEN": "secret-token",
			"JUPYTERHUB_API_URL":   "http://127.0.0.1:8081/hub/api",
			"JUPYTERHUB_CLIENT_ID": "jupyterhub-user-" + user,
		},
	}
}

// start starts a server and registers its stop with t.Cleanup.
func start(t *testing.T, s spawners.Spawner, req *spawners.StartRequest) (*spawners.Server, []spawners.Event) {
	t.Helper()
	var mu sync.Mutex
	var events []spawners.Event
	srv, err := spawners.StartAndWait(context.Background(), s, req, func(e spawners.Event) {
		mu.Lock()
		events = append(events, e)
		mu.Unlock()
	})
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() { _ = s.Stop(context.Background(), srv.State) })
	return srv, events
}

func getStatus(t *testing.T, srv *spawners.Server, prefix string) status {
	t.Helper()
	resp, err := http.Get(srv.URL + prefix + "api/status")
	if err != nil {
		t.Fatalf("server does not answer: %v", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	var st status
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		t.Fatal(err)
	}
	return st
}

func statePID(t *testing.T, raw json.RawMessage) int {
	t.Helper()
	var s struct {
		PID int `json:"pid"`
	}
	if err := json.Unmarshal(raw, &s); err != nil || s.PID <= 0 {
		t.Fatalf("state %s: %v", raw, err)
	}
	return s.PID
}

// testServers lists live processes running the test server binary.
func testServers(t *testing.T) []int {
	t.Helper()
	pids, err := spawnertest.Running(testServer)
	if err != nil {
		t.Fatal(err)
	}
	return pids
}

func requireNoTestServers(t *testing.T) {
	t.Helper()
	if pids := testServers(t); len(pids) > 0 {
		t.Fatalf("test server processes left running: %v", pids)
	}
}

// waitGone polls until pid no longer runs.
func waitGone(t *testing.T, pid int, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(d)
	for spawnertest.Alive(pid) {
		if time.Now().After(deadline) {
			t.Fatalf("process %d still running after %s", pid, d)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestStartPollStop(t *testing.T) {
	s := newSpawner(t, func(s *Spawner) {
		s.Args = []string{"-sleep=200ms"}
		s.DefaultURL = "/lab"
		s.Environment = map[string]string{"EXTRA": "for-{username}"}
	})
	req := newRequest(t, "alice")
	srv, events := start(t, s, req)

	if !strings.HasPrefix(srv.URL, "http://127.0.0.1:") || strings.Count(srv.URL, "/") != 2 {
		t.Fatalf("URL %q is not http://127.0.0.1:<port>", srv.URL)
	}
	st := getStatus(t, srv, req.ServicePrefix)
	home := filepath.Join(req.DataDir, "users", "alice")
	want := map[string]string{
		"JUPYTERHUB_API_TOKEN":      "secret-token",
		"JUPYTERHUB_API_URL":        "http://127.0.0.1:8081/hub/api",
		"JUPYTERHUB_CLIENT_ID":      "jupyterhub-user-alice",
		"JUPYTERHUB_SERVICE_URL":    srv.URL + "/user/alice/",
		"JUPYTERHUB_SERVICE_PREFIX": "/user/alice/",
		"JUPYTERHUB_USER":           "alice",
		"JUPYTERHUB_DEFAULT_URL":    "/lab",
		"HOME":                      home,
		"USER":                      "alice",
		"SHELL":                     "/bin/bash",
		"EXTRA":                     "for-alice",
		"PATH":                      os.Getenv("PATH"),
	}
	for k, v := range want {
		if st.Env[k] != v {
			t.Errorf("server env %s = %q, want %q", k, st.Env[k], v)
		}
	}
	if st.Cwd != home {
		t.Errorf("cwd %q, want home %q", st.Cwd, home)
	}
	if fi, err := os.Stat(home); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("home %s: %v, mode %v; want 0700", home, err, fi.Mode())
	}
	if st.PGID != st.PID || st.SID != st.PID {
		t.Errorf("server pid %d pgid %d sid %d: not in its own session", st.PID, st.PGID, st.SID)
	}
	if pid := statePID(t, srv.State); pid != st.PID {
		t.Errorf("state pid %d, server says %d", pid, st.PID)
	}
	logPath := filepath.Join(req.DataDir, "logs", "alice", "server.log")
	if fi, err := os.Stat(logPath); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("log %s: %v", logPath, err)
	}
	if b, _ := os.ReadFile(logPath); !strings.Contains(string(b), "testserver: listening on") {
		t.Errorf("server output not in log: %q", b)
	}
	if b, _ := os.ReadFile(logPath); strings.Contains(string(b), "secret-token") {
		t.Error("the log holds the API token")
	}
	fd0, err := os.Readlink(fmt.Sprintf("/proc/%d/fd/0", st.PID))
	if err != nil || fd0 != "/dev/null" {
		t.Errorf("stdin is %q (%v), want /dev/null", fd0, err)
	}
	fd1, _ := os.Readlink(fmt.Sprintf("/proc/%d/fd/1", st.PID))
	if fd1 != logPath {
		t.Errorf("stdout is %q, want the log file", fd1)
	}
	last := -1
	for _, e := range events {
		if e.Progress < last || e.Progress > 100 || e.Message == "" {
			t.Errorf("bad progress sequence %v", events)
		}
		last = e.Progress
	}
	if last != 90 {
		t.Errorf("last progress %d, want 90: %v", last, events)
	}

	running, err := s.Poll(context.Background(), srv.State)
	if err != nil || !running {
		t.Fatalf("Poll = %v, %v; want running", running, err)
	}
	if err := s.Stop(context.Background(), srv.State); err != nil {
		t.Fatal(err)
	}
	if spawnertest.Alive(st.PID) {
		t.Fatalf("process %d still alive after Stop returned", st.PID)
	}
	running, err = s.Poll(context.Background(), srv.State)
	if err != nil || running {
		t.Fatalf("Poll after Stop = %v, %v", running, err)
	}
	if err := s.Stop(context.Background(), srv.State); err != nil {
		t.Fatalf("second Stop: %v", err)
	}
	requireNoTestServers(t)
}

func TestStartFailures(t *testing.T) {
	for _, c := range []struct {
		name    string
		set     func(*Spawner)
		kind    error
		want    []string
		notWant []string
	}{
		{
			name: "command not found",
			set:  func(s *Spawner) { s.Cmd = []string{"no-such-command-caddyhub"} },
			kind: spawners.ErrCommandNotFound,
			want: []string{"command not found: no-such-command-caddyhub"},
		},
		{
			name: "jupyterhub-singleuser not found",
			set: func(s *Spawner) {
				s.Cmd = []string{"jupyterhub-singleuser"}
				s.Environment = map[string]string{"PATH": "/nonexistent"}
			},
			kind: spawners.ErrCommandNotFound,
			want: []string{"command not found: jupyterhub-singleuser", "apt-get install jupyterhub"},
		},
		{
			name: "not executable",
			set:  func(s *Spawner) { s.Cmd = []string{"/etc/passwd"} },
			kind: spawners.ErrCommandNotFound,
			want: []string{"/etc/passwd", "not executable"},
		},
		{
			name:    "exits early",
			set:     func(s *Spawner) { s.Args = []string{"-exit=3"} },
			kind:    spawners.ErrExitedEarly,
			want:    []string{"exited early with status 3", "output line 30", "fatal: told to exit"},
			notWant: []string{"output line 5\n"},
		},
		{
			name: "never answers",
			set: func(s *Spawner) {
				s.Args = []string{"-never-listen"}
				s.HTTPTimeout = caddy.Duration(300 * time.Millisecond)
			},
			kind: spawners.ErrHTTPTimeout,
			want: []string{"did not answer", "within http_timeout (300ms)"},
		},
		{
			name: "start timeout",
			set: func(s *Spawner) {
				s.Args = []string{"-sleep=1h"}
				s.StartTimeout = caddy.Duration(300 * time.Millisecond)
			},
			kind: spawners.ErrStartTimeout,
			want: []string{"start_timeout (300ms)"},
		},
		{
			name: "ignores SIGTERM and never answers",
			set: func(s *Spawner) {
				s.Args = []string{"-never-listen", "-ignore-term", "-child"}
				s.HTTPTimeout = caddy.Duration(200 * time.Millisecond)
			},
			kind: spawners.ErrHTTPTimeout,
		},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := newSpawner(t, c.set)
			req := newRequest(t, "bob")
			srv, err := spawners.StartAndWait(context.Background(), s, req, nil)
			if err == nil {
				_ = s.Stop(context.Background(), srv.State)
				t.Fatal("Start succeeded")
			}
			if !errors.Is(err, c.kind) {
				t.Errorf("error %q is not %v", err, c.kind)
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
			for _, w := range c.notWant {
				if strings.Contains(err.Error()+"\n", w) {
					t.Errorf("error %q contains %q", err, w)
				}
			}
			requireNoTestServers(t)
		})
	}
}

func TestStartCancelled(t *testing.T) {
	s := newSpawner(t, func(s *Spawner) { s.Args = []string{"-never-listen", "-child"} })
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	_, err := spawners.StartAndWait(ctx, s, newRequest(t, "carol"), func(e spawners.Event) {
		if e.Progress == 30 { // the process is running
			cancel()
		}
	})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v, want context.Canceled", err)
	}
	requireNoTestServers(t)
}

func TestFixedPortInUse(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	port := l.Addr().(*net.TCPAddr).Port
	s := newSpawner(t, func(s *Spawner) { s.Port = port })
	_, err = spawners.StartAndWait(context.Background(), s, newRequest(t, "dave"), nil)
	if !errors.Is(err, spawners.ErrExitedEarly) || !strings.Contains(err.Error(), fmt.Sprintf("port %d", port)) {
		t.Fatalf("got %v, want an early exit naming port %d", err, port)
	}
	requireNoTestServers(t)
}

func TestFixedPort(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	s := newSpawner(t, func(s *Spawner) { s.Port = port })
	srv, _ := start(t, s, newRequest(t, "erin"))
	if srv.URL != "http://127.0.0.1:"+strconv.Itoa(port) {
		t.Fatalf("URL %s, want port %d", srv.URL, port)
	}
}

func TestPortRetry(t *testing.T) {
	marker := filepath.Join(t.TempDir(), "marker")
	s := newSpawner(t, func(s *Spawner) { s.Args = []string{"-addr-in-use-once=" + marker} })
	req := newRequest(t, "frank")
	srv, events := start(t, s, req)
	getStatus(t, srv, req.ServicePrefix)
	var retried bool
	for _, e := range events {
		retried = retried || strings.Contains(e.Message, "was taken")
	}
	if !retried {
		t.Fatalf("no retry event: %v", events)
	}
}

func TestPortRetryGivesUp(t *testing.T) {
	s := newSpawner(t, func(s *Spawner) { s.Args = []string{"-addr-in-use"} })
	var retries int
	_, err := spawners.StartAndWait(context.Background(), s, newRequest(t, "frank"), func(e spawners.Event) {
		if strings.Contains(e.Message, "was taken") {
			retries++
		}
	})
	if !errors.Is(err, spawners.ErrExitedEarly) || !strings.Contains(err.Error(), "address already in use") {
		t.Fatalf("got %v, want an early exit quoting the bind error", err)
	}
	if retries != 2 {
		t.Fatalf("%d retries, want 2 (3 attempts)", retries)
	}
	requireNoTestServers(t)
}

func TestNotebookDirAndNamedServer(t *testing.T) {
	s := newSpawner(t, func(s *Spawner) {
		s.NotebookDir = "~/work/{servername}"
		s.Args = []string{"-write=hello.txt"}
		s.IP = "0.0.0.0"
	})
	req := newRequest(t, "grace")
	req.ServerName = "gpu"
	req.ServicePrefix = "/user/grace/gpu/"
	srv, _ := start(t, s, req)
	if !strings.HasPrefix(srv.URL, "http://127.0.0.1:") {
		t.Errorf("URL %s: want loopback for ip 0.0.0.0", srv.URL)
	}
	st := getStatus(t, srv, req.ServicePrefix)
	dir := filepath.Join(req.DataDir, "users", "grace", "work", "gpu")
	if st.Cwd != dir || st.Env["JUPYTERHUB_ROOT_DIR"] != dir {
		t.Errorf("cwd %q, JUPYTERHUB_ROOT_DIR %q; want %q", st.Cwd, st.Env["JUPYTERHUB_ROOT_DIR"], dir)
	}
	if !strings.HasPrefix(st.Env["JUPYTERHUB_SERVICE_URL"], "http://0.0.0.0:") {
		t.Errorf("JUPYTERHUB_SERVICE_URL %q, want the 0.0.0.0 bind address", st.Env["JUPYTERHUB_SERVICE_URL"])
	}
	if _, err := os.Stat(filepath.Join(dir, "hello.txt")); err != nil {
		t.Errorf("server could not write in its notebook_dir: %v", err)
	}
	if _, err := os.Stat(filepath.Join(req.DataDir, "logs", "grace", "server-gpu.log")); err != nil {
		t.Errorf("named server log: %v", err)
	}
}

func TestStopEscalatesAndKillsGroup(t *testing.T) {
	s := newSpawner(t, func(s *Spawner) {
		s.Args = []string{"-ignore-term", "-child"}
		s.TermTimeout = caddy.Duration(300 * time.Millisecond)
	})
	req := newRequest(t, "heidi")
	srv, _ := start(t, s, req)
	st := getStatus(t, srv, req.ServicePrefix)
	if st.ChildPID == 0 || !spawnertest.Alive(st.ChildPID) {
		t.Fatalf("test server has no child: %+v", st)
	}
	began := time.Now()
	if err := s.Stop(context.Background(), srv.State); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(began); took < 300*time.Millisecond {
		t.Errorf("Stop took %s: it did not wait term_timeout before SIGKILL", took)
	}
	if spawnertest.Alive(st.PID) || spawnertest.Alive(st.ChildPID) {
		t.Fatalf("server %d or its child %d survived Stop", st.PID, st.ChildPID)
	}
}

// TestStopKillsOrphanedGroup: the server dies but leaves a child (a kernel)
// in its group; Poll says stopped, and Stop still cleans the child up.
func TestStopKillsOrphanedGroup(t *testing.T) {
	s := newSpawner(t, func(s *Spawner) {
		s.Args = []string{"-child"}
		s.TermTimeout = caddy.Duration(100 * time.Millisecond) // the child ignores SIGTERM
	})
	req := newRequest(t, "ivan")
	srv, _ := start(t, s, req)
	st := getStatus(t, srv, req.ServicePrefix)
	if err := syscall.Kill(st.PID, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitGone(t, st.PID, 5*time.Second)
	if running, err := s.Poll(context.Background(), srv.State); err != nil || running {
		t.Fatalf("Poll = %v, %v after the server died", running, err)
	}
	if !spawnertest.Alive(st.ChildPID) {
		t.Fatal("child died with the server; the test needs it alive")
	}
	if err := s.Stop(context.Background(), srv.State); err != nil {
		t.Fatal(err)
	}
	if spawnertest.Alive(st.ChildPID) {
		t.Fatal("Stop left the dead server's child running")
	}
}

// TestNewSpawnerInstance: a config reload gives a fresh module instance,
// which polls and stops the server from the stored state alone.
func TestNewSpawnerInstance(t *testing.T) {
	req := newRequest(t, "judy")
	srv, _ := start(t, newSpawner(t, nil), req)
	st := getStatus(t, srv, req.ServicePrefix)
	fresh := newSpawner(t, nil)
	if running, err := fresh.Poll(context.Background(), srv.State); err != nil || !running {
		t.Fatalf("fresh instance Poll = %v, %v", running, err)
	}
	if err := fresh.Stop(context.Background(), srv.State); err != nil {
		t.Fatal(err)
	}
	if spawnertest.Alive(st.PID) {
		t.Fatal("server alive after Stop from a fresh instance")
	}
}

const helperEnv = "CADDYHUB_SPAWNERS_HELPER_HUB"

// helperHub is a stand-in hub process: it starts one server with the simple
// spawner, prints the server as JSON and waits to be killed.
func helperHub() {
	var req spawners.StartRequest
	if err := json.Unmarshal([]byte(os.Getenv(helperEnv)), &req); err != nil {
		fmt.Println("bad request:", err)
		os.Exit(1)
	}
	s := &Spawner{}
	s.Cmd = []string{os.Getenv(helperEnv + "_CMD")}
	if err := s.Options.Provision(); err != nil {
		fmt.Println(err)
		os.Exit(1)
	}
	srv, err := spawners.StartAndWait(context.Background(), s, &req, nil)
	if err != nil {
		fmt.Println(err)
		os.Exit(1)
	}
	b, _ := json.Marshal(srv)
	fmt.Printf("%s\n", b)
	select {}
}

// TestSurvivesHubKill: a hub process starts a server and is killed with
// SIGKILL; the server keeps running and answering, and a new hub (this
// process, for which it is not a child) polls and stops it from the state.
func TestSurvivesHubKill(t *testing.T) {
	req := newRequest(t, "mallory")
	rb, _ := json.Marshal(req)
	hub := exec.Command(os.Args[0], "-test.run=^$")
	hub.Env = append(os.Environ(), helperEnv+"="+string(rb), helperEnv+"_CMD="+testServer)
	out, err := hub.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := hub.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = hub.Process.Kill(); _ = hub.Wait() })
	var srv spawners.Server
	if err := json.NewDecoder(out).Decode(&srv); err != nil {
		t.Fatalf("helper hub did not report a server: %v", err)
	}
	t.Cleanup(func() { _ = newSpawner(t, nil).Stop(context.Background(), srv.State) })
	if err := hub.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = hub.Wait()

	st := getStatus(t, &srv, req.ServicePrefix)
	if st.Env["JUPYTERHUB_USER"] != "mallory" {
		t.Fatalf("unexpected server: %+v", st)
	}
	s := newSpawner(t, nil)
	if running, err := s.Poll(context.Background(), srv.State); err != nil || !running {
		t.Fatalf("Poll after hub kill = %v, %v", running, err)
	}
	if err := s.Stop(context.Background(), srv.State); err != nil {
		t.Fatal(err)
	}
	// Not our child: init reaps it, so wait for that.
	waitGone(t, st.PID, 5*time.Second)
	if running, _ := s.Poll(context.Background(), srv.State); running {
		t.Fatal("Poll says running after Stop")
	}
}

func TestCaddyfileModule(t *testing.T) {
	d := caddyfile.NewTestDispenser(`spawner simple {
		cmd my-server --flag
		notebook_dir /srv/{username}
		http_timeout 5s
		port 9000
	}`)
	d.Next() // "spawner", as the hub's parser sees it
	d.NextArg()
	unm, err := caddyfile.UnmarshalModule(d, "jupyterhub.spawners.simple")
	if err != nil {
		t.Fatal(err)
	}
	s := unm.(*Spawner)
	if strings.Join(s.Cmd, " ") != "my-server --flag" || s.NotebookDir != "/srv/{username}" ||
		time.Duration(s.HTTPTimeout) != 5*time.Second || s.Port != 9000 {
		t.Fatalf("got %+v", s.Options)
	}
	b, _ := json.Marshal(s)
	if want := `{"cmd":["my-server","--flag"],"notebook_dir":"/srv/{username}","http_timeout":5000000000,"port":9000}`; string(b) != want {
		t.Fatalf("JSON %s\nwant %s", b, want)
	}
	d = caddyfile.NewTestDispenser("simple {\n\tfoo bar\n}")
	d.Next()
	if _, err := caddyfile.UnmarshalModule(d, "jupyterhub.spawners.simple"); err == nil ||
		!strings.Contains(err.Error(), `unrecognized option "foo"`) {
		t.Fatalf("unknown option: got %v", err)
	}
}

func TestJSONModule(t *testing.T) {
	for _, c := range []struct {
		name    string
		json    string
		wantErr string
		check   func(*Spawner) bool
	}{
		{name: "brief example", json: `{"cmd":["jupyterhub-singleuser"],"args":["--debug"],"start_timeout":60000000000}`,
			check: func(s *Spawner) bool {
				return s.Args[0] == "--debug" && time.Duration(s.StartTimeout) == time.Minute && time.Duration(s.HTTPTimeout) == 30*time.Second
			}},
		{name: "duration strings", json: `{"http_timeout":"2m","term_timeout":"1s"}`,
			check: func(s *Spawner) bool { return time.Duration(s.HTTPTimeout) == 2*time.Minute }},
		{name: "empty", json: `{}`, check: func(s *Spawner) bool { return s.Cmd[0] == "jupyterhub-singleuser" }},
		{name: "unknown field", json: `{"comand":["x"]}`, wantErr: "comand"},
		{name: "bad duration", json: `{"http_timeout":"soon"}`, wantErr: "soon"},
		{name: "negative port", json: `{"port":-1}`, wantErr: "port: -1"},
		{name: "bad mem", json: `{"mem_limit":"1Q"}`, wantErr: "mem_limit"},
	} {
		t.Run(c.name, func(t *testing.T) {
			ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
			defer cancel()
			mod, err := ctx.LoadModuleByID("jupyterhub.spawners.simple", json.RawMessage(c.json))
			if c.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), c.wantErr) {
					t.Fatalf("got %v, want an error containing %q", err, c.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !c.check(mod.(*Spawner)) {
				t.Fatalf("unexpected options %+v", mod.(*Spawner).Options)
			}
		})
	}
}

// TestConcurrentStarts starts servers for several users at once, as the hub
// does after a burst of logins: each gets its own port, process and home.
func TestConcurrentStarts(t *testing.T) {
	s := newSpawner(t, nil)
	const n = 8
	dataDir := t.TempDir()
	type result struct {
		srv *spawners.Server
		err error
	}
	results := make([]result, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			user := fmt.Sprintf("user%d", i)
			req := &spawners.StartRequest{User: user, ServicePrefix: "/user/" + user + "/", DataDir: dataDir}
			srv, err := spawners.StartAndWait(context.Background(), s, req, nil)
			results[i] = result{srv, err}
		}()
	}
	wg.Wait()
	urls := map[string]bool{}
	for i, r := range results {
		if r.err != nil {
			t.Fatalf("start %d: %v", i, r.err)
		}
		t.Cleanup(func() { _ = s.Stop(context.Background(), r.srv.State) })
		if urls[r.srv.URL] {
			t.Fatalf("two servers share %s", r.srv.URL)
		}
		urls[r.srv.URL] = true
		st := getStatus(t, r.srv, fmt.Sprintf("/user/user%d/", i))
		if st.Env["JUPYTERHUB_USER"] != fmt.Sprintf("user%d", i) {
			t.Fatalf("server %s belongs to %s", r.srv.URL, st.Env["JUPYTERHUB_USER"])
		}
	}
	for _, r := range results {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := s.Stop(context.Background(), r.srv.State); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	requireNoTestServers(t)
}

func TestRejectsUnsafeNames(t *testing.T) {
	s := newSpawner(t, func(s *Spawner) { s.NotebookDir = "/tmp/{username}" })
	req := newRequest(t, "..")
	if _, err := spawners.StartAndWait(context.Background(), s, req, nil); err == nil || !strings.Contains(err.Error(), `invalid username ".."`) {
		t.Fatalf("got %v, want an invalid username error", err)
	}
	if entries, _ := os.ReadDir(req.DataDir); len(entries) != 0 {
		t.Fatalf("a rejected start created %v in data_dir", entries)
	}
}
