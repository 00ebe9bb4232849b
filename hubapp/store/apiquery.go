package store

// Queries and changes the REST API needs beyond the record accessors: key-only iteration of user
// names (listings with filters), counts, and renaming a user.

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/dgraph-io/badger/v4/pb"
)

// UserNames calls fn with every user name in name order, starting at the first name ≥ start, until
// fn returns false. It reads keys only, so it is cheap even with many users.
func (tx *Txn) UserNames(start string, fn func(name string) bool) error {
	return tx.scan(userPrefix, start, false, func(key string, _ []byte) (bool, error) {
		return fn(key[len(userPrefix):]), nil
	})
}

// CountGroups returns the number of groups.
func (tx *Txn) CountGroups() (int, error) {
	n := 0
	err := tx.scan(groupPrefix, "", false, func(string, []byte) (bool, error) { n++; return true, nil })
	return n, err
}

// CountActiveServers returns the number of servers in the index of active servers.
func (tx *Txn) CountActiveServers() (int, error) {
	n := 0
	err := tx.scan(runningPrefix, "", false, func(string, []byte) (bool, error) { n++; return true, nil })
	return n, err
}

// ErrActive is returned by RenameUser when the user has a server that is running or pending.
var ErrActive = errors.New("user has active servers")

// RenameUser gives a user a new name, keeping its servers (all stopped), tokens, sessions and group
// memberships. ErrExists if newName is taken, ErrNotFound if oldName is unknown, ErrActive if one of
// the user's servers is active (its route and process carry the old name).
func (tx *Txn) RenameUser(oldName, newName string) error {
	u, err := tx.User(oldName)
	if err != nil {
		return err
	}
	if ok, err := tx.exists(userPrefix + newName); err != nil {
		return err
	} else if ok {
		return fmt.Errorf("user %s: %w", newName, ErrExists)
	}
	servers, err := tx.Servers(oldName)
	if err != nil {
		return err
	}
	for _, s := range servers {
		if s.Active() {
			return fmt.Errorf("renaming %s: %w", oldName, ErrActive)
		}
	}
	if err := tx.RenameUserShares(oldName, newName); err != nil { // shares.go
		return err
	}
	u.Name = newName
	if err := tx.PutUser(u); err != nil {
		return err
	}
	for _, s := range servers {
		if err := tx.DeleteServer(oldName, s.Name); err != nil {
			return err
		}
		s.User = newName
		if err := tx.PutServer(s); err != nil {
			return err
		}
	}
	for _, g := range u.Groups {
		grp, err := tx.Group(g)
		if errors.Is(err, ErrNotFound) {
			continue
		} else if err != nil {
			return err
		}
		for i, m := range grp.Users {
			if m == oldName {
				grp.Users[i] = newName
			}
		}
		if err := tx.PutGroup(grp); err != nil {
			return err
		}
	}
	toks, err := tx.OwnerTokens(OwnerUser(oldName), time.Time{})
	if err != nil {
		return err
	}
	for _, t := range toks {
		if err := tx.DeleteToken(t); err != nil {
			return err
		}
		t.User = newName
		if err := tx.putToken(t); err != nil {
			return err
		}
	}
	var hashes []string
	err = tx.scan(userSessionPrefix+oldName+"/", "", false, func(key string, _ []byte) (bool, error) {
		hashes = append(hashes, key[strings.LastIndexByte(key, '/')+1:])
		return true, nil
	})
	if err != nil {
		return err
	}
	for _, h := range hashes {
		var s Session
		if err := tx.getJSON(sessionPrefix+h, &s); errors.Is(err, ErrNotFound) {
			continue
		} else if err != nil {
			return err
		}
		if err := tx.delete(userSessionPrefix + oldName + "/" + h); err != nil {
			return err
		}
		s.User = newName
		if !s.Expires.After(time.Now()) {
			continue
		}
		if err := tx.PutSession(&s); err != nil {
			return err
		}
	}
	return tx.delete(userPrefix + oldName)
}

// WatchUsers reports every later creation, change and deletion of a user record to fn (name,
// deleted), in commit order, until ctx ends. ready runs once the subscription is live: a scan
// started after ready plus the reported changes give a consistent view (apply changes
// idempotently). WatchUsers blocks; it returns ctx's error or a subscription error.
//
// Close ends every watch and waits until it has returned (a running ready or fn included) before
// it closes the database; a watch started after Close began returns ErrClosed.
func (s *Store) WatchUsers(ctx context.Context, ready func(), fn func(name string, deleted bool)) error {
	ctx, done, err := s.startWatch(ctx)
	if err != nil {
		return err
	}
	defer done()
	probe := []byte("meta/userwatch/" + NewSecret(8))
	seen := make(chan struct{})
	var once bool
	probeDone := make(chan struct{})
	defer func() { <-probeDone }() // before done: the probe and ready are part of the watch
	go func() {
		defer close(probeDone)
		// The subscription is live once it sees a write made after it started.
		for {
			err := s.checkSpace()
			if err == nil {
				err = s.db.Update(func(txn *badger.Txn) error {
					return txn.SetEntry(badger.NewEntry(probe, []byte{1}).WithTTL(time.Minute))
				})
			}
			if err != nil && !errors.Is(s.classifyWriteErr(err), ErrDiskFull) {
				return
			}
			select {
			case <-seen:
				ready()
				return
			case <-ctx.Done():
				return
			case <-time.After(50 * time.Millisecond):
			}
		}
	}()
	return s.db.Subscribe(ctx, func(kvs *badger.KVList) error {
		for _, kv := range kvs.Kv {
			key := string(kv.Key)
			if strings.HasPrefix(key, userPrefix) {
				fn(key[len(userPrefix):], len(kv.Value) == 0)
			} else if !once {
				once = true
				close(seen)
			}
		}
		return nil
	}, []pb.Match{{Prefix: []byte(userPrefix)}, {Prefix: probe}})
}

// ActiveServerNames calls fn with the user and server name of every entry in the index of active
// servers (ready or pending), reading keys only.
func (tx *Txn) ActiveServerNames(fn func(user, server string)) error {
	return tx.scan(runningPrefix, "", false, func(key string, _ []byte) (bool, error) {
		user, server, _ := strings.Cut(key[len(runningPrefix):], "/")
		fn(user, server)
		return true, nil
	})
}
