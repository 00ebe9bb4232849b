// Package install puts the binary under test in place the way a deployment
// does before a benchmark runs it.
//
// How a file came into the page cache decides how its mappings count as
// resident memory: the Go linker writes its output through a shared memory
// mapping, and on kernels with large page-cache folios (6.18 with ext4 here)
// that leaves a freshly built executable in folios of up to 2 MiB, each
// mapped whole as soon as one byte of it is touched. A copy written by
// ordinary writes or copy_file_range (cp, install, a package manager) is
// held in folios no larger than those writes. Benchmarks therefore run a
// copy, as a deployment would, and say so.
package install

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// Copy copies the executable src to dir/<name of src> and returns the new path.
func Copy(src, dir string) (string, error) {
	in, err := os.Open(src)
	if err != nil {
		return "", fmt.Errorf("installing %s: %w", src, err)
	}
	defer in.Close()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("installing %s: %w", src, err)
	}
	dst := filepath.Join(dir, filepath.Base(src))
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o755)
	if err != nil {
		return "", fmt.Errorf("installing %s: %w", src, err)
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return "", fmt.Errorf("installing %s: %w", src, err)
	}
	if err := out.Close(); err != nil {
		return "", fmt.Errorf("installing %s: %w", src, err)
	}
	return dst, nil
}
