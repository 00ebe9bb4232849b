package store

import (
	"context"
	"errors"
	"runtime"
	"testing"
)

// TestCloseStopsWatchesFirst: Close waits for a running watch callback and ends the watch before
// it closes Badger, so the callback's read of the store succeeds; a watch started after Close
// returns ErrClosed; and a read that races Close anyway gets ErrClosed instead of Badger's panic.
func TestCloseStopsWatchesFirst(t *testing.T) {
	s, err := Open(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Update(func(tx *Txn) error { return tx.CreateUser(&User{Name: "alice"}) }); err != nil {
		t.Fatal(err)
	}
	entered, release := make(chan struct{}), make(chan struct{})
	readErr := make(chan error, 1)
	watchDone := make(chan error, 1)
	go func() {
		watchDone <- s.WatchUsers(context.Background(), func() {
			close(entered)
			<-release
			// Close has begun by now: the read must still find the database open.
			readErr <- s.View(func(tx *Txn) error {
				users, err := tx.Users(0, 0)
				if err == nil && len(users) != 1 {
					err = errors.New("alice missing")
				}
				return err
			})
		}, func(string, bool) {})
	}()
	<-entered
	closed := make(chan error, 1)
	go func() { closed <- s.Close() }()
	// Wait until Close has marked the store closing (it then waits for the watch).
	for {
		s.life.mu.Lock()
		c := s.life.closed
		s.life.mu.Unlock()
		if c {
			break
		}
		select {
		case err := <-closed:
			t.Fatalf("Close returned (%v) while a watch callback was running", err)
		default:
		}
		runtime.Gosched()
	}
	select {
	case err := <-closed:
		t.Fatalf("Close returned (%v) while a watch callback was running", err)
	default:
	}
	close(release)
	if err := <-readErr; err != nil {
		t.Fatalf("the watch callback's read during Close: %v", err)
	}
	if err := <-watchDone; err == nil || !errors.Is(err, context.Canceled) {
		t.Fatalf("WatchUsers returned %v, want the cancellation", err)
	}
	if err := <-closed; err != nil {
		t.Fatal(err)
	}
	if err := s.WatchUsers(context.Background(), func() {}, func(string, bool) {}); !errors.Is(err, ErrClosed) {
		t.Fatalf("WatchUsers after Close: %v, want ErrClosed", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}

	// A read racing Close: Badger closes between the transaction's start and the scan.
	s2, err := Open(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	err = s2.View(func(tx *Txn) error {
		if err := s2.db.Close(); err != nil {
			return err
		}
		_, err := tx.Users(0, 0)
		return err
	})
	if !errors.Is(err, ErrClosed) {
		t.Fatalf("a scan of a closed database: %v, want ErrClosed", err)
	}
}
