package web

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"go.uber.org/zap"
)

func TestCookieSecretPrecedence(t *testing.T) {
	optSecret := bytes.Repeat([]byte{0x11}, 32)
	envSecret := bytes.Repeat([]byte{0x22}, 32)
	fileSecret := bytes.Repeat([]byte{0x33}, 32)
	tests := []struct {
		name    string
		option  string
		env     string
		file    string // content of the secret file; "" = no file
		mode    os.FileMode
		want    []byte
		wantErr string
	}{
		{name: "option wins over env and file", option: hex.EncodeToString(optSecret), env: hex.EncodeToString(envSecret), file: hex.EncodeToString(fileSecret) + "\n", mode: 0o600, want: optSecret},
		{name: "env wins over file", env: hex.EncodeToString(envSecret), file: hex.EncodeToString(fileSecret) + "\n", mode: 0o600, want: envSecret},
		{name: "file", file: hex.EncodeToString(fileSecret) + "\n", mode: 0o600, want: fileSecret},
		{name: "file upper-case hex", file: strings.ToUpper(hex.EncodeToString(fileSecret)), mode: 0o400, want: fileSecret},
		{name: "legacy base64 file", file: base64.StdEncoding.EncodeToString(fileSecret) + "\n", mode: 0o600, want: fileSecret},
		{name: "option not hex", option: "not hex!", wantErr: "cookie_secret: want a hex-encoded secret"},
		{name: "env not hex", env: "zz", wantErr: "JPY_COOKIE_SECRET: want a hex-encoded secret"},
		{name: "group-readable file refused", file: hex.EncodeToString(fileSecret), mode: 0o640, wantErr: "group or others may read or write it"},
		{name: "other-readable file refused", file: hex.EncodeToString(fileSecret), mode: 0o604, wantErr: "group or others may read or write it"},
		{name: "group-writable file refused", file: hex.EncodeToString(fileSecret), mode: 0o620, wantErr: "group or others may read or write it"},
		{name: "empty file refused", file: "\n", mode: 0o600, wantErr: "is empty"},
		{name: "garbage file refused", file: "%%%not a secret%%%", mode: 0o600, wantErr: "want a hex-encoded secret"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv(cookieSecretEnv, tc.env)
			path := filepath.Join(t.TempDir(), "jupyterhub_cookie_secret")
			if tc.file != "" {
				if err := os.WriteFile(path, []byte(tc.file), tc.mode); err != nil {
					t.Fatal(err)
				}
				if err := os.Chmod(path, tc.mode); err != nil { // umask-proof
					t.Fatal(err)
				}
			}
			got, err := loadCookieSecret(tc.option, path, zap.NewNop())
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error = %v, want it to contain %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, tc.want) {
				t.Fatalf("secret = %x, want %x", got, tc.want)
			}
		})
	}
}

func TestCookieSecretFileCreated(t *testing.T) {
	t.Setenv(cookieSecretEnv, "")
	dir := t.TempDir()
	path := filepath.Join(dir, "sub", "..", "jupyterhub_cookie_secret")
	if err := os.Mkdir(filepath.Join(dir, "sub"), 0o700); err != nil {
		t.Fatal(err)
	}
	got, err := loadCookieSecret("", path, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != cookieSecretBytes {
		t.Fatalf("generated %d bytes, want %d", len(got), cookieSecretBytes)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if perm := fi.Mode().Perm(); perm != 0o600 {
		t.Fatalf("created with mode %#o, want 0600", perm)
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`^[0-9a-f]{64}\n$`).Match(raw) {
		t.Fatalf("file content %q: want 64 hex digits and a newline", raw)
	}
	// A second start reads the same secret back.
	again, err := loadCookieSecret("", path, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(again, got) {
		t.Fatal("second load returned a different secret")
	}
}

func TestCookieSecretDefaultFileInWorkingDir(t *testing.T) {
	t.Setenv(cookieSecretEnv, "")
	t.Chdir(t.TempDir())
	if _, err := loadCookieSecret("", "", zap.NewNop()); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat("jupyterhub_cookie_secret"); err != nil {
		t.Fatalf("default file not created in the working directory: %v", err)
	}
}

func TestDerivedKeysDiffer(t *testing.T) {
	k, err := deriveWebKeys([]byte("secret"))
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(k.cookieHash, k.cookieBlock) || bytes.Equal(k.cookieHash, k.xsrf) || bytes.Equal(k.cookieBlock, k.xsrf) {
		t.Fatal("derived keys must differ per purpose")
	}
	if len(k.cookieBlock) != 32 {
		t.Fatalf("encryption key has %d bytes, want 32 (AES-256)", len(k.cookieBlock))
	}
	k2, _ := deriveWebKeys([]byte("other secret"))
	if bytes.Equal(k.cookieHash, k2.cookieHash) {
		t.Fatal("keys must depend on the secret")
	}
}
