package auth

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"os"
	"os/exec"
	"os/user"
	"testing"
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

func TestEnsureSystemUserRejectsBadNames(t *testing.T) {
	old := useraddPath
	useraddPath = "/nonexistent/useradd-must-not-run"
	t.Cleanup(func() { useraddPath = old })
	for _, name := range []string{"", "-rf", "a/b", "Alice", " bob", ".."} {
		err := EnsureSystemUser(context.Background(), name)
		if !errors.Is(err, ErrInvalidUsername) {
			t.Errorf("EnsureSystemUser(%q) = %v; want ErrInvalidUsername", name, err)
		}
	}
	// An existing account is left alone: useradd is not even looked up.
	if err := EnsureSystemUser(context.Background(), "root"); err != nil {
		t.Errorf("EnsureSystemUser(root) = %v; want nil for an existing account", err)
	}
}

func TestEnsureSystemUserCreates(t *testing.T) {
	if os.Geteuid() != 0 {
		requireE2E(t, "creating system users needs root")
	}
	for _, p := range []string{"useradd", "userdel"} {
		if _, err := exec.LookPath(p); err != nil {
			requireE2E(t, p+" is not installed")
		}
	}
	name := "chtest" + randomSuffix(t)
	t.Cleanup(func() {
		if out, err := exec.Command("userdel", "-r", name).CombinedOutput(); err != nil {
			t.Logf("userdel -r %s: %v: %s", name, err, out)
		}
	})
	ctx := context.Background()
	if err := EnsureSystemUser(ctx, name); err != nil {
		t.Fatalf("EnsureSystemUser(%q): %v", name, err)
	}
	u, err := user.Lookup(name)
	if err != nil {
		t.Fatalf("account %q not created: %v", name, err)
	}
	if st, err := os.Stat(u.HomeDir); err != nil || !st.IsDir() {
		t.Fatalf("home directory %q of %q not created: %v", u.HomeDir, name, err)
	}
	// Second call: no-op.
	if err := EnsureSystemUser(ctx, name); err != nil {
		t.Fatalf("EnsureSystemUser on an existing account: %v", err)
	}
}

func randomSuffix(t *testing.T) string {
	b := make([]byte, 4)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}
