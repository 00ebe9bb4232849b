package authstate

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"strings"
	"testing"
)

func newKey(t *testing.T) []byte {
	t.Helper()
	k := make([]byte, 32)
	if _, err := rand.Read(k); err != nil {
		t.Fatal(err)
	}
	return k
}

func TestParseKeysFormats(t *testing.T) {
	k := newKey(t)
	for name, s := range map[string]string{
		"hex":        hex.EncodeToString(k),
		"base64url":  base64.URLEncoding.EncodeToString(k),
		"base64std":  base64.StdEncoding.EncodeToString(k),
		"spaces;;":   " " + hex.EncodeToString(k) + " ;; ",
		"two":        hex.EncodeToString(k) + ";" + base64.URLEncoding.EncodeToString(newKey(t)),
		"upperhex":   strings.ToUpper(hex.EncodeToString(k)),
		"fernetlike": base64.URLEncoding.EncodeToString(k), // Fernet keys are URL-safe base64 of 32 bytes
	} {
		c, err := ParseKeys(s)
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		// Every spelling of k is the same key: what one seals, another opens.
		ref, _ := ParseKeys(hex.EncodeToString(k))
		sealed, err := c.Seal([]byte("x"))
		if err != nil {
			t.Fatal(err)
		}
		if pt, _, err := ref.Open(sealed); err != nil || string(pt) != "x" {
			t.Errorf("%s: the key is not the same as its hex spelling: %v", name, err)
		}
	}
	for _, bad := range []string{"", " ; ", "abc", strings.Repeat("z", 64), hex.EncodeToString(k)[:62], hex.EncodeToString(k) + ";short"} {
		if _, err := ParseKeys(bad); err == nil {
			t.Errorf("ParseKeys(%q) accepted", bad)
		}
	}
	if _, err := ParseKeys(""); !errors.Is(err, ErrNoKeys) {
		t.Errorf("empty: %v, want ErrNoKeys", err)
	}
}

func TestKeysFromEnv(t *testing.T) {
	k := hex.EncodeToString(newKey(t))
	t.Setenv(EnvKey, "")
	if _, err := Keys(""); !errors.Is(err, ErrNoKeys) {
		t.Fatalf("no key anywhere: %v", err)
	}
	t.Setenv(EnvKey, k)
	if _, err := Keys(""); err != nil {
		t.Fatalf("env key: %v", err)
	}
	t.Setenv(EnvKey, "bad")
	if _, err := Keys(k); err != nil {
		t.Fatalf("configured key must win over the environment: %v", err)
	}
}

func TestRotation(t *testing.T) {
	oldK, newK := hex.EncodeToString(newKey(t)), hex.EncodeToString(newKey(t))
	oldC, _ := ParseKeys(oldK)
	sealedOld, err := oldC.SealJSON(map[string]any{"access_token": "a1"})
	if err != nil {
		t.Fatal(err)
	}
	rotated, _ := ParseKeys(newK + ";" + oldK)
	var got map[string]any
	stale, err := rotated.OpenJSON(sealedOld, &got)
	if err != nil || got["access_token"] != "a1" {
		t.Fatalf("rotated keys cannot open the old value: %v %v", got, err)
	}
	if !stale {
		t.Fatal("a value sealed with the old key must be reported stale")
	}
	sealedNew, _ := rotated.SealJSON(got)
	if stale, err := rotated.OpenJSON(sealedNew, &got); err != nil || stale {
		t.Fatalf("new value: stale=%v err=%v", stale, err)
	}
	if _, _, err := oldC.Open(sealedNew); !errors.Is(err, ErrDecrypt) {
		t.Fatalf("the old key alone opened a value sealed with the new key: %v", err)
	}
	newOnly, _ := ParseKeys(newK)
	if _, _, err := newOnly.Open(sealedOld); !errors.Is(err, ErrDecrypt) {
		t.Fatalf("dropping the old key must make old values unreadable: %v", err)
	}
}

func TestTamperAndNonce(t *testing.T) {
	c, _ := ParseKeys(hex.EncodeToString(newKey(t)))
	a, _ := c.Seal([]byte("secret"))
	b, _ := c.Seal([]byte("secret"))
	if bytes.Equal(a, b) {
		t.Fatal("two seals of one plaintext are equal: nonce reused")
	}
	if bytes.Contains(a, []byte("secret")) {
		t.Fatal("plaintext visible in the sealed value")
	}
	for i := range a {
		m := bytes.Clone(a)
		m[i] ^= 1
		if _, _, err := c.Open(m); err == nil {
			t.Fatalf("flipping byte %d went unnoticed", i)
		}
	}
	for _, short := range [][]byte{nil, a[:5], a[:headerLen]} {
		if _, _, err := c.Open(short); err == nil {
			t.Fatalf("opened a truncated value of %d bytes", len(short))
		}
	}
}

func BenchmarkSealOpen(b *testing.B) {
	c, _ := ParseKeys(strings.Repeat("ab", 32))
	state := map[string]any{"access_token": strings.Repeat("a", 800), "refresh_token": strings.Repeat("r", 200), "id_token": strings.Repeat("i", 900)}
	for b.Loop() {
		s, _ := c.SealJSON(state)
		var out map[string]any
		if _, err := c.OpenJSON(s, &out); err != nil {
			b.Fatal(err)
		}
	}
}
