package dummy

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2/caddyconfig"

	"github.com/caddyhub/caddyhub/auth"
	"github.com/caddyhub/caddyhub/auth/authtest"
	_ "github.com/caddyhub/caddyhub/hubapp" // the jupyterhub global option
	"github.com/caddyhub/caddyhub/internal/caddyfiletest"
)

func TestCaddyfile(t *testing.T) {
	t.Setenv("HUB_DEMO_PASSWORD", "demo") // so that the golden JSON loads
	caddyfiletest.Run(t, "testdata/caddyfile", authtest.LoadsFromHub)
}

func TestCaddyfileErrors(t *testing.T) {
	tests := []struct{ input, wantErr string }{
		{"authenticator dummy {\n\tpasword x\n}", `unrecognized dummy authenticator option "pasword"`},
		{"authenticator dummy extra", "wrong argument count"},
		{"authenticator dummy {\n\tpassword\n}", "wrong argument count"},
		{"authenticator dummy {\n\tpassword a b\n}", "wrong argument count"},
		{"authenticator dummy {\n\tallowed_users\n}", "at least one username"},
		{"authenticator dummy {\n\tallow_all perhaps\n}", "want true or false"},
	}
	for _, tt := range tests {
		_, err := authtest.Parse(tt.input)
		if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
			t.Errorf("%q: error = %v; want it to contain %q", tt.input, err, tt.wantErr)
		}
	}
}

func load(t *testing.T, raw string) (*Dummy, error) {
	t.Helper()
	mod, err := authtest.Load(t, raw)
	if err != nil {
		return nil, err
	}
	return mod.(*Dummy), nil
}

func TestJSON(t *testing.T) {
	raw := `{"authenticator":"dummy","password":"pw","allowed_users":["alice"],"admin_users":["root1"],"blocked_users":["eve"]}`
	d, err := load(t, raw)
	if err != nil {
		t.Fatal(err)
	}
	want := auth.Options{AllowedUsers: []string{"alice"}, AdminUsers: []string{"root1"}, BlockedUsers: []string{"eve"}}
	if !reflect.DeepEqual(d.AllowedUsers, want.AllowedUsers) || !reflect.DeepEqual(d.AdminUsers, want.AdminUsers) ||
		!reflect.DeepEqual(d.BlockedUsers, want.BlockedUsers) || d.Password != "pw" {
		t.Fatalf("loaded %+v", d)
	}
	// Round trip: what we marshal loads back to the same module.
	out := caddyconfig.JSONModuleObject(d, "authenticator", "dummy", nil)
	d2, err := load(t, string(out))
	if err != nil {
		t.Fatalf("loading %s: %v", out, err)
	}
	if !reflect.DeepEqual(d.Options.AllowedUsers, d2.Options.AllowedUsers) || d2.Password != d.Password {
		t.Fatalf("round trip changed the module: %s", out)
	}
	// Caddy rejects unknown keys, so a typo is not silently ignored.
	if _, err := load(t, `{"authenticator":"dummy","pasword":"x"}`); err == nil {
		t.Fatal("unknown JSON key accepted")
	}
}

func TestProvisionPassword(t *testing.T) {
	t.Setenv("HUB_DEMO_PASSWORD", "s3cret")
	d, err := load(t, `{"authenticator":"dummy","password":"{env.HUB_DEMO_PASSWORD}"}`)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.Authenticate(context.Background(), "alice", "s3cret"); err != nil {
		t.Fatalf("password from the environment refused: %v", err)
	}
	if _, err := d.Authenticate(context.Background(), "alice", "{env.HUB_DEMO_PASSWORD}"); !errors.Is(err, auth.ErrInvalidCredentials) {
		t.Fatalf("the placeholder itself was accepted as password: %v", err)
	}

	t.Setenv("HUB_DEMO_PASSWORD", "")
	if _, err := load(t, `{"authenticator":"dummy","password":"{env.HUB_DEMO_PASSWORD}"}`); err == nil ||
		!strings.Contains(err.Error(), "password") {
		t.Fatalf("empty environment variable: error = %v; want a password error", err)
	}
	if _, err := load(t, `{"authenticator":"dummy","password":"{nosuch.placeholder}"}`); err == nil {
		t.Fatal("unknown placeholder accepted")
	}
	if _, err := load(t, `{"authenticator":"dummy","admin_users":["a/b"]}`); err == nil ||
		!strings.Contains(err.Error(), "admin_users") {
		t.Fatalf("invalid admin name: error = %v", err)
	}
}

func TestAuthenticate(t *testing.T) {
	tests := []struct {
		name      string
		config    string
		user, pw  string
		wantName  string
		wantAdmin bool
		wantErr   error
	}{
		{name: "no password, anyone", config: `{}`, user: "Alice ", pw: "", wantName: "alice"},
		{name: "password right", config: `{"password":"pw"}`, user: "bob", pw: "pw", wantName: "bob"},
		{name: "password wrong", config: `{"password":"pw"}`, user: "bob", pw: "pw2", wantErr: auth.ErrInvalidCredentials},
		{name: "password empty", config: `{"password":"pw"}`, user: "bob", pw: "", wantErr: auth.ErrInvalidCredentials},
		{name: "invalid name", config: `{}`, user: "a/b", wantErr: auth.ErrInvalidUsername},
		{name: "allowed list", config: `{"allowed_users":["alice"]}`, user: "ALICE", wantName: "alice"},
		{name: "not in allowed list", config: `{"allowed_users":["alice"]}`, user: "bob", wantErr: auth.ErrNotAllowed},
		{name: "admin", config: `{"allowed_users":["alice"],"admin_users":["root1"]}`, user: "root1", wantName: "root1", wantAdmin: true},
		{name: "admin with allow_all default", config: `{"admin_users":["root1"]}`, user: "root1", wantName: "root1", wantAdmin: true},
		{name: "others with allow_all default", config: `{"admin_users":["root1"]}`, user: "zed", wantName: "zed"},
		{name: "blocked", config: `{"blocked_users":["eve"]}`, user: "Eve", wantErr: auth.ErrNotAllowed},
		{name: "blocked admin", config: `{"blocked_users":["eve"],"admin_users":["eve"]}`, user: "eve", wantErr: auth.ErrNotAllowed},
		{name: "wrong password before block", config: `{"password":"pw","blocked_users":["eve"]}`, user: "eve", pw: "x", wantErr: auth.ErrInvalidCredentials},
		{name: "username_map", config: `{"username_map":{"root":"admin1"},"admin_users":["admin1"]}`, user: "Root", wantName: "admin1", wantAdmin: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			raw := `{"authenticator":"dummy",` + strings.TrimPrefix(tt.config, "{")
			if tt.config == `{}` {
				raw = `{"authenticator":"dummy"}`
			}
			d, err := load(t, raw)
			if err != nil {
				t.Fatal(err)
			}
			u, err := d.Authenticate(context.Background(), tt.user, tt.pw)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) || u != nil {
					t.Fatalf("Authenticate(%q) = %+v, %v; want error %v", tt.user, u, err, tt.wantErr)
				}
				return
			}
			if err != nil || u.Name != tt.wantName || u.Admin != tt.wantAdmin {
				t.Fatalf("Authenticate(%q) = %+v, %v; want %q admin=%v", tt.user, u, err, tt.wantName, tt.wantAdmin)
			}
		})
	}
}

func TestCommonAndWarning(t *testing.T) {
	d, err := load(t, `{"authenticator":"dummy"}`)
	if err != nil {
		t.Fatal(err)
	}
	if d.Common() != &d.Options {
		t.Fatal("Common must return the embedded options")
	}
	if w := auth.StartupWarning(d); w != "" {
		t.Fatalf("dummy allows all by default, so no 'nobody can log in' warning; got %q", w)
	}
}
