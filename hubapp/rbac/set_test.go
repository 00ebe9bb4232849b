package rbac

import (
	"errors"
	"slices"
	"testing"
)

func mustExpand(t testing.TB, scopes ...string) Set {
	t.Helper()
	s, err := Expand(scopes)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestAllowsMatrix(t *testing.T) {
	s := mustExpand(t,
		"read:hub",                       // unfiltered
		"read:users!user=alice",          // one user
		"read:users!group=staff",         // members of a group
		"servers!server=bob/gpu",         // one named server
		"access:servers!user=carol",      // all of carol's servers
		"access:servers!group=tutors",    // servers of tutors' members
		"access:servers!server=dave/",    // dave's default server only
		"read:groups!group=staff",        // the group itself
		"access:services!service=cull",   // a service
		"admin:server_state!user=erin",   // user filter on a server scope
		"read:services!service=dash",     // service filter
		"read:users:name!server=zed/lab", // meaningless but valid
	)
	noGroups := []string(nil)
	tests := []struct {
		name   string
		scope  string
		res    Resource
		groups []string
		want   bool
	}{
		{"unfiltered, no resource", "read:hub", Resource{}, nil, true},
		{"unfiltered, any user", "read:hub", UserResource("zoe"), nil, true},
		{"missing scope", "shutdown", Resource{}, nil, false},
		{"missing scope on a resource", "shutdown", UserResource("alice"), nil, false},
		{"user filter, that user", "read:users", UserResource("alice"), noGroups, true},
		{"user filter carries to subscopes", "read:users:name", UserResource("alice"), noGroups, true},
		{"user filter, other user", "read:users", UserResource("bob"), noGroups, false},
		{"user filter, no resource", "read:users", Resource{}, noGroups, false},
		{"group filter, member", "read:users", UserResource("frank"), []string{"x", "staff"}, true},
		{"group filter, non-member", "read:users", UserResource("frank"), []string{"x"}, false},
		// as scopes.py check_scope_filter: a !group= filter matches that group
		{"group filter matches the group resource too", "read:users", Resource{Group: "staff"}, nil, true},
		{"server filter, that server", "servers", ServerResource("bob", "gpu"), nil, true},
		{"server filter, subscope", "delete:servers", ServerResource("bob", "gpu"), nil, true},
		{"server filter, other server of same user", "servers", ServerResource("bob", ""), nil, false},
		{"server filter does not grant the user", "servers", UserResource("bob"), nil, false},
		{"server filter does not grant read:users:name", "read:users:name", UserResource("bob"), nil, false},
		{"user filter grants every server of the user", "access:servers", ServerResource("carol", "x"), nil, true},
		{"user filter grants the default server", "access:servers", ServerResource("carol", ""), nil, true},
		{"user filter, the user itself", "access:servers", UserResource("carol"), nil, true},
		{"group filter grants servers of members", "access:servers", ServerResource("gina", "a"), []string{"tutors"}, true},
		{"group filter, server of non-member", "access:servers", ServerResource("gina", "a"), []string{"staff"}, false},
		{"default server filter", "access:servers", ServerResource("dave", ""), nil, true},
		{"default server filter, named server", "access:servers", ServerResource("dave", "x"), nil, false},
		{"user name prefix does not match", "access:servers", ServerResource("carolyn", ""), nil, false},
		{"server name prefix does not match", "servers", Resource{Server: "bob/gp"}, nil, false},
		{"malformed server resource", "access:servers", Resource{Server: "carol"}, nil, false},
		{"server resource wins over user", "servers", Resource{User: "bob", Server: "bob/"}, nil, false},
		{"group resource", "read:groups", Resource{Group: "staff"}, nil, true},
		{"group resource, other group", "read:groups", Resource{Group: "tutors"}, nil, false},
		{"group resource, subscope", "read:groups:name", Resource{Group: "staff"}, nil, true},
		{"service resource", "access:services", Resource{Service: "cull"}, nil, true},
		{"service resource, other service", "access:services", Resource{Service: "dash"}, nil, false},
		{"service filter does not grant a user of that name", "access:services", UserResource("cull"), nil, false},
		{"user filter on server-level scope", "admin:server_state", ServerResource("erin", "x"), nil, true},
		{"server filter on user scope does not grant user", "read:users:name", UserResource("zed"), nil, false},
		{"server filter on user scope was dropped at expansion", "read:users:name", ServerResource("zed", "lab"), nil, false},
		{"empty scope name", "", UserResource("alice"), nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := s.Allows(tt.scope, tt.res, tt.groups); got != tt.want {
				t.Errorf("Allows(%q, %+v, %q) = %v, want %v", tt.scope, tt.res, tt.groups, got, tt.want)
			}
		})
	}
	var zero Set
	if zero.Allows("read:hub", Resource{}, nil) {
		t.Error("zero Set allows something")
	}
}

func TestHas(t *testing.T) {
	s := mustExpand(t, "read:hub", "servers!user=alice", "read:servers")
	tests := []struct {
		scope         string
		any, filtered bool
	}{
		{"read:hub", true, false},
		{"servers", true, true},
		{"delete:servers", true, true},
		{"read:servers", true, false},
		{"read:users:name", true, false}, // from read:servers
		{"read:users:groups", false, false},
		{"proxy", false, false},
	}
	for _, tt := range tests {
		a, f := s.Has(tt.scope)
		if a != tt.any || f != tt.filtered {
			t.Errorf("Has(%q) = %v, %v; want %v, %v", tt.scope, a, f, tt.any, tt.filtered)
		}
	}
}

func TestSetStringsRoundTrip(t *testing.T) {
	in := mustExpand(t, "admin:groups!group=g", "servers!server=a/", "access:services!service=s", "users!user=u", "read:hub")
	strs := in.Strings()
	if !slices.IsSorted(strs) {
		t.Errorf("Strings() not sorted: %q", strs)
	}
	back, err := Builtin().ParseSet(strs)
	if err != nil {
		t.Fatal(err)
	}
	if !back.Equal(in) || !in.Equal(back) {
		t.Errorf("round trip changed the set:\n%q\n%q", strs, back.Strings())
	}
	if in.Len() != 20 {
		t.Errorf("Len() = %d", in.Len())
	}
	if _, err := Builtin().ParseSet([]string{"users!user"}); !errors.Is(err, ErrInvalidFilter) {
		t.Errorf("ParseSet accepted a bare filter: %v", err)
	}
	if _, err := Builtin().ParseSet([]string{"nope"}); !errors.Is(err, ErrUnknownScope) {
		t.Errorf("ParseSet accepted an unknown scope: %v", err)
	}
	// ParseSet does not expand
	p, _ := Builtin().ParseSet([]string{"servers"})
	if p.Len() != 1 {
		t.Errorf("ParseSet expanded: %q", p.Strings())
	}
	if got := mustExpand(t, "tokens").String(); got != "read:tokens tokens" {
		t.Errorf("String() = %q", got)
	}
}

func TestSetEqualContainsUnion(t *testing.T) {
	a := mustExpand(t, "read:users!user=alice", "read:hub")
	b := mustExpand(t, "read:users!group=g")
	if a.Equal(b) || !a.Equal(mustExpand(t, "read:hub", "read:users!user=alice")) {
		t.Error("Equal is wrong")
	}
	if a.Equal(mustExpand(t, "read:users!user=bob", "read:hub")) {
		t.Error("Equal ignores filter values")
	}
	if a.Equal(mustExpand(t, "read:users", "read:hub")) {
		t.Error("Equal ignores filtered vs unfiltered")
	}
	for scope, want := range map[string]bool{
		"read:hub":                   true,
		"read:hub!user=x":            true, // unfiltered contains filtered
		"read:users!user=alice":      true,
		"read:users:name!user=alice": true,
		"read:users!user=bob":        false,
		"read:users":                 false,
		"read:users!group=alice":     false,
		"read:users!bogus=alice":     false,
		"proxy":                      false,
	} {
		if got := a.Contains(scope); got != want {
			t.Errorf("Contains(%q) = %v, want %v", scope, got, want)
		}
	}
	u := a.Union(b)
	assertScopes(t, u, append(
		withFilter("!user=alice", "read:users", "read:users:name", "read:users:groups", "read:users:activity"),
		append(withFilter("!group=g", "read:users", "read:users:name", "read:users:groups", "read:users:activity"), "read:hub")...))
	if !a.Union(Set{}).Equal(a) || !(Set{}).Union(a).Equal(a) {
		t.Error("union with the empty set changed the set")
	}
	// union with a broad scope absorbs the filtered one
	assertScopes(t, a.Union(mustExpand(t, "read:users:name")),
		append(withFilter("!user=alice", "read:users", "read:users:groups", "read:users:activity"), "read:users:name", "read:hub"))
}

func TestSetFilter(t *testing.T) {
	s := mustExpand(t, "access:servers!user=b", "access:servers!user=a", "access:servers!server=c/", "access:servers!group=g", "read:hub")
	f, ok := s.Filter("access:servers")
	if !ok || f.All || !slices.Equal(f.Users, []string{"a", "b"}) || !slices.Equal(f.Servers, []string{"c/"}) ||
		!slices.Equal(f.Groups, []string{"g"}) || f.Services != nil {
		t.Errorf("Filter(access:servers) = %+v, %v", f, ok)
	}
	if f, ok := s.Filter("read:hub"); !ok || !f.All {
		t.Errorf("Filter(read:hub) = %+v, %v", f, ok)
	}
	if _, ok := s.Filter("proxy"); ok {
		t.Error("Filter(proxy) held")
	}
}

// TestAllowsDoesNotAllocate guards the hot path: every API request checks
// scopes.
func TestAllowsDoesNotAllocate(t *testing.T) {
	s := benchSet(t)
	groups := []string{"a", "b", "tutors"}
	allocs := testing.AllocsPerRun(1000, func() {
		s.Allows("access:servers", Resource{Server: "gina/lab"}, groups)
		s.Allows("read:users", Resource{User: "alice"}, groups)
		s.Allows("proxy", Resource{}, nil)
		s.Authorize([]string{"read:users", "read:users:name"}, Resource{User: "nobody"}, groups)
		s.Has("servers")
	})
	if allocs != 0 {
		t.Errorf("Allows allocates %.1f times per run", allocs)
	}
}

func benchSet(t testing.TB) Set {
	var scopes []string
	scopes = append(scopes, "self")
	for _, u := range []string{"u1", "u2", "u3", "u4", "u5"} {
		scopes = append(scopes, "access:servers!user="+u, "read:users!user="+u)
	}
	scopes = append(scopes, "access:servers!group=tutors", "read:users!group=staff", "read:hub")
	s, err := Builtin().ExpandFor(scopes, UserOwner("alice"), Client{})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func BenchmarkAllows(b *testing.B) {
	s := benchSet(b)
	groups := []string{"a", "b", "tutors"}
	b.Run("unfiltered", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			s.Allows("read:hub", Resource{}, nil)
		}
	})
	b.Run("user-filter", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			s.Allows("read:users", Resource{User: "u4"}, nil)
		}
	})
	b.Run("server-via-group", func(b *testing.B) {
		b.ReportAllocs()
		res := ServerResource("gina", "lab")
		for b.Loop() {
			s.Allows("access:servers", res, groups)
		}
	})
	b.Run("miss", func(b *testing.B) {
		b.ReportAllocs()
		res := ServerResource("nobody", "")
		for b.Loop() {
			s.Allows("access:servers", res, groups)
		}
	})
}
