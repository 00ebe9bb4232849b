// Package spawnertest helps tests and benchmarks that need a single-user
// server process without Jupyter: it builds the testserver command
// (spawners/internal/testserver), which listens at JUPYTERHUB_SERVICE_URL
// and answers every path under the service prefix with 200 and a JSON
// report of its pid, uid, cwd and environment. Use the built path as a
// spawner's cmd.
package spawnertest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
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
