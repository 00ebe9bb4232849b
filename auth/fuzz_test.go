package auth

import (
	"errors"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"
)

// FuzzNormalizeUsername: a name normalizes or fails with ErrInvalidUsername; a normalized name is a
// fixed point (a valid name stays valid and unchanged), is one safe path segment (no '/', not '.'
// or '..', no control character, no leading '-' or '.'), fits the length limit, and every spelling
// that differs only in case and surrounding white space normalizes to the same name. An
// authenticator's Normalize (username_map without chains, username_pattern) keeps those
// properties, and with a username_map chain (a→b, b→c, applied once as JupyterHub does) every
// result of Normalize passes CheckUsername, the idempotent test for names that already are user
// names, and CheckUsername accepts only names in normal form.
func FuzzNormalizeUsername(f *testing.F) {
	for _, s := range []string{"alice", " Alice ", "ALICE", "", ".", "..", "-x", "a/b", "a\x00", "\xff", "İstanbul", "ǅ", "ß", "K", "a", "B", "Alice", strings.Repeat("a", 256)} {
		f.Add(s)
	}
	o := &Options{UsernameMap: map[string]string{"root": "admin", "Bob": "robert"}, UsernamePattern: `[^@]+`}
	if err := o.Provision(); err != nil {
		f.Fatal(err)
	}
	chain := &Options{UsernameMap: map[string]string{"a": "b", "b": "c", "alice": "Bob", "bob": "carol"}}
	if err := chain.Provision(); err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, name string) {
		n, err := NormalizeUsername(name)
		if err != nil {
			if !errors.Is(err, ErrInvalidUsername) {
				t.Fatalf("NormalizeUsername(%q): %v does not wrap ErrInvalidUsername", name, err)
			}
			if m, err := o.Normalize(name); err == nil {
				t.Fatalf("Normalize(%q) = %q, but NormalizeUsername refuses it", name, m)
			}
			return
		}
		if n2, err := NormalizeUsername(n); err != nil || n2 != n {
			t.Fatalf("not idempotent: %q → %q → %q, %v", name, n, n2, err)
		}
		if n == "" || n == "." || n == ".." || strings.ContainsRune(n, '/') || n[0] == '-' || n[0] == '.' ||
			!utf8.ValidString(n) || strings.ContainsFunc(n, unicode.IsControl) || len(n) > maxUsernameBytes {
			t.Fatalf("NormalizeUsername(%q) = %q: not a safe name", name, n)
		}
		if n != strings.TrimSpace(n) {
			t.Fatalf("NormalizeUsername(%q) = %q keeps surrounding white space", name, n)
		}
		if up, err := NormalizeUsername(" " + strings.ToUpper(n) + "\t"); err == nil && strings.ToLower(strings.ToUpper(n)) == n && up != n {
			t.Fatalf("%q and its upper case normalize differently: %q, %q", n, n, up)
		}
		if c, err := chain.Normalize(name); err != nil {
			t.Fatalf("chain: Normalize(%q): %v (NormalizeUsername gave %q)", name, err, n)
		} else if err := chain.CheckUsername(c); err != nil {
			t.Fatalf("chain: Normalize(%q) = %q, which CheckUsername refuses: %v", name, c, err)
		} else if to, ok := chain.usernameMap[n]; ok && c != to || !ok && c != n {
			t.Fatalf("chain: Normalize(%q) = %q: the map was not applied exactly once", name, c)
		}
		if err := chain.CheckUsername(n); err == nil {
			if n2, err := NormalizeUsername(n); err != nil || n2 != n {
				t.Fatalf("chain: CheckUsername accepts %q, not in normal form", n)
			}
		}
		m, err := o.Normalize(name)
		if err != nil {
			if !errors.Is(err, ErrInvalidUsername) || !strings.Contains(n, "@") {
				t.Fatalf("Normalize(%q): %v (NormalizeUsername gave %q)", name, err, n)
			}
			return
		}
		if m2, err := o.Normalize(m); err != nil || m2 != m {
			t.Fatalf("Normalize not idempotent: %q → %q → %q, %v", name, m, m2, err)
		}
	})
}
