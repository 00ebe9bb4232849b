package web

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"net/http"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strings"
	"testing"

	"github.com/caddyhub/caddyhub/auth"
	"github.com/caddyhub/caddyhub/auth/dummy"
	"github.com/caddyhub/caddyhub/hubapp/store"
)

// requireUseradd skips a test that needs root and useradd/userdel, or fails it under
// HUB_REQUIRE_E2E=1 (CI runs as root).
func requireUseradd(t *testing.T) {
	t.Helper()
	why := ""
	if os.Geteuid() != 0 {
		why = "creating system users needs root"
	}
	for _, p := range []string{"useradd", "userdel"} {
		if _, err := exec.LookPath(p); err != nil {
			why = p + " is not installed"
		}
	}
	if why == "" {
		return
	}
	if os.Getenv("HUB_REQUIRE_E2E") == "1" {
		t.Fatalf("HUB_REQUIRE_E2E=1 but %s", why)
	}
	t.Skip(why)
}

// systemUserName returns a fresh account name (chtest + random) whose account, if a test creates
// it, is removed with its home when the test ends.
func systemUserName(t *testing.T) string {
	t.Helper()
	b := make([]byte, 4)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	name := "chtest" + hex.EncodeToString(b)
	t.Cleanup(func() {
		if _, err := user.Lookup(name); err != nil {
			return
		}
		if out, err := exec.Command("userdel", "-r", name).CombinedOutput(); err != nil {
			t.Logf("userdel -r %s: %v: %s", name, err, out)
		}
	})
	return name
}

func systemUserExists(t *testing.T, name string) *user.User {
	t.Helper()
	u, err := user.Lookup(name)
	var unknown user.UnknownUserError
	if errors.As(err, &unknown) {
		return nil
	} else if err != nil {
		t.Fatal(err)
	}
	return u
}

func hubUserExists(t *testing.T, h *Hub, name string) bool {
	t.Helper()
	err := h.store.View(func(tx *store.Txn) error { _, err := tx.User(name); return err })
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		t.Fatal(err)
	}
	return err == nil
}

// systemUsersHub is an API hub whose authenticator has create_system_users on with cmd as
// add_user_cmd (nil: the default, useradd -m).
func systemUsersHub(t *testing.T, cmd []string, mutate func(o *auth.Options)) *apiHub {
	ha := &hooksAuth{opts: auth.Options{CreateSystemUsers: true, AddUserCmd: cmd}}
	if mutate != nil {
		mutate(&ha.opts)
	}
	h := newAPIHub(t, func(a *testApp) { a.authenticator = ha })
	h.user("admin", true)
	return h
}

// TestCreateSystemUsersAPI: with create_system_users, users added through the API get a system
// account with a home (real useradd); when add_user_cmd fails the API says why and no hub user is
// created.
func TestCreateSystemUsersAPI(t *testing.T) {
	requireUseradd(t)
	h := systemUsersHub(t, nil, nil)
	admin := h.token("admin")

	one := systemUserName(t)
	rec := h.do(apiCall{method: "POST", path: "/hub/api/users/" + one, token: admin})
	if rec.Code != http.StatusCreated {
		t.Fatalf("POST /users/%s: %d %s", one, rec.Code, rec.Body)
	}
	u := systemUserExists(t, one)
	if u == nil {
		t.Fatalf("no system account %s after POST /users/%s", one, one)
	}
	if st, err := os.Stat(u.HomeDir); err != nil || !st.IsDir() || u.HomeDir != "/home/"+one {
		t.Fatalf("home of %s: %q %v", one, u.HomeDir, err)
	}

	two, three := systemUserName(t), systemUserName(t)
	rec = h.do(apiCall{method: "POST", path: "/hub/api/users", token: admin, body: `{"usernames": ["` + two + `", "` + three + `"]}`})
	if rec.Code != http.StatusCreated {
		t.Fatalf("POST /users: %d %s", rec.Code, rec.Body)
	}
	for _, n := range []string{two, three} {
		if systemUserExists(t, n) == nil || !hubUserExists(t, h.Hub, n) {
			t.Fatalf("%s after POST /users: account %v, hub user %v", n, systemUserExists(t, n) != nil, hubUserExists(t, h.Hub, n))
		}
	}

	// useradd refuses a name (too long for an account): a clear error, no hub user.
	long := one + strings.Repeat("x", 40)
	t.Cleanup(func() { _ = exec.Command("userdel", "-r", long).Run() })
	rec = h.do(apiCall{method: "POST", path: "/hub/api/users/" + long, token: admin})
	if rec.Code != http.StatusBadRequest {
		t.Fatalf("POST /users/<name useradd refuses>: %d %s", rec.Code, rec.Body)
	}
	if msg := errorBody(t, rec); !strings.Contains(msg, "Failed to create user "+long) || !strings.Contains(msg, "useradd -m") || !strings.Contains(msg, "exit status") {
		t.Fatalf("error message %q does not say what failed", msg)
	}
	if hubUserExists(t, h.Hub, long) || systemUserExists(t, long) != nil {
		t.Fatalf("%s half-created after useradd failed", long)
	}
	rec = h.do(apiCall{method: "POST", path: "/hub/api/users", token: admin, body: `{"usernames": ["` + long + `"]}`})
	if rec.Code != http.StatusBadRequest || hubUserExists(t, h.Hub, long) {
		t.Fatalf("POST /users with a name useradd refuses: %d %s", rec.Code, rec.Body)
	}
}

// TestCreateSystemUsersCommand: add_user_cmd runs with USERNAME replaced and the name appended;
// a failing command is an API error naming it, and leaves no hub user.
func TestCreateSystemUsersCommand(t *testing.T) {
	requireUseradd(t)
	homes := t.TempDir()
	h := systemUsersHub(t, []string{"useradd", "-m", "-d", filepath.Join(homes, "USERNAME")}, nil)
	admin := h.token("admin")
	name := systemUserName(t)
	if rec := h.do(apiCall{method: "POST", path: "/hub/api/users/" + name, token: admin}); rec.Code != http.StatusCreated {
		t.Fatalf("POST /users/%s: %d %s", name, rec.Code, rec.Body)
	}
	if u := systemUserExists(t, name); u == nil || u.HomeDir != filepath.Join(homes, name) {
		t.Fatalf("account %s with add_user_cmd -d <dir>/USERNAME: %+v", name, u)
	}
	if _, err := os.Stat(filepath.Join(homes, name)); err != nil {
		t.Fatal(err)
	}

	failing := systemUsersHub(t, []string{"false"}, nil)
	other := systemUserName(t)
	rec := failing.do(apiCall{method: "POST", path: "/hub/api/users/" + other, token: failing.token("admin")})
	if rec.Code != http.StatusBadRequest {
		t.Fatalf("POST /users with add_user_cmd false: %d %s", rec.Code, rec.Body)
	}
	if msg := errorBody(t, rec); !strings.Contains(msg, "with false: exit status 1") {
		t.Fatalf("error message %q does not name the command and its failure", msg)
	}
	if hubUserExists(t, failing.Hub, other) || systemUserExists(t, other) != nil {
		t.Fatalf("%s half-created after add_user_cmd failed", other)
	}
}

// TestCreateSystemUsersAtStart: allowed_users and admin_users get their accounts and hub users
// when the hub starts.
func TestCreateSystemUsersAtStart(t *testing.T) {
	requireUseradd(t)
	allowed, admin := systemUserName(t), systemUserName(t)
	h := systemUsersHub(t, nil, func(o *auth.Options) {
		o.AllowedUsers = []string{allowed}
		o.AdminUsers = []string{strings.ToUpper(admin)} // normalized like a login
	})
	h.addConfiguredUsers()
	for _, n := range []string{allowed, admin} {
		if systemUserExists(t, n) == nil || !hubUserExists(t, h.Hub, n) {
			t.Fatalf("%s at start: account %v, hub user %v", n, systemUserExists(t, n) != nil, hubUserExists(t, h.Hub, n))
		}
	}
	var a, b *store.User
	_ = h.store.View(func(tx *store.Txn) error { a, _ = tx.User(admin); b, _ = tx.User(allowed); return nil })
	if !a.Admin || b.Admin {
		t.Fatalf("admin flags: %s %v, %s %v", admin, a.Admin, allowed, b.Admin)
	}
}

// TestCreateSystemUsersLogin: a first login creates the account; when that fails the page says
// why and no hub user (nor session) is created.
func TestCreateSystemUsersLogin(t *testing.T) {
	requireUseradd(t)
	withCmd := func(cmd []string) webHubOption {
		return func(a *testApp) {
			d := a.authenticator.(*dummy.Dummy)
			d.CreateSystemUsers, d.AddUserCmd = true, cmd
		}
	}
	wh := newWebHub(t, false, withCmd(nil))
	name := systemUserName(t)
	resp := wh.login(t, wh.client(t), name, nil)
	if resp.status != http.StatusFound {
		t.Fatalf("first login of %s: %d %.300s", name, resp.status, resp.body)
	}
	if systemUserExists(t, name) == nil || !hubUserExists(t, wh.h, name) {
		t.Fatalf("after a first login, account %v, hub user %v", systemUserExists(t, name) != nil, hubUserExists(t, wh.h, name))
	}

	failing := newWebHub(t, false, withCmd([]string{"false"}))
	other := systemUserName(t)
	resp = failing.login(t, failing.client(t), other, nil)
	if resp.status != http.StatusInternalServerError || !strings.Contains(resp.body, "could not create the system account for "+other) ||
		!strings.Contains(resp.body, "exit status 1") {
		t.Fatalf("login with add_user_cmd false: %d %.500s", resp.status, resp.body)
	}
	if hubUserExists(t, failing.h, other) || systemUserExists(t, other) != nil {
		t.Fatalf("%s half-created after a failed login", other)
	}
}
