// Package authstate encrypts users' auth_state (the tokens and claims an
// identity provider gave at login) for storage at rest, with keys in
// JupyterHub's JUPYTERHUB_CRYPT_KEY format.
//
// Keys: one or more 32-byte keys separated by ';', each written as base64
// (standard or URL alphabet, 44 characters) or hex (64 characters). The
// first key encrypts; every key decrypts, so a key is rotated by listing a
// new key first and keeping the old one until every auth_state has been
// written again (at the user's next login or refresh).
//
// The format differs from JupyterHub's Fernet tokens (AES-128-CBC with
// HMAC-SHA256, through MultiFernet): a sealed value here is
//
//	0x01 | key id (4 bytes) | nonce (12 bytes) | AES-256-GCM ciphertext+tag
//
// where the key id is the first 4 bytes of SHA-256(key), so that decryption
// goes straight to the right key. The same key strings work in both, but a
// database encrypted by one cannot be read by the other.
package authstate

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
)

// EnvKey is the environment variable JupyterHub reads its keys from.
const EnvKey = "JUPYTERHUB_CRYPT_KEY"

const (
	version   = 1
	keyIDSize = 4
	nonceSize = 12
	headerLen = 1 + keyIDSize + nonceSize
)

// Errors of this package.
var (
	// ErrNoKeys is returned by Keys when no key is configured.
	ErrNoKeys = errors.New("auth_state is enabled but no encryption key is configured: set crypt_key or " + EnvKey +
		" to one or more 32-byte keys (hex or base64, ';'-separated), for example the output of `openssl rand -hex 32`")
	// ErrDecrypt is returned when a value was sealed by none of the keys
	// (a key was dropped too early) or was altered.
	ErrDecrypt = errors.New("auth_state: cannot decrypt with any configured key (was the key that wrote it removed?)")
)

// Crypter seals and opens values with a list of keys. It is safe for
// concurrent use.
type Crypter struct {
	keys []sealer
}

type sealer struct {
	id   [keyIDSize]byte
	aead cipher.AEAD
}

// ParseKeys reads keys in JupyterHub's format (see the package
// documentation). Empty items are skipped; an empty list is ErrNoKeys.
func ParseKeys(s string) (*Crypter, error) {
	c := &Crypter{}
	for i, item := range strings.Split(s, ";") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		key, err := decodeKey(item)
		if err != nil {
			return nil, fmt.Errorf("crypt key #%d: %w", i+1, err)
		}
		block, err := aes.NewCipher(key)
		if err != nil {
			return nil, fmt.Errorf("crypt key #%d: %w", i+1, err)
		}
		aead, err := cipher.NewGCM(block)
		if err != nil {
			return nil, fmt.Errorf("crypt key #%d: %w", i+1, err)
		}
		sum := sha256.Sum256(key)
		var sl sealer
		copy(sl.id[:], sum[:keyIDSize])
		sl.aead = aead
		c.keys = append(c.keys, sl)
	}
	if len(c.keys) == 0 {
		return nil, ErrNoKeys
	}
	return c, nil
}

// Keys returns the crypter for configured, or for $JUPYTERHUB_CRYPT_KEY
// when configured is empty; ErrNoKeys when both are empty.
func Keys(configured string) (*Crypter, error) {
	if strings.TrimSpace(configured) == "" {
		configured = os.Getenv(EnvKey)
	}
	return ParseKeys(configured)
}

// decodeKey accepts JupyterHub's encodings of a 32-byte key: 44 characters
// of base64 (URL-safe, as Fernet keys are, or standard), 64 hex digits.
func decodeKey(s string) ([]byte, error) {
	switch len(s) {
	case 44:
		for _, enc := range []*base64.Encoding{base64.URLEncoding, base64.StdEncoding} {
			if k, err := enc.DecodeString(s); err == nil && len(k) == 32 {
				return k, nil
			}
		}
	case 64:
		if k, err := hex.DecodeString(s); err == nil {
			return k, nil
		}
	}
	return nil, fmt.Errorf("a key must be 32 bytes written as 64 hex digits or 44 base64 characters (got %d characters)", len(s))
}

// Seal encrypts plaintext with the first key.
func (c *Crypter) Seal(plaintext []byte) ([]byte, error) {
	k := c.keys[0]
	out := make([]byte, headerLen, headerLen+len(plaintext)+k.aead.Overhead())
	out[0] = version
	copy(out[1:], k.id[:])
	if _, err := rand.Read(out[1+keyIDSize : headerLen]); err != nil {
		return nil, fmt.Errorf("auth_state: reading random nonce: %w", err)
	}
	return k.aead.Seal(out, out[1+keyIDSize:headerLen], plaintext, out[:1+keyIDSize]), nil
}

// Open decrypts a value sealed with any of the keys. It also reports
// whether the value was sealed with a key other than the first, so that
// the caller can seal it again with the current key.
func (c *Crypter) Open(sealed []byte) (plaintext []byte, stale bool, err error) {
	if len(sealed) < headerLen || sealed[0] != version {
		return nil, false, ErrDecrypt
	}
	id, nonce, ct := sealed[1:1+keyIDSize], sealed[1+keyIDSize:headerLen], sealed[headerLen:]
	for i, k := range c.keys {
		if !bytes.Equal(k.id[:], id) {
			continue
		}
		pt, err := k.aead.Open(nil, nonce, ct, sealed[:1+keyIDSize])
		if err != nil {
			continue // a key id collision (1 in 2³²) or tampering
		}
		return pt, i != 0, nil
	}
	return nil, false, ErrDecrypt
}

// SealJSON encodes v as JSON and seals it.
func (c *Crypter) SealJSON(v any) ([]byte, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("auth_state: encoding: %w", err)
	}
	return c.Seal(b)
}

// OpenJSON opens a sealed value and decodes its JSON into v.
func (c *Crypter) OpenJSON(sealed []byte, v any) (stale bool, err error) {
	b, stale, err := c.Open(sealed)
	if err != nil {
		return false, err
	}
	if err := json.Unmarshal(b, v); err != nil {
		return false, fmt.Errorf("auth_state: decoding: %w", err)
	}
	return stale, nil
}
