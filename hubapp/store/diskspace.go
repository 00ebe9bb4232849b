package store

import (
	"errors"
	"fmt"
	"strings"
	"syscall"

	"go.uber.org/zap"
)

// ErrDiskFull is returned by every write (Update, SaveActivity, …) while the filesystem of the
// database holds less than MinFreeBytes, or when a write failed for want of space (ENOSPC).
// Nothing of the refused change was written; earlier commits are intact. Writes work again, with
// nothing to do, as soon as space is freed. Reads are unaffected.
var ErrDiskFull = errors.New("disk full")

// MinFreeBytes is the free space below which the store refuses writes. Badger writes its log and
// tables through memory-mapped files that it extends as it goes: a write into such a file on a
// full filesystem is not an error but a SIGBUS that kills the process. Refusing writes while the
// room Badger may still claim (the rest of a memtable's log, the next one, a table flush and a
// compaction, all at this package's sizes) is not free keeps the hub up and its database whole.
const MinFreeBytes = 32 << 20

// freeBytes returns the free space of a directory's filesystem, false when it cannot tell (a
// variable so that tests can simulate a full disk).
var freeBytes = statFreeBytes

// checkSpace returns ErrDiskFull (wrapped) when the database's filesystem has less than
// MinFreeBytes free, and notes the change of state (one log line per change, not per write).
func (s *Store) checkSpace() error {
	free, ok := freeBytes(s.dir)
	if !ok {
		return nil // cannot tell: let Badger try, and classify its error
	}
	if free < MinFreeBytes {
		s.noteFull(free)
		return fmt.Errorf("%s: %d bytes free, writes need %d: %w", s.dir, free, MinFreeBytes, ErrDiskFull)
	}
	if s.diskFull.CompareAndSwap(true, false) {
		s.logger.Info("disk space is back: the hub saves changes again", zap.String("data_dir", s.dir), zap.Uint64("free_bytes", free))
	}
	return nil
}

// classifyWriteErr turns a write error caused by a full filesystem into ErrDiskFull. Badger
// flattens the errors it wraps into text, so the system's message is matched as well.
func (s *Store) classifyWriteErr(err error) error {
	if err == nil || errors.Is(err, ErrDiskFull) {
		return err
	}
	if errors.Is(err, syscall.ENOSPC) || strings.Contains(err.Error(), syscall.ENOSPC.Error()) {
		s.noteFull(0)
		return fmt.Errorf("%w: %w", ErrDiskFull, err)
	}
	return err
}

// noteFull logs, once per episode, that writes are refused.
func (s *Store) noteFull(free uint64) {
	if s.diskFull.CompareAndSwap(false, true) {
		s.logger.Error("disk full: the hub refuses changes (API writes answer 503, logins and spawns fail) until space is freed; reads and proxying go on",
			zap.String("data_dir", s.dir), zap.Uint64("free_bytes", free), zap.Uint64("needed_bytes", MinFreeBytes))
	}
}

// DiskFull reports whether the last write was refused for want of space.
func (s *Store) DiskFull() bool { return s.diskFull.Load() }
