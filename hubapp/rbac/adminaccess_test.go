package rbac

import "testing"

// TestNoAdminAccess: with NoAdminAccess the admin role keeps every admin scope but access:servers
// (which `shares` would otherwise imply); access from other roles stays.
func TestNoAdminAccess(t *testing.T) {
	roles := []Role{{Name: "staff", Scopes: []string{"access:servers!user=bob"}, Users: []string{"root"}}}
	full, err := NewEngine(EngineOptions{Roles: roles})
	if err != nil {
		t.Fatal(err)
	}
	restricted, err := NewEngine(EngineOptions{Roles: roles, NoAdminAccess: true})
	if err != nil {
		t.Fatal(err)
	}
	alice := Resource{Server: "alice/"}
	for _, tt := range []struct {
		e    *Engine
		want bool
	}{{full, true}, {restricted, false}} {
		s, err := tt.e.OwnerScopes(UserOwner("root"), []string{RoleUser, RoleAdmin})
		if err != nil {
			t.Fatal(err)
		}
		if got := s.Allows("access:servers", alice, nil); got != tt.want {
			t.Errorf("NoAdminAccess=%v: admin may access alice's server = %v", tt.e.noAdminAccess, got)
		}
		for _, scope := range []string{"admin:users", "admin:servers", "read:shares", "users:shares"} {
			if !s.Allows(scope, alice, nil) {
				t.Errorf("NoAdminAccess=%v: admin lacks %s", tt.e.noAdminAccess, scope)
			}
		}
		if !s.Allows("access:servers", Resource{Server: "root/"}, nil) {
			t.Errorf("NoAdminAccess=%v: admin cannot access their own server", tt.e.noAdminAccess)
		}
		s, err = tt.e.OwnerScopes(UserOwner("root"), []string{RoleUser, RoleAdmin, "staff"})
		if err != nil {
			t.Fatal(err)
		}
		if !s.Allows("access:servers", Resource{Server: "bob/"}, nil) {
			t.Errorf("NoAdminAccess=%v: a configured role's access:servers was taken away", tt.e.noAdminAccess)
		}
	}
}
