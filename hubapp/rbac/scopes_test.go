package rbac

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

func expandFor(t *testing.T, r *Registry, owner Owner, client Client, scopes ...string) Set {
	t.Helper()
	s, err := r.ExpandFor(scopes, owner, client)
	if err != nil {
		t.Fatalf("ExpandFor(%q): %v", scopes, err)
	}
	return s
}

func withFilter(filter string, names ...string) []string {
	out := make([]string, len(names))
	for i, n := range names {
		out[i] = n + filter
	}
	slices.Sort(out)
	return out
}

func sorted(s ...string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}

func assertScopes(t *testing.T, got Set, want []string) {
	t.Helper()
	g := got.Strings()
	if want == nil {
		want = []string{}
	}
	if g == nil {
		g = []string{}
	}
	if !slices.Equal(g, sorted(want...)) {
		t.Errorf("scopes:\n got  %q\n want %q", g, sorted(want...))
	}
}

// TestBuiltinTree checks the scope names the REST API relies on exist and
// every subscope is defined.
func TestBuiltinTree(t *testing.T) {
	r := Builtin()
	for _, name := range []string{
		"(no_scope)", "self", "inherit", "admin-ui", "admin:users", "admin:auth_state",
		"users", "delete:users", "list:users", "read:users", "read:users:name",
		"read:users:groups", "read:users:activity", "read:roles", "read:roles:users",
		"read:roles:services", "read:roles:groups", "users:activity", "admin:servers",
		"admin:server_state", "servers", "read:servers", "start:servers",
		"delete:servers", "tokens", "read:tokens", "admin:groups", "groups",
		"list:groups", "read:groups", "read:groups:name", "delete:groups",
		"admin:services", "list:services", "read:services", "read:services:name",
		"read:hub", "access:servers", "access:services", "users:shares",
		"read:users:shares", "groups:shares", "read:groups:shares", "read:shares",
		"shares", "proxy", "shutdown", "read:metrics",
	} {
		d, ok := r.Definition(name)
		if !ok {
			t.Errorf("scope %q not defined", name)
			continue
		}
		if d.Description == "" {
			t.Errorf("scope %q has no description", name)
		}
	}
	if got, want := len(r.Names()), 48; got != want {
		t.Errorf("%d built-in scopes, want %d", got, want)
	}
	for _, name := range r.Names() {
		d, _ := r.Definition(name)
		for _, sub := range d.Subscopes {
			if _, ok := r.Definition(sub); !ok {
				t.Errorf("scope %q: subscope %q not defined", name, sub)
			}
		}
	}
	if _, ok := r.Definition("custom:x"); ok {
		t.Error("custom:x defined in the built-in registry")
	}
}

func TestExpandClosures(t *testing.T) {
	userSubs := []string{"read:users", "read:users:name", "read:users:groups", "read:users:activity", "list:users", "users:activity"}
	tests := []struct {
		name   string
		scopes []string
		want   []string
	}{
		{"empty", nil, nil},
		{"leaf", []string{"read:hub"}, []string{"read:hub"}},
		{"admin:users", []string{"admin:users"},
			append([]string{"admin:users", "admin:auth_state", "users", "read:roles:users", "delete:users"}, userSubs...)},
		{"users", []string{"users"}, append([]string{"users"}, userSubs...)},
		{"read:users", []string{"read:users"}, []string{"read:users", "read:users:name", "read:users:groups", "read:users:activity"}},
		{"list:users", []string{"list:users"}, []string{"list:users", "read:users:name"}},
		{"users:activity", []string{"users:activity"}, []string{"users:activity", "read:users:activity"}},
		{"servers", []string{"servers"}, []string{"servers", "read:servers", "start:servers", "delete:servers", "read:users:name"}},
		{"admin:servers", []string{"admin:servers"}, []string{"admin:servers", "admin:server_state", "servers", "read:servers", "start:servers", "delete:servers", "read:users:name"}},
		{"read:servers", []string{"read:servers"}, []string{"read:servers", "read:users:name"}},
		{"tokens", []string{"tokens"}, []string{"tokens", "read:tokens"}},
		{"admin:groups", []string{"admin:groups"}, []string{"admin:groups", "groups", "read:groups", "list:groups", "read:groups:name", "read:roles:groups", "delete:groups"}},
		{"groups", []string{"groups"}, []string{"groups", "read:groups", "list:groups", "read:groups:name"}},
		{"admin:services", []string{"admin:services"}, []string{"admin:services", "list:services", "read:services", "read:services:name", "read:roles:services"}},
		{"list:services", []string{"list:services"}, []string{"list:services", "read:services:name"}},
		{"read:roles", []string{"read:roles"}, []string{"read:roles", "read:roles:users", "read:roles:services", "read:roles:groups"}},
		{"shares", []string{"shares"}, []string{"shares", "access:servers", "read:shares", "users:shares", "read:users:shares", "groups:shares", "read:groups:shares"}},
		{"metascopes without owner", []string{"self", "inherit", "(no_scope)"}, []string{"inherit", "(no_scope)"}},
		{"user filter carries to subscopes", []string{"users!user=alice"},
			withFilter("!user=alice", append([]string{"users"}, userSubs...)...)},
		{"group filter carries to subscopes", []string{"read:servers!group=staff"},
			[]string{"read:servers!group=staff", "read:users:name!group=staff"}},
		{"server filter: server-level subscopes only", []string{"servers!server=alice/gpu"},
			withFilter("!server=alice/gpu", "servers", "read:servers", "start:servers", "delete:servers")},
		{"server filter drops read:servers -> read:users:name", []string{"read:servers!server=alice/"},
			[]string{"read:servers!server=alice/"}},
		{"server filter on a user scope grants nothing", []string{"read:users!server=alice/"}, nil},
		{"service filter", []string{"read:services!service=cull"},
			[]string{"read:services!service=cull", "read:services:name!service=cull"}},
		{"unfiltered absorbs filtered", []string{"read:users!user=alice", "read:users"},
			[]string{"read:users", "read:users:name", "read:users:groups", "read:users:activity"}},
		{"filters accumulate", []string{"access:servers!user=a", "access:servers!user=b", "access:servers!group=g", "access:servers!server=c/"},
			[]string{"access:servers!user=a", "access:servers!user=b", "access:servers!group=g", "access:servers!server=c/"}},
		{"mixed broad and filtered subscopes", []string{"users!group=g", "read:users"},
			[]string{"users!group=g", "list:users!group=g", "users:activity!group=g", "read:users", "read:users:name", "read:users:groups", "read:users:activity"}},
		{"bare filters without owner are dropped", []string{"users:activity!user", "access:servers!server", "read:services!service"}, nil},
		{"duplicates", []string{"tokens", "tokens", "read:tokens"}, []string{"tokens", "read:tokens"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Expand(tt.scopes)
			if err != nil {
				t.Fatal(err)
			}
			assertScopes(t, got, tt.want)
		})
	}
}

func TestExpandErrors(t *testing.T) {
	tests := []struct {
		scope   string
		wantErr error
		mention string
	}{
		{"foo", ErrUnknownScope, `"foo"`},
		{"", ErrUnknownScope, `""`},
		{"read:user", ErrUnknownScope, `"read:user"`},
		{"all", ErrUnknownScope, "inherit"},
		{"READ:USERS", ErrUnknownScope, "READ:USERS"},
		{"custom:undefined", ErrUnknownScope, "custom:undefined"},
		{"foo!user=alice", ErrUnknownScope, "foo!user=alice"},
		{"read:users!foo=bar", ErrInvalidFilter, "!foo"},
		{"read:users!", ErrInvalidFilter, "read:users!"},
		{"read:users!user=", ErrInvalidFilter, "empty user"},
		{"read:users!group", ErrInvalidFilter, "group name"},
		{"read:users!group=", ErrInvalidFilter, "empty group"},
		{"servers!server=alice", ErrInvalidFilter, "<user>/<server>"},
		{"servers!server=/gpu", ErrInvalidFilter, "<user>/<server>"},
		{"servers!Server=alice/", ErrInvalidFilter, "!Server"},
		{"access:services!service=", ErrInvalidFilter, "empty service"},
		{"read:users!user=a\nb", ErrInvalidFilter, "control character"},
		{"read:users!group=a\x00b", ErrInvalidFilter, "control character"},
	}
	for _, tt := range tests {
		t.Run(tt.scope, func(t *testing.T) {
			// a bad scope fails the whole expansion, wherever it is
			_, err := Expand([]string{"read:hub", tt.scope})
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Expand(%q) = %v, want %v", tt.scope, err, tt.wantErr)
			}
			if !strings.Contains(err.Error(), tt.mention) {
				t.Errorf("error %q does not mention %q", err, tt.mention)
			}
			if err := Builtin().Validate([]string{tt.scope}); !errors.Is(err, tt.wantErr) {
				t.Errorf("Validate(%q) = %v, want %v", tt.scope, err, tt.wantErr)
			}
		})
	}
	// well-formed filters validate
	good := []string{"read:users!user=alice", "read:users!user", "servers!server=alice/", "servers!server",
		"read:services!service", "read:services!service=x", "users!group=g", "self", "inherit", "(no_scope)",
		"read:users!user=a=b", "access:servers!server=bob/a/b"}
	if err := Builtin().Validate(good); err != nil {
		t.Errorf("Validate(%q): %v", good, err)
	}
}

func TestExpandFor(t *testing.T) {
	r := Builtin()
	selfAlice := withFilter("!user=alice",
		"access:servers", "delete:servers", "read:servers", "read:shares", "read:tokens",
		"read:users", "read:users:activity", "read:users:groups", "read:users:name",
		"read:users:shares", "servers", "start:servers", "tokens", "users:activity", "users:shares")
	tests := []struct {
		name   string
		owner  Owner
		client Client
		scopes []string
		want   []string
	}{
		{"self for a user", UserOwner("alice"), Client{}, []string{"self"}, selfAlice},
		{"self for a service grants nothing", ServiceOwner("cull"), Client{}, []string{"self"}, nil},
		{"self with a broader scope", UserOwner("alice"), Client{}, []string{"self", "read:users"},
			func() []string {
				out := slices.DeleteFunc(slices.Clone(selfAlice), func(s string) bool {
					return strings.HasPrefix(s, "read:users!") || strings.HasPrefix(s, "read:users:name!") ||
						strings.HasPrefix(s, "read:users:groups!") || strings.HasPrefix(s, "read:users:activity!")
				})
				return append(out, "read:users", "read:users:name", "read:users:groups", "read:users:activity")
			}()},
		{"filtered self is inert", UserOwner("alice"), Client{}, []string{"self!user=bob"}, []string{"self!user=bob"}},
		{"bare !user resolves to the user", UserOwner("alice"), Client{}, []string{"users:activity!user"},
			[]string{"users:activity!user=alice", "read:users:activity!user=alice"}},
		{"bare !user for a service is dropped", ServiceOwner("cull"), Client{}, []string{"users:activity!user"}, nil},
		{"bare !service resolves to the service", ServiceOwner("cull"), Client{}, []string{"read:services!service"},
			[]string{"read:services!service=cull", "read:services:name!service=cull"}},
		{"bare !service prefers the client service", ServiceOwner("cull"), Client{Service: "dash"}, []string{"access:services!service"},
			[]string{"access:services!service=dash"}},
		{"bare !service for a user via its client", UserOwner("alice"), Client{Service: "dash"}, []string{"access:services!service"},
			[]string{"access:services!service=dash"}},
		{"bare !server resolves to the client server", UserOwner("alice"), Client{Server: "alice/gpu"}, []string{"access:servers!server"},
			[]string{"access:servers!server=alice/gpu"}},
		{"bare !server without a server client is dropped", UserOwner("alice"), Client{}, []string{"access:servers!server"}, nil},
		{"bare !server keeps server-level subscopes only", UserOwner("alice"), Client{Server: "alice/"}, []string{"servers!server"},
			withFilter("!server=alice/", "servers", "read:servers", "start:servers", "delete:servers")},
		{"explicit filters ignore the owner", UserOwner("alice"), Client{}, []string{"read:users:name!user=bob"},
			[]string{"read:users:name!user=bob"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assertScopes(t, expandFor(t, r, tt.owner, tt.client, tt.scopes...), tt.want)
		})
	}
	if got := r.SelfScopes(); len(got) != len(selfAlice) {
		t.Errorf("SelfScopes() = %q", got)
	}
}

func TestCustomScopes(t *testing.T) {
	r, err := NewRegistry(map[string]ScopeDefinition{
		"custom:jupyter_server:read:*": {
			Description: "read-only access to a Jupyter server",
			Subscopes:   []string{"custom:jupyter_server:read:contents", "custom:jupyter_server:read:kernels"},
		},
		"custom:jupyter_server:read:contents": {Description: "read files"},
		"custom:jupyter_server:read:kernels":  {Description: "list kernels"},
	})
	if err != nil {
		t.Fatal(err)
	}
	assertScopes(t, expandFor(t, r, UserOwner("a"), Client{}, "custom:jupyter_server:read:*!user=bob", "read:hub"),
		[]string{"read:hub", "custom:jupyter_server:read:*!user=bob", "custom:jupyter_server:read:contents!user=bob", "custom:jupyter_server:read:kernels!user=bob"})
	if _, err := Builtin().Expand([]string{"custom:jupyter_server:read:*"}); !errors.Is(err, ErrUnknownScope) {
		t.Errorf("built-in registry knows custom scopes: %v", err)
	}

	bad := []struct {
		name string
		defs map[string]ScopeDefinition
		want string
	}{
		{"no prefix", map[string]ScopeDefinition{"myscope": {Description: "x"}}, "must start with"},
		{"uppercase", map[string]ScopeDefinition{"custom:Read": {Description: "x"}}, "must start with"},
		{"trailing colon", map[string]ScopeDefinition{"custom:read:": {Description: "x"}}, "must start with"},
		{"too short", map[string]ScopeDefinition{"custom:a": {Description: "x"}}, "must start with"},
		{"no description", map[string]ScopeDefinition{"custom:read": {}}, "missing description"},
		{"built-in subscope", map[string]ScopeDefinition{"custom:read": {Description: "x", Subscopes: []string{"read:users"}}}, "non-custom subscope"},
		{"undefined subscope", map[string]ScopeDefinition{"custom:read": {Description: "x", Subscopes: []string{"custom:nope"}}}, "not defined"},
		{"redefine built-in", map[string]ScopeDefinition{"read:users": {Description: "x"}}, "built-in"},
		{"cycle", map[string]ScopeDefinition{
			"custom:aaa": {Description: "x", Subscopes: []string{"custom:bbb"}},
			"custom:bbb": {Description: "y", Subscopes: []string{"custom:aaa"}},
		}, "cycle"},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewRegistry(tt.defs)
			if !errors.Is(err, ErrInvalidCustomScope) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("NewRegistry = %v, want %v mentioning %q", err, ErrInvalidCustomScope, tt.want)
			}
		})
	}
}

func TestFilterKindString(t *testing.T) {
	want := map[FilterKind]string{FilterNone: "", FilterUser: "user", FilterServer: "server", FilterGroup: "group", FilterService: "service"}
	for k, w := range want {
		if k.String() != w {
			t.Errorf("%d.String() = %q, want %q", k, k.String(), w)
		}
	}
}

func TestRegistryAccessors(t *testing.T) {
	r := Builtin()
	if got := r.Subscopes("servers"); !slices.Equal(got, []string{"delete:servers", "read:servers", "read:users:name", "servers", "start:servers"}) {
		t.Errorf("Subscopes(servers) = %q", got)
	}
	if r.Subscopes("nope") != nil {
		t.Error("Subscopes(nope) not nil")
	}
	d, _ := r.Definition("servers")
	d.Subscopes[0] = "mutated"
	if d2, _ := r.Definition("servers"); d2.Subscopes[0] == "mutated" {
		t.Error("Definition exposes the registry's slices")
	}
	e, err := NewEngine(EngineOptions{})
	if err != nil || e.Registry() != r {
		t.Errorf("engine registry = %v, %v", e.Registry(), err)
	}
	for o, want := range map[Owner]string{UserOwner("a"): "user a", ServiceOwner("s"): "service s", {}: "nobody"} {
		if o.String() != want {
			t.Errorf("%#v.String() = %q", o, o.String())
		}
	}
	if IdentifyScopes(Owner{}) != nil || !slices.Equal(IdentifyScopes(ServiceOwner("s")), []string{"read:services:name!service=s"}) {
		t.Error("IdentifyScopes wrong")
	}
}
