package pam

import (
	"os"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2/caddyconfig"

	"github.com/caddyhub/caddyhub/auth/authtest"
	_ "github.com/caddyhub/caddyhub/hubapp" // the jupyterhub global option
	"github.com/caddyhub/caddyhub/internal/caddyfiletest"
)

// load loads, provisions and validates a module from its JSON, as the hub app does.
func load(t *testing.T, raw string) (*PAM, error) {
	t.Helper()
	mod, err := authtest.Load(t, raw)
	if err != nil {
		return nil, err
	}
	return mod.(*PAM), nil
}

func TestCaddyfile(t *testing.T) {
	caddyfiletest.Run(t, "testdata/caddyfile", authtest.LoadsFromHub)
}

func TestCaddyfileErrors(t *testing.T) {
	tests := []struct{ input, wantErr string }{
		{"authenticator pam {\n\tsevice login\n}", `unrecognized pam authenticator option "sevice"`},
		{"authenticator pam extra", "wrong argument count"},
		{"authenticator pam {\n\tservice\n}", "wrong argument count"},
		{"authenticator pam {\n\tservice a b\n}", "wrong argument count"},
		{"authenticator pam {\n\tcheck_account nope\n}", "want true or false"},
		{"authenticator pam {\n\tallowed_groups\n}", "at least one group"},
		{"authenticator pam {\n\tadmin_users\n}", "at least one username"},
	}
	for _, tt := range tests {
		if _, err := authtest.Parse(tt.input); err == nil || !strings.Contains(err.Error(), tt.wantErr) {
			t.Errorf("%q: error = %v; want it to contain %q", tt.input, err, tt.wantErr)
		}
	}
}

func TestJSONAndDefaults(t *testing.T) {
	p, err := load(t, `{"authenticator":"pam"}`)
	if err != nil {
		t.Fatal(err)
	}
	if p.Service != "login" || !p.checkAccount || p.OpenSessions {
		t.Fatalf("defaults: service=%q check_account=%v open_sessions=%v", p.Service, p.checkAccount, p.OpenSessions)
	}
	if p.Common() != &p.Options {
		t.Fatal("Common must return the embedded options")
	}

	raw := `{"authenticator":"pam","service":"jupyterhub","check_account":false,"allowed_groups":["g1"],"admin_users":["alice"]}`
	p, err = load(t, raw)
	if err != nil {
		t.Fatal(err)
	}
	if p.Service != "jupyterhub" || p.checkAccount || len(p.AllowedGroups) != 1 || len(p.AdminUsers) != 1 {
		t.Fatalf("loaded %+v", p)
	}
	out := string(caddyconfig.JSONModuleObject(p, "authenticator", "pam", nil))
	want := `{"admin_users":["alice"],"allowed_groups":["g1"],"authenticator":"pam","check_account":false,"service":"jupyterhub"}`
	if out != want {
		t.Fatalf("round trip\n got: %s\nwant: %s", out, want)
	}
	if _, err := load(t, out); err != nil {
		t.Fatalf("reloading %s: %v", out, err)
	}

	for _, bad := range []struct{ raw, wantErr string }{
		{`{"authenticator":"pam","service":"../etc"}`, "not a PAM service name"},
		{`{"authenticator":"pam","allowed_groups":[" "]}`, "empty group name"},
		{`{"authenticator":"pam","admin_users":["a/b"]}`, "admin_users"},
		{`{"authenticator":"pam","sevice":"x"}`, "sevice"},
	} {
		if _, err := load(t, bad.raw); err == nil || !strings.Contains(err.Error(), bad.wantErr) {
			t.Errorf("%s: error = %v; want it to contain %q", bad.raw, err, bad.wantErr)
		}
	}
}

func TestStartupWarning(t *testing.T) {
	tests := []struct {
		raw     string
		want    []string
		notWant []string
	}{
		{raw: `{"authenticator":"pam"}`, want: []string{"nobody can log in"}},
		{raw: `{"authenticator":"pam","allowed_groups":["staff"]}`, notWant: []string{"nobody can log in", "Only admin_users"}},
		{raw: `{"authenticator":"pam","allow_all":true,"service":"caddyhub-no-such-service"}`,
			want: []string{`PAM service "caddyhub-no-such-service" has no file`}, notWant: []string{"nobody"}},
	}
	for _, tt := range tests {
		p, err := load(t, tt.raw)
		if err != nil {
			t.Fatal(err)
		}
		got := p.StartupWarning()
		for _, w := range tt.want {
			if !strings.Contains(got, w) {
				t.Errorf("%s: warning %q lacks %q", tt.raw, got, w)
			}
		}
		for _, w := range tt.notWant {
			if strings.Contains(got, w) {
				t.Errorf("%s: warning %q should not say %q", tt.raw, got, w)
			}
		}
		if unavailable != nil && !strings.Contains(got, "PAM is unavailable in this build") {
			t.Errorf("%s: a build without PAM must say so at start: %q", tt.raw, got)
		}
		if os.Geteuid() != 0 && !strings.Contains(got, "not root") {
			t.Errorf("%s: not running as root must be reported: %q", tt.raw, got)
		}
	}
}
