package rbac

import (
	"slices"
	"strings"
)

// Set is a set of expanded scopes: for each scope name, either unfiltered
// access or access restricted to named users, servers, groups and services.
// It is JupyterHub's "parsed scopes" form, already reduced (an unfiltered
// scope absorbs its filtered variants).
//
// A Set is immutable once built and safe for concurrent use; the zero Set
// holds no scope. Checking a Set ([Set.Allows], [Set.Has]) does not allocate.
type Set struct {
	m map[string]*filter
}

// filter is the access held for one scope name. all wins over everything;
// otherwise access is the union of the named resources.
type filter struct {
	all      bool
	users    map[string]struct{}
	servers  map[string]struct{} // "<user>/<server>"
	groups   map[string]struct{}
	services map[string]struct{}
}

func (f *filter) names(k FilterKind) map[string]struct{} {
	switch k {
	case FilterUser:
		return f.users
	case FilterServer:
		return f.servers
	case FilterGroup:
		return f.groups
	case FilterService:
		return f.services
	}
	return nil
}

func (f *filter) setNames(k FilterKind, m map[string]struct{}) {
	switch k {
	case FilterUser:
		f.users = m
	case FilterServer:
		f.servers = m
	case FilterGroup:
		f.groups = m
	case FilterService:
		f.services = m
	}
}

func (f *filter) empty() bool {
	return !f.all && len(f.users) == 0 && len(f.servers) == 0 && len(f.groups) == 0 && len(f.services) == 0
}

var filterKinds = [...]FilterKind{FilterUser, FilterServer, FilterGroup, FilterService}

// setBuilder accumulates expanded scopes into a Set.
type setBuilder struct {
	m map[string]*filter
}

func newBuilder() *setBuilder { return &setBuilder{m: map[string]*filter{}} }

func (b *setBuilder) filterFor(base string) *filter {
	f := b.m[base]
	if f == nil {
		f = &filter{}
		b.m[base] = f
	}
	return f
}

// add records base with one filter; kind FilterNone means unfiltered.
func (b *setBuilder) add(base string, kind FilterKind, value string) {
	f := b.filterFor(base)
	if f.all {
		return
	}
	if kind == FilterNone {
		*f = filter{all: true}
		return
	}
	m := f.names(kind)
	if m == nil {
		m = map[string]struct{}{}
		f.setNames(kind, m)
	}
	m[value] = struct{}{}
}

func (b *setBuilder) set() Set {
	for k, f := range b.m {
		if f.empty() {
			delete(b.m, k)
		}
	}
	return Set{m: b.m}
}

// ParseSet builds a Set from already expanded scopes (as stored or as
// returned by [Set.Strings]), without expanding sub-scopes or metascopes.
// Every scope must be defined in r and carry a full filter (no bare !user).
func (r *Registry) ParseSet(expanded []string) (Set, error) {
	b := newBuilder()
	for _, s := range expanded {
		p, err := r.parse(s)
		if err != nil {
			return Set{}, err
		}
		if p.bare {
			return Set{}, errBareFilter(s)
		}
		b.add(p.base, p.kind, p.value)
	}
	return b.set(), nil
}

// Resource names the object an API request acts on. Set exactly one field;
// the zero Resource means "no particular resource" (an unfiltered endpoint
// such as POST /hub/api/users), which only an unfiltered scope allows.
type Resource struct {
	// User is a user name (/users/{name}, /users/{name}/tokens, ...).
	User string
	// Server is a server's full name "<user>/<server>" ("alice/" for the
	// default server), exactly as in a !server= filter. A server filter,
	// a filter on its owner, or on a group of its owner all allow it.
	Server string
	// Group is a group name (/groups/{name}).
	Group string
	// Service is a service name (/services/{name}).
	Service string
}

// UserResource returns the Resource for a user.
func UserResource(name string) Resource { return Resource{User: name} }

// ServerResource returns the Resource for a user's server ("" is the
// default server).
func ServerResource(user, server string) Resource {
	return Resource{Server: user + "/" + server}
}

// IsZero reports whether r names no resource.
func (r Resource) IsZero() bool {
	return r.User == "" && r.Server == "" && r.Group == "" && r.Service == ""
}

// Allows reports whether the set grants scope on res: the scope is held
// unfiltered, or filtered to this user, this server (or its owner), a group
// in groupsOfUser (the user's, or the server owner's, groups), this group
// or this service. A zero Resource is allowed only by the unfiltered scope.
// Allows does not allocate.
func (s Set) Allows(scope string, res Resource, groupsOfUser []string) bool {
	f := s.m[scope]
	if f == nil {
		return false
	}
	if f.all {
		return true
	}
	return f.matches(res, groupsOfUser)
}

func (f *filter) matches(res Resource, groupsOfUser []string) bool {
	var user string
	switch {
	case res.Server != "":
		if contains(f.servers, res.Server) {
			return true
		}
		i := strings.IndexByte(res.Server, '/')
		if i <= 0 {
			return false
		}
		user = res.Server[:i]
	case res.User != "":
		user = res.User
	case res.Group != "":
		return contains(f.groups, res.Group)
	case res.Service != "":
		return contains(f.services, res.Service)
	default:
		return false
	}
	if contains(f.users, user) {
		return true
	}
	if len(f.groups) > 0 {
		for _, g := range groupsOfUser {
			if contains(f.groups, g) {
				return true
			}
		}
	}
	return false
}

func contains(m map[string]struct{}, k string) bool {
	_, ok := m[k]
	return ok
}

// Has reports whether the set holds scope at all (any) and whether only
// with filters (filtered). Handlers use it to answer 404 (a filtered scope
// that misses the resource) rather than 403 (no such scope).
func (s Set) Has(scope string) (any bool, filtered bool) {
	f := s.m[scope]
	if f == nil {
		return false, false
	}
	return true, !f.all
}

// Contains reports whether the set holds exactly this expanded scope
// string ("servers", "read:users!user=alice"); an unfiltered scope
// contains all its filtered variants.
func (s Set) Contains(expanded string) bool {
	base, flt, ok := strings.Cut(expanded, "!")
	f := s.m[base]
	if f == nil {
		return false
	}
	if f.all {
		return true
	}
	if !ok {
		return false
	}
	key, value, _ := strings.Cut(flt, "=")
	for _, k := range filterKinds {
		if k.String() == key {
			return contains(f.names(k), value)
		}
	}
	return false
}

// Len returns the number of scope names held (filtered or not).
func (s Set) Len() int { return len(s.m) }

// IsEmpty reports whether the set holds no scope.
func (s Set) IsEmpty() bool { return len(s.m) == 0 }

// Strings returns the expanded scopes, sorted: "name" for unfiltered
// scopes, one "name!kind=value" per filter otherwise. This is the form the
// REST API shows in token and identity models.
func (s Set) Strings() []string {
	var out []string
	for base, f := range s.m {
		if f.all {
			out = append(out, base)
			continue
		}
		for _, k := range filterKinds {
			for v := range f.names(k) {
				out = append(out, base+"!"+k.String()+"="+v)
			}
		}
	}
	slices.Sort(out)
	return out
}

// String returns the sorted expanded scopes joined by spaces, as in an
// OAuth scope parameter.
func (s Set) String() string { return strings.Join(s.Strings(), " ") }

// Equal reports whether two sets grant exactly the same access.
func (s Set) Equal(o Set) bool {
	if len(s.m) != len(o.m) {
		return false
	}
	for base, f := range s.m {
		g := o.m[base]
		if g == nil || f.all != g.all {
			return false
		}
		for _, k := range filterKinds {
			if !sameNames(f.names(k), g.names(k)) {
				return false
			}
		}
	}
	return true
}

func sameNames(a, b map[string]struct{}) bool {
	if len(a) != len(b) {
		return false
	}
	for k := range a {
		if !contains(b, k) {
			return false
		}
	}
	return true
}

// Union returns the scopes held by either set.
func (s Set) Union(o Set) Set {
	if len(o.m) == 0 {
		return s
	}
	if len(s.m) == 0 {
		return o
	}
	b := newBuilder()
	for _, x := range []Set{s, o} {
		for base, f := range x.m {
			if f.all {
				b.add(base, FilterNone, "")
				continue
			}
			for _, k := range filterKinds {
				for v := range f.names(k) {
					b.add(base, k, v)
				}
			}
		}
	}
	return b.set()
}

// without returns s minus every access to the scope name base (filtered or not).
func (s Set) without(base string) Set {
	if _, ok := s.m[base]; !ok {
		return s
	}
	m := make(map[string]*filter, len(s.m)-1)
	for k, f := range s.m {
		if k != base {
			m[k] = f
		}
	}
	return Set{m: m}
}

// Filter describes the access a Set holds for one scope name, for code that
// must enumerate it (listing endpoints, database queries).
type Filter struct {
	// All is true for unfiltered access; the name lists are then empty.
	All bool
	// Users, Servers, Groups and Services are the filter values, sorted.
	Users, Servers, Groups, Services []string
}

// Filter returns the access held for scope and whether it is held at all.
func (s Set) Filter(scope string) (Filter, bool) {
	f := s.m[scope]
	if f == nil {
		return Filter{}, false
	}
	if f.all {
		return Filter{All: true}, true
	}
	return Filter{
		Users:    sortedKeys(f.users),
		Servers:  sortedKeys(f.servers),
		Groups:   sortedKeys(f.groups),
		Services: sortedKeys(f.services),
	}, true
}

func sortedKeys(m map[string]struct{}) []string {
	if len(m) == 0 {
		return nil
	}
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
