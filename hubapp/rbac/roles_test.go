package rbac

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

func newEngine(t *testing.T, roles ...Role) *Engine {
	t.Helper()
	e, err := NewEngine(EngineOptions{Roles: roles})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func ownerScopes(t *testing.T, e *Engine, owner Owner, roles ...string) Set {
	t.Helper()
	s, err := e.OwnerScopes(owner, roles)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// allButMetascopes is every built-in scope except self, inherit and
// (no_scope): what the admin role grants.
func allButMetascopes() []string {
	return slices.DeleteFunc(Builtin().Names(), func(s string) bool {
		return s == ScopeSelf || s == ScopeInherit || s == ScopeNoScope
	})
}

var selfAliceScopes = withFilter("!user=alice",
	"access:servers", "delete:servers", "read:servers", "read:shares", "read:tokens",
	"read:users", "read:users:activity", "read:users:groups", "read:users:name",
	"read:users:shares", "servers", "start:servers", "tokens", "users:activity", "users:shares")

// TestDefaultRolesExpansion expands every built-in role for a sample user
// and service.
func TestDefaultRolesExpansion(t *testing.T) {
	e := newEngine(t)
	alice, cull := UserOwner("alice"), ServiceOwner("cull")
	tests := []struct {
		name  string
		owner Owner
		roles []string
		want  []string
	}{
		{"user", alice, []string{RoleUser}, selfAliceScopes},
		{"admin", alice, []string{RoleAdmin}, allButMetascopes()},
		{"admin user holds user and admin", alice, []string{RoleUser, RoleAdmin}, allButMetascopes()},
		{"server role for a user without a client", alice, []string{RoleServer},
			[]string{"users:activity!user=alice", "read:users:activity!user=alice"}},
		{"token", alice, []string{RoleToken}, []string{"inherit"}},
		{"no roles", alice, nil, nil},
		{"user role for a service", cull, []string{RoleUser}, nil},
		{"admin service", cull, []string{RoleAdmin}, allButMetascopes()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assertScopes(t, ownerScopes(t, e, tt.owner, tt.roles...), tt.want)
		})
	}
	// The admin role has exactly JupyterHub 5's scopes.
	admin, _ := e.Role(RoleAdmin)
	want := []string{"access:servers", "access:services", "admin-ui", "admin:groups", "admin:servers",
		"admin:services", "admin:users", "list:services", "proxy", "read:hub", "read:metrics",
		"read:roles", "read:services", "shares", "shutdown", "tokens"}
	if got := sorted(admin.Scopes...); !slices.Equal(got, want) {
		t.Errorf("admin role scopes = %q", got)
	}
	for _, r := range DefaultRoles() {
		if err := r.Validate(nil); err != nil {
			t.Errorf("built-in role %s invalid: %v", r.Name, err)
		}
		if !IsDefaultRole(r.Name) {
			t.Errorf("IsDefaultRole(%q) = false", r.Name)
		}
	}
	if IsDefaultRole("staff") {
		t.Error("IsDefaultRole(staff)")
	}
}

func TestDefaultRoleNames(t *testing.T) {
	tests := []struct {
		owner Owner
		admin bool
		want  []string
	}{
		{UserOwner("a"), false, []string{"user"}},
		{UserOwner("a"), true, []string{"user", "admin"}},
		{ServiceOwner("s"), false, nil},
		{ServiceOwner("s"), true, []string{"admin"}},
		{Owner{}, true, nil},
	}
	for _, tt := range tests {
		if got := DefaultRoleNames(tt.owner, tt.admin); !slices.Equal(got, tt.want) {
			t.Errorf("DefaultRoleNames(%v, %v) = %q, want %q", tt.owner, tt.admin, got, tt.want)
		}
	}
}

func TestRoleValidate(t *testing.T) {
	tests := []struct {
		role    Role
		wantErr error
		mention string
	}{
		{Role{Name: "staff", Scopes: []string{"read:users!group=staff"}}, nil, ""},
		{Role{Name: "abc", Scopes: nil}, nil, ""},
		{Role{Name: "a.b~c_d-9", Scopes: []string{"users:activity!user"}}, nil, ""},
		{Role{Name: "ab"}, ErrInvalidRoleName, `"ab"`},
		{Role{Name: "Staff"}, ErrInvalidRoleName, "Staff"},
		{Role{Name: "9staff"}, ErrInvalidRoleName, "9staff"},
		{Role{Name: "staff-"}, ErrInvalidRoleName, "staff-"},
		{Role{Name: "st aff"}, ErrInvalidRoleName, "st aff"},
		{Role{Name: "a" + strings.Repeat("b", 255)}, ErrInvalidRoleName, "role"},
		{Role{Name: "staff", Scopes: []string{"read:users", "read:usrs"}}, ErrUnknownScope, "read:usrs"},
		{Role{Name: "staff", Scopes: []string{"read:users!grp=x"}}, ErrInvalidFilter, "!grp"},
		{Role{Name: "staff", Scopes: []string{"servers!server=alice"}}, ErrInvalidFilter, "servers!server=alice"},
		{Role{Name: "admin", Scopes: []string{"read:hub"}}, ErrAdminRoleOverride, "admin"},
		{Role{Name: "admin", Description: "mine"}, ErrAdminRoleOverride, "admin"},
		{Role{Name: "admin", Users: []string{"root"}}, nil, ""},
		{Role{Name: "admin", Scopes: DefaultRoles()[1].Scopes, Users: []string{"root"}}, nil, ""},
	}
	for _, tt := range tests {
		err := tt.role.Validate(nil)
		if !errors.Is(err, tt.wantErr) || (err == nil) != (tt.wantErr == nil) {
			t.Errorf("Validate(%+v) = %v, want %v", tt.role, err, tt.wantErr)
			continue
		}
		if err != nil && !strings.Contains(err.Error(), tt.mention) {
			t.Errorf("error %q does not mention %q", err, tt.mention)
		}
	}
	// custom scopes validate against the engine's registry
	reg, err := NewRegistry(map[string]ScopeDefinition{"custom:grader": {Description: "grade"}})
	if err != nil {
		t.Fatal(err)
	}
	r := Role{Name: "grader", Scopes: []string{"custom:grader!group=tas"}}
	if err := r.Validate(reg); err != nil {
		t.Errorf("custom scope role: %v", err)
	}
	if err := r.Validate(nil); !errors.Is(err, ErrUnknownScope) {
		t.Errorf("custom scope valid in the built-in registry: %v", err)
	}
}

func TestHasMember(t *testing.T) {
	r := Role{Name: "staff", Users: []string{"alice"}, Groups: []string{"tas"}, Services: []string{"cull"}}
	tests := []struct {
		owner  Owner
		groups []string
		want   bool
	}{
		{UserOwner("alice"), nil, true},
		{UserOwner("bob"), nil, false},
		{UserOwner("bob"), []string{"x", "tas"}, true},
		{UserOwner("cull"), nil, false},
		{ServiceOwner("cull"), nil, true},
		{ServiceOwner("alice"), nil, false},
		{ServiceOwner("x"), []string{"tas"}, false},
	}
	for _, tt := range tests {
		if got := r.HasMember(tt.owner, tt.groups); got != tt.want {
			t.Errorf("HasMember(%v, %q) = %v", tt.owner, tt.groups, got)
		}
	}
}
