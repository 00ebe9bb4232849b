package rbac

import (
	"slices"
	"strings"
	"testing"
)

func TestUserFields(t *testing.T) {
	readUsers := []string{"kind", "name", "admin", "roles", "groups", "server", "pending", "created", "last_activity"}
	tests := []struct {
		name   string
		scopes []string
		user   string
		groups []string
		want   []string
	}{
		{"nothing", nil, "alice", nil, nil},
		{"read:users:name", []string{"read:users:name"}, "alice", nil, []string{"kind", "name", "admin"}},
		{"list:users implies name", []string{"list:users"}, "alice", nil, []string{"kind", "name", "admin"}},
		{"read:users:groups", []string{"read:users:groups"}, "alice", nil, []string{"kind", "name", "groups"}},
		{"read:users:activity", []string{"read:users:activity"}, "alice", nil, []string{"kind", "name", "last_activity"}},
		{"read:users", []string{"read:users"}, "alice", nil, readUsers},
		{"read:servers", []string{"read:servers"}, "alice", nil, []string{"kind", "name", "admin", "servers"}},
		{"read:servers on a server only hides the user", []string{"read:servers!server=alice/"}, "alice", nil, nil},
		{"read:roles:users", []string{"read:roles:users"}, "alice", nil, []string{"kind", "name", "admin", "roles"}},
		{"users lacks auth_state", []string{"users"}, "alice", nil, readUsers},
		{"admin:auth_state", []string{"admin:auth_state"}, "alice", nil, []string{"kind", "name", "auth_state"}},
		{"admin:users has auth_state (via admin:auth_state)", []string{"admin:users"}, "alice", nil, append(slices.Clone(readUsers), "auth_state")},
		{"filtered to another user", []string{"read:users!user=bob"}, "alice", nil, nil},
		{"filtered to the user", []string{"read:users!user=alice", "read:users:name"}, "alice", nil, readUsers},
		{"filtered by group", []string{"read:users:activity!group=g", "read:users:name"}, "alice", []string{"g"}, []string{"kind", "name", "admin", "last_activity"}},
		{"self", []string{"self"}, "alice", nil, append(slices.Clone(readUsers), "servers")},
		{"self, other user", []string{"self"}, "bob", nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := expandFor(t, Builtin(), UserOwner("alice"), Client{}, tt.scopes...)
			got := s.UserFields(tt.user, tt.groups)
			if !slices.Equal(sorted(got.Names()...), sorted(tt.want...)) {
				t.Errorf("UserFields = %q, want %q", got.Names(), tt.want)
			}
			if (got == 0) != (len(tt.want) == 0) {
				t.Errorf("hidden = %v", got == 0)
			}
		})
	}
	f := FieldKind | FieldName
	if !f.Has(FieldName) || f.Has(FieldName|FieldAdmin) || !f.Has(0) {
		t.Error("Field.Has wrong")
	}
	all := Field(1<<len(fieldNames) - 1)
	if n := all.Names(); len(n) != len(fieldNames) || n[0] != "kind" || n[len(n)-1] != "display" {
		t.Errorf("Names() = %q", n)
	}
}

func TestGroupAndServiceFields(t *testing.T) {
	s := mustExpand(t, "read:groups!group=g", "read:groups:name", "read:roles:groups!group=h", "read:services!service=a", "read:services:name", "read:roles:services!service=b")
	check := func(what string, got Field, want string) {
		t.Helper()
		if strings.Join(got.Names(), ",") != want {
			t.Errorf("%s = %q, want %s", what, got.Names(), want)
		}
	}
	check("group g", s.GroupFields("g"), "kind,name,users,properties")
	check("group h", s.GroupFields("h"), "kind,name,roles")
	check("group x", s.GroupFields("x"), "kind,name")
	check("service a", s.ServiceFields("a"), "kind,name,admin,url,prefix,command,pid,info,display")
	check("service b", s.ServiceFields("b"), "kind,name,admin,roles")
	check("service c", s.ServiceFields("c"), "kind,name,admin")
	check("nothing", mustExpand(t).GroupFields("g"), "")
	check("nothing", mustExpand(t).ServiceFields("a"), "")
}

func TestServerVisibility(t *testing.T) {
	s := mustExpand(t, "read:servers!user=alice", "admin:server_state!server=alice/gpu", "read:servers!server=bob/", "read:servers!group=g")
	tests := []struct {
		server         string
		groups         []string
		visible, state bool
	}{
		{"alice/", nil, true, false},
		{"alice/gpu", nil, true, true},
		{"bob/", nil, true, false},
		{"bob/x", nil, false, false},
		{"carol/", []string{"g"}, true, false},
		{"carol/", nil, false, false},
	}
	for _, tt := range tests {
		v, st := s.ServerVisibility(tt.server, tt.groups)
		if v != tt.visible || st != tt.state {
			t.Errorf("ServerVisibility(%q) = %v, %v; want %v, %v", tt.server, v, st, tt.visible, tt.state)
		}
	}
	if v, st := mustExpand(t, "admin:servers").ServerVisibility("x/", nil); !v || !st {
		t.Error("admin:servers cannot see state")
	}
}
