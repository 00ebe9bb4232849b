package store

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestBackupUnderWritesRestores: a backup taken while writers commit holds, after Restore into a
// new directory, every record committed before it began, whole transactions only, and tokens
// still resolve by their secret.
func TestBackupUnderWritesRestores(t *testing.T) {
	s := open(t, t.TempDir())
	defer s.Close()
	secret := NewToken()
	err := s.Update(func(tx *Txn) error {
		if err := tx.CreateUser(&User{Name: "alice"}); err != nil {
			return err
		}
		if err := tx.PutServer(&Server{User: "alice", Name: "", Started: time.Now()}); err != nil {
			return err
		}
		return tx.CreateToken(&Token{User: "alice", Kind: "api_token", Scopes: []string{"inherit"}}, secret)
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.SaveRoute(Route{Key: "/user/alice", Target: "http://127.0.0.1:9"}); err != nil {
		t.Fatal(err)
	}

	// Writers create users in pairs (one transaction each) while the backup runs.
	var committed atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				err := s.Update(func(tx *Txn) error {
					for _, side := range []string{"a", "b"} {
						if err := tx.CreateUser(&User{Name: fmt.Sprintf("w%d-%d-%s", w, i, side)}); err != nil {
							return err
						}
					}
					return nil
				})
				if err != nil {
					t.Error(err)
					return
				}
				committed.Add(1)
			}
		}()
	}
	for committed.Load() < 20 {
		time.Sleep(time.Millisecond) // let the writers get going; not synchronisation of results
	}
	before := committed.Load()
	var buf bytes.Buffer
	if err := s.Backup(&buf); err != nil {
		t.Fatal(err)
	}
	close(stop)
	wg.Wait()

	dir := filepath.Join(t.TempDir(), "restored")
	if err := Restore(dir, bytes.NewReader(buf.Bytes()), nil); err != nil {
		t.Fatal(err)
	}
	r := open(t, dir)
	defer r.Close()
	var users []*User
	err = r.View(func(tx *Txn) error {
		var err error
		users, err = tx.Users(0, 0)
		if err != nil {
			return err
		}
		if _, err := tx.Server("alice", ""); err != nil {
			return fmt.Errorf("alice's server: %w", err)
		}
		if tok, err := tx.TokenBySecret(secret, time.Now()); err != nil || tok.User != "alice" {
			return fmt.Errorf("alice's token: %v %v", tok, err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, u := range users {
		names[u.Name] = true
	}
	pairs := 0
	for w := range 2 {
		for i := 0; ; i++ {
			a, b := names[fmt.Sprintf("w%d-%d-a", w, i)], names[fmt.Sprintf("w%d-%d-b", w, i)]
			if a != b {
				t.Fatalf("half a transaction in the backup: w%d-%d a=%v b=%v", w, i, a, b)
			}
			if !a {
				break
			}
			pairs++
		}
	}
	if int64(pairs) < before {
		t.Fatalf("backup holds %d committed pairs, %d were committed before it began", pairs, before)
	}
	routes, err := r.Routes()
	if err != nil || len(routes) != 1 || routes[0].Target != "http://127.0.0.1:9" {
		t.Fatalf("routes after restore: %v %v", routes, err)
	}
}

func TestRestoreRefuses(t *testing.T) {
	s := open(t, t.TempDir())
	var buf bytes.Buffer
	if err := s.Backup(&buf); err != nil {
		t.Fatal(err)
	}
	s.Close()

	full := t.TempDir()
	if err := os.WriteFile(filepath.Join(full, "x"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := Restore(full, bytes.NewReader(buf.Bytes()), nil); !errors.Is(err, ErrNotEmpty) {
		t.Fatalf("restore into a non-empty dir: %v, want ErrNotEmpty", err)
	}

	// An empty file and a truncated one: refused, and the directory is left empty for a retry.
	dir := t.TempDir()
	for _, in := range [][]byte{nil, buf.Bytes()[:len(buf.Bytes())-3]} {
		if err := Restore(dir, bytes.NewReader(in), nil); err == nil {
			t.Fatalf("restore of %d bytes succeeded", len(in))
		}
		if entries, _ := os.ReadDir(dir); len(entries) != 0 {
			t.Fatalf("failed restore left %d entries", len(entries))
		}
	}
	if err := Restore(dir, bytes.NewReader(buf.Bytes()), nil); err != nil {
		t.Fatalf("restore after failed ones: %v", err)
	}
}
