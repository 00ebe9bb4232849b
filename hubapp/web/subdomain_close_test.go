package web

import (
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/caddyhub/caddyhub/hubapp/store"
)

// TestUserLabelsWatchStopsBeforeStoreCloses: the user-label watch started by a lookup (as a TLS
// handshake under subdomain_host starts it) is stopped by the store's Close before Badger closes,
// wherever the watch is (subscribing, loading the label set, following changes): closing right
// after a lookup never lets the watch read a closed database (Badger panics with "DB Closed"),
// and the watch has ended when Close returns.
func TestUserLabelsWatchStopsBeforeStoreCloses(t *testing.T) {
	for i := range 20 {
		dir := filepath.Join(t.TempDir(), "db"+strconv.Itoa(i))
		st, err := store.Open(dir, nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := st.Update(func(tx *store.Txn) error { return tx.CreateUser(&store.User{Name: "alice"}) }); err != nil {
			t.Fatal(err)
		}
		l := &userLabels{byLabel: map[string]string{}}
		if user, ok, err := l.lookup(st, "alice", time.Now()); err != nil || !ok || user != "alice" {
			t.Fatalf("lookup: %q %v %v", user, ok, err)
		}
		if i%2 == 1 {
			// Let the watch go live and load the set before closing, half the time.
			for !l.isLoaded() {
				if _, _, err := l.lookup(st, "nosuch", time.Now()); err != nil {
					t.Fatal(err)
				}
			}
		}
		if err := st.Close(); err != nil {
			t.Fatal(err)
		}
		if _, _, err := l.lookup(st, "bob", time.Now().Add(time.Hour)); err == nil {
			t.Fatal("a lookup on a closed store succeeded")
		}
	}
}

func (l *userLabels) isLoaded() bool {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.loaded
}
