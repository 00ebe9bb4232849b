//go:build cgo && linux

package pam

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/caddyhub/caddyhub/auth"
)

// requireE2E skips a test that needs something this machine lacks, or
// fails it when CI says every end-to-end test must run.
func requireE2E(t *testing.T, why string) {
	t.Helper()
	if os.Getenv("HUB_REQUIRE_E2E") == "1" {
		t.Fatalf("HUB_REQUIRE_E2E=1 but %s", why)
	}
	t.Skip(why)
}

// systemAccount creates a throwaway system account with a password and
// removes it (and its home and group) when the test ends. It needs root and
// the passwd tools; without them the test is skipped (fatal under
// HUB_REQUIRE_E2E=1).
func systemAccount(t *testing.T, password string) string {
	t.Helper()
	if os.Geteuid() != 0 {
		requireE2E(t, "PAM end-to-end tests need root to create accounts and read /etc/shadow")
	}
	for _, p := range []string{"useradd", "userdel", "usermod", "chpasswd"} {
		if _, err := exec.LookPath(p); err != nil {
			requireE2E(t, p+" is not installed")
		}
	}
	name := "chtest" + randomHex(t, 4)
	mustRun(t, "", "useradd", "-m", "-s", "/bin/sh", name)
	t.Cleanup(func() {
		if out, err := exec.Command("userdel", "-r", name).CombinedOutput(); err != nil {
			t.Logf("userdel -r %s: %v: %s", name, err, out)
		}
	})
	mustRun(t, name+":"+password+"\n", "chpasswd")
	return name
}

func mustRun(t *testing.T, stdin string, prog string, args ...string) {
	t.Helper()
	cmd := exec.Command(prog, args...)
	cmd.Stdin = strings.NewReader(stdin)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s %s: %v: %s", prog, strings.Join(args, " "), err, out)
	}
}

func randomHex(t *testing.T, n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

func TestPAMEndToEnd(t *testing.T) {
	const password = "Corr3ct horse ✓"
	name := systemAccount(t, password)
	ctx := context.Background()

	loadT := func(t *testing.T, raw string) *PAM {
		t.Helper()
		p, err := load(t, strings.ReplaceAll(raw, "NAME", name))
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	type result struct {
		admin   bool
		wantErr error
	}
	tests := []struct {
		name   string
		config string
		user   string
		pw     string
		want   result
	}{
		{"right password", `{"authenticator":"pam","allowed_users":["NAME"]}`, name, password, result{}},
		{"typed in capitals with spaces", `{"authenticator":"pam","allowed_users":["NAME"]}`, "  " + strings.ToUpper(name) + " ", password, result{}},
		{"wrong password", `{"authenticator":"pam","allow_all":true}`, name, password + "x", result{wantErr: auth.ErrInvalidCredentials}},
		{"unknown account", `{"authenticator":"pam","allow_all":true}`, name + "nobody", password, result{wantErr: auth.ErrInvalidCredentials}},
		{"nothing allowed", `{"authenticator":"pam"}`, name, password, result{wantErr: auth.ErrNotAllowed}},
		{"allowed by primary group", `{"authenticator":"pam","allowed_groups":["NAME"]}`, name, password, result{}},
		{"not in allowed group", `{"authenticator":"pam","allowed_groups":["root"]}`, name, password, result{wantErr: auth.ErrNotAllowed}},
		{"admin by group", `{"authenticator":"pam","admin_groups":["NAME"]}`, name, password, result{admin: true}},
		{"admin by list", `{"authenticator":"pam","admin_users":["NAME"]}`, name, password, result{admin: true}},
		{"blocked admin", `{"authenticator":"pam","admin_groups":["NAME"],"blocked_users":["NAME"]}`, name, password, result{wantErr: auth.ErrNotAllowed}},
		{"invalid username, PAM not asked", `{"authenticator":"pam","allow_all":true}`, "-" + name, password, result{wantErr: auth.ErrInvalidUsername}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := loadT(t, tt.config)
			u, err := p.Authenticate(ctx, tt.user, tt.pw)
			if tt.want.wantErr != nil {
				if !errors.Is(err, tt.want.wantErr) || u != nil {
					t.Fatalf("Authenticate = %+v, %v; want %v", u, err, tt.want.wantErr)
				}
				return
			}
			if err != nil || u.Name != name || u.Admin != tt.want.admin {
				t.Fatalf("Authenticate = %+v, %v; want %s admin=%v", u, err, name, tt.want.admin)
			}
		})
	}

	t.Run("expired account", func(t *testing.T) {
		mustRun(t, "", "usermod", "-e", "1", name) // expired on 1970-01-02
		t.Cleanup(func() { mustRun(t, "", "usermod", "-e", "", name) })
		p := loadT(t, `{"authenticator":"pam","allow_all":true}`)
		_, err := p.Authenticate(ctx, name, password)
		t.Logf("expired: %v", err)
		if !errors.Is(err, auth.ErrNotAllowed) || !strings.Contains(err.Error(), "pam_acct_mgmt") {
			t.Fatalf("expired account: %v; want ErrNotAllowed from the account check", err)
		}
		p = loadT(t, `{"authenticator":"pam","allow_all":true,"check_account":false}`)
		if _, err := p.Authenticate(ctx, name, password); err != nil {
			t.Fatalf("expired account with check_account off: %v; want success", err)
		}
	})

	t.Run("locked account", func(t *testing.T) {
		mustRun(t, "", "usermod", "-L", name)
		t.Cleanup(func() { mustRun(t, "", "usermod", "-U", name) })
		p := loadT(t, `{"authenticator":"pam","allow_all":true}`)
		if _, err := p.Authenticate(ctx, name, password); !errors.Is(err, auth.ErrInvalidCredentials) {
			t.Fatalf("locked account: %v; want ErrInvalidCredentials", err)
		}
	})

	t.Run("deadline while PAM delays a failure", func(t *testing.T) {
		p := loadT(t, `{"authenticator":"pam","allow_all":true}`)
		dctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
		defer cancel()
		start := time.Now()
		_, err := p.Authenticate(dctx, name, "wrong")
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Authenticate = %v; want context.DeadlineExceeded", err)
		}
		if d := time.Since(start); d > 2*time.Second {
			t.Fatalf("Authenticate returned after %v; it must not wait for pam_faildelay past the deadline", d)
		}
	})

	t.Run("remote address reaches PAM", func(t *testing.T) {
		dir := t.TempDir()
		script := dir + "/record.sh"
		if err := os.WriteFile(script, []byte("#!/bin/sh\nprintf '%s %s' \"$PAM_RHOST\" \"$PAM_USER\" > "+dir+"/seen\n"), 0o755); err != nil {
			t.Fatal(err)
		}
		service := "caddyhub-test-" + randomHex(t, 4)
		path := "/etc/pam.d/" + service
		conf := "auth required pam_unix.so\naccount required pam_unix.so\naccount required pam_exec.so " + script + "\n"
		if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.Remove(path) })
		p := loadT(t, `{"authenticator":"pam","allow_all":true,"service":"`+service+`"}`)
		if _, err := p.Authenticate(auth.WithRemoteIP(ctx, "192.0.2.7"), name, password); err != nil {
			t.Fatalf("Authenticate: %v", err)
		}
		seen, err := os.ReadFile(dir + "/seen")
		if err != nil {
			t.Fatalf("pam_exec did not run: %v", err)
		}
		if want := "192.0.2.7 " + name; string(seen) != want {
			t.Fatalf("PAM saw %q; want %q", seen, want)
		}
	})

	t.Run("service and sessions", func(t *testing.T) {
		service := "caddyhub-test-" + randomHex(t, 4)
		path := "/etc/pam.d/" + service
		conf := "auth required pam_unix.so\naccount required pam_unix.so\nsession required pam_unix.so\n"
		if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.Remove(path) })
		p := loadT(t, `{"authenticator":"pam","allow_all":true,"open_sessions":true,"service":"`+service+`"}`)
		if w := p.StartupWarning(); strings.Contains(w, "has no file") {
			t.Fatalf("configured service reported missing: %q", w)
		}
		if _, err := p.Authenticate(ctx, name, password); err != nil {
			t.Fatalf("Authenticate with service %s: %v", service, err)
		}
		if err := p.PreSpawnStart(ctx, name); err != nil {
			t.Fatalf("PreSpawnStart: %v", err)
		}
		if err := p.PostSpawnStop(ctx, name); err != nil {
			t.Fatalf("PostSpawnStop: %v", err)
		}

		// A session stack that fails turns sessions off, as in JupyterHub.
		denyService := service + "-deny"
		denyPath := "/etc/pam.d/" + denyService
		if err := os.WriteFile(denyPath, []byte("auth required pam_unix.so\naccount required pam_unix.so\nsession required pam_deny.so\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.Remove(denyPath) })
		p = loadT(t, `{"authenticator":"pam","allow_all":true,"open_sessions":true,"service":"`+denyService+`"}`)
		if err := p.PreSpawnStart(ctx, name); err == nil || !strings.Contains(err.Error(), "session") {
			t.Fatalf("PreSpawnStart with pam_deny: %v; want a session error", err)
		}
		if err := p.PreSpawnStart(ctx, name); err != nil {
			t.Fatalf("second PreSpawnStart after a failure: %v; sessions should be off", err)
		}
	})
}
