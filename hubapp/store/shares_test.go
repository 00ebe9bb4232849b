package store

import (
	"errors"
	"testing"
	"time"
)

func shareNames(list []*Share) []string {
	var out []string
	for _, s := range list {
		out = append(out, s.Owner+"/"+s.Server+"→"+s.recipient())
	}
	return out
}

func TestSharesCascade(t *testing.T) {
	s := open(t, t.TempDir())
	t.Cleanup(func() { _ = s.Close() })
	err := s.Update(func(tx *Txn) error {
		for _, n := range []string{"alice", "bob", "carol"} {
			if err := tx.CreateUser(&User{Name: n}); err != nil {
				return err
			}
		}
		for _, srv := range []*Server{{User: "alice"}, {User: "alice", Name: "lab"}, {User: "bob"}} {
			if err := tx.PutServer(srv); err != nil {
				return err
			}
		}
		if err := tx.SetGroupMembers(&Group{Name: "team"}, []string{"carol"}); err != nil {
			return err
		}
		for _, sh := range []*Share{
			{Owner: "alice", User: "bob", Scopes: []string{"access:servers!server=alice/"}},
			{Owner: "alice", Server: "lab", User: "bob", Scopes: []string{"access:servers!server=alice/lab"}},
			{Owner: "alice", Server: "lab", Group: "team", Scopes: []string{"access:servers!server=alice/lab"}},
			{Owner: "bob", User: "carol", Scopes: []string{"access:servers!server=bob/"}},
		} {
			if err := tx.PutShare(sh); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	check := func(name string, fn func(tx *Txn) ([]*Share, error), want ...string) {
		t.Helper()
		var got []*Share
		if err := s.View(func(tx *Txn) error { var err error; got, err = fn(tx); return err }); err != nil {
			t.Fatal(err)
		}
		g := shareNames(got)
		if len(g) != len(want) {
			t.Fatalf("%s: got %v, want %v", name, g, want)
		}
		for i := range g {
			if g[i] != want[i] {
				t.Fatalf("%s: got %v, want %v", name, g, want)
			}
		}
	}
	check("bob receives", func(tx *Txn) ([]*Share, error) { return tx.SharesWith(UserRecipient("bob"), "", "", false) },
		"alice/→u:bob", "alice/lab→u:bob")
	check("bob receives alice/", func(tx *Txn) ([]*Share, error) { return tx.SharesWith(UserRecipient("bob"), "alice", "", true) },
		"alice/→u:bob")
	check("alice/lab shares", func(tx *Txn) ([]*Share, error) { return tx.OwnerShares("alice", "lab", false) },
		"alice/lab→g:team", "alice/lab→u:bob")
	check("alice all", func(tx *Txn) ([]*Share, error) { return tx.OwnerShares("alice", "", true) },
		"alice/→u:bob", "alice/lab→g:team", "alice/lab→u:bob")

	// Deleting a server drops its shares; deleting a group drops what it received.
	if err := s.Update(func(tx *Txn) error { return tx.DeleteServer("alice", "lab") }); err != nil {
		t.Fatal(err)
	}
	check("bob after server delete", func(tx *Txn) ([]*Share, error) { return tx.SharesWith(UserRecipient("bob"), "", "", false) },
		"alice/→u:bob")
	check("team after server delete", func(tx *Txn) ([]*Share, error) { return tx.SharesWith(GroupRecipient("team"), "", "", false) })

	// Deleting a user drops shares it owns and shares it received.
	if err := s.Update(func(tx *Txn) error { return tx.DeleteUser("bob") }); err != nil {
		t.Fatal(err)
	}
	check("alice after bob deleted", func(tx *Txn) ([]*Share, error) { return tx.OwnerShares("alice", "", true) })
	check("carol after bob deleted", func(tx *Txn) ([]*Share, error) { return tx.SharesWith(UserRecipient("carol"), "", "", false) })
	err = s.View(func(tx *Txn) error {
		_, err := tx.Share("bob", "", UserRecipient("carol"))
		return err
	})
	if !errors.Is(err, ErrNotFound) {
		t.Fatalf("share of a deleted user's server: %v, want ErrNotFound", err)
	}
}

func TestShareCodes(t *testing.T) {
	s := open(t, t.TempDir())
	t.Cleanup(func() { _ = s.Close() })
	now := time.Now()
	c := &ShareCode{Owner: "alice", Server: "", Scopes: []string{"access:servers!server=alice/"}, ExpiresAt: now.Add(time.Hour)}
	c2 := &ShareCode{Owner: "alice", Server: "lab", ExpiresAt: now.Add(time.Hour)}
	err := s.Update(func(tx *Txn) error {
		if err := tx.CreateShareCode(c, "secret-one"); err != nil {
			return err
		}
		return tx.CreateShareCode(c2, "secret-two")
	})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		code   string
		at     time.Time
		wantID string
	}{
		{"valid", "secret-one", now, c.ID},
		{"other server's code", "secret-two", now, c2.ID},
		{"wrong code", "secret-three", now, ""},
		{"expired", "secret-one", now.Add(2 * time.Hour), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got *ShareCode
			err := s.View(func(tx *Txn) error { var err error; got, err = tx.ShareCodeBySecret(tt.code, tt.at); return err })
			if tt.wantID == "" {
				if !errors.Is(err, ErrNotFound) {
					t.Fatalf("got %v, %v; want ErrNotFound", got, err)
				}
				return
			}
			if err != nil || got.ID != tt.wantID {
				t.Fatalf("got %v, %v; want id %s", got, err, tt.wantID)
			}
		})
	}
	err = s.Update(func(tx *Txn) error {
		got, err := tx.ShareCodeBySecret("secret-one", now)
		if err != nil {
			return err
		}
		return tx.ExchangeShareCode(got, now)
	})
	if err != nil {
		t.Fatal(err)
	}
	var list []*ShareCode
	if err := s.View(func(tx *Txn) error { var err error; list, err = tx.ShareCodes("alice", "", false, now); return err }); err != nil {
		t.Fatal(err)
	}
	if len(list) != 1 || list[0].ExchangeCount != 1 || list[0].Hash == "" {
		t.Fatalf("codes of alice/: %+v", list)
	}
	if err := s.Update(func(tx *Txn) error { return tx.DeleteShareCode("alice", "", c.ID) }); err != nil {
		t.Fatal(err)
	}
	if err := s.Update(func(tx *Txn) error { return tx.DeleteShareCode("alice", "", c.ID) }); !errors.Is(err, ErrNotFound) {
		t.Fatalf("second delete: %v, want ErrNotFound", err)
	}
	if err := s.Update(func(tx *Txn) error { return tx.DeleteServerShares("alice", "lab") }); err != nil {
		t.Fatal(err)
	}
	if err := s.View(func(tx *Txn) error { var err error; list, err = tx.ShareCodes("alice", "", true, now); return err }); err != nil || len(list) != 0 {
		t.Fatalf("codes after delete: %v %v", list, err)
	}
}

// TestRenameUserShares: a renamed user keeps the shares of its servers and those granted to it, and
// nothing stays under the old name for a new user of that name to inherit.
func TestRenameUserShares(t *testing.T) {
	s := open(t, t.TempDir())
	t.Cleanup(func() { _ = s.Close() })
	err := s.Update(func(tx *Txn) error {
		for _, n := range []string{"alice", "bob"} {
			if err := tx.CreateUser(&User{Name: n}); err != nil {
				return err
			}
			if err := tx.PutServer(&Server{User: n}); err != nil {
				return err
			}
		}
		if err := tx.PutShare(&Share{Owner: "alice", User: "bob", Scopes: []string{"access:servers!server=alice/"}}); err != nil {
			return err
		}
		if err := tx.PutShare(&Share{Owner: "bob", User: "alice", Scopes: []string{"access:servers!server=bob/"}}); err != nil {
			return err
		}
		return tx.CreateShareCode(&ShareCode{Owner: "alice", ExpiresAt: time.Now().Add(time.Hour)}, "code-1")
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Update(func(tx *Txn) error { return tx.RenameUser("alice", "alicia") }); err != nil {
		t.Fatal(err)
	}
	err = s.View(func(tx *Txn) error {
		owned, err := tx.Share("alicia", "", UserRecipient("bob"))
		if err != nil {
			return err
		}
		if len(owned.Scopes) != 1 || owned.Scopes[0] != "access:servers!server=alicia/" {
			t.Errorf("renamed owner's share scopes: %v", owned.Scopes)
		}
		if got, _ := tx.SharesWith(UserRecipient("alicia"), "", "", false); len(got) != 1 || got[0].Owner != "bob" {
			t.Errorf("shares with the renamed user: %v", shareNames(got))
		}
		if got, _ := tx.SharesWith(UserRecipient("alice"), "", "", false); len(got) != 0 {
			t.Errorf("shares left under the old name: %v", shareNames(got))
		}
		if got, _ := tx.OwnerShares("alice", "", true); len(got) != 0 {
			t.Errorf("owned shares left under the old name: %v", shareNames(got))
		}
		if _, err := tx.ShareCodeBySecret("code-1", time.Now()); !errors.Is(err, ErrNotFound) {
			t.Errorf("share code of the old name: %v, want ErrNotFound", err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestDeleteGroupShares: deleting a group revokes what was shared with it.
func TestDeleteGroupShares(t *testing.T) {
	s := open(t, t.TempDir())
	t.Cleanup(func() { _ = s.Close() })
	err := s.Update(func(tx *Txn) error {
		if err := tx.CreateUser(&User{Name: "alice"}); err != nil {
			return err
		}
		if err := tx.PutGroup(&Group{Name: "team"}); err != nil {
			return err
		}
		return tx.PutShare(&Share{Owner: "alice", Group: "team", Scopes: []string{"access:servers!server=alice/"}})
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Update(func(tx *Txn) error { return tx.DeleteGroup("team") }); err != nil {
		t.Fatal(err)
	}
	err = s.View(func(tx *Txn) error {
		if got, _ := tx.OwnerShares("alice", "", true); len(got) != 0 {
			t.Errorf("shares after the group was deleted: %v", shareNames(got))
		}
		if got, _ := tx.SharesWith(GroupRecipient("team"), "", "", false); len(got) != 0 {
			t.Errorf("index after the group was deleted: %v", shareNames(got))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
