package rbac

import (
	"errors"
	"slices"
	"testing"
)

func TestResolveRequestedScopes(t *testing.T) {
	r := Builtin()
	alice := UserOwner("alice")
	// what the authorize handler holds for a plain user: role scopes,
	// inherit, identify and the client's access scope
	have := []string{"self", "inherit", "read:users:name!user", "read:users:groups!user", "access:servers!server=alice/"}
	tests := []struct {
		name                string
		requested           []string
		groups              GroupLookup
		allowed, disallowed []string
	}{
		{"verbatim", []string{"inherit", "read:users:name!user"}, nil, []string{"inherit", "read:users:name!user"}, nil},
		{"within self", []string{"read:users!user=alice", "access:servers!server=alice/gpu"}, nil,
			[]string{"access:servers!server=alice/gpu", "read:users!user=alice"}, nil},
		{"bare filter within self", []string{"servers!user"}, nil, []string{"servers!user"}, nil},
		{"partly held: the held part is granted expanded", []string{"read:users"}, nil,
			withFilter("!user=alice", "read:users", "read:users:activity", "read:users:groups", "read:users:name"), []string{"read:users"}},
		{"not held", []string{"proxy", "read:users!user=bob"}, nil, []string{}, []string{"proxy", "read:users!user=bob"}},
		{"mixed", []string{"inherit", "proxy"}, nil, []string{"inherit"}, []string{"proxy"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			allowed, disallowed, err := r.ResolveRequestedScopes(tt.requested, have, alice, Client{Server: "alice/"}, tt.groups)
			if err != nil {
				t.Fatal(err)
			}
			if tt.allowed == nil {
				tt.allowed = []string{}
			}
			if !slices.Equal(allowed, sorted(tt.allowed...)) || !slices.Equal(disallowed, tt.disallowed) {
				t.Errorf("got allowed %q disallowed %q\nwant allowed %q disallowed %q", allowed, disallowed, sorted(tt.allowed...), tt.disallowed)
			}
		})
	}
	// group membership lets a filtered request through
	staff := []string{"read:users!group=students"}
	allowed, disallowed, err := r.ResolveRequestedScopes([]string{"read:users!user=sam"}, staff, alice, Client{},
		lookupFrom(map[string][]string{"students": {"sam"}}))
	if err != nil || !slices.Equal(allowed, []string{"read:users!user=sam"}) || disallowed != nil {
		t.Errorf("group resolution: %q %q %v", allowed, disallowed, err)
	}
	if _, _, err := r.ResolveRequestedScopes([]string{"nope"}, have, alice, Client{}, nil); !errors.Is(err, ErrUnknownScope) {
		t.Errorf("unknown requested scope: %v", err)
	}
	if _, _, err := r.ResolveRequestedScopes([]string{"proxy"}, []string{"nope"}, alice, Client{}, nil); !errors.Is(err, ErrUnknownScope) {
		t.Errorf("unknown held scope: %v", err)
	}
}

func TestServerTokenScopes(t *testing.T) {
	tests := []struct {
		requested []string
		want      []string
	}{
		{nil, []string{"access:servers!server=alice/gpu", "users:activity!user"}},
		{[]string{"access:servers!server", "read:users:name!user"}, []string{"access:servers!server=alice/gpu", "read:users:name!user", "users:activity!user"}},
		{[]string{"users:activity"}, []string{"users:activity"}},
		{[]string{"inherit"}, []string{"inherit"}},
	}
	for _, tt := range tests {
		if got := ServerTokenScopes(tt.requested, "alice", "gpu"); !slices.Equal(got, tt.want) {
			t.Errorf("ServerTokenScopes(%q) = %q, want %q", tt.requested, got, tt.want)
		}
	}
	// the server role's scopes resolve fully against a plain user's roles
	allowed, disallowed, err := Builtin().ResolveRequestedScopes(ServerTokenScopes(nil, "alice", ""), []string{"self", "inherit"}, UserOwner("alice"), Client{}, nil)
	if err != nil || disallowed != nil || !slices.Equal(allowed, []string{"access:servers!server=alice/", "users:activity!user"}) {
		t.Errorf("server token resolution: %q %q %v", allowed, disallowed, err)
	}
}

func TestDescribe(t *testing.T) {
	got := Builtin().Describe([]string{"read:users!user", "read:users!user=alice", "read:users!user=bob", "servers!server=bob/gpu",
		"access:servers!group=staff", "read:services!service=cull", "proxy", "nope", "access:servers!server"}, "alice")
	want := []string{"only you", "only you", "user bob", "server bob/gpu", "users in group staff", "service cull", "", "server"}
	if len(got) != len(want) {
		t.Fatalf("Describe returned %d entries: %+v", len(got), got)
	}
	for i, d := range got {
		if d.Filter != want[i] || d.Description == "" || d.Scope == "" {
			t.Errorf("entry %d = %+v, want filter %q", i, d, want[i])
		}
	}
	if got[0].Scope != "read:users" || got[6].Description != "Read information about the proxy’s routing table, sync the Hub with the proxy and notify the Hub about a new proxy." {
		t.Errorf("Describe = %+v", got)
	}
}
