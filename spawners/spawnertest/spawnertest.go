// Package spawnertest helps tests and benchmarks that need a single-user
// server process without Jupyter: it builds the testserver command
// (spawners/internal/testserver), which listens at JUPYTERHUB_SERVICE_URL
// and answers every path under the service prefix with 200 and a JSON
// report of its pid, uid, cwd and environment. Use the built path as a
// spawner's cmd.
package spawnertest

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
)

// Package is the import path of the test server's main package.
const Package = "github.com/caddyhub/caddyhub/spawners/internal/testserver"

// Build compiles the test server into dir and returns the binary's path.
// It runs `go build` with the current toolchain from inside this module, so
// call it from a test (whose working directory is in the module).
func Build(dir string) (string, error) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		// go test puts the toolchain's root in GOROOT when PATH lacks it.
		goBin = filepath.Join(os.Getenv("GOROOT"), "bin", "go")
		if _, serr := os.Stat(goBin); os.Getenv("GOROOT") == "" || serr != nil {
			return "", fmt.Errorf("building test server: no go command: %w", err)
		}
	}
	out := filepath.Join(dir, "testserver")
	cmd := exec.Command(goBin, "build", "-o", out, Package)
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("building test server: %w\n%s", err, b)
	}
	return out, nil
}

// BuildT compiles the test server into t.TempDir() and returns its path,
// failing the test if it cannot.
func BuildT(t testing.TB) string {
	t.Helper()
	p, err := Build(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// Alive reports whether pid exists and is not a zombie (an exited orphan its
// reaper has not collected yet is gone for a test's purpose).
func Alive(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	i := bytes.LastIndexByte(b, ')')
	return i > 0 && i+2 < len(b) && b[i+2] != 'Z'
}

// Running lists the live processes (Alive) whose executable is exe, e.g.
// the test server Build made: a test checks with it that a spawner left
// nothing behind.
func Running(exe string) ([]int, error) {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil, fmt.Errorf("listing processes: %w", err)
	}
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if p, err := os.Readlink("/proc/" + e.Name() + "/exe"); err == nil && p == exe && Alive(pid) {
			pids = append(pids, pid)
		}
	}
	return pids, nil
}
