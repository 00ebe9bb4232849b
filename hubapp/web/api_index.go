package web

// An in-memory, sorted index of user names, so that GET /hub/api/users pages, counts and filters
// names without walking Badger's keys (a key-only scan of 100,000 users costs ~200 ms; the index,
// microseconds). It follows the store through Store.WatchUsers, so users created by logins, the
// pages or the token command appear too.

import (
	"slices"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/caddyhub/caddyhub/hubapp/store"
)

// userIndexWait bounds how long a request waits for the index to be built before it falls back to
// the store.
const userIndexWait = 10 * time.Second

type userIndex struct {
	once  sync.Once
	ready chan struct{}
	bad   bool // the watch failed: use the store

	mu       sync.RWMutex
	names    []string // sorted
	building bool
	pending  []userChange // changes seen while the initial scan runs
}

type userChange struct {
	name    string
	deleted bool
}

// startUserIndex starts following the store and building the index (once per generation).
func (h *Hub) startUserIndex() {
	st := h.apiState()
	if st.stopped {
		return
	}
	x := &st.users
	x.once.Do(func() {
		x.mu.Lock()
		x.ready = make(chan struct{})
		x.building = true
		x.mu.Unlock()
		st.bgMu.Lock()
		defer st.bgMu.Unlock()
		if st.stopping {
			x.mu.Lock()
			x.bad = true
			x.mu.Unlock()
			close(x.ready)
			return
		}
		st.wg.Add(1)
		go func() {
			defer st.wg.Done()
			ready := func() {
				st.bgMu.Lock()
				defer st.bgMu.Unlock()
				if st.stopping {
					x.mu.Lock()
					x.bad, x.building = true, false
					x.mu.Unlock()
					close(x.ready)
					return
				}
				st.wg.Add(1)
				go func() { defer st.wg.Done(); h.buildUserIndex(x) }()
			}
			err := h.store.WatchUsers(st.ctx, ready, x.apply)
			if err != nil && st.ctx.Err() == nil {
				h.logger.Error("watching users for the api index", zap.Error(err))
				x.mu.Lock()
				x.bad = true
				x.mu.Unlock()
			}
		}()
	})
}

// userIndex returns the index once it is built, or nil (callers then read the store).
func (h *Hub) userIndex() *userIndex {
	st := h.apiState()
	if st.stopped {
		return nil
	}
	h.startUserIndex()
	x := &st.users
	select {
	case <-x.readyCh():
	case <-time.After(userIndexWait):
		return nil
	}
	x.mu.RLock()
	bad := x.bad
	x.mu.RUnlock()
	if bad {
		return nil
	}
	return x
}

func (h *Hub) buildUserIndex(x *userIndex) {
	var names []string
	err := h.store.View(func(tx *store.Txn) error {
		return tx.UserNames("", func(n string) bool { names = append(names, n); return true })
	})
	x.mu.Lock()
	defer x.mu.Unlock()
	if err != nil {
		h.logger.Error("building the api user index", zap.Error(err))
		x.bad = true
	}
	x.names = names
	x.building = false
	for _, c := range x.pending {
		x.applyLocked(c.name, c.deleted)
	}
	x.pending = nil
	close(x.ready)
}

// apply records a change (idempotent).
func (x *userIndex) apply(name string, deleted bool) {
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.building {
		x.pending = append(x.pending, userChange{name, deleted})
		return
	}
	x.applyLocked(name, deleted)
}

func (x *userIndex) applyLocked(name string, deleted bool) {
	i, found := slices.BinarySearch(x.names, name)
	switch {
	case deleted && found:
		x.names = slices.Delete(x.names, i, i+1)
	case !deleted && !found:
		x.names = slices.Insert(x.names, i, name)
	}
}

// noteUser applies a change the API itself made, so that the next request sees it at once.
func (h *Hub) noteUser(name string, deleted bool) {
	st := h.apiState()
	x := &st.users
	select {
	case <-x.readyCh():
		x.apply(name, deleted)
	default:
	}
}

func (x *userIndex) readyCh() <-chan struct{} {
	x.mu.RLock()
	defer x.mu.RUnlock()
	if x.ready == nil {
		return nil
	}
	return x.ready
}

// page returns names[offset:offset+limit] in order (reversed with desc) and the total.
func (x *userIndex) page(offset, limit int, desc bool) ([]string, int) {
	x.mu.RLock()
	defer x.mu.RUnlock()
	n := len(x.names)
	lo, hi := min(offset, n), min(offset+limit, n)
	out := make([]string, 0, hi-lo)
	if desc {
		for i := n - 1 - lo; i > n-1-hi; i-- {
			out = append(out, x.names[i])
		}
		return out, n
	}
	return append(out, x.names[lo:hi]...), n
}

// filter returns the names keep accepts, in order.
func (x *userIndex) filter(keep func(string) bool) []string {
	x.mu.RLock()
	defer x.mu.RUnlock()
	var out []string
	for _, n := range x.names {
		if keep(n) {
			out = append(out, n)
		}
	}
	return out
}
