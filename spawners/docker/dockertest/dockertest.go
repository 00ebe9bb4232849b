// Package dockertest starts real container engines for tests and benchmarks
// of the docker spawner, and puts a test image on them without a registry:
//
//   - Podman: `podman system service --time=0 unix://<dir>/podman.sock` with
//     its storage under <dir> and CONTAINERS_CONF pointing at a generated
//     containers.conf (runc, ulimits nofile=20000:20000 nproc=32768:32768: the
//     defaults fail on machines with cgroups v1 "hybrid" or low hard limits).
//   - dockerd: started by hand with its data, exec root and socket under
//     <dir>, --iptables=false and overlay2 (published ports go through the
//     userland proxy).
//
// Each engine kind is started at most once per test process (Get) and held
// under a file lock in the temporary directory, so that two test processes
// do not run two dockerds (or two podman services) fighting over the same
// bridge; StopAll, called from TestMain (and on SIGINT or SIGTERM), removes
// the test containers and stops the engines by PID. An engine keeps its state
// in a fixed directory per kind: when a run was killed before it could stop
// its engine, the next run finds the directory, ends the engine the dead run
// left (by the PID it recorded), starts on the old state and removes every
// container labelled org.caddyhub.hub from it before any test runs. Tests call
// TrackHub so that their containers go at t.Cleanup even when they fail.
//
// ImportTestServer builds the spawners' test server (a static Go binary) and
// imports a one-file image of it with ImageImport.
package dockertest

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/api/types/volume"
	"github.com/docker/docker/client"
)

// Engine is a running engine.
type Engine struct {
	// Name is "podman" or "dockerd".
	Name string
	// Host is the API address, unix://<dir>/<name>.sock.
	Host string
	// Dir holds the engine's state, socket and log.
	Dir string

	cmd  *exec.Cmd
	lock *os.File
	done chan struct{}
}

// Names are the engine kinds the tests run against: podman and dockerd, or those listed in
// $CADDYHUB_DOCKERTEST_ENGINES (comma-separated, e.g. "dockerd" while another test process
// holds the Podman engine's lock).
var Names = engineNames(os.Getenv("CADDYHUB_DOCKERTEST_ENGINES"))

func engineNames(env string) []string {
	if env == "" {
		return []string{"podman", "dockerd"}
	}
	var out []string
	for _, n := range strings.Split(env, ",") {
		if n = strings.TrimSpace(n); n != "" {
			out = append(out, n)
		}
	}
	return out
}

// Required reports whether a missing engine must fail the test (HUB_REQUIRE_E2E=1).
func Required() bool { return os.Getenv("HUB_REQUIRE_E2E") == "1" }

var (
	mu      sync.Mutex
	engines = map[string]*Engine{}
	errs    = map[string]error{}
)

// Get returns the engine name, starting it on first use. When it cannot run
// here (program missing, not root) the test is skipped, or fails under
// HUB_REQUIRE_E2E=1.
func Get(t testing.TB, name string) *Engine {
	t.Helper()
	mu.Lock()
	defer mu.Unlock()
	if e := engines[name]; e != nil {
		return e
	}
	if err := errs[name]; err != nil {
		skipOrFail(t, err)
	}
	e, err := start(name)
	if err != nil {
		errs[name] = err
		skipOrFail(t, err)
	}
	engines[name] = e
	onSignal.Do(func() {
		ch := make(chan os.Signal, 1)
		signal.Notify(ch, syscall.SIGINT, syscall.SIGTERM)
		go func() {
			sig := <-ch
			fmt.Fprintf(os.Stderr, "dockertest: %v: removing test containers and stopping the engines\n", sig)
			StopAll()
			os.Exit(2)
		}()
	})
	return e
}

var onSignal sync.Once

// LabelHub is the label every container and volume of the docker spawner
// (and of the benchmarks' engine-only runs) carries; the sweeps remove what
// has it.
const LabelHub = "org.caddyhub.hub"

// TrackHub removes the containers and named volumes labelled
// org.caddyhub.hub=hubID from e when t ends, also when it fails or panics.
func (e *Engine) TrackHub(t testing.TB, hubID string) {
	t.Helper()
	t.Cleanup(func() {
		if n, err := e.sweep(LabelHub + "=" + hubID); err != nil {
			t.Logf("dockertest: removing the containers of hub %s: %v", hubID, err)
		} else if n > 0 {
			t.Logf("dockertest: removed %d containers of hub %s", n, hubID)
		}
	})
}

// sweep force-removes the containers, then the named volumes, whose labels
// match label ("key" or "key=value"), and returns how many containers it
// removed.
func (e *Engine) sweep(label string) (int, error) {
	cli, err := client.NewClientWithOpts(client.WithHost(e.Host), client.WithAPIVersionNegotiation())
	if err != nil {
		return 0, err
	}
	defer cli.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	f := filters.NewArgs(filters.Arg("label", label))
	list, err := cli.ContainerList(ctx, container.ListOptions{All: true, Filters: f})
	if err != nil {
		return 0, fmt.Errorf("%s: listing containers labelled %s: %w", e.Name, label, err)
	}
	var wg sync.WaitGroup
	errs := make([]error, len(list))
	for i, c := range list {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = cli.ContainerRemove(ctx, c.ID, container.RemoveOptions{Force: true})
		}()
	}
	wg.Wait()
	if vols, err := cli.VolumeList(ctx, volume.ListOptions{Filters: f}); err == nil {
		for _, v := range vols.Volumes {
			_ = cli.VolumeRemove(ctx, v.Name, true)
		}
	}
	for _, err := range errs {
		if err != nil {
			return len(list), fmt.Errorf("%s: removing a container labelled %s: %w", e.Name, label, err)
		}
	}
	return len(list), nil
}

func skipOrFail(t testing.TB, err error) {
	t.Helper()
	if Required() {
		t.Fatalf("container engine needed (HUB_REQUIRE_E2E=1): %v", err)
	}
	t.Skipf("container engine not available: %v", err)
}

// StopAll stops the engines Get started (call it from TestMain after m.Run).
func StopAll() {
	mu.Lock()
	defer mu.Unlock()
	for name, e := range engines {
		e.stop()
		delete(engines, name)
	}
}

// Client returns an API client for the engine.
func (e *Engine) Client(t testing.TB) *client.Client {
	t.Helper()
	cli, err := client.NewClientWithOpts(client.WithHost(e.Host), client.WithAPIVersionNegotiation())
	if err != nil {
		t.Fatalf("%s client: %v", e.Name, err)
	}
	t.Cleanup(func() { cli.Close() })
	return cli
}

// Log returns the engine's output so far (for failure messages).
func (e *Engine) Log() string {
	b, _ := os.ReadFile(filepath.Join(e.Dir, e.Name+".log"))
	if len(b) > 8000 {
		b = b[len(b)-8000:]
	}
	return string(b)
}

// ContainersConf is the containers.conf the podman service runs with.
const ContainersConf = `[containers]
default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
`

func start(name string) (*Engine, error) {
	if os.Geteuid() != 0 {
		return nil, fmt.Errorf("%s: the tests run engines as root", name)
	}
	var prog string
	switch name {
	case "podman":
		prog = "podman"
		if _, err := exec.LookPath("runc"); err != nil {
			return nil, fmt.Errorf("podman needs runc here (apt-get install runc): %w", err)
		}
	case "dockerd":
		prog = "dockerd"
	default:
		return nil, fmt.Errorf("unknown engine %q", name)
	}
	path, err := exec.LookPath(prog)
	if err != nil {
		return nil, fmt.Errorf("%s not installed: %w", prog, err)
	}
	lock, err := lockFile(filepath.Join(os.TempDir(), "caddyhub-dockertest-"+name+".lock"))
	if err != nil {
		return nil, err
	}
	if name == "podman" {
		// Rules left by an earlier run that was killed (see cleanup.go).
		if removed := sweepStaleCNI(nil); len(removed) > 0 {
			fmt.Fprintf(os.Stderr, "dockertest: removed %d stale CNI port rules: %s\n", len(removed), strings.Join(removed, ", "))
		}
	}
	// Short paths: a unix socket path must fit in 108 bytes. One fixed directory per engine kind
	// (under the lock): a run that was killed leaves it for the next one to sweep.
	dir := filepath.Join(os.TempDir(), "chd-"+name)
	leftover := false
	if _, err := os.Stat(dir); err == nil {
		leftover = true
		endLeftoverEngine(dir)
	}
	// Container processes an earlier run's engine left behind (shims or conmons still naming dir):
	// alive, they keep their bridge addresses, which the new engine hands out again.
	killLeftovers(dir)
	e, err := launch(name, path, dir, lock)
	if err == nil && leftover {
		// Every container on a test engine is a test's: remove what the killed run left.
		if ids := e.removeAll(2 * time.Minute); len(ids) > 0 {
			fmt.Fprintf(os.Stderr, "dockertest: %s: removed %d containers a killed test run left in %s\n", name, len(ids), dir)
			if name == "podman" {
				_ = sweepStaleCNI(ids)
			}
		}
	}
	if err != nil && leftover {
		// The state a killed run left does not come up clean: start afresh.
		fmt.Fprintf(os.Stderr, "dockertest: %s: starting afresh: the state a killed test run left in %s failed: %v\n", name, dir, err)
		unmountUnder(dir)
		_ = os.RemoveAll(dir)
		e, err = launch(name, path, dir, lock)
	}
	if err != nil {
		lock.Close()
		return nil, err
	}
	return e, nil
}

// endLeftoverEngine kills the engine process a killed run recorded in dir/engine.pid (its process
// group), if it still runs and is that engine (its command line names dir).
func endLeftoverEngine(dir string) {
	b, err := os.ReadFile(filepath.Join(dir, "engine.pid"))
	if err != nil {
		return
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 1 {
		return
	}
	cmdline, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
	if err != nil || !strings.Contains(string(cmdline), dir) {
		return
	}
	fmt.Fprintf(os.Stderr, "dockertest: ending engine pid %d that a killed test run left running\n", pid)
	_ = syscall.Kill(-pid, syscall.SIGKILL)
	_ = syscall.Kill(pid, syscall.SIGKILL)
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if _, err := os.Stat("/proc/" + strconv.Itoa(pid)); err != nil {
			return
		}
	}
}

// killLeftovers SIGKILLs the processes whose command line names dir (containerd shims, conmons,
// a dead run's engine) and everything below them (the containers' processes), so that no container
// of an engine that is gone keeps running with its network address.
func killLeftovers(dir string) {
	if dir == "" {
		return
	}
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return
	}
	parent := map[int]int{}
	var roots []int
	for _, en := range entries {
		pid, err := strconv.Atoi(en.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		if stat, err := os.ReadFile("/proc/" + en.Name() + "/stat"); err == nil {
			if i := strings.LastIndexByte(string(stat), ')'); i > 0 {
				if f := strings.Fields(string(stat)[i+1:]); len(f) > 1 {
					parent[pid], _ = strconv.Atoi(f[1])
				}
			}
		}
		if cmd, err := os.ReadFile("/proc/" + en.Name() + "/cmdline"); err == nil && strings.Contains(string(cmd), dir+"/") {
			roots = append(roots, pid)
		}
	}
	if len(roots) == 0 {
		return
	}
	kill := map[int]bool{}
	for _, r := range roots {
		kill[r] = true
	}
	for changed := true; changed; {
		changed = false
		for pid, pp := range parent {
			if kill[pp] && !kill[pid] {
				kill[pid], changed = true, true
			}
		}
	}
	fmt.Fprintf(os.Stderr, "dockertest: killing %d processes an engine in %s left behind\n", len(kill), dir)
	for pid := range kill {
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
}

// launch starts engine name (program path) with its state in dir.
func launch(name, path, dir string, lock *os.File) (*Engine, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("state dir for %s: %w", name, err)
	}
	e := &Engine{Name: name, Dir: dir, lock: lock, done: make(chan struct{})}
	fail := func(err error) (*Engine, error) {
		e.lock = nil // the caller owns the lock until the engine is up
		e.stop()
		return nil, err
	}
	sock := filepath.Join(dir, name+".sock")
	e.Host = "unix://" + sock
	var cmd *exec.Cmd
	switch name {
	case "podman":
		conf := filepath.Join(dir, "containers.conf")
		if err := os.WriteFile(conf, []byte(ContainersConf), 0o644); err != nil {
			return fail(fmt.Errorf("writing containers.conf: %w", err))
		}
		cmd = exec.Command(path, "--root", filepath.Join(dir, "root"), "--runroot", filepath.Join(dir, "run"),
			"--tmpdir", filepath.Join(dir, "tmp"), "system", "service", "--time=0", e.Host)
		cmd.Env = append(os.Environ(), "CONTAINERS_CONF="+conf)
	case "dockerd":
		cmd = exec.Command(path, "--host", e.Host, "--data-root", filepath.Join(dir, "data"),
			"--exec-root", filepath.Join(dir, "exec"), "--pidfile", filepath.Join(dir, "docker.pid"),
			"--iptables=false", "--storage-driver", "overlay2")
	}
	_ = os.Remove(sock) // a killed run's
	logf, err := os.Create(filepath.Join(dir, name+".log"))
	if err != nil {
		return fail(fmt.Errorf("engine log: %w", err))
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fail(fmt.Errorf("starting %s: %w", name, err))
	}
	logf.Close()
	e.cmd = cmd
	if err := os.WriteFile(filepath.Join(dir, "engine.pid"), []byte(strconv.Itoa(cmd.Process.Pid)+"\n"), 0o644); err != nil {
		return fail(fmt.Errorf("recording the engine's pid: %w", err))
	}
	go func() { _ = cmd.Wait(); close(e.done) }()
	if err := e.waitReady(60 * time.Second); err != nil {
		return fail(fmt.Errorf("%s did not come up: %w\n%s", name, err, e.Log()))
	}
	return e, nil
}

func (e *Engine) waitReady(limit time.Duration) error {
	cli, err := client.NewClientWithOpts(client.WithHost(e.Host), client.WithAPIVersionNegotiation())
	if err != nil {
		return err
	}
	defer cli.Close()
	deadline := time.Now().Add(limit)
	delay := 20 * time.Millisecond
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_, err := cli.Ping(ctx)
		cancel()
		if err == nil {
			return nil
		}
		select {
		case <-e.done:
			return fmt.Errorf("%s exited", e.Name)
		case <-time.After(delay):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("no answer at %s within %s: %w", e.Host, limit, err)
		}
		delay = min(delay*2, 200*time.Millisecond)
	}
}

// stop ends the engine: its containers are removed, then SIGTERM to the engine process (dockerd
// stops its containerd; podman its conmons), SIGKILL to its group after 20 s; Podman's leftover
// port rules are swept.
func (e *Engine) stop() {
	var ids []string
	if e.cmd != nil && e.cmd.Process != nil {
		// Remove the containers first: their network teardown deletes their port rules, and
		// Podman's containers would outlive its API service.
		ids = e.removeAll(90 * time.Second)
		_ = e.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-e.done:
		case <-time.After(20 * time.Second):
			_ = syscall.Kill(-e.cmd.Process.Pid, syscall.SIGKILL)
			<-e.done
		}
	}
	// Container processes the engine did not end (a removal that timed out on a loaded machine).
	killLeftovers(e.Dir)
	if e.Name == "podman" {
		_ = sweepStaleCNI(ids)
	}
	if e.Dir != "" {
		// Mounts of a crashed engine may remain; unmount what is under Dir.
		unmountUnder(e.Dir)
		_ = os.RemoveAll(e.Dir)
	}
	if e.lock != nil {
		e.lock.Close()
	}
}

func unmountUnder(dir string) {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return
	}
	var mounts []string
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) > 4 && strings.HasPrefix(f[4], dir+"/") {
			mounts = append(mounts, f[4])
		}
	}
	for i := len(mounts) - 1; i >= 0; i-- {
		_ = syscall.Unmount(mounts[i], syscall.MNT_DETACH)
	}
}

// lockFile takes an exclusive flock on path, waiting up to 15 minutes.
func lockFile(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("engine lock: %w", err)
	}
	deadline := time.Now().Add(15 * time.Minute)
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return f, nil
		}
		if time.Now().After(deadline) {
			f.Close()
			return nil, fmt.Errorf("engine lock %s still held by another test process: %w", path, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// TestServerImage is the reference ImportTestServer tags its image with.
const TestServerImage = "localhost/caddyhub-testserver:latest"

var (
	buildOnce sync.Once
	buildBin  []byte
	buildErr  error
)

// TestServerBinary builds the spawners' test server as a static binary
// (CGO_ENABLED=0), once per process, and returns its bytes.
func TestServerBinary(t testing.TB) []byte {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "chd-build")
		if err != nil {
			buildErr = err
			return
		}
		defer os.RemoveAll(dir)
		out := filepath.Join(dir, "testserver")
		cmd := exec.Command("go", "build", "-trimpath", "-ldflags=-s -w", "-o", out,
			"github.com/caddyhub/caddyhub/spawners/internal/testserver")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if b, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("building the test server: %w\n%s", err, b)
			return
		}
		buildBin, buildErr = os.ReadFile(out)
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return buildBin
}

// ImportTestServer imports a one-file image holding the test server as
// /testserver (its CMD) under ref, from a tarball (no registry).
func (e *Engine) ImportTestServer(t testing.TB, ref string) {
	t.Helper()
	bin := TestServerBinary(t)
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, d := range []string{"tmp/", "home/", "data/"} {
		if err := tw.WriteHeader(&tar.Header{Name: d, Typeflag: tar.TypeDir, Mode: 0o1777, ModTime: time.Unix(0, 0)}); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.WriteHeader(&tar.Header{Name: "testserver", Mode: 0o755, Size: int64(len(bin)), ModTime: time.Unix(0, 0)}); err != nil {
		t.Fatal(err)
	}
	if _, err := tw.Write(bin); err != nil {
		t.Fatal(err)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := e.ImportTar(ref, &buf, `CMD ["/testserver"]`); err != nil {
		t.Fatal(err)
	}
}

// ImportTar imports a root file system tarball as image ref with the given
// Dockerfile changes (CMD, ENV, ...).
func (e *Engine) ImportTar(ref string, r io.Reader, changes ...string) error {
	cli, err := client.NewClientWithOpts(client.WithHost(e.Host), client.WithAPIVersionNegotiation())
	if err != nil {
		return err
	}
	defer cli.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	rc, err := cli.ImageImport(ctx, image.ImportSource{Source: r, SourceName: "-"}, ref, image.ImportOptions{Changes: changes})
	if err != nil {
		return fmt.Errorf("%s: importing %s: %w", e.Name, ref, err)
	}
	out, _ := io.ReadAll(rc)
	rc.Close()
	if _, err := cli.ImageInspect(ctx, ref); err != nil {
		return fmt.Errorf("%s: image %s missing after import: %w\n%s", e.Name, ref, err, out)
	}
	return nil
}
