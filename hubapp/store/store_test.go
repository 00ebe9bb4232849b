package store

import (
	"encoding/json"
	"errors"
	"testing"
	"time"
)

func open(t *testing.T, dir string) *Store {
	t.Helper()
	s, err := Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestRoutesSurviveReopen(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir)
	act := time.Date(2026, 1, 2, 3, 4, 5, 6e6, time.UTC)
	if err := s.SaveRoute(Route{Key: "/user/alice", Target: "http://127.0.0.1:1", Data: map[string]any{"user": "alice"}, LastActivity: act}); err != nil {
		t.Fatal(err)
	}
	if err := s.SaveRoute(Route{Key: "/user/bob", Target: "http://127.0.0.1:2", Data: map[string]any{"n": json.Number("12345678901234567890")}}); err != nil {
		t.Fatal(err)
	}
	later := act.Add(time.Hour)
	if err := s.SaveActivity(map[string]time.Time{"/user/bob": later}); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteRoute("/user/alice"); err != nil {
		t.Fatal(err)
	}
	if err := s.SaveRoute(Route{Key: "/user/alice", Target: "http://127.0.0.1:3", LastActivity: act}); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = open(t, dir)
	defer s.Close()
	got, err := s.Routes()
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].Key != "/user/alice" || got[0].Target != "http://127.0.0.1:3" || !got[0].LastActivity.Equal(act) ||
		got[1].Key != "/user/bob" || !got[1].LastActivity.Equal(later) {
		t.Fatalf("routes after reopen: %+v", got)
	}
	if got[0].Data != nil {
		t.Fatalf("replaced route kept old data: %v", got[0].Data)
	}
	// A number too big for a float64 comes back digit for digit (CHP returns extra fields as given).
	if n, ok := got[1].Data["n"].(json.Number); !ok || n.String() != "12345678901234567890" {
		t.Fatalf("numeric data after reopen: %#v", got[1].Data["n"])
	}
}

func TestNewerSchemaRefused(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir)
	if err := s.Update(func(tx *Txn) error { return tx.putRaw(schemaKey, []byte("99"), 0) }); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if _, err := Open(dir, nil); !errors.Is(err, ErrNewerSchema) {
		t.Fatalf("Open of a newer schema: %v, want ErrNewerSchema", err)
	}
}

func TestDeleteUserCascades(t *testing.T) {
	s := open(t, t.TempDir())
	defer s.Close()
	now := time.Now()
	secret := NewToken()
	err := s.Update(func(tx *Txn) error {
		if err := tx.CreateUser(&User{Name: "alice"}); err != nil {
			return err
		}
		if err := tx.CreateUser(&User{Name: "bob"}); err != nil {
			return err
		}
		if err := tx.SetGroupMembers(&Group{Name: "g"}, []string{"alice", "bob"}); err != nil {
			return err
		}
		if err := tx.PutServer(&Server{User: "alice", Ready: true, Target: "http://127.0.0.1:9"}); err != nil {
			return err
		}
		if err := tx.PutSession(&Session{Hash: Hash("sid"), User: "alice", Expires: now.Add(time.Hour)}); err != nil {
			return err
		}
		return tx.CreateToken(&Token{User: "alice", Kind: "api_token"}, secret)
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Update(func(tx *Txn) error { return tx.CreateUser(&User{Name: "alice"}) }); !errors.Is(err, ErrExists) {
		t.Fatalf("duplicate CreateUser: %v", err)
	}
	if err := s.Update(func(tx *Txn) error { return tx.DeleteUser("alice") }); err != nil {
		t.Fatal(err)
	}
	err = s.View(func(tx *Txn) error {
		if _, err := tx.User("alice"); err != ErrNotFound {
			t.Errorf("user: %v", err)
		}
		if _, err := tx.TokenBySecret(secret, now); err != ErrNotFound {
			t.Errorf("token: %v", err)
		}
		if _, err := tx.Session(Hash("sid"), now); err != ErrNotFound {
			t.Errorf("session: %v", err)
		}
		if act, _ := tx.ActiveServers(); len(act) != 0 {
			t.Errorf("active servers: %v", act)
		}
		g, err := tx.Group("g")
		if err != nil || len(g.Users) != 1 || g.Users[0] != "bob" {
			t.Errorf("group after delete: %+v %v", g, err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestLogoutRevokesSessionTokens(t *testing.T) {
	s := open(t, t.TempDir())
	defer s.Close()
	now := time.Now()
	sess, other := Hash("s1"), Hash("s2")
	oauth1, oauth2, api := NewToken(), NewToken(), NewToken()
	err := s.Update(func(tx *Txn) error {
		for _, x := range []struct{ secret, session, kind string }{{oauth1, sess, "oauth"}, {oauth2, other, "oauth"}, {api, "", "api_token"}} {
			if err := tx.CreateToken(&Token{User: "alice", Kind: x.kind, SessionHash: x.session}, x.secret); err != nil {
				return err
			}
		}
		return tx.PutSession(&Session{Hash: sess, User: "alice", Expires: now.Add(time.Hour)})
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Update(func(tx *Txn) error { return tx.DeleteSession(sess) }); err != nil {
		t.Fatal(err)
	}
	_ = s.View(func(tx *Txn) error {
		for secret, want := range map[string]error{oauth1: ErrNotFound, oauth2: nil, api: nil} {
			if _, err := tx.TokenBySecret(secret, now); err != want {
				t.Errorf("token %s…: %v, want %v", secret[:4], err, want)
			}
		}
		toks, _ := tx.OwnerTokens(OwnerUser("alice"), now)
		if len(toks) != 2 {
			t.Errorf("alice has %d tokens, want 2", len(toks))
		}
		return nil
	})
}

func TestTokenExpiryAndShortSecrets(t *testing.T) {
	s := open(t, t.TempDir())
	defer s.Close()
	secret := NewToken()
	err := s.Update(func(tx *Txn) error {
		if err := tx.CreateToken(&Token{User: "a"}, "short"); err == nil {
			t.Error("a 5-character token was accepted")
		}
		return tx.CreateToken(&Token{User: "a", ExpiresAt: time.Now().Add(time.Minute)}, secret)
	})
	if err != nil {
		t.Fatal(err)
	}
	_ = s.View(func(tx *Txn) error {
		if _, err := tx.TokenBySecret(secret, time.Now()); err != nil {
			t.Errorf("fresh token: %v", err)
		}
		if _, err := tx.TokenBySecret(secret, time.Now().Add(2*time.Minute)); err != ErrNotFound {
			t.Errorf("expired token: %v", err)
		}
		return nil
	})
}

func TestOAuthCodeSingleUse(t *testing.T) {
	s := open(t, t.TempDir())
	defer s.Close()
	if err := s.Update(func(tx *Txn) error { return tx.CreateOAuthCode("code1", &OAuthCode{ClientID: "c", User: "alice"}) }); err != nil {
		t.Fatal(err)
	}
	var first, second error
	first = s.Update(func(tx *Txn) error { _, err := tx.ConsumeOAuthCode("code1", time.Now()); return err })
	second = s.Update(func(tx *Txn) error { _, err := tx.ConsumeOAuthCode("code1", time.Now()); return err })
	if first != nil || second != ErrNotFound {
		t.Fatalf("consume twice: %v, %v", first, second)
	}
}

func TestUsersPaging(t *testing.T) {
	s := open(t, t.TempDir())
	defer s.Close()
	if err := s.Update(func(tx *Txn) error {
		for _, n := range []string{"d", "a", "c", "b", "e"} {
			if err := tx.CreateUser(&User{Name: n}); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	_ = s.View(func(tx *Txn) error {
		page, err := tx.Users(1, 2)
		if err != nil || len(page) != 2 || page[0].Name != "b" || page[1].Name != "c" {
			t.Errorf("Users(1,2) = %v %v", page, err)
		}
		if n, _ := tx.CountUsers(); n != 5 {
			t.Errorf("CountUsers = %d", n)
		}
		return nil
	})
}
