package rbac

import (
	"slices"
	"testing"
)

func parsed(t *testing.T, scopes ...string) Set {
	t.Helper()
	s, err := Builtin().ParseSet(scopes)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func lookupFrom(groups map[string][]string) GroupLookup {
	return func(user string) []string {
		var out []string
		for g, members := range groups {
			if slices.Contains(members, user) {
				out = append(out, g)
			}
		}
		return out
	}
}

// TestIntersect follows scopes.py _intersect_expanded_scopes; every case
// runs in both directions.
func TestIntersect(t *testing.T) {
	tests := []struct {
		name        string
		left, right []string
		groups      map[string][]string // nil: no group resolution
		want        []string
	}{
		{"empty", nil, nil, nil, nil},
		{"empty and broad", nil, []string{"users"}, nil, nil},
		{"disjoint names", []string{"read:hub"}, []string{"proxy"}, nil, nil},
		{"same broad", []string{"proxy", "read:hub"}, []string{"read:hub"}, nil, []string{"read:hub"}},
		{"broad and filtered keeps the filtered", []string{"servers"}, []string{"servers!user=alice"}, nil, []string{"servers!user=alice"}},
		{"broad and several filters keeps them all", []string{"servers"}, []string{"servers!user=alice", "servers!group=g", "servers!server=bob/"}, nil,
			[]string{"servers!user=alice", "servers!group=g", "servers!server=bob/"}},
		{"users and groups only on one side", []string{"users!user=x", "users!group=y"}, nil, nil, nil},
		{"same user on both sides", []string{"users!user=x", "users!user=y", "users!group=y"}, []string{"users!user=x"}, nil, []string{"users!user=x"}},
		{"users and groups on both sides", []string{"users!user=x", "users!group=y"}, []string{"users!user=x", "users!group=y", "users!user=z"}, nil,
			[]string{"users!user=x", "users!group=y"}},
		{"user vs group without lookup is dropped", []string{"users!group=y", "users!user=z"}, []string{"users!user=x"}, nil, nil},
		{"group vs server without lookup is dropped", []string{"users!group=y", "users!user=z"}, []string{"users!server=x/y"}, nil, nil},
		{"server under user", []string{"users!group=y", "users!user=x"}, []string{"users!server=x/y"}, nil, []string{"users!server=x/y"}},
		{"server under user, no group", []string{"read:servers!user=abc"}, []string{"read:servers!server=abc/xyz"}, nil, []string{"read:servers!server=abc/xyz"}},
		{"user name is not a prefix match", []string{"read:servers!user=abc"}, []string{"read:servers!server=abcd/xyz"}, nil, nil},
		{"different services", []string{"access:services!service=a"}, []string{"access:services!service=b"}, nil, nil},
		{"same service", []string{"access:services!service=a", "access:services!service=b"}, []string{"access:services!service=a"}, nil, []string{"access:services!service=a"}},
		{"user in group", []string{"users!group=gx"}, []string{"users!user=ux"}, map[string][]string{"gx": {"ux"}}, []string{"users!user=ux"}},
		{"no such user", []string{"read:users!group=gx"}, []string{"read:users!user=nosuchuser"}, map[string][]string{}, nil},
		{"server of no such user", []string{"read:users!group=gx"}, []string{"read:users!server=nosuchuser/server"}, map[string][]string{}, nil},
		{"server of a group member", []string{"read:users!group=gx"}, []string{"read:users!server=ux/server"}, map[string][]string{"gx": {"ux"}},
			[]string{"read:users!server=ux/server"}},
		{"only the member's server", []string{"read:users!group=gx"}, []string{"read:users!server=ux/server", "read:users!user=uy"},
			map[string][]string{"gx": {"ux"}, "gy": {"uy"}}, []string{"read:users!server=ux/server"}},
		{"only the member user", []string{"read:users!group=gy"}, []string{"read:users!server=ux/server", "read:users!user=uy"},
			map[string][]string{"gx": {"ux"}, "gy": {"uy"}}, []string{"read:users!user=uy"}},
		{"group > user > server hierarchy",
			[]string{"read:servers!server=ux/server", "read:servers!group=gy"},
			[]string{"read:servers!server=uy/server", "read:servers!user=ux"},
			map[string][]string{"gx": {"ux"}, "gy": {"uy"}},
			[]string{"read:servers!server=ux/server", "read:servers!server=uy/server"}},
		{"group > user hierarchy",
			[]string{"read:servers!user=ux", "read:servers!group=gy"},
			[]string{"read:servers!user=uy", "read:servers!group=gx"},
			map[string][]string{"gx": {"ux"}, "gy": {"uy"}},
			[]string{"read:servers!user=ux", "read:servers!user=uy"}},
		{"per scope name", []string{"read:users!user=a", "servers"}, []string{"read:users", "servers!server=a/"}, nil,
			[]string{"read:users!user=a", "servers!server=a/"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var lookup GroupLookup
			if tt.groups != nil {
				lookup = lookupFrom(tt.groups)
			}
			l, r := parsed(t, tt.left...), parsed(t, tt.right...)
			assertScopes(t, Intersect(l, r, lookup), tt.want)
			assertScopes(t, Intersect(r, l, lookup), tt.want)
		})
	}
}

// TestIntersectLooksUpEachUserOnce checks the group lookup is memoized
// within one intersection and that inputs are left alone.
func TestIntersectLooksUpEachUserOnce(t *testing.T) {
	calls := map[string]int{}
	lookup := func(u string) []string { calls[u]++; return []string{"g"} }
	a := parsed(t, "read:users!group=g", "servers!group=g", "access:servers!group=g")
	b := parsed(t, "read:users!user=u", "servers!user=u", "access:servers!server=u/x")
	before := b.Strings()
	got := Intersect(a, b, lookup)
	assertScopes(t, got, []string{"read:users!user=u", "servers!user=u", "access:servers!server=u/x"})
	if calls["u"] != 1 {
		t.Errorf("lookup of u called %d times", calls["u"])
	}
	if !slices.Equal(before, b.Strings()) || len(a.Strings()) != 3 {
		t.Error("Intersect modified its inputs")
	}
}
