package rbac

import "strings"

// GroupLookup returns the names of the groups a user belongs to. The store
// provides it; Intersect calls it at most once per user.
type GroupLookup func(user string) []string

// Intersect returns the access held by both a and b, as scopes.py
// _intersect_expanded_scopes computes it (5.x):
//
//   - an unfiltered scope on one side keeps the other side's filters
//     (`servers` ∩ `servers!user=alice` = `servers!user=alice`);
//   - filters of the same kind intersect by name;
//   - a server under a user (`!server=alice/x` ∩ `!user=alice`) keeps the
//     server;
//   - with groups != nil, a user or server on one side whose owner is a
//     member of a group on the other side is kept (`!user=bob` ∩
//     `!group=staff` = `!user=bob` when bob is in staff). Without it such
//     pairs are dropped: lower access than intended, never more.
//
// Intersect is symmetric.
func Intersect(a, b Set, groups GroupLookup) Set {
	out := Set{m: map[string]*filter{}}
	var cache map[string][]string
	groupsOf := func(user string) []string {
		if g, ok := cache[user]; ok {
			return g
		}
		if cache == nil {
			cache = map[string][]string{}
		}
		g := groups(user)
		cache[user] = g
		return g
	}
	if groups == nil {
		groupsOf = nil
	}
	for base, fa := range a.m {
		fb := b.m[base]
		if fb == nil {
			continue
		}
		switch {
		case fa.all:
			out.m[base] = fb // filters are immutable once in a Set: sharing is safe
			continue
		case fb.all:
			out.m[base] = fa
			continue
		}
		if f := intersectFilters(fa, fb, groupsOf); !f.empty() {
			out.m[base] = f
		}
	}
	return out
}

func intersectFilters(fa, fb *filter, groupsOf func(string) []string) *filter {
	res := &filter{}
	for _, k := range filterKinds {
		na, nb := fa.names(k), fb.names(k)
		if na == nil || nb == nil {
			continue
		}
		common := map[string]struct{}{}
		for n := range na {
			if contains(nb, n) {
				common[n] = struct{}{}
			}
		}
		res.setNames(k, common)
	}
	servers := cloneNames(res.servers)
	users := cloneNames(res.users)
	for _, pair := range [2][2]*filter{{fa, fb}, {fb, fa}} {
		x, y := pair[0], pair[1]
		if x.servers != nil && !sameNames(x.servers, y.servers) {
			for srv := range x.servers {
				if contains(servers, srv) {
					continue
				}
				owner, _, _ := strings.Cut(srv, "/")
				if contains(y.users, owner) ||
					(groupsOf != nil && len(y.groups) > 0 && anyIn(groupsOf(owner), y.groups)) {
					servers[srv] = struct{}{}
				}
			}
		}
		if groupsOf != nil && x.users != nil && len(y.groups) > 0 && !sameNames(x.users, y.users) {
			for u := range x.users {
				if !contains(users, u) && anyIn(groupsOf(u), y.groups) {
					users[u] = struct{}{}
				}
			}
		}
	}
	res.servers = nilIfEmpty(servers)
	res.users = nilIfEmpty(users)
	res.groups = nilIfEmpty(res.groups)
	res.services = nilIfEmpty(res.services)
	return res
}

func cloneNames(m map[string]struct{}) map[string]struct{} {
	out := make(map[string]struct{}, len(m))
	for k := range m {
		out[k] = struct{}{}
	}
	return out
}

func nilIfEmpty(m map[string]struct{}) map[string]struct{} {
	if len(m) == 0 {
		return nil
	}
	return m
}

func anyIn(names []string, m map[string]struct{}) bool {
	for _, n := range names {
		if contains(m, n) {
			return true
		}
	}
	return false
}
