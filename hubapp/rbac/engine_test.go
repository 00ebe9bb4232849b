package rbac

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
)

func TestEngineRoles(t *testing.T) {
	e := newEngine(t,
		Role{Name: "user", Scopes: []string{"self", "read:groups!group=everyone"}},
		Role{Name: "admin", Users: []string{"root"}},
		Role{Name: "staff", Description: "course staff", Scopes: []string{"read:users!group=students", "access:servers!group=students"}, Groups: []string{"tas"}, Users: []string{"prof"}},
		Role{Name: "culler", Scopes: []string{"list:users", "read:users:activity", "servers"}, Services: []string{"cull"}},
	)
	// user role replaced, description kept
	u, _ := e.Role("user")
	if !slices.Equal(u.Scopes, []string{"self", "read:groups!group=everyone"}) || u.Description != "Standard user privileges" {
		t.Errorf("user role = %+v", u)
	}
	// admin: members added, scopes kept
	a, _ := e.Role("admin")
	if !slices.Equal(a.Users, []string{"root"}) || len(a.Scopes) != len(adminScopes) {
		t.Errorf("admin role = %+v", a)
	}
	if _, ok := e.Role("nope"); ok {
		t.Error("Role(nope) found")
	}
	var names []string
	for _, r := range e.Roles() {
		names = append(names, r.Name)
	}
	if !slices.Equal(names, []string{"admin", "culler", "server", "staff", "token", "user"}) {
		t.Errorf("Roles() = %q", names)
	}

	tests := []struct {
		owner  Owner
		groups []string
		admin  bool
		want   []string
	}{
		{UserOwner("alice"), nil, false, []string{"user"}},
		{UserOwner("root"), nil, false, []string{"admin", "user"}},
		{UserOwner("alice"), nil, true, []string{"admin", "user"}},
		{UserOwner("tom"), []string{"tas"}, false, []string{"staff", "user"}},
		{UserOwner("prof"), nil, false, []string{"staff", "user"}},
		{ServiceOwner("cull"), nil, false, []string{"culler"}},
		{ServiceOwner("other"), nil, false, nil},
	}
	for _, tt := range tests {
		if got := e.ConfiguredRoleNames(tt.owner, tt.groups, tt.admin); !slices.Equal(got, tt.want) {
			t.Errorf("ConfiguredRoleNames(%v, %q, %v) = %q, want %q", tt.owner, tt.groups, tt.admin, got, tt.want)
		}
	}

	raw, err := e.RoleScopes([]string{"staff", "user", "staff"})
	if err != nil || !slices.Equal(raw, []string{"access:servers!group=students", "read:groups!group=everyone", "read:users!group=students", "self"}) {
		t.Errorf("RoleScopes = %q, %v", raw, err)
	}
	if _, err := e.RoleScopes([]string{"user", "ghost"}); !errors.Is(err, ErrUnknownRole) || !strings.Contains(err.Error(), "ghost") {
		t.Errorf("RoleScopes(ghost) = %v", err)
	}
	if _, err := e.OwnerScopes(UserOwner("alice"), []string{"ghost"}); !errors.Is(err, ErrUnknownRole) || !strings.Contains(err.Error(), "ghost") {
		t.Errorf("OwnerScopes(ghost) = %v", err)
	}

	// a TA: own roles plus the group's
	tom := ownerScopes(t, e, UserOwner("tom"), e.ConfiguredRoleNames(UserOwner("tom"), []string{"tas"}, false)...)
	if !tom.Allows("access:servers", ServerResource("sam", "lab"), []string{"students"}) {
		t.Error("TA cannot access a student's server")
	}
	if tom.Allows("access:servers", ServerResource("pat", ""), []string{"tas"}) {
		t.Error("TA can access another TA's server")
	}
	if !tom.Allows("servers", ServerResource("tom", "x"), nil) {
		t.Error("TA cannot start own server")
	}
}

func TestNewEngineErrors(t *testing.T) {
	tests := []struct {
		name  string
		roles []Role
		want  error
	}{
		{"bad name", []Role{{Name: "X"}}, ErrInvalidRoleName},
		{"unknown scope", []Role{{Name: "staff", Scopes: []string{"nope"}}}, ErrUnknownScope},
		{"bad filter", []Role{{Name: "staff", Scopes: []string{"users!usr=a"}}}, ErrInvalidFilter},
		{"duplicate", []Role{{Name: "staff"}, {Name: "staff"}}, ErrDuplicateRole},
		{"admin override", []Role{{Name: "admin", Scopes: []string{"proxy"}}}, ErrAdminRoleOverride},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := NewEngine(EngineOptions{Roles: tt.roles}); !errors.Is(err, tt.want) {
				t.Errorf("NewEngine = %v, want %v", err, tt.want)
			}
		})
	}
	// a failed SetRoles keeps the previous roles
	e := newEngine(t, Role{Name: "staff", Scopes: []string{"proxy"}})
	if err := e.SetRoles([]Role{{Name: "staff", Scopes: []string{"nope"}}}); err == nil {
		t.Fatal("SetRoles accepted an unknown scope")
	}
	if s := ownerScopes(t, e, UserOwner("a"), "staff"); !s.Allows("proxy", Resource{}, nil) {
		t.Error("failed SetRoles lost the old roles")
	}
}

func TestOwnerScopesCache(t *testing.T) {
	e, err := NewEngine(EngineOptions{Roles: []Role{{Name: "staff", Scopes: []string{"proxy"}}}, CacheSize: 3})
	if err != nil {
		t.Fatal(err)
	}
	alice := UserOwner("alice")
	a1 := ownerScopes(t, e, alice, "user", "staff")
	a2 := ownerScopes(t, e, alice, "staff", "user", "staff") // same role set, other order
	if !a1.Equal(a2) || !a1.Allows("proxy", Resource{}, nil) {
		t.Errorf("cached scopes differ: %q vs %q", a1.Strings(), a2.Strings())
	}
	// owners with the same roles get their own self scopes
	b := ownerScopes(t, e, UserOwner("bob"), "user", "staff")
	if b.Allows("servers", ServerResource("alice", ""), nil) || !b.Allows("servers", ServerResource("bob", ""), nil) {
		t.Error("bob got alice's cached scopes")
	}
	// a service named like a user does not share the user's entry
	if s := ownerScopes(t, e, ServiceOwner("alice"), "user", "staff"); s.Allows("servers", ServerResource("alice", ""), nil) {
		t.Error("service alice got user alice's scopes")
	}
	// overflowing the bounded cache keeps answers right
	for i := range 10 {
		name := fmt.Sprintf("u%d", i)
		if s := ownerScopes(t, e, UserOwner(name), "user"); !s.Allows("tokens", UserResource(name), nil) {
			t.Fatalf("%s lost own tokens scope", name)
		}
	}
	if len(e.owners) > 3 {
		t.Errorf("owner cache has %d entries, bound 3", len(e.owners))
	}
	// role changes invalidate cached expansions
	if err := e.SetRoles([]Role{{Name: "staff", Scopes: []string{"read:hub"}}}); err != nil {
		t.Fatal(err)
	}
	a3 := ownerScopes(t, e, alice, "user", "staff")
	if a3.Allows("proxy", Resource{}, nil) || !a3.Allows("read:hub", Resource{}, nil) {
		t.Errorf("stale scopes after SetRoles: %q", a3.Strings())
	}
}

func tokenScopes(t *testing.T, e *Engine, tok Token, groups GroupLookup) Set {
	t.Helper()
	s, err := e.TokenScopes(tok, groups)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestTokenScopes(t *testing.T) {
	e := newEngine(t,
		Role{Name: "staff", Scopes: []string{"read:users!group=students", "admin:server_state"}},
		Role{Name: "dashboard", Scopes: []string{"access:services!service=dash"}},
	)
	alice := UserOwner("alice")
	identify := []string{"read:users:groups!user=alice", "read:users:name!user=alice"}
	students := lookupFrom(map[string][]string{"students": {"sam"}})
	tests := []struct {
		name   string
		tok    Token
		groups GroupLookup
		want   []string
	}{
		{"inherit is the owner's scopes",
			Token{Owner: alice, OwnerRoles: []string{"user"}, Scopes: []string{"inherit"}}, nil, selfAliceScopes},
		{"inherit with other scopes is still everything",
			Token{Owner: alice, OwnerRoles: []string{"user"}, Scopes: []string{"read:hub", "inherit"}}, nil, selfAliceScopes},
		{"narrower token keeps its scopes plus identify",
			Token{Owner: alice, OwnerRoles: []string{"user"}, Scopes: []string{"read:servers!user"}}, nil,
			[]string{"read:servers!user=alice", "read:users:groups!user=alice", "read:users:name!user=alice"}},
		{"scopes the owner lacks are dropped",
			Token{Owner: alice, OwnerRoles: []string{"user"}, Scopes: []string{"proxy", "tokens!user=bob", "tokens!user=alice"}}, nil,
			append([]string{"tokens!user=alice", "read:tokens!user=alice"}, identify...)},
		{"admin:users narrowed to what self holds",
			Token{Owner: alice, OwnerRoles: []string{"user"}, Scopes: []string{"admin:users"}}, nil,
			withFilter("!user=alice", "read:users", "read:users:name", "read:users:groups", "read:users:activity", "users:activity")},
		{"broad request narrowed to the owner's filter",
			Token{Owner: alice, OwnerRoles: []string{"user"}, Scopes: []string{"servers"}}, nil,
			append(withFilter("!user=alice", "servers", "read:servers", "start:servers", "delete:servers"), identify...)},
		{"no roles: nothing, not even identify",
			Token{Owner: alice, Scopes: []string{"read:hub"}}, nil, nil},
		{"(no_scope) token identifies only",
			Token{Owner: alice, OwnerRoles: []string{"user"}, Scopes: []string{"(no_scope)"}}, nil, identify},
		{"server token: its own server only (role server)",
			Token{Owner: alice, OwnerRoles: []string{"user"}, Scopes: DefaultRoles()[2].Scopes, Client: Client{Server: "alice/"}}, nil,
			append([]string{"access:servers!server=alice/", "users:activity!user=alice", "read:users:activity!user=alice"}, identify...)},
		{"oauth token for own server gets access to it",
			Token{Owner: alice, OwnerRoles: []string{"user"}, Scopes: []string{"read:users:name!user"}, Client: Client{Server: "alice/gpu"}}, nil,
			append([]string{"access:servers!server=alice/gpu"}, identify...)},
		{"oauth token for another's server gets no access",
			Token{Owner: alice, OwnerRoles: []string{"user"}, Scopes: nil, Client: Client{Server: "bob/"}}, nil, identify},
		{"oauth token for a service needs access:services",
			Token{Owner: alice, OwnerRoles: []string{"user"}, Client: Client{Service: "dash"}}, nil, identify},
		{"oauth token for a service with a role granting it",
			Token{Owner: alice, OwnerRoles: []string{"user", "dashboard"}, Client: Client{Service: "dash"}}, nil,
			append([]string{"access:services!service=dash"}, identify...)},
		{"group filter resolved with a lookup",
			Token{Owner: alice, OwnerRoles: []string{"staff"}, Scopes: []string{"read:users!user=sam", "read:users!user=tom"}}, students,
			withFilter("!user=sam", "read:users", "read:users:name", "read:users:groups", "read:users:activity")},
		{"group filter without a lookup drops the user",
			Token{Owner: alice, OwnerRoles: []string{"staff"}, Scopes: []string{"read:users!user=sam"}}, nil, nil},
		{"service token",
			Token{Owner: ServiceOwner("cull"), OwnerRoles: []string{"admin"}, Scopes: []string{"list:users", "servers!server=a/"}}, nil,
			[]string{"list:users", "read:users:name", "servers!server=a/", "read:servers!server=a/", "start:servers!server=a/",
				"delete:servers!server=a/", "read:services:name!service=cull"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assertScopes(t, tokenScopes(t, e, tt.tok, tt.groups), tt.want)
			// cached answer is the same
			assertScopes(t, tokenScopes(t, e, tt.tok, tt.groups), tt.want)
		})
	}
	if _, err := e.TokenScopes(Token{Owner: alice, OwnerRoles: []string{"user"}, Scopes: []string{"bogus"}}, nil); !errors.Is(err, ErrUnknownScope) {
		t.Errorf("bad token scope: %v", err)
	}
	if _, err := e.TokenScopes(Token{Owner: alice, OwnerRoles: []string{"ghost"}}, nil); !errors.Is(err, ErrUnknownRole) {
		t.Errorf("bad owner role: %v", err)
	}
}

// TestTokenNeverExceedsOwner: a token's scopes are recomputed against the
// owner's current roles at each use.
func TestTokenNeverExceedsOwner(t *testing.T) {
	e := newEngine(t)
	tok := Token{Owner: UserOwner("alice"), OwnerRoles: []string{"user", "admin"}, Scopes: []string{"admin:users", "proxy"}}
	s := tokenScopes(t, e, tok, nil)
	if !s.Allows("admin:users", Resource{}, nil) || !s.Allows("proxy", Resource{}, nil) {
		t.Fatalf("admin's token lacks its scopes: %q", s.Strings())
	}
	tok.OwnerRoles = []string{"user"} // alice is no longer an admin
	s = tokenScopes(t, e, tok, nil)
	if held, _ := s.Has("admin:users"); held {
		t.Errorf("token kept admin:users after the owner lost it: %q", s.Strings())
	}
	if held, _ := s.Has("proxy"); held {
		t.Errorf("token kept proxy after the owner lost it")
	}
	// an inherit token follows the owner down too
	tok.Scopes = []string{"inherit"}
	if s := tokenScopes(t, e, tok, nil); s.Allows("admin:users", UserResource("bob"), nil) {
		t.Error("inherit token exceeds owner")
	}
}

// TestTokenGroupResultsNotCached: results that depended on group
// membership are recomputed, so membership changes apply at once.
func TestTokenGroupResultsNotCached(t *testing.T) {
	e := newEngine(t, Role{Name: "staff", Scopes: []string{"read:users!group=students"}})
	tok := Token{Owner: UserOwner("alice"), OwnerRoles: []string{"staff"}, Scopes: []string{"read:users!user=sam"}}
	members := map[string][]string{"students": {"sam"}}
	if s := tokenScopes(t, e, tok, lookupFrom(members)); !s.Allows("read:users", UserResource("sam"), nil) {
		t.Fatal("sam not readable while a student")
	}
	members["students"] = nil
	if s := tokenScopes(t, e, tok, lookupFrom(members)); s.Allows("read:users", UserResource("sam"), nil) {
		t.Error("sam still readable after leaving the group: stale cache")
	}
}

func TestCheckTokenScopes(t *testing.T) {
	e := newEngine(t, Role{Name: "staff", Scopes: []string{"read:users!group=students"}})
	alice := UserOwner("alice")
	students := lookupFrom(map[string][]string{"students": {"sam"}})
	tests := []struct {
		name    string
		tok     Token
		groups  GroupLookup
		wantErr error
		mention []string
	}{
		{"inherit", Token{Owner: alice, OwnerRoles: []string{"user"}, Scopes: []string{"inherit"}}, nil, nil, nil},
		{"nothing", Token{Owner: alice, OwnerRoles: []string{"user"}}, nil, nil, nil},
		{"own subset", Token{Owner: alice, OwnerRoles: []string{"user"}, Scopes: []string{"read:users!user=alice", "servers!server=alice/x", "self"}}, nil, nil, nil},
		{"bare filter resolves to owner", Token{Owner: alice, OwnerRoles: []string{"user"}, Scopes: []string{"tokens!user"}}, nil, nil, nil},
		{"excess", Token{Owner: alice, OwnerRoles: []string{"user"}, Scopes: []string{"read:users", "proxy", "inherit"}}, nil, ErrScopesNotHeld,
			[]string{"proxy", "read:users,", "user alice"}},
		{"other user", Token{Owner: alice, OwnerRoles: []string{"user"}, Scopes: []string{"access:servers!user=bob"}}, nil, ErrScopesNotHeld,
			[]string{"access:servers!user=bob"}},
		{"group member", Token{Owner: alice, OwnerRoles: []string{"staff"}, Scopes: []string{"read:users!user=sam"}}, students, nil, nil},
		{"group non-member", Token{Owner: alice, OwnerRoles: []string{"staff"}, Scopes: []string{"read:users!user=tom"}}, students, ErrScopesNotHeld,
			[]string{"read:users!user=tom"}},
		{"unknown scope", Token{Owner: alice, OwnerRoles: []string{"user"}, Scopes: []string{"read:userz"}}, nil, ErrUnknownScope, []string{"read:userz"}},
		{"unknown role", Token{Owner: alice, OwnerRoles: []string{"ghost"}, Scopes: []string{"read:hub"}}, nil, ErrUnknownRole, []string{"ghost"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := e.CheckTokenScopes(tt.tok, tt.groups)
			if !errors.Is(err, tt.wantErr) || (err == nil) != (tt.wantErr == nil) {
				t.Fatalf("CheckTokenScopes = %v, want %v", err, tt.wantErr)
			}
			for _, m := range tt.mention {
				if !strings.Contains(err.Error(), m) {
					t.Errorf("error %q does not mention %q", err, m)
				}
			}
		})
	}
	// a requester may not hand out more than it holds
	have := mustExpand(t, "tokens!user=alice", "read:users!group=g")
	if err := CheckSubset(mustExpand(t, "tokens!user=alice"), have, nil); err != nil {
		t.Error(err)
	}
	if err := CheckSubset(mustExpand(t, "tokens"), have, nil); !errors.Is(err, ErrScopesNotHeld) {
		t.Errorf("CheckSubset(tokens) = %v", err)
	}
}

// TestEngineConcurrent runs lookups against role changes; meaningful with
// -race.
func TestEngineConcurrent(t *testing.T) {
	e, err := NewEngine(EngineOptions{CacheSize: 8})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 200 {
				name := fmt.Sprintf("u%d", (g*7+i)%20)
				owner := UserOwner(name)
				s, err := e.OwnerScopes(owner, []string{"user"})
				if err != nil || !s.Allows("servers", ServerResource(name, ""), nil) {
					t.Errorf("OwnerScopes(%s) = %q, %v", name, s.Strings(), err)
					return
				}
				ts, err := e.TokenScopes(Token{Owner: owner, OwnerRoles: []string{"user"}, Scopes: []string{"read:users!user"}}, nil)
				if err != nil || !ts.Allows("read:users", UserResource(name), nil) {
					t.Errorf("TokenScopes(%s) = %q, %v", name, ts.Strings(), err)
					return
				}
				if i%50 == 0 {
					if err := e.SetRoles([]Role{{Name: "staff", Scopes: []string{"proxy"}}}); err != nil {
						t.Error(err)
						return
					}
				}
			}
		}()
	}
	wg.Wait()
}

func BenchmarkEngine(b *testing.B) {
	e, err := NewEngine(EngineOptions{Roles: []Role{{Name: "staff", Scopes: []string{"read:users!group=students", "access:servers!group=students"}}}})
	if err != nil {
		b.Fatal(err)
	}
	alice := UserOwner("alice")
	roles := []string{"staff", "user"}
	b.Run("OwnerScopes/cached", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := e.OwnerScopes(alice, roles); err != nil {
				b.Fatal(err)
			}
		}
	})
	tok := Token{Owner: alice, OwnerRoles: roles, Scopes: []string{"read:users!user", "access:servers!server=alice/"}}
	b.Run("TokenScopes/cached", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := e.TokenScopes(tok, nil); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("TokenScopes/uncached", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := e.reg.ExpandFor(tok.Scopes, alice, Client{}); err != nil {
				b.Fatal(err)
			}
			owner, _ := e.OwnerScopes(alice, roles)
			req, _ := e.tokenRequest(tok)
			Intersect(req, owner, nil)
		}
	})
}

// TestTokenCacheKeysUnambiguous: scope lists that concatenate alike must
// not share a cache entry.
func TestTokenCacheKeysUnambiguous(t *testing.T) {
	e := newEngine(t)
	owner := UserOwner("alice")
	a := tokenScopes(t, e, Token{Owner: owner, OwnerRoles: []string{"user"}, Scopes: []string{"read:users!user=alice", "read:tokens!user=alice"}}, nil)
	if !a.Allows("read:tokens", UserResource("alice"), nil) {
		t.Fatalf("token scopes = %q", a.Strings())
	}
	// a control character cannot smuggle a separator into a filter value
	if _, err := e.TokenScopes(Token{Owner: owner, OwnerRoles: []string{"user"}, Scopes: []string{"read:users!user=alice\x00read:tokens!user=alice"}}, nil); !errors.Is(err, ErrInvalidFilter) {
		t.Errorf("control character in a filter: %v", err)
	}
	if listKey([]string{"a:b", "c"}) == listKey([]string{"a", "b:c"}) || listKey([]string{"b", "a", "a"}) != listKey([]string{"a", "b"}) {
		t.Error("listKey ambiguous or order-sensitive")
	}
	c := tokenScopes(t, e, Token{Owner: owner, OwnerRoles: []string{"user"}, Scopes: []string{"access:servers!server"}, Client: Client{Server: "alice/"}}, nil)
	d := tokenScopes(t, e, Token{Owner: owner, OwnerRoles: []string{"user"}, Scopes: []string{"access:servers!server"}, Client: Client{Server: "alice/x"}}, nil)
	if c.Equal(d) {
		t.Error("tokens of different clients share a cache entry")
	}
}

// TestStaleResultsNotCached: a result computed before SetRoles must not be
// cached after it.
func TestStaleResultsNotCached(t *testing.T) {
	e := newEngine(t)
	e.mu.RLock()
	gen := e.gen
	e.mu.RUnlock()
	stale := mustExpand(t, "proxy")
	if err := e.SetRoles(nil); err != nil {
		t.Fatal(err)
	}
	e.store(&e.owners, "k", stale, gen)
	if _, ok := e.owners["k"]; ok {
		t.Error("result from an older role generation was cached")
	}
	e.store(&e.owners, "k", stale, gen+1)
	if _, ok := e.owners["k"]; !ok {
		t.Error("current result not cached")
	}
}

func TestTokenShares(t *testing.T) {
	e := newEngine(t)
	bob := UserOwner("bob")
	shared := []string{"access:servers!server=alice/"}
	// an inherit token gets what is shared with its owner
	s := tokenScopes(t, e, Token{Owner: bob, OwnerRoles: []string{"user"}, Scopes: []string{"inherit"}, Shared: shared}, nil)
	if !s.Allows("access:servers", ServerResource("alice", ""), nil) || s.Allows("access:servers", ServerResource("alice", "x"), nil) {
		t.Errorf("inherit token with share = %q", s.Strings())
	}
	// an OAuth token issued by alice's server to bob
	tok := Token{Owner: bob, OwnerRoles: []string{"user"}, Client: Client{Server: "alice/"}, Shared: shared}
	if s := tokenScopes(t, e, tok, nil); !s.Allows("access:servers", ServerResource("alice", ""), nil) {
		t.Errorf("oauth token for shared server = %q", s.Strings())
	}
	// once the share is revoked, the same token loses access
	tok.Shared = nil
	if s := tokenScopes(t, e, tok, nil); s.Allows("access:servers", ServerResource("alice", ""), nil) {
		t.Error("access survives revoking the share")
	}
	if err := e.CheckTokenScopes(Token{Owner: bob, OwnerRoles: []string{"user"}, Scopes: shared, Shared: shared}, nil); err != nil {
		t.Errorf("token for a shared server: %v", err)
	}
	if _, err := e.TokenScopes(Token{Owner: bob, OwnerRoles: []string{"user"}, Shared: []string{"access:servers!server"}}, nil); !errors.Is(err, ErrInvalidFilter) {
		t.Errorf("bare filter in shared scopes: %v", err)
	}
}
