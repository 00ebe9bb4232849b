package rbac

import (
	"errors"
	"slices"
	"testing"
)

func TestAuthorize(t *testing.T) {
	s := mustExpand(t, "read:hub", "servers!user=alice", "read:users!group=staff", "access:services!service=cull", "read:groups!group=staff")
	tests := []struct {
		name   string
		scopes []string
		res    Resource
		groups []string
		want   Decision
	}{
		{"unfiltered endpoint, unfiltered scope", []string{"read:hub"}, Resource{}, nil, Allowed},
		{"unfiltered endpoint, filtered scope", []string{"servers"}, Resource{}, nil, Forbidden},
		{"unfiltered endpoint, missing scope", []string{"proxy"}, Resource{}, nil, Forbidden},
		{"filter matches", []string{"servers"}, ServerResource("alice", "x"), nil, Allowed},
		{"filter misses: 404", []string{"servers"}, ServerResource("bob", ""), nil, NotFound},
		{"missing scope on a resource: 403", []string{"admin:users"}, UserResource("bob"), nil, Forbidden},
		{"any of several scopes", []string{"read:users", "read:servers"}, UserResource("alice"), nil, Allowed},
		{"group membership", []string{"read:users"}, UserResource("sam"), []string{"staff"}, Allowed},
		{"group non-membership: 404", []string{"read:users", "read:users:name"}, UserResource("sam"), []string{"other"}, NotFound},
		{"service", []string{"access:services"}, Resource{Service: "cull"}, nil, Allowed},
		{"other service: 404", []string{"access:services"}, Resource{Service: "dash"}, nil, NotFound},
		{"group", []string{"read:groups"}, Resource{Group: "staff"}, nil, Allowed},
		{"no scopes required is forbidden", nil, Resource{}, nil, Forbidden},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := s.Authorize(tt.scopes, tt.res, tt.groups); got != tt.want {
				t.Errorf("Authorize(%q, %+v) = %v, want %v", tt.scopes, tt.res, got, tt.want)
			}
		})
	}
	if s.AuthorizeList("list:users") != Forbidden || s.AuthorizeList("proxy", "read:users") != Allowed || s.AuthorizeList("read:hub") != Allowed {
		t.Error("AuthorizeList wrong")
	}
	for d, want := range map[Decision][2]any{Allowed: {200, "allowed"}, Forbidden: {403, "forbidden"}, NotFound: {404, "not found"}} {
		if d.Status() != want[0] || d.String() != want[1] {
			t.Errorf("%d: %d %q", d, d.Status(), d.String())
		}
	}
}

func TestListFilters(t *testing.T) {
	t.Run("users unfiltered", func(t *testing.T) {
		l, d := mustExpand(t, "list:users").ListUsers()
		if d != Allowed || !l.All() || !l.IncludesUser("anyone", nil) || l.Users() != nil {
			t.Errorf("ListUsers = %+v, %v", l, d)
		}
	})
	t.Run("users by name and group", func(t *testing.T) {
		l, d := mustExpand(t, "list:users!user=b", "list:users!user=a", "list:users!group=g").ListUsers()
		if d != Allowed || l.All() {
			t.Fatalf("ListUsers = %v", d)
		}
		if !slices.Equal(l.Users(), []string{"a", "b"}) || !slices.Equal(l.Groups(), []string{"g"}) {
			t.Errorf("Users %q Groups %q", l.Users(), l.Groups())
		}
		for _, c := range []struct {
			user   string
			groups []string
			want   bool
		}{{"a", nil, true}, {"c", nil, false}, {"c", []string{"x", "g"}, true}, {"c", []string{"x"}, false}} {
			if got := l.IncludesUser(c.user, c.groups); got != c.want {
				t.Errorf("IncludesUser(%q, %q) = %v", c.user, c.groups, got)
			}
		}
	})
	t.Run("users: server filter must not widen", func(t *testing.T) {
		l, d := mustExpand(t, "list:users!server=a/", "list:users!user=b").ListUsers()
		if d != Forbidden || l.IncludesUser("b", nil) {
			t.Errorf("ListUsers with !server= = %v", d)
		}
	})
	t.Run("users: missing", func(t *testing.T) {
		l, d := mustExpand(t, "read:users").ListUsers()
		if d != Forbidden || l.IncludesUser("x", nil) || l.All() {
			t.Errorf("ListUsers without list:users = %v", d)
		}
	})
	t.Run("groups", func(t *testing.T) {
		l, d := mustExpand(t, "list:groups!group=g").ListGroups()
		if d != Allowed || !l.IncludesGroup("g") || l.IncludesGroup("h") || !slices.Equal(l.Groups(), []string{"g"}) {
			t.Errorf("ListGroups = %+v, %v", l, d)
		}
		if _, d := mustExpand(t, "list:groups!user=a").ListGroups(); d != Forbidden {
			t.Errorf("ListGroups with !user= = %v", d)
		}
		if l, d := mustExpand(t, "groups").ListGroups(); d != Allowed || !l.All() {
			t.Errorf("ListGroups via groups = %v", d)
		}
	})
	t.Run("services", func(t *testing.T) {
		l, d := mustExpand(t, "list:services!service=a", "list:services!user=x").ListServices()
		if d != Allowed || !l.IncludesService("a") || l.IncludesService("x") || !slices.Equal(l.Services(), []string{"a"}) || l.Users() != nil {
			t.Errorf("ListServices = %+v, %v", l, d)
		}
		if l, d := mustExpand(t, "admin:services").ListServices(); d != Allowed || !l.IncludesService("any") {
			t.Errorf("ListServices via admin:services = %v", d)
		}
		if _, d := mustExpand(t).ListServices(); d != Forbidden {
			t.Errorf("ListServices without scope = %v", d)
		}
	})
}

// TestGHSA_69wv_m5fw_2fhp: filtered admin scopes (admin:users!group=x,
// admin:groups!group=x) must not unlock unfiltered endpoints such as
// creating users or groups; list endpoints filter their rows instead.
func TestGHSA_69wv_m5fw_2fhp(t *testing.T) {
	e := newEngine(t, Role{Name: "group-admin", Scopes: []string{"admin:users!group=x", "admin:groups!group=x"}})
	owner := UserOwner("gina")
	roles := []string{"user", "group-admin"}
	scopes := tokenScopes(t, e, Token{Owner: owner, OwnerRoles: roles, Scopes: []string{"inherit"}}, nil)

	// POST /hub/api/users and POST /hub/api/groups: no resource in the path
	if d := scopes.Authorize([]string{"admin:users"}, Resource{}, nil); d != Forbidden {
		t.Errorf("POST /users with admin:users!group=x: %v, want forbidden", d)
	}
	if d := scopes.Authorize([]string{"admin:groups"}, Resource{}, nil); d != Forbidden {
		t.Errorf("POST /groups with admin:groups!group=x: %v, want forbidden", d)
	}
	// the same token with explicit filtered scopes
	explicit := tokenScopes(t, e, Token{Owner: owner, OwnerRoles: roles, Scopes: []string{"admin:users!group=x"}}, nil)
	if d := explicit.Authorize([]string{"admin:users"}, Resource{}, nil); d != Forbidden {
		t.Errorf("POST /users with an explicit filtered token: %v", d)
	}
	// resource endpoints still work inside the filter, 404 outside
	if d := scopes.Authorize([]string{"admin:users"}, UserResource("xavier"), []string{"x"}); d != Allowed {
		t.Errorf("PATCH /users/xavier (in x): %v", d)
	}
	if d := scopes.Authorize([]string{"admin:users"}, UserResource("yves"), []string{"y"}); d != NotFound {
		t.Errorf("PATCH /users/yves (not in x): %v", d)
	}
	if d := scopes.Authorize([]string{"admin:groups"}, Resource{Group: "x"}, nil); d != Allowed {
		t.Errorf("POST /groups/x/users: %v", d)
	}
	// GET /users lists only group x
	l, d := scopes.ListUsers()
	if d != Allowed || l.All() || !l.IncludesUser("xavier", []string{"x"}) || l.IncludesUser("yves", []string{"y"}) {
		t.Errorf("GET /users: %v, %+v", d, l)
	}
	// an unfiltered admin:users holder may create users
	admin := ownerScopes(t, e, UserOwner("root"), "admin")
	if d := admin.Authorize([]string{"admin:users"}, Resource{}, nil); d != Allowed {
		t.Errorf("POST /users as admin: %v", d)
	}
}

// TestGHSA_9x4q_3gxw_849f: a user holding admin:users who is not an admin
// must not make anyone (itself included) an admin, nor modify admins.
func TestGHSA_9x4q_3gxw_849f(t *testing.T) {
	e := newEngine(t, Role{Name: "user-manager", Scopes: []string{"admin:users"}, Users: []string{"mallory"}})
	mallory := UserOwner("mallory")
	roles := e.ConfiguredRoleNames(mallory, nil, false)
	s := ownerScopes(t, e, mallory, roles...)

	// mallory may PATCH users as far as scopes go ...
	if d := s.Authorize([]string{"admin:users"}, UserResource("mallory"), nil); d != Allowed {
		t.Fatalf("PATCH /users/mallory: %v", d)
	}
	if d := s.Authorize([]string{"admin:users"}, Resource{}, nil); d != Allowed {
		t.Fatalf("POST /users: %v", d)
	}
	// ... but holding admin:users is not holding the admin role
	for _, sc := range []string{"admin:servers", "proxy", "shutdown", "tokens", "admin:groups"} {
		if s.Allows(sc, Resource{}, nil) {
			t.Errorf("admin:users implies %s", sc)
		}
	}
	// and the handlers' admin guard refuses escalation
	tests := []struct {
		name                        string
		requesterAdmin, targetAdmin bool
		grantsAdmin                 bool
		want                        error
	}{
		{"PATCH self admin=true", false, false, true, ErrOnlyAdminsGrantAdmin},
		{"POST /users admin=true", false, false, true, ErrOnlyAdminsGrantAdmin},
		{"PATCH an admin", false, true, false, ErrOnlyAdminsModifyAdmins},
		{"PATCH an admin admin=false", false, true, false, ErrOnlyAdminsModifyAdmins},
		{"PATCH a non-admin, no admin change", false, false, false, nil},
		{"admin grants admin", true, false, true, nil},
		{"admin modifies admin", true, true, true, nil},
	}
	for _, tt := range tests {
		if err := CheckAdminChange(tt.requesterAdmin, tt.targetAdmin, tt.grantsAdmin); !errors.Is(err, tt.want) || (err == nil) != (tt.want == nil) {
			t.Errorf("%s: CheckAdminChange = %v, want %v", tt.name, err, tt.want)
		}
	}
}
