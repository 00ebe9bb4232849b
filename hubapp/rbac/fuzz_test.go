package rbac

import (
	"errors"
	"strings"
	"testing"
)

// String prints a parsed raw scope the way it is written.
func (p rawScope) String() string {
	switch {
	case p.kind == FilterNone:
		return p.base
	case p.bare:
		return p.base + "!" + p.kind.String()
	}
	return p.base + "!" + p.kind.String() + "=" + p.value
}

// FuzzScope: a scope string parses or fails with ErrUnknownScope/ErrInvalidFilter; a parsed scope
// prints back to itself; a filtered expanded scope allows exactly the resources its filter names;
// Expand and ParseSet agree: the expanded set prints to scopes that parse back to an equal set.
func FuzzScope(f *testing.F) {
	for _, s := range []string{"read:users", "read:users!user=alice", "read:users!user", "servers!server=alice/", "servers!server=/x",
		"users!group=g", "users!group", "users!group=", "read:users!user=a!b", "read:users!user=a=b", "self", "inherit", "all",
		"admin:users!service=s", "read:users!user=\x00", "tokens!sv=1", "access:servers!server=alice/lab"} {
		f.Add(s)
	}
	reg := Builtin()
	f.Fuzz(func(t *testing.T, scope string) {
		p, err := reg.parse(scope)
		if err != nil {
			if !errors.Is(err, ErrUnknownScope) && !errors.Is(err, ErrInvalidFilter) {
				t.Fatalf("parse(%q): %v is neither ErrUnknownScope nor ErrInvalidFilter", scope, err)
			}
			if _, err := Expand([]string{scope}); err == nil {
				t.Fatalf("Expand accepts %q, which parse refuses", scope)
			}
			return
		}
		if got := p.String(); got != scope {
			t.Fatalf("parse(%q) prints back as %q", scope, got)
		}
		set, err := reg.ParseSet([]string{scope})
		if p.bare {
			if err == nil {
				t.Fatalf("ParseSet accepts the bare filter %q", scope)
			}
			return
		}
		if err != nil {
			t.Fatalf("ParseSet(%q): %v", scope, err)
		}
		if strs := set.Strings(); len(strs) != 1 || strs[0] != scope {
			t.Fatalf("ParseSet(%q).Strings() = %q", scope, strs)
		}
		var res Resource
		switch p.kind {
		case FilterUser:
			res = UserResource(p.value)
		case FilterServer:
			res = Resource{Server: p.value}
		case FilterGroup:
			res = Resource{Group: p.value}
		case FilterService:
			res = Resource{Service: p.value}
		}
		if !set.Allows(p.base, res, nil) {
			t.Fatalf("%q does not allow %+v", scope, res)
		}
		if p.kind != FilterNone && set.Allows(p.base, Resource{}, nil) {
			t.Fatalf("filtered %q allows the zero resource", scope)
		}
		if p.kind == FilterUser && set.Allows(p.base, UserResource(p.value+"x"), nil) {
			t.Fatalf("%q allows user %q", scope, p.value+"x")
		}

		exp, err := Expand([]string{scope})
		if err != nil {
			t.Fatalf("Expand(%q): %v", scope, err)
		}
		back, err := reg.ParseSet(exp.Strings())
		if err != nil || !back.Equal(exp) {
			t.Fatalf("Expand(%q) = %q does not parse back to itself: %v", scope, exp.Strings(), err)
		}
		// A server filter does not carry user-level scopes (JupyterHub ≥ 3.1); self is a metascope.
		if p.base != ScopeSelf && (p.kind != FilterServer || !strings.HasPrefix(p.base, "read:user")) && !exp.Allows(p.base, res, nil) {
			t.Fatalf("Expand(%q) lost the scope itself: %q", scope, exp.Strings())
		}
	})
}
