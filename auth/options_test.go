package auth

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
)

func TestNormalizeUsername(t *testing.T) {
	tests := []struct {
		in      string
		want    string
		wantErr string // substring of the message; "" means no error
	}{
		{in: "alice", want: "alice"},
		{in: "  Alice\t", want: "alice"},
		{in: "ÉLODIE", want: "élodie"},
		{in: "a.b@example.org", want: "a.b@example.org"},
		{in: "first last", want: "first last"},
		{in: "a-b_c", want: "a-b_c"},
		{in: "", wantErr: "empty"},
		{in: "   ", wantErr: "empty"},
		{in: "a/b", wantErr: "must not contain '/'"},
		{in: "/", wantErr: "must not contain '/'"},
		{in: "a\x00b", wantErr: "control characters"},
		{in: "a\nb", wantErr: "control characters"},
		{in: "a\u0085b", wantErr: "control characters"},
		{in: ".", wantErr: "must not start with '.'"},
		{in: "..", wantErr: "must not start with '.'"},
		{in: ".hidden", wantErr: "must not start with '.'"},
		{in: "-rf", wantErr: "must not start with '-'"},
		{in: "\xff\xfe", wantErr: "not valid UTF-8"},
		{in: strings.Repeat("a", 255), want: strings.Repeat("a", 255)},
		{in: strings.Repeat("a", 256), wantErr: "longer than 255 bytes"},
	}
	for _, tt := range tests {
		got, err := NormalizeUsername(tt.in)
		if tt.wantErr == "" {
			if err != nil || got != tt.want {
				t.Errorf("NormalizeUsername(%q) = %q, %v; want %q, nil", tt.in, got, err, tt.want)
			}
			continue
		}
		if !errors.Is(err, ErrInvalidUsername) {
			t.Errorf("NormalizeUsername(%q) error = %v; want one wrapping ErrInvalidUsername", tt.in, err)
			continue
		}
		if !strings.Contains(err.Error(), tt.wantErr) {
			t.Errorf("NormalizeUsername(%q) error = %q; want it to say %q", tt.in, err, tt.wantErr)
		}
		if got != "" {
			t.Errorf("NormalizeUsername(%q) returned name %q with an error", tt.in, got)
		}
	}
}

func TestNormalizeLongNameIsTruncatedInMessage(t *testing.T) {
	_, err := NormalizeUsername(strings.Repeat("x", 300))
	if err == nil || len(err.Error()) > 120 {
		t.Fatalf("error for a 300-byte name should be short, got %q", err)
	}
}

func TestOptionsNormalize(t *testing.T) {
	o := &Options{
		UsernamePattern: `[a-z][a-z0-9]*`,
		UsernameMap:     map[string]string{"Root": "Admin1", "old": "new"},
	}
	if err := o.Provision(); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		in, want, wantErr string
	}{
		{in: "Bob", want: "bob"},
		{in: "ROOT", want: "admin1"},
		{in: "old", want: "new"},
		{in: "bob@x", wantErr: "username_pattern"},
		{in: "1bob", wantErr: "username_pattern"},    // anchored at the start
		{in: "bob!", wantErr: "username_pattern"},    // and at the end, unlike re.match
		{in: "a/b", wantErr: "must not contain '/'"}, // base validation first
	}
	for _, tt := range tests {
		got, err := o.Normalize(tt.in)
		if tt.wantErr == "" {
			if err != nil || got != tt.want {
				t.Errorf("Normalize(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
			}
			continue
		}
		if !errors.Is(err, ErrInvalidUsername) || !strings.Contains(err.Error(), tt.wantErr) {
			t.Errorf("Normalize(%q) error = %v; want ErrInvalidUsername saying %q", tt.in, err, tt.wantErr)
		}
	}
}

func TestProvisionErrors(t *testing.T) {
	tests := []struct {
		name    string
		opts    Options
		wantErr string
	}{
		{"bad pattern", Options{UsernamePattern: "("}, "username_pattern"},
		{"bad allowed", Options{AllowedUsers: []string{"ok", "a/b"}}, "allowed_users"},
		{"bad admin", Options{AdminUsers: []string{""}}, "admin_users"},
		{"bad blocked", Options{BlockedUsers: []string{".."}}, "blocked_users"},
		{"admin fails pattern", Options{UsernamePattern: "[a-z]+", AdminUsers: []string{"r00t"}}, "admin_users"},
		{"bad map key", Options{UsernameMap: map[string]string{"a/b": "c"}}, "username_map"},
		{"bad map value", Options{UsernameMap: map[string]string{"a": "-x"}}, "username_map"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.opts.Provision()
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Provision() = %v; want an error naming %q", err, tt.wantErr)
			}
		})
	}
	// A blocked name that fails username_pattern is accepted: blocking it is harmless.
	o := Options{UsernamePattern: "[a-z]+", BlockedUsers: []string{"r00t"}}
	if err := o.Provision(); err != nil {
		t.Fatalf("blocked name outside the pattern: %v", err)
	}
}

func TestAuthorize(t *testing.T) {
	tests := []struct {
		name      string
		opts      Options
		user      string
		grant     Grant
		wantAdmin bool
		wantErr   string // "" means allowed
	}{
		{name: "nothing configured", user: "alice", wantErr: "allows no users besides admin_users"},
		{name: "allowed", opts: Options{AllowedUsers: []string{"Alice"}}, user: "alice"},
		{name: "not allowed", opts: Options{AllowedUsers: []string{"alice"}}, user: "bob", wantErr: "not in allowed_users"},
		{name: "admin only config", opts: Options{AdminUsers: []string{"root1"}}, user: "root1", wantAdmin: true},
		{name: "admin only config, other user", opts: Options{AdminUsers: []string{"root1"}}, user: "bob", wantErr: "allows no users"},
		{name: "admin not in allowed is allowed", opts: Options{AllowedUsers: []string{"bob"}, AdminUsers: []string{"alice"}}, user: "alice", wantAdmin: true},
		{name: "allowed admin", opts: Options{AllowedUsers: []string{"alice"}, AdminUsers: []string{"alice"}}, user: "alice", wantAdmin: true},
		{name: "allow_all", opts: Options{AllowAll: true}, user: "zed"},
		{name: "allow_all admin", opts: Options{AllowAll: true, AdminUsers: []string{"zed"}}, user: "zed", wantAdmin: true},
		{name: "blocked", opts: Options{AllowAll: true, BlockedUsers: []string{"eve"}}, user: "eve", wantErr: "blocked_users"},
		{name: "blocked beats allowed", opts: Options{AllowedUsers: []string{"eve"}, BlockedUsers: []string{"EVE"}}, user: "eve", wantErr: "blocked_users"},
		{name: "blocked admin is blocked", opts: Options{AdminUsers: []string{"eve"}, BlockedUsers: []string{"eve"}}, user: "eve", wantErr: "blocked_users"},
		{name: "blocked beats grant", opts: Options{BlockedUsers: []string{"eve"}}, user: "eve", grant: Grant{Allowed: true, Admin: true}, wantErr: "blocked_users"},
		{name: "group grant", user: "carol", grant: Grant{Allowed: true}},
		{name: "admin grant", user: "carol", grant: Grant{Admin: true}, wantAdmin: true},
		{name: "mapped names in lists", opts: Options{UsernameMap: map[string]string{"x": "y"}, AllowedUsers: []string{"x"}}, user: "y"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := tt.opts
			if err := o.Provision(); err != nil {
				t.Fatal(err)
			}
			admin, err := o.AuthorizeWith(tt.user, tt.grant)
			if tt.wantErr == "" {
				if err != nil || admin != tt.wantAdmin {
					t.Fatalf("AuthorizeWith(%q) = %v, %v; want %v, nil", tt.user, admin, err, tt.wantAdmin)
				}
				return
			}
			if !errors.Is(err, ErrNotAllowed) || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("AuthorizeWith(%q) error = %v; want ErrNotAllowed saying %q", tt.user, err, tt.wantErr)
			}
			if admin {
				t.Fatalf("refused user reported as admin")
			}
			if tt.grant == (Grant{}) {
				if _, err2 := o.Authorize(tt.user); err2 == nil {
					t.Fatalf("Authorize disagrees with AuthorizeWith")
				}
			}
		})
	}
}

func TestStartupWarning(t *testing.T) {
	tests := []struct {
		name string
		opts Options
		want []string // substrings; none means ""
	}{
		{name: "nothing", want: []string{"nobody can log in"}},
		{name: "allow_all", opts: Options{AllowAll: true}},
		{name: "allowed", opts: Options{AllowedUsers: []string{"a1"}}},
		{name: "any_allow_config", opts: Options{AnyAllowConfig: true}},
		{name: "admins only", opts: Options{AdminUsers: []string{"a1"}}, want: []string{"Only admin_users"}},
		{name: "blocked admins", opts: Options{AllowAll: true, AdminUsers: []string{"b2", "A1", "c3"}, BlockedUsers: []string{"a1", "b2"}},
			want: []string{"blocked_users and cannot log in: a1, b2."}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := tt.opts
			if err := o.Provision(); err != nil {
				t.Fatal(err)
			}
			got := o.StartupWarning()
			if len(tt.want) == 0 && got != "" {
				t.Fatalf("StartupWarning() = %q; want none", got)
			}
			for _, w := range tt.want {
				if !strings.Contains(got, w) {
					t.Fatalf("StartupWarning() = %q; want it to contain %q", got, w)
				}
			}
			if got2 := StartupWarning(fakeAuth{&o}); got2 != got {
				t.Fatalf("auth.StartupWarning = %q, Options.StartupWarning = %q", got2, got)
			}
		})
	}
	if got := StartupWarning(warnerAuth{fakeAuth{&Options{}}}); got != "own warning" {
		t.Fatalf("StartupWarning did not ask the StartupWarner: %q", got)
	}
}

type fakeAuth struct{ o *Options }

func (f fakeAuth) Common() *Options { return f.o }

type warnerAuth struct{ fakeAuth }

func (warnerAuth) StartupWarning() string { return "own warning" }

func TestUnmarshalOption(t *testing.T) {
	good := `auth {
		allowed_users alice bob
		allowed_users carol
		admin_users alice
		blocked_users mallory
		allow_all
		create_system_users false
		any_allow_config true
		username_pattern "[a-z]+"
		username_map Root admin
		username_map x y
	}`
	var o Options
	d := caddyfile.NewTestDispenser(good)
	d.Next()
	for d.NextBlock(0) {
		handled, err := o.UnmarshalOption(d)
		if err != nil || !handled {
			t.Fatalf("option %q: handled=%v err=%v", d.Val(), handled, err)
		}
	}
	want := Options{
		AllowedUsers:    []string{"alice", "bob", "carol"},
		AdminUsers:      []string{"alice"},
		BlockedUsers:    []string{"mallory"},
		AllowAll:        true,
		AnyAllowConfig:  true,
		UsernamePattern: "[a-z]+",
		UsernameMap:     map[string]string{"Root": "admin", "x": "y"},
	}
	if !reflect.DeepEqual(o, want) {
		t.Fatalf("parsed %+v\nwant   %+v", o, want)
	}

	bad := []struct{ in, wantErr string }{
		{"allowed_users", "at least one username"},
		{"admin_users", "at least one username"},
		{"allow_all maybe", "want true or false"},
		{"allow_all true false", "wrong argument count"},
		{"username_pattern", "wrong argument count"},
		{"username_pattern a b", "wrong argument count"},
		{"username_map a", "exactly two arguments"},
		{"username_map a b c", "exactly two arguments"},
	}
	for _, tt := range bad {
		var o Options
		d := caddyfile.NewTestDispenser("auth {\n" + tt.in + "\n}")
		d.Next()
		d.NextBlock(0)
		handled, err := o.UnmarshalOption(d)
		if !handled || err == nil || !strings.Contains(err.Error(), tt.wantErr) {
			t.Errorf("%q: handled=%v err=%v; want an error saying %q", tt.in, handled, err, tt.wantErr)
		}
	}

	d = caddyfile.NewTestDispenser("auth {\npassword x\n}")
	d.Next()
	d.NextBlock(0)
	if handled, err := o.UnmarshalOption(d); handled || err != nil {
		t.Fatalf("unknown option: handled=%v err=%v; want false, nil", handled, err)
	}
	if d.Val() != "password" {
		t.Fatalf("an unhandled option must not be consumed; dispenser on %q", d.Val())
	}
}

func TestOptionsJSON(t *testing.T) {
	in := Options{
		AllowedUsers: []string{"a1"}, AdminUsers: []string{"b2"}, BlockedUsers: []string{"c3"},
		AllowAll: true, CreateSystemUsers: true, AnyAllowConfig: true,
		UsernamePattern: "x+", UsernameMap: map[string]string{"p": "q"},
	}
	b, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{`"allowed_users"`, `"admin_users"`, `"blocked_users"`, `"allow_all"`,
		`"create_system_users"`, `"any_allow_config"`, `"username_pattern"`, `"username_map"`} {
		if !strings.Contains(string(b), key) {
			t.Errorf("JSON %s lacks %s", b, key)
		}
	}
	var out Options
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(in, out) {
		t.Fatalf("round trip: %+v != %+v", out, in)
	}
	if b, _ := json.Marshal(Options{}); string(b) != "{}" {
		t.Fatalf("empty options marshal to %s; want {}", b)
	}
}
