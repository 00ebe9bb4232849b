//go:build unix

package localproc

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
)

// maxLogSize is the size above which a start moves the old log aside to
// <log>.1 (replacing an older one) instead of appending to it. A running
// server's log is not rotated: it holds the file open.
const maxLogSize = 16 << 20

// openLog opens (creating) a log file for appending, hub-owned and 0600 in
// hub-owned 0700 directories. It refuses to follow a symlink at the file, so
// nobody can point the hub's writes elsewhere. It returns the file and its
// size before this start, where this start's output begins.
func openLog(path string) (*os.File, int64, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, 0, fmt.Errorf("creating log directory: %w", err)
	}
	if fi, err := os.Lstat(path); err == nil && fi.Mode().IsRegular() && fi.Size() > maxLogSize {
		if err := os.Rename(path, path+".1"); err != nil {
			return nil, 0, fmt.Errorf("moving aside the old server log: %w", err)
		}
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND|syscall.O_NOFOLLOW, 0o600)
	if err != nil {
		return nil, 0, fmt.Errorf("opening server log: %w", err)
	}
	fi, err := f.Stat()
	if err != nil || !fi.Mode().IsRegular() {
		f.Close()
		return nil, 0, fmt.Errorf("server log %s is not a regular file", path)
	}
	return f, fi.Size(), nil
}

// tailLines returns the last n lines written to path after offset, at most
// 8 KiB of them.
func tailLines(path string, offset int64, n int) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	const maxTail = 8 << 10
	fi, err := f.Stat()
	if err != nil {
		return ""
	}
	if fi.Size()-offset > maxTail {
		offset = fi.Size() - maxTail
	}
	if _, err := f.Seek(offset, io.SeekStart); err != nil {
		return ""
	}
	b, _ := io.ReadAll(io.LimitReader(f, maxTail))
	b = bytes.TrimRight(b, "\n")
	lines := strings.Split(string(b), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.TrimSpace(strings.Join(lines, "\n"))
}

// lookPath finds the executable for name the way execvp would with the
// server's PATH (not the hub's). A name with a slash is used as given,
// made absolute against the hub's working directory.
func lookPath(name, path string) (string, error) {
	if strings.Contains(name, "/") {
		abs, err := filepath.Abs(name)
		if err != nil {
			return "", err
		}
		if err := checkExecutable(abs); err != nil {
			return "", err
		}
		return abs, nil
	}
	if path == "" {
		path = "/usr/local/bin:/usr/bin:/bin"
	}
	var firstErr error
	for _, dir := range filepath.SplitList(path) {
		if dir == "" || !filepath.IsAbs(dir) {
			continue // an empty or relative PATH entry would depend on the working directory
		}
		p := filepath.Join(dir, name)
		err := checkExecutable(p)
		if err == nil {
			return p, nil
		}
		if firstErr == nil && !errors.Is(err, os.ErrNotExist) {
			firstErr = err
		}
	}
	if firstErr != nil {
		return "", firstErr
	}
	return "", os.ErrNotExist
}

func checkExecutable(p string) error {
	fi, err := os.Stat(p)
	if err != nil {
		return err
	}
	if fi.IsDir() {
		return fmt.Errorf("%s is a directory", p)
	}
	if fi.Mode().Perm()&0o111 == 0 {
		return fmt.Errorf("%s is not executable: %w", p, os.ErrPermission)
	}
	return nil
}
