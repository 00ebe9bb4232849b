package web

import (
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"go.uber.org/zap"
)

// cookieSecretEnv is JupyterHub's environment variable for the cookie secret (hex).
const cookieSecretEnv = "JPY_COOKIE_SECRET"

// cookieSecretBytes is the size of a generated cookie secret (JupyterHub: 32 random bytes).
const cookieSecretBytes = 32

// loadCookieSecret returns the hub's cookie secret, in JupyterHub's order of precedence
// (docs/protocols.md, "Cookies and the cookie secret", app.py init_secrets): the cookie_secret option
// (hex), then the JPY_COOKIE_SECRET environment variable (hex), then cookie_secret_file, which is
// created with a fresh random secret when it does not exist. It runs in Start (file I/O), never in
// Provision.
func loadCookieSecret(option, file string, logger *zap.Logger) ([]byte, error) {
	if option != "" {
		b, err := decodeHexSecret(option)
		if err != nil {
			return nil, fmt.Errorf("cookie_secret: %w", err)
		}
		return b, nil
	}
	if env := os.Getenv(cookieSecretEnv); env != "" {
		b, err := decodeHexSecret(env)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", cookieSecretEnv, err)
		}
		return b, nil
	}
	return loadCookieSecretFile(file, logger)
}

func decodeHexSecret(s string) ([]byte, error) {
	b, err := hex.DecodeString(strings.TrimSpace(s))
	if err != nil {
		return nil, fmt.Errorf("want a hex-encoded secret: %w", err)
	}
	if len(b) == 0 {
		return nil, errors.New("the secret is empty")
	}
	return b, nil
}

// loadCookieSecretFile reads (or creates) the cookie secret file. A file that its group or other
// users may read or write is refused: anybody who reads it can forge every login. This is
// stricter than JupyterHub, which only refuses "other" permission bits (st_mode & 0o007).
func loadCookieSecretFile(file string, logger *zap.Logger) ([]byte, error) {
	if file == "" {
		file = "jupyterhub_cookie_secret"
	}
	abs, err := filepath.Abs(file)
	if err != nil {
		return nil, fmt.Errorf("cookie_secret_file %q: %w", file, err)
	}
	fi, err := os.Stat(abs)
	if errors.Is(err, fs.ErrNotExist) {
		return createCookieSecretFile(abs, logger)
	}
	if err != nil {
		return nil, fmt.Errorf("cookie_secret_file: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("cookie_secret_file %s is not a regular file", abs)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return nil, fmt.Errorf("cookie_secret_file %s has mode %#o: group or others may read or write it; run chmod 600 %s", abs, perm, abs)
	}
	raw, err := os.ReadFile(abs)
	if err != nil {
		return nil, fmt.Errorf("cookie_secret_file: %w", err)
	}
	text := strings.TrimSpace(string(raw))
	if text == "" {
		return nil, fmt.Errorf("cookie_secret_file %s is empty", abs)
	}
	if b, err := hex.DecodeString(text); err == nil {
		return b, nil
	}
	// JupyterHub treats anything that is not hex as a legacy base64 secret.
	b, err := base64.StdEncoding.DecodeString(text)
	if err != nil || len(b) == 0 {
		return nil, fmt.Errorf("cookie_secret_file %s: want a hex-encoded secret", abs)
	}
	logger.Warn("cookie secret file is base64, not hex; consider regenerating it", zap.String("file", abs))
	return b, nil
}

func createCookieSecretFile(path string, logger *zap.Logger) ([]byte, error) {
	b := make([]byte, cookieSecretBytes)
	if _, err := rand.Read(b); err != nil {
		return nil, fmt.Errorf("generating cookie secret: %w", err)
	}
	// O_EXCL: if another process created the file meanwhile, do not overwrite its secret.
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, fmt.Errorf("creating cookie_secret_file: %w", err)
	}
	if _, err := f.WriteString(hex.EncodeToString(b) + "\n"); err != nil {
		_ = f.Close()
		_ = os.Remove(path)
		return nil, fmt.Errorf("writing cookie_secret_file %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		_ = os.Remove(path)
		return nil, fmt.Errorf("writing cookie_secret_file %s: %w", path, err)
	}
	logger.Info("generated a new cookie secret", zap.String("file", path))
	return b, nil
}

// webKeys are the keys derived from the cookie secret, one per purpose, so that no two uses share a key.
type webKeys struct {
	cookieHash  []byte // HMAC-SHA256 key of securecookie (signing)
	cookieBlock []byte // AES-256 key of securecookie (encryption)
	xsrf        []byte // HMAC-SHA256 key of XSRF tokens
}

func deriveWebKeys(secret []byte) (webKeys, error) {
	derive := func(label string) ([]byte, error) {
		k, err := hkdf.Key(sha256.New, secret, nil, "caddyhub "+label+" v1", 32)
		if err != nil {
			return nil, fmt.Errorf("deriving %s key: %w", label, err)
		}
		return k, nil
	}
	var k webKeys
	var err error
	if k.cookieHash, err = derive("cookie signing"); err != nil {
		return k, err
	}
	if k.cookieBlock, err = derive("cookie encryption"); err != nil {
		return k, err
	}
	if k.xsrf, err = derive("xsrf"); err != nil {
		return k, err
	}
	return k, nil
}

// constantTimeEqual compares two secrets (tokens, XSRF tokens, client secrets) in constant time.
func constantTimeEqual(a, b string) bool {
	return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}
