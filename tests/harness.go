// Package tests holds CaddyHub's end-to-end suites: they run the real caddy binary built from
// ./cmd/caddy (and real programs such as Python JupyterHub and jupyterhub-singleuser) and talk to
// it only over 127.0.0.1.
//
// This file is the shared harness (a non-test file so every _test.go file of the package can use
// it):
//
//   - Caddy(t) gives the path of our caddy binary: $CADDYHUB_BIN when set, otherwise
//     `go build -o <tmp>/caddyhub-e2e-<pid>/caddy ./cmd/caddy`, once per test process.
//   - Require(t, program) finds a program on PATH; missing → t.Skip, or t.Fatal under
//     HUB_REQUIRE_E2E=1 (CI sets it).
//   - Start(t, dir, caddyfile, env...) runs `caddy run` on a Caddyfile written into dir and waits
//     until its config is loaded; the *Instance can Kill9, Stop, Reload and gives its Log.
//   - FreePort, URL, WaitHTTP, Client and RunCaddy are small helpers around those.
//
// Admin endpoint: every instance needs its own admin address. Put `admin 127.0.0.1:<FreePort(t)>`
// in the Caddyfile's global options block yourself, or leave it out and Start injects one (into
// the leading global block when there is one, else as a new global block). `admin off` is refused.
//
// TestMain (in lifecycle_test.go) calls CleanupBuild; do not define another TestMain in this package.
package tests

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/caddyhub/caddyhub/internal/buildflags"
	"github.com/caddyhub/caddyhub/internal/testport"
)

// StartTimeout bounds how long Start waits for a caddy instance to load its config, and Stop for it
// to exit. Generous because CI runs on 2 shared cores.
const StartTimeout = 60 * time.Second

var (
	buildOnce sync.Once
	buildPath string
	buildErr  error
	buildDir  string
)

// Caddy returns the path of the caddy binary under test: $CADDYHUB_BIN when set (made absolute),
// otherwise a binary built from the repository root (the parent of the test's working directory)
// with plain `go build -o <os.TempDir()>/caddyhub-e2e-<pid>/caddy ./cmd/caddy`, once per test
// process. A build failure is fatal. CleanupBuild removes the built binary.
func Caddy(t testing.TB) string {
	t.Helper()
	if p := os.Getenv("CADDYHUB_BIN"); p != "" {
		abs, err := filepath.Abs(p)
		if err != nil {
			t.Fatalf("CADDYHUB_BIN %q: %v", p, err)
		}
		if _, err := os.Stat(abs); err != nil {
			t.Fatalf("CADDYHUB_BIN: %v", err)
		}
		return abs
	}
	buildOnce.Do(func() {
		root, err := filepath.Abs("..")
		if err != nil {
			buildErr = fmt.Errorf("finding repository root: %w", err)
			return
		}
		goBin, err := exec.LookPath("go")
		if err != nil {
			buildErr = fmt.Errorf("finding the go command: %w", err)
			return
		}
		buildDir = filepath.Join(os.TempDir(), fmt.Sprintf("caddyhub-e2e-%d", os.Getpid()))
		if err := os.MkdirAll(buildDir, 0o755); err != nil {
			buildErr = fmt.Errorf("creating build dir: %w", err)
			return
		}
		out := filepath.Join(buildDir, "caddy")
		cmd := exec.Command(goBin, "build", "-tags", buildflags.Tags, "-o", out, "./cmd/caddy")
		cmd.Dir = root
		if msg, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build -tags %s ./cmd/caddy: %w\n%s", buildflags.Tags, err, msg)
			return
		}
		buildPath = out
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return buildPath
}

// CleanupBuild removes the binary Caddy built, if any. Call it from TestMain after m.Run.
func CleanupBuild() {
	if buildDir != "" {
		_ = os.RemoveAll(buildDir)
	}
}

// RequireE2E reports whether missing programs must fail the test (env HUB_REQUIRE_E2E=1).
func RequireE2E() bool { return os.Getenv("HUB_REQUIRE_E2E") == "1" }

// Require returns the path of program (a name looked up on PATH, or an absolute path). When it is
// missing the test is skipped, or fails when HUB_REQUIRE_E2E=1.
func Require(t testing.TB, program string) string {
	t.Helper()
	p, err := exec.LookPath(program)
	if err != nil {
		if RequireE2E() {
			t.Fatalf("required program %s missing (HUB_REQUIRE_E2E=1): %v", program, err)
		}
		t.Skipf("program %s not available: %v", program, err)
	}
	return p
}

// FreePort returns a port on 127.0.0.1 that was free a moment ago, that no earlier FreePort call in
// this test binary returned, and that no listen-on-0 listener (a DNS server here, a spawner picking a
// notebook's port) can be given before the program under test binds it: see internal/testport.
func FreePort(t testing.TB) int {
	t.Helper()
	return testport.Free(t)
}

// RandomHex returns n random bytes, hex encoded (tokens, passwords, ids for tests).
func RandomHex(t testing.TB, n int) string {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatalf("random bytes: %v", err)
	}
	return hex.EncodeToString(b)
}

// URL returns "http://127.0.0.1:<port><path>".
func URL(port int, path string) string {
	return "http://127.0.0.1:" + strconv.Itoa(port) + path
}

// Client returns an HTTP client for talking to test servers: no proxy from the environment, no
// redirects followed, no connection reuse (so a restarted server is seen at once), 30 s timeout.
func Client() *http.Client {
	return &http.Client{
		Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true},
		// Longer than the hub's own 10 s wait before it answers a start with 202 (slow_spawn_timeout):
		// at 10 s a slow start raced the hub's answer and failed as a client timeout.
		Timeout: 30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
}

// WaitHTTP polls GET url until it answers with status (redirects are not followed) and returns
// that response's body. It fails the test after timeout, reporting the last status or error.
func WaitHTTP(t testing.TB, url string, status int, timeout time.Duration) string {
	t.Helper()
	c := Client()
	c.Timeout = 5 * time.Second
	deadline := time.Now().Add(timeout)
	last := "no attempt"
	for {
		resp, err := c.Get(url)
		if err == nil {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == status {
				return string(body)
			}
			last = fmt.Sprintf("status %d: %.300s", resp.StatusCode, body)
		} else {
			last = err.Error()
		}
		if time.Now().After(deadline) {
			t.Fatalf("GET %s: no %d within %s; last: %s", url, status, timeout, last)
		}
		time.Sleep(50 * time.Millisecond) // poll interval, not synchronisation
	}
}

// RunCaddy runs `caddy <args...>` (our binary) with cwd dir and returns its combined output.
func RunCaddy(t testing.TB, dir string, args ...string) (string, error) {
	t.Helper()
	return runCaddy(t, dir, nil, args...)
}

// runCaddy is RunCaddy with extra environment (e.g. for `{$VAR}` in a Caddyfile being adapted).
func runCaddy(t testing.TB, dir string, env []string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), StartTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, Caddy(t), args...)
	cmd.Dir = dir
	cmd.Env = caddyEnv(dir, env)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// Instance is one running `caddy run` process started by Start.
type Instance struct {
	t      testing.TB
	dir    string
	config string // path of the Caddyfile
	admin  string // admin address host:port
	env    []string

	cmd     *exec.Cmd
	logPath string
	done    chan struct{} // closed when the process has exited
	waitErr error
}

var instanceSeq atomic.Int64

// globalAdmin returns the argument of an `admin` option in the Caddyfile's leading global options
// block (at its top level only: `admin` inside a nested block, such as a service's, is not it), or
// "" when there is none.
func globalAdmin(caddyfile string) string {
	depth := 0
	seenBlock := false
	for _, line := range strings.Split(caddyfile, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if !seenBlock {
			if line != "{" {
				return "" // no leading global options block
			}
			seenBlock, depth = true, 1
			continue
		}
		if f := strings.Fields(line); depth == 1 && len(f) >= 2 && f[0] == "admin" {
			return f[1]
		}
		depth += strings.Count(line, "{") - strings.Count(line, "}")
		if depth <= 0 {
			return ""
		}
	}
	return ""
}

// withAdmin returns caddyfile with an admin address: the one it names, or an injected one.
func withAdmin(t testing.TB, caddyfile string) (string, string) {
	t.Helper()
	if addr := globalAdmin(caddyfile); addr != "" {
		if addr == "off" || addr == "{" {
			t.Fatal("harness: the Caddyfile must not turn the admin endpoint off")
		}
		if !strings.Contains(addr, ":") {
			t.Fatalf("harness: admin address %q has no port", addr)
		}
		addr = strings.TrimPrefix(addr, "tcp/")
		if strings.HasPrefix(addr, ":") {
			addr = "127.0.0.1" + addr
		}
		return caddyfile, addr
	}
	addr := "127.0.0.1:" + strconv.Itoa(FreePort(t))
	return injectAdmin(caddyfile, addr), addr
}

// injectAdmin puts `admin <addr>` into the Caddyfile's leading global options block, or in a new
// global block in front when it has none.
func injectAdmin(caddyfile, addr string) string {
	line := "\tadmin " + addr + "\n"
	trimmed := strings.TrimLeft(caddyfile, " \t\r\n")
	if strings.HasPrefix(trimmed, "{") {
		i := strings.Index(caddyfile, "{")
		nl := strings.IndexByte(caddyfile[i:], '\n')
		if nl >= 0 && strings.TrimSpace(caddyfile[i+1:i+nl]) == "" {
			return caddyfile[:i+nl+1] + line + caddyfile[i+nl+1:]
		}
	}
	return "{\n" + line + "}\n\n" + caddyfile
}

// caddyEnv is the environment for caddy processes: ours, with caddy's config and data directories
// (autosave.json, certificates) kept under dir, then extra (later entries win).
func caddyEnv(dir string, extra []string) []string {
	env := append(os.Environ(),
		"XDG_CONFIG_HOME="+filepath.Join(dir, ".config"),
		"XDG_DATA_HOME="+filepath.Join(dir, ".data"),
	)
	return append(env, extra...)
}

// Start writes caddyfile to <dir>/Caddyfile (injecting an admin address when it names none), runs
// `caddy run --config <dir>/Caddyfile --adapter caddyfile` with cwd dir and environment env
// ("KEY=value", overriding ours), logging to a file in dir, and waits until the admin endpoint
// serves the config. Caddy holds its config lock while it provisions and starts the apps, so when
// Start returns every app (listeners included) has started. It fails the test when caddy exits or
// the deadline passes first. The log is dumped into t.Log if the test fails; a t.Cleanup kills
// the process (by its PID) if it is still running. Run one instance per dir at a time (they share
// <dir>/Caddyfile); start a new one in the same dir after Stop or Kill9 to test a restart.
func Start(t testing.TB, dir, caddyfile string, env ...string) *Instance {
	t.Helper()
	bin := Caddy(t)
	caddyfile, admin := withAdmin(t, caddyfile)
	cfgPath := filepath.Join(dir, "Caddyfile")
	if err := os.WriteFile(cfgPath, []byte(caddyfile), 0o600); err != nil {
		t.Fatalf("writing Caddyfile: %v", err)
	}
	n := instanceSeq.Add(1)
	logPath := filepath.Join(dir, fmt.Sprintf("caddy-%d.log", n))
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatalf("creating caddy log: %v", err)
	}
	inst := &Instance{t: t, dir: dir, config: cfgPath, admin: admin, env: env, logPath: logPath,
		done: make(chan struct{})}
	inst.cmd = exec.Command(bin, "run", "--config", cfgPath, "--adapter", "caddyfile")
	inst.cmd.Dir = dir
	inst.cmd.Env = caddyEnv(dir, env)
	inst.cmd.Stdout = logFile
	inst.cmd.Stderr = logFile
	if err := inst.cmd.Start(); err != nil {
		logFile.Close()
		t.Fatalf("starting caddy: %v", err)
	}
	go func() {
		inst.waitErr = inst.cmd.Wait()
		logFile.Close()
		close(inst.done)
	}()
	t.Cleanup(func() {
		if inst.Running() {
			_ = inst.cmd.Process.Kill()
			<-inst.done
		}
		if t.Failed() {
			t.Logf("caddy instance %d (pid %d, admin %s) log:\n%s", n, inst.PID(), inst.admin, inst.Log())
		}
	})
	if err := inst.waitReady(StartTimeout); err != nil {
		t.Fatalf("caddy instance %d did not start: %v\nlog:\n%s", n, err, inst.Log())
	}
	return inst
}

// waitReady polls the admin endpoint's GET /config/ until it answers 200.
func (inst *Instance) waitReady(timeout time.Duration) error {
	c := Client()
	c.Timeout = timeout
	deadline := time.Now().Add(timeout)
	for {
		select {
		case <-inst.done:
			return fmt.Errorf("caddy exited: %v", inst.waitErr)
		default:
		}
		resp, err := c.Get("http://" + inst.admin + "/config/")
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("admin endpoint %s not ready within %s (last error: %v)", inst.admin, timeout, err)
		}
		time.Sleep(20 * time.Millisecond) // poll interval, not synchronisation
	}
}

// PID returns the caddy process id.
func (inst *Instance) PID() int { return inst.cmd.Process.Pid }

// Dir returns the working directory the instance runs in.
func (inst *Instance) Dir() string { return inst.dir }

// ConfigFile returns the path of the Caddyfile the instance was started (or last reloaded) with.
func (inst *Instance) ConfigFile() string { return inst.config }

// Admin returns the admin endpoint's address (host:port).
func (inst *Instance) Admin() string { return inst.admin }

// Running reports whether the process has not exited yet.
func (inst *Instance) Running() bool {
	select {
	case <-inst.done:
		return false
	default:
		return true
	}
}

// Wait waits up to timeout for the process to exit and returns its exit error (nil on status 0).
func (inst *Instance) Wait(timeout time.Duration) error {
	if !inst.Running() {
		return inst.waitErr
	}
	select {
	case <-inst.done:
		return inst.waitErr
	case <-time.After(timeout):
		return fmt.Errorf("caddy (pid %d) still running after %s", inst.PID(), timeout)
	}
}

// Log returns what the process has written to stdout and stderr so far.
func (inst *Instance) Log() string {
	b, err := os.ReadFile(inst.logPath)
	if err != nil {
		return "(reading log: " + err.Error() + ")"
	}
	return string(b)
}

// Kill9 sends SIGKILL to the caddy process and waits for it to be gone.
func (inst *Instance) Kill9() {
	inst.t.Helper()
	if !inst.Running() {
		inst.t.Fatalf("Kill9: caddy (pid %d) already exited: %v", inst.PID(), inst.waitErr)
	}
	if err := inst.cmd.Process.Signal(syscall.SIGKILL); err != nil && !errors.Is(err, os.ErrProcessDone) {
		inst.t.Fatalf("Kill9: %v", err)
	}
	<-inst.done
}

// Stop asks caddy to exit gracefully (POST /stop on the admin endpoint, what `caddy stop` does)
// and waits for the process to exit with status 0.
func (inst *Instance) Stop() {
	inst.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, "http://"+inst.admin+"/stop", nil)
	resp, err := Client().Do(req)
	if err != nil {
		inst.t.Fatalf("POST /stop: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		inst.t.Fatalf("POST /stop: status %d: %s", resp.StatusCode, body)
	}
	if err := inst.Wait(StartTimeout); err != nil {
		inst.t.Fatalf("caddy stop: %v\nlog:\n%s", err, inst.Log())
	}
}

// Reload rewrites the Caddyfile (injecting this instance's admin address when it names none) and
// runs `caddy reload --config <file> --adapter caddyfile --address <admin>`, which adapts it and
// POSTs it to /load; it returns when the new config is running. Fails the test on error.
func (inst *Instance) Reload(caddyfile string) {
	inst.t.Helper()
	if err := inst.TryReload(caddyfile); err != nil {
		inst.t.Fatal(err)
	}
}

// TryReload is Reload returning the error (with caddy's output) instead of failing the test; use
// it to check that a bad config is refused.
func (inst *Instance) TryReload(caddyfile string) error {
	inst.t.Helper()
	if globalAdmin(caddyfile) == "" {
		caddyfile = injectAdmin(caddyfile, inst.admin)
	}
	if err := os.WriteFile(inst.config, []byte(caddyfile), 0o600); err != nil {
		return fmt.Errorf("writing Caddyfile: %w", err)
	}
	out, err := runCaddy(inst.t, inst.dir, inst.env, "reload", "--config", inst.config, "--adapter", "caddyfile",
		"--address", inst.admin)
	if err != nil {
		return fmt.Errorf("caddy reload: %w\n%s", err, out)
	}
	return nil
}

// GetJSON is a tiny helper: GET url with optional "Authorization: token <token>" and return status
// and body.
func GetJSON(t testing.TB, url, token string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	if token != "" {
		req.Header.Set("Authorization", "token "+token)
	}
	resp, err := Client().Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, body
}

// Do sends method url with body (JSON, may be nil) and optional token; returns status and body.
func Do(t testing.TB, method, url, token string, body []byte) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "token "+token)
	}
	resp, err := Client().Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// syncBuffer is a goroutine-safe log sink.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// logTail returns the last n lines of the file at path, indented for a test message, or a line
// saying why it cannot be read.
func logTail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return "    (" + err.Error() + ")"
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return "    " + strings.Join(lines, "\n    ")
}
