package store

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/dgraph-io/badger/v4"
)

// ErrClosed is returned by watches started, and reads attempted, after the store began closing.
var ErrClosed = errors.New("store closed")

// lifecycle orders a store's shutdown: Close first stops every watch (WatchUsers) and waits until
// each has returned, callbacks included, and only then closes Badger, so that no watch reads a
// closed database (Badger panics when an iterator is opened on a closed database).
type lifecycle struct {
	mu      sync.Mutex
	closed  bool
	stop    chan struct{} // closed when Close begins
	watches sync.WaitGroup
}

// startWatch registers a watch: its context ends when ctx does or when Close begins; done must be
// called when the watch has returned (Close waits for it).
func (s *Store) startWatch(ctx context.Context) (wctx context.Context, done func(), err error) {
	s.life.mu.Lock()
	defer s.life.mu.Unlock()
	if s.life.closed {
		return nil, nil, ErrClosed
	}
	s.life.watches.Add(1)
	wctx, cancel := context.WithCancel(ctx)
	stop := s.life.stop
	go func() {
		select {
		case <-stop:
			cancel()
		case <-wctx.Done():
		}
	}()
	return wctx, func() { cancel(); s.life.watches.Done() }, nil
}

// beginClose marks the store closing, stops the watches and waits for them. It reports whether
// this call was the first.
func (s *Store) beginClose() bool {
	s.life.mu.Lock()
	first := !s.life.closed
	if first {
		s.life.closed = true
		close(s.life.stop)
	}
	s.life.mu.Unlock()
	s.life.watches.Wait()
	return first
}

// closedIteratorGuard turns Badger's panic on an iterator opened over a closed database into
// ErrClosed in *err (a read racing Close, which only watches are ordered against); any other panic
// goes on. Call it deferred.
func closedIteratorGuard(what string, err *error) {
	if v := recover(); v != nil {
		if e, ok := v.(error); ok && errors.Is(e, badger.ErrDBClosed) {
			*err = fmt.Errorf("reading %s: %w", what, ErrClosed)
			return
		}
		panic(v)
	}
}
