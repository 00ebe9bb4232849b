package auth

import (
	"errors"
	"testing"
)

// TestUsernameMapChain: with username_map a→b and b→c the map applies once, as JupyterHub's
// normalize_username does (login "a" is user "b", login "b" is user "c"); both "b" and "c" pass
// CheckUsername, the test for names that already are user names (so a hub never normalizes "b"
// a second time into "c"), while "a", which no login produces, does not; every Normalize result
// passes CheckUsername.
func TestUsernameMapChain(t *testing.T) {
	o := &Options{UsernameMap: map[string]string{"A": "b", "b": "C", "root": "root"}, UsernamePattern: `[a-z]+`}
	if err := o.Provision(); err != nil {
		t.Fatal(err)
	}
	for login, want := range map[string]string{"a": "b", " A ": "b", "b": "c", "B": "c", "c": "c", "root": "root", "d": "d"} {
		got, err := o.Normalize(login)
		if err != nil || got != want {
			t.Errorf("Normalize(%q) = %q, %v; want %q", login, got, err, want)
		}
		if err := o.CheckUsername(got); err != nil {
			t.Errorf("CheckUsername(Normalize(%q) = %q): %v", login, got, err)
		}
	}
	for _, name := range []string{"b", "c", "root", "d"} {
		if err := o.CheckUsername(name); err != nil {
			t.Errorf("CheckUsername(%q): %v", name, err)
		}
	}
	for _, name := range []string{"a", "B", " c", "x1", ""} {
		if err := o.CheckUsername(name); !errors.Is(err, ErrInvalidUsername) {
			t.Errorf("CheckUsername(%q) = %v, want ErrInvalidUsername", name, err)
		}
	}
}
