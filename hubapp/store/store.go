// Package store is CaddyHub's state: users, servers, tokens, sessions, OAuth clients and codes, groups,
// services and the route table's records, kept in an embedded Badger database under the app's data_dir.
//
// Every value is versioned JSON under a key that names its kind: `user/<name>`,
// `server/<user>/<server>`, `token/<sha256>`, `session/<sha256>`, `route/<key>`, .... Secrets are never
// stored: tokens and session ids are keyed by the SHA-256 of their high-entropy value. Changes that span
// several keys run in one transaction (deleting a user deletes its servers, tokens and sessions).
//
// The store is opened in the app's Start (never in Provision: `caddy validate` provisions while the real
// server holds Badger's directory lock) and shared across config reloads through a caddy.UsagePool.
package store

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/dgraph-io/badger/v4"
	"go.uber.org/zap"
)

// SchemaVersion is the layout of keys and values this code reads and writes. Open migrates an older
// database forward and refuses a newer one.
const SchemaVersion = 1

const schemaKey = "meta/schema"

// Sentinel errors. HTTP code maps them to statuses with errors.Is.
var (
	// ErrNotFound is returned when the requested record does not exist.
	ErrNotFound = errors.New("not found")
	// ErrExists is returned by Create* methods when a record with that key exists already.
	ErrExists = errors.New("already exists")
	// ErrNewerSchema is returned by Open when the database was written by a newer CaddyHub.
	ErrNewerSchema = errors.New("database schema is newer than this build")
	// ErrTooBig is returned by Update when one transaction would change more than the database
	// takes at once (Badger: about 15 % of a memtable); nothing was written.
	ErrTooBig = errors.New("too many changes for one transaction")
)

// Store is an open hub database. It is safe for concurrent use.
type Store struct {
	db     *badger.DB
	dir    string
	logger *zap.Logger
	// diskFull is set while writes are refused for want of space (see ErrDiskFull).
	diskFull atomic.Bool
	// life orders Close after the watches (see lifecycle).
	life lifecycle
}

// Open opens (creating if needed) the database in dir. Badger's defaults are sized for a database
// server (five 64 MiB memtables, a 256 MiB block cache); a hub holds kilobytes per user, so the
// options here keep the resident size small while leaving writes durable (SyncWrites).
func Open(dir string, logger *zap.Logger) (*Store, error) {
	if logger == nil {
		logger = zap.NewNop()
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("creating data_dir %s: %w", dir, err)
	}
	db, err := badger.Open(badgerOptions(dir, logger))
	if err != nil {
		return nil, fmt.Errorf("opening badger in %s: %w", dir, err)
	}
	s := &Store{db: db, dir: dir, logger: logger, life: lifecycle{stop: make(chan struct{})}}
	if err := s.migrate(); err != nil {
		_ = db.Close()
		return nil, err
	}
	return s, nil
}

// badgerOptions are the options every opening of a hub database uses (Open, Restore).
func badgerOptions(dir string, logger *zap.Logger) badger.Options {
	return badger.DefaultOptions(filepath.Clean(dir)).
		WithSyncWrites(true).
		WithLogger(badgerLogger{logger.Sugar()}).
		WithMemTableSize(4 << 20).
		WithNumMemtables(2).
		WithNumLevelZeroTables(2).
		WithNumLevelZeroTablesStall(8).
		WithBlockCacheSize(4 << 20).
		WithIndexCacheSize(2 << 20).
		WithValueLogFileSize(64 << 20).
		WithValueThreshold(4 << 10).
		WithBaseTableSize(2 << 20).
		WithNumCompactors(2).
		WithNumGoroutines(2).
		WithMetricsEnabled(false).
		WithDetectConflicts(true)
}

// Dir returns the database directory.
func (s *Store) Dir() string { return s.dir }

// Close stops every watch (WatchUsers) and waits for it to return, then flushes and closes the
// database. Closing twice is not an error.
func (s *Store) Close() error {
	if !s.beginClose() {
		return nil
	}
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("closing badger in %s: %w", s.dir, err)
	}
	return nil
}

// Destruct implements caddy.Destructor so a Store can live in a caddy.UsagePool.
func (s *Store) Destruct() error { return s.Close() }

// Size returns the on-disk size of the LSM tree and the value log, in bytes.
func (s *Store) Size() (lsm, vlog int64) { return s.db.Size() }

func (s *Store) migrate() error {
	return s.db.Update(func(txn *badger.Txn) error {
		item, err := txn.Get([]byte(schemaKey))
		if errors.Is(err, badger.ErrKeyNotFound) {
			return txn.Set([]byte(schemaKey), []byte(strconv.Itoa(SchemaVersion)))
		}
		if err != nil {
			return fmt.Errorf("reading schema version: %w", err)
		}
		v, err := item.ValueCopy(nil)
		if err != nil {
			return fmt.Errorf("reading schema version: %w", err)
		}
		n, err := strconv.Atoi(string(v))
		if err != nil {
			return fmt.Errorf("schema version %q: %w", v, err)
		}
		switch {
		case n > SchemaVersion:
			return fmt.Errorf("%s: version %d, this build knows %d: %w", s.dir, n, SchemaVersion, ErrNewerSchema)
		case n < SchemaVersion:
			// Future migrations run here, one version at a time, inside this transaction.
			return txn.Set([]byte(schemaKey), []byte(strconv.Itoa(SchemaVersion)))
		}
		return nil
	})
}

// Txn is a read or read-write transaction with typed accessors. Methods of a read-only Txn that
// write return an error.
type Txn struct {
	txn *badger.Txn
}

// View runs fn in a read-only transaction.
func (s *Store) View(fn func(tx *Txn) error) error {
	return s.db.View(func(txn *badger.Txn) error { return fn(&Txn{txn: txn}) })
}

// Update runs fn in a read-write transaction and commits it durably. A commit that conflicts with a
// concurrent transaction is retried a few times, so fn must be safe to run again. While the disk is
// full Update runs nothing and returns ErrDiskFull.
func (s *Store) Update(fn func(tx *Txn) error) error {
	if err := s.checkSpace(); err != nil {
		return err
	}
	var err error
	for range 8 {
		err = s.db.Update(func(txn *badger.Txn) error { return fn(&Txn{txn: txn}) })
		if errors.Is(err, badger.ErrTxnTooBig) {
			return fmt.Errorf("%w: %w", ErrTooBig, err)
		}
		if !errors.Is(err, badger.ErrConflict) {
			return s.classifyWriteErr(err)
		}
	}
	return fmt.Errorf("transaction kept conflicting: %w", err)
}

// getJSON reads key into v; ErrNotFound when absent.
func (tx *Txn) getJSON(key string, v any) error {
	item, err := tx.txn.Get([]byte(key))
	if errors.Is(err, badger.ErrKeyNotFound) {
		return ErrNotFound
	}
	if err != nil {
		return fmt.Errorf("reading %s: %w", key, err)
	}
	return item.Value(func(b []byte) error {
		if err := json.Unmarshal(b, v); err != nil {
			return fmt.Errorf("decoding %s: %w", key, err)
		}
		return nil
	})
}

func (tx *Txn) exists(key string) (bool, error) {
	_, err := tx.txn.Get([]byte(key))
	if errors.Is(err, badger.ErrKeyNotFound) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("reading %s: %w", key, err)
	}
	return true, nil
}

// putJSON writes v under key; ttl > 0 makes Badger expire the entry.
func (tx *Txn) putJSON(key string, v any, ttl time.Duration) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encoding %s: %w", key, err)
	}
	return tx.putRaw(key, b, ttl)
}

func (tx *Txn) putRaw(key string, b []byte, ttl time.Duration) error {
	e := badger.NewEntry([]byte(key), b)
	if ttl > 0 {
		e = e.WithTTL(ttl)
	}
	if err := tx.txn.SetEntry(e); err != nil {
		return fmt.Errorf("writing %s: %w", key, err)
	}
	return nil
}

func (tx *Txn) delete(key string) error {
	if err := tx.txn.Delete([]byte(key)); err != nil {
		return fmt.Errorf("deleting %s: %w", key, err)
	}
	return nil
}

// scan calls fn for every key with prefix, in key order, starting at the first key ≥ prefix+start.
// fn returns false to stop. With values false, val is nil (key-only iteration is much cheaper).
func (tx *Txn) scan(prefix, start string, values bool, fn func(key string, val []byte) (bool, error)) (err error) {
	defer closedIteratorGuard(prefix, &err)
	opts := badger.DefaultIteratorOptions
	opts.Prefix = []byte(prefix)
	opts.PrefetchValues = values
	if values {
		opts.PrefetchSize = 16
	}
	it := tx.txn.NewIterator(opts)
	defer it.Close()
	for it.Seek([]byte(prefix + start)); it.ValidForPrefix([]byte(prefix)); it.Next() {
		item := it.Item()
		var val []byte
		if values {
			var err error
			if val, err = item.ValueCopy(nil); err != nil {
				return fmt.Errorf("reading %s: %w", item.Key(), err)
			}
		}
		more, err := fn(string(item.Key()), val)
		if err != nil {
			return err
		}
		if !more {
			return nil
		}
	}
	return nil
}

// deletePrefix deletes every key under prefix inside the transaction.
func (tx *Txn) deletePrefix(prefix string) error {
	var keys [][]byte
	err := tx.scan(prefix, "", false, func(key string, _ []byte) (bool, error) {
		keys = append(keys, []byte(key))
		return true, nil
	})
	if err != nil {
		return err
	}
	for _, k := range keys {
		if err := tx.txn.Delete(k); err != nil {
			return fmt.Errorf("deleting %s: %w", k, err)
		}
	}
	return nil
}

// badgerLogger adapts zap's sugared logger to Badger's four-method Logger (Badger wants Warningf).
type badgerLogger struct{ s *zap.SugaredLogger }

func (l badgerLogger) Errorf(f string, a ...any)   { l.s.Errorf("badger: "+trimNL(f), a...) }
func (l badgerLogger) Warningf(f string, a ...any) { l.s.Warnf("badger: "+trimNL(f), a...) }
func (l badgerLogger) Infof(f string, a ...any)    { l.s.Debugf("badger: "+trimNL(f), a...) }
func (l badgerLogger) Debugf(f string, a ...any)   { l.s.Debugf("badger: "+trimNL(f), a...) }

func trimNL(s string) string { return string(bytes.TrimRight([]byte(s), "\n")) }

var _ badger.Logger = badgerLogger{}
