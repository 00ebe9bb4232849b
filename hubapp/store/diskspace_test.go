package store

import (
	"errors"
	"fmt"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

// TestDiskFullRefusesWritesOnce: below MinFreeBytes every write is refused with ErrDiskFull and
// writes nothing, reads go on, the condition is logged once (not per write), and writes work
// again by themselves when space returns.
func TestDiskFullRefusesWritesOnce(t *testing.T) {
	var free atomic.Uint64
	free.Store(1 << 30)
	freeBytes = func(string) (uint64, bool) { return free.Load(), true }
	defer func() { freeBytes = statFreeBytes }()

	core, logs := observer.New(zapcore.InfoLevel)
	s, err := Open(t.TempDir(), zap.New(core))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	create := func(name string) error {
		return s.Update(func(tx *Txn) error { return tx.CreateUser(&User{Name: name}) })
	}
	if err := create("before"); err != nil {
		t.Fatal(err)
	}

	free.Store(MinFreeBytes - 1)
	for i := range 5 {
		if err := create(fmt.Sprintf("during%d", i)); !errors.Is(err, ErrDiskFull) {
			t.Fatalf("write on a full disk: %v, want ErrDiskFull", err)
		}
	}
	if err := s.SaveActivity(map[string]time.Time{"/user/before": time.Now()}); !errors.Is(err, ErrDiskFull) {
		t.Fatalf("activity on a full disk: %v, want ErrDiskFull", err)
	}
	if !s.DiskFull() {
		t.Fatal("DiskFull() = false on a full disk")
	}
	var n int
	if err := s.View(func(tx *Txn) error { n, err = tx.CountUsers(); return err }); err != nil || n != 1 {
		t.Fatalf("read on a full disk: %d users, %v; want 1", n, err)
	}
	if got := logs.FilterMessageSnippet("disk full").Len(); got != 1 {
		t.Fatalf("%d 'disk full' log lines for 6 refused writes, want 1", got)
	}

	free.Store(1 << 30)
	if err := create("after"); err != nil {
		t.Fatalf("write after space returned: %v", err)
	}
	if s.DiskFull() || logs.FilterMessageSnippet("disk space is back").Len() != 1 {
		t.Fatalf("recovery not noted: DiskFull=%v, logs %v", s.DiskFull(), logs.All())
	}
	if err := s.View(func(tx *Txn) error { n, err = tx.CountUsers(); return err }); err != nil || n != 2 {
		t.Fatalf("after recovery: %d users, %v; want 2 (before, after)", n, err)
	}
}

func TestClassifyWriteErr(t *testing.T) {
	s := open(t, t.TempDir())
	defer s.Close()
	for _, err := range []error{
		fmt.Errorf("sync: %w", syscall.ENOSPC),
		fmt.Errorf("while writing to manifest err: %v", syscall.ENOSPC), // Badger flattens its causes
	} {
		if got := s.classifyWriteErr(err); !errors.Is(got, ErrDiskFull) {
			t.Errorf("classifyWriteErr(%v) = %v, want ErrDiskFull", err, got)
		}
	}
	if got := s.classifyWriteErr(errors.New("other")); errors.Is(got, ErrDiskFull) {
		t.Errorf("an unrelated error classified as ErrDiskFull")
	}
}
