package store

import (
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/dgraph-io/badger/v4"
	"go.uber.org/zap"
)

// ErrNotEmpty is returned by Restore when the target directory holds anything: a restore never
// merges into, or overwrites, an existing database.
var ErrNotEmpty = errors.New("directory is not empty")

// Backup writes a consistent snapshot of the whole database to w, in Badger's backup format (a
// stream of length-prefixed protobuf key lists, what `badger backup` writes and Restore reads). It
// runs alongside writers: the snapshot is the database as of the moment Backup began, every
// transaction committed before it included whole, none committed after it. Expired and deleted
// entries are left out; entries with a lifetime (sessions, OAuth codes) keep their expiry time.
func (s *Store) Backup(w io.Writer) error {
	if _, err := s.db.Backup(w, 0); err != nil {
		return fmt.Errorf("backing up %s: %w", s.dir, err)
	}
	return nil
}

// Restore loads a snapshot written by Backup into dir, which must not exist or be empty
// (ErrNotEmpty otherwise), then opens the result once as Open does, so that a snapshot from a
// newer CaddyHub is refused (ErrNewerSchema) and an older one migrated. Nothing else may use dir
// meanwhile. When loading fails, Restore removes what it wrote, leaving dir empty for another try.
func Restore(dir string, r io.Reader, logger *zap.Logger) (err error) {
	if logger == nil {
		logger = zap.NewNop()
	}
	entries, err := os.ReadDir(dir)
	switch {
	case errors.Is(err, os.ErrNotExist):
	case err != nil:
		return fmt.Errorf("restoring into %s: %w", dir, err)
	case len(entries) > 0:
		return fmt.Errorf("restoring into %s: %w (%d entries, e.g. %s)", dir, ErrNotEmpty, len(entries), entries[0].Name())
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("creating %s: %w", dir, err)
	}
	defer func() {
		if err != nil {
			clearDir(dir)
		}
	}()
	db, err := badger.Open(badgerOptions(dir, logger))
	if err != nil {
		return fmt.Errorf("opening badger in %s: %w", dir, err)
	}
	if err := db.Load(r, 16); err != nil {
		_ = db.Close()
		return fmt.Errorf("loading the backup into %s: %w", dir, err)
	}
	// Every hub database has a schema version key: without one this was no backup of a hub (an
	// empty file loads as an empty database).
	err = db.View(func(txn *badger.Txn) error {
		_, err := txn.Get([]byte(schemaKey))
		return err
	})
	if err != nil {
		_ = db.Close()
		return fmt.Errorf("loading the backup into %s: no CaddyHub database in it (%s: %w)", dir, schemaKey, err)
	}
	if err := db.Close(); err != nil {
		return fmt.Errorf("closing badger in %s: %w", dir, err)
	}
	st, err := Open(dir, logger)
	if err != nil {
		return err
	}
	return st.Close()
}

// clearDir removes every entry of dir (a failed restore's partial database), keeping dir itself.
func clearDir(dir string) {
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		_ = os.RemoveAll(dir + string(os.PathSeparator) + e.Name())
	}
}
