package hubapp

// `caddy jupyterhub backup <file>` and `caddy jupyterhub restore <file>`. A backup is Badger's own
// snapshot of the store (store.Backup): while a hub runs it streams from the running Caddy's admin
// API (GET /jupyterhub/backup), which holds the database open; with no Caddy answering, the command
// opens data_dir itself. A restore only ever fills an empty data_dir, with the hub stopped.

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	caddycmd "github.com/caddyserver/caddy/v2/cmd"
	"go.uber.org/zap"

	"github.com/caddyhub/caddyhub/hubapp/store"
)

// backupStatusTrailer is the HTTP trailer of GET /jupyterhub/backup: "ok" once the snapshot was
// written whole, else the error. A stream cut short can end on a record boundary and still load,
// so the command keeps a file only when the trailer says ok.
const backupStatusTrailer = "Jupyterhub-Backup-Status"

func cmdBackup(fl caddycmd.Flags, file string) (int, error) {
	cfg, addr, err := commandTarget(fl)
	if err != nil {
		return caddy.ExitCodeFailedStartup, err
	}
	resp, err := caddycmd.AdminAPIRequest(addr, http.MethodGet, "/jupyterhub/backup", nil, nil)
	if err != nil && strings.Contains(err.Error(), "responded with error") {
		return caddy.ExitCodeFailedStartup, fmt.Errorf("the running Caddy at %s refused: %w", addr, err)
	}
	if err == nil {
		defer resp.Body.Close()
		n, err := writeFileAtomic(file, func(w io.Writer) error {
			if _, err := io.Copy(w, resp.Body); err != nil {
				return fmt.Errorf("receiving the backup from %s: %w", addr, err)
			}
			if st := resp.Trailer.Get(backupStatusTrailer); st != "ok" {
				return fmt.Errorf("the running Caddy at %s could not finish the backup: %q", addr, st)
			}
			return nil
		})
		if err != nil {
			return caddy.ExitCodeFailedStartup, err
		}
		fmt.Printf("backup of the running hub written to %s (%d bytes)\n", file, n)
		return caddy.ExitCodeSuccess, nil
	}
	// No Caddy answers: open the database directly.
	dir := commandDataDir(fl, cfg)
	st, err := store.Open(dir, zap.NewNop())
	if err != nil {
		return caddy.ExitCodeFailedStartup, fmt.Errorf("no running Caddy at %s, and opening %s failed: %w", addr, dir, err)
	}
	defer st.Close()
	n, err := writeFileAtomic(file, st.Backup)
	if err != nil {
		return caddy.ExitCodeFailedStartup, err
	}
	fmt.Printf("backup of %s written to %s (%d bytes)\n", dir, file, n)
	return caddy.ExitCodeSuccess, nil
}

func cmdRestore(fl caddycmd.Flags, file string) (int, error) {
	cfg, _, err := commandTarget(fl)
	if err != nil {
		return caddy.ExitCodeFailedStartup, err
	}
	dir := commandDataDir(fl, cfg)
	f, err := os.Open(file)
	if err != nil {
		return caddy.ExitCodeFailedStartup, fmt.Errorf("opening the backup: %w", err)
	}
	defer f.Close()
	err = store.Restore(dir, bufio.NewReaderSize(f, 1<<20), zap.NewNop())
	if errors.Is(err, store.ErrNotEmpty) {
		return caddy.ExitCodeFailedStartup, fmt.Errorf("%w\nrestore only fills an empty or new data_dir, with the hub stopped: move %s aside first", err, dir)
	}
	if err != nil {
		return caddy.ExitCodeFailedStartup, err
	}
	users := -1
	if st, err := store.Open(dir, zap.NewNop()); err == nil {
		_ = st.View(func(tx *store.Txn) error {
			users, err = tx.CountUsers()
			return err
		})
		_ = st.Close()
	}
	fmt.Printf("restored %s into %s (%d users); start the hub with the cookie secret and crypt_key of the backed-up hub\n", file, dir, users)
	return caddy.ExitCodeSuccess, nil
}

// writeFileAtomic writes path through fn into a temporary file beside it (mode 0600: the snapshot
// holds user data), syncs it and renames it into place, so that path is either the whole output
// or untouched. It returns the number of bytes written.
func writeFileAtomic(path string, fn func(w io.Writer) error) (int64, error) {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return 0, fmt.Errorf("creating the backup file: %w", err)
	}
	done := false
	defer func() {
		if !done {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	cw := &countingWriter{w: bufio.NewWriterSize(tmp, 1<<20)}
	if err := fn(cw); err != nil {
		return 0, err
	}
	if err := cw.w.(*bufio.Writer).Flush(); err != nil {
		return 0, fmt.Errorf("writing %s: %w", tmp.Name(), err)
	}
	if err := tmp.Sync(); err != nil {
		return 0, fmt.Errorf("syncing %s: %w", tmp.Name(), err)
	}
	if err := tmp.Close(); err != nil {
		return 0, fmt.Errorf("closing %s: %w", tmp.Name(), err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return 0, fmt.Errorf("renaming the backup into place: %w", err)
	}
	done = true
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
	return cw.n, nil
}

type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// serveAdminBackup streams a snapshot of the running hub's store: GET /jupyterhub/backup.
func serveAdminBackup(w http.ResponseWriter, r *http.Request) error {
	if r.Method != http.MethodGet {
		return caddy.APIError{HTTPStatus: http.StatusMethodNotAllowed, Err: fmt.Errorf("method not allowed")}
	}
	app, err := activeApp()
	if err != nil {
		return err
	}
	w.Header().Set("Trailer", backupStatusTrailer)
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	began := time.Now()
	cw := &countingWriter{w: w}
	// Once the body has begun, an error can only travel in the trailer: returning it would make
	// Caddy write a second status line.
	if err := app.shared.store.Backup(cw); err != nil {
		w.Header().Set(backupStatusTrailer, strings.Join(strings.Fields(err.Error()), " "))
		if app.logger != nil {
			app.logger.Error("backup failed", zap.Int64("bytes", cw.n), zap.Error(err))
		}
		return nil
	}
	w.Header().Set(backupStatusTrailer, "ok")
	if app.logger != nil {
		app.logger.Info("backup written through the admin API", zap.Int64("bytes", cw.n), zap.Duration("took", time.Since(began)))
	}
	return nil
}
