package rbac

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
)

// ErrScopesNotHeld is returned by [Engine.CheckTokenScopes] when a
// requested token scope exceeds what its owner holds.
var ErrScopesNotHeld = errors.New("requested scopes not held by the owner")

// DefaultCacheSize is the number of expanded scope sets an [Engine] keeps
// per cache when [EngineOptions.CacheSize] is zero.
const DefaultCacheSize = 10000

// EngineOptions configure an [Engine].
type EngineOptions struct {
	// Registry is the scope tree, with custom scopes. Default: the
	// built-in registry.
	Registry *Registry
	// Roles are the configured roles (JupyterHub.load_roles). The built-in
	// roles are always present; a configured role of the same name replaces
	// user, server or token, and may only add members to admin.
	Roles []Role
	// CacheSize bounds each of the owner and token caches; when full, a
	// cache is emptied and starts over. Default: DefaultCacheSize.
	CacheSize int
	// NoAdminAccess takes access:servers out of what the built-in admin
	// role grants (also where `shares` implies it), so that holding the
	// admin role does not let one open other users' servers: the hub's
	// default, unless its admin_access option is on. Access from other
	// roles (self, shares of one's own, configured roles) is kept.
	// Default: false, the admin role grants everything, as JupyterHub's.
	NoAdminAccess bool
}

// Engine resolves roles to expanded scopes for owners and tokens, caching
// the results. It is safe for concurrent use.
type Engine struct {
	reg           *Registry
	cacheSize     int
	noAdminAccess bool

	mu     sync.RWMutex
	roles  map[string]Role
	gen    uint64         // bumped by SetRoles; results computed under an older generation are not cached
	owners map[string]Set // owner key + role set → owner scopes
	tokens map[string]Set // owner key + role set + token scopes + client → effective scopes
}

// NewEngine validates the roles and returns an Engine.
func NewEngine(opts EngineOptions) (*Engine, error) {
	e := &Engine{reg: opts.Registry, cacheSize: opts.CacheSize, noAdminAccess: opts.NoAdminAccess}
	if e.reg == nil {
		e.reg = builtin
	}
	if e.cacheSize <= 0 {
		e.cacheSize = DefaultCacheSize
	}
	if err := e.SetRoles(opts.Roles); err != nil {
		return nil, err
	}
	return e, nil
}

// Registry returns the engine's scope tree.
func (e *Engine) Registry() *Registry { return e.reg }

// SetRoles replaces the configured roles (as on a config reload or a role
// change through the API) and empties the caches.
func (e *Engine) SetRoles(roles []Role) error {
	m := map[string]Role{}
	for _, r := range DefaultRoles() {
		m[r.Name] = r
	}
	seen := map[string]bool{}
	for _, r := range roles {
		if err := r.Validate(e.reg); err != nil {
			return err
		}
		if seen[r.Name] {
			return fmt.Errorf("role %q: %w", r.Name, ErrDuplicateRole)
		}
		seen[r.Name] = true
		r = cloneRole(r)
		if def, ok := m[r.Name]; ok {
			if r.Description == "" {
				r.Description = def.Description
			}
			if r.Scopes == nil || r.Name == RoleAdmin {
				r.Scopes = def.Scopes
			}
		}
		m[r.Name] = r
	}
	e.mu.Lock()
	e.roles = m
	e.gen++
	e.owners = map[string]Set{}
	e.tokens = map[string]Set{}
	e.mu.Unlock()
	return nil
}

func cloneRole(r Role) Role {
	r.Scopes = slices.Clone(r.Scopes)
	r.Users = slices.Clone(r.Users)
	r.Groups = slices.Clone(r.Groups)
	r.Services = slices.Clone(r.Services)
	return r
}

// Role returns a role by name.
func (e *Engine) Role(name string) (Role, bool) {
	e.mu.RLock()
	r, ok := e.roles[name]
	e.mu.RUnlock()
	if !ok {
		return Role{}, false
	}
	return cloneRole(r), true
}

// Roles returns every role, built-in and configured, sorted by name.
func (e *Engine) Roles() []Role {
	e.mu.RLock()
	out := make([]Role, 0, len(e.roles))
	for _, r := range e.roles {
		out = append(out, cloneRole(r))
	}
	e.mu.RUnlock()
	slices.SortFunc(out, func(a, b Role) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// ConfiguredRoleNames returns the names of the roles that configuration
// assigns to owner (Role.Users, Role.Groups via groups, Role.Services) plus
// the built-in ones it holds by default ([DefaultRoleNames]), sorted.
func (e *Engine) ConfiguredRoleNames(owner Owner, groups []string, admin bool) []string {
	out := DefaultRoleNames(owner, admin)
	e.mu.RLock()
	for _, r := range e.roles {
		if r.HasMember(owner, groups) {
			out = append(out, r.Name)
		}
	}
	e.mu.RUnlock()
	slices.Sort(out)
	return slices.Compact(out)
}

// RoleScopes returns the union of the raw scopes of the named roles,
// sorted; an unknown role is an error naming it.
func (e *Engine) RoleScopes(roleNames []string) ([]string, error) {
	e.mu.RLock()
	defer e.mu.RUnlock()
	return e.roleScopesLocked(roleNames)
}

func (e *Engine) roleScopesLocked(roleNames []string) ([]string, error) {
	var out []string
	for _, n := range roleNames {
		r, ok := e.roles[n]
		if !ok {
			return nil, fmt.Errorf("role %q: %w", n, ErrUnknownRole)
		}
		out = append(out, r.Scopes...)
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}

// OwnerScopes returns the expanded scopes of an owner holding roleNames:
// for a user, its own roles and those of its groups (the caller passes the
// union). Results are cached per owner and role set.
func (e *Engine) OwnerScopes(owner Owner, roleNames []string) (Set, error) {
	key := owner.key() + "|" + listKey(roleNames)
	e.mu.RLock()
	s, ok := e.owners[key]
	gen := e.gen
	var raw, adminRaw []string
	var err error
	if !ok {
		others := roleNames
		if e.noAdminAccess && slices.Contains(roleNames, RoleAdmin) {
			// The admin role is expanded on its own, without access:servers.
			others = slices.DeleteFunc(slices.Clone(roleNames), func(n string) bool { return n == RoleAdmin })
			adminRaw, err = e.roleScopesLocked([]string{RoleAdmin})
		}
		if err == nil {
			raw, err = e.roleScopesLocked(others)
		}
	}
	e.mu.RUnlock()
	if ok {
		return s, nil
	}
	if err != nil {
		return Set{}, fmt.Errorf("scopes of %s: %w", owner, err)
	}
	s, err = e.reg.ExpandFor(raw, owner, Client{})
	if err != nil {
		return Set{}, fmt.Errorf("scopes of %s: %w", owner, err)
	}
	if adminRaw != nil {
		admin, err := e.reg.ExpandFor(adminRaw, owner, Client{})
		if err != nil {
			return Set{}, fmt.Errorf("scopes of %s: %w", owner, err)
		}
		s = s.Union(admin.without("access:servers"))
	}
	e.store(&e.owners, key, s, gen)
	return s, nil
}

// store caches s unless the roles changed since gen, so that a result
// computed from old roles never outlives SetRoles.
func (e *Engine) store(cache *map[string]Set, key string, s Set, gen uint64) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.gen != gen {
		return
	}
	if len(*cache) >= e.cacheSize {
		*cache = map[string]Set{}
	}
	(*cache)[key] = s
}

// listKey encodes a set of strings (order and duplicates ignored) as an
// unambiguous cache key part: each element length-prefixed.
func listKey(names []string) string {
	if len(names) > 1 && !slices.IsSorted(names) {
		names = slices.Clone(names)
		slices.Sort(names)
	}
	var b strings.Builder
	prev := ""
	for i, n := range names {
		if i > 0 && n == prev {
			continue
		}
		prev = n
		b.WriteString(strconv.Itoa(len(n)))
		b.WriteByte(':')
		b.WriteString(n)
	}
	return b.String()
}

// Token is what the engine needs to know about an API or OAuth token.
type Token struct {
	// Owner is the user or service the token belongs to.
	Owner Owner
	// OwnerRoles are the role names the owner holds now (for a user, with
	// its groups' roles).
	OwnerRoles []string
	// Scopes are the token's raw scopes (JupyterHub ≥3 stores scopes on the
	// token; a token created with roles stores their scopes,
	// [Engine.RoleScopes]).
	Scopes []string
	// Client is the OAuth client that issued the token; zero for API
	// tokens.
	Client Client
	// Shared are expanded scopes the owner holds through shares of other
	// users' servers (JupyterHub ≥5, e.g. "access:servers!server=bob/");
	// they count as the owner's. For requests authenticated by cookie, add
	// them to [Engine.OwnerScopes] with [Set.Union].
	Shared []string
}

// TokenScopes returns a token's effective scopes at the time of use
// (scopes.py get_scopes_for): the token's expanded scopes, plus access to
// its OAuth client and the owner's identify scopes, intersected with the
// owner's current scopes. So a token never exceeds its owner, even after
// the owner loses a role. A token holding `inherit` gets exactly the
// owner's scopes. groups resolves group filters during the intersection
// (nil: no resolution); results that did not need it are cached.
func (e *Engine) TokenScopes(t Token, groups GroupLookup) (Set, error) {
	e.mu.RLock()
	gen := e.gen
	e.mu.RUnlock()
	owner, err := e.ownerWithShares(t)
	if err != nil {
		return Set{}, err
	}
	if slices.Contains(t.Scopes, ScopeInherit) {
		return owner, nil
	}
	key := t.Owner.key() + "|" + listKey(t.OwnerRoles) + "|" + listKey(t.Shared) + "|" + listKey(t.Scopes) + "|" + t.Client.key()
	e.mu.RLock()
	s, ok := e.tokens[key]
	e.mu.RUnlock()
	if ok {
		return s, nil
	}
	requested, err := e.tokenRequest(t)
	if err != nil {
		return Set{}, err
	}
	used := false
	var lookup GroupLookup
	if groups != nil {
		lookup = func(u string) []string { used = true; return groups(u) }
	}
	s = Intersect(requested, owner, lookup)
	if !used {
		e.store(&e.tokens, key, s, gen)
	}
	return s, nil
}

// ownerWithShares returns the token owner's current scopes, shares
// included.
func (e *Engine) ownerWithShares(t Token) (Set, error) {
	owner, err := e.OwnerScopes(t.Owner, t.OwnerRoles)
	if err != nil || len(t.Shared) == 0 {
		return owner, err
	}
	shared, err := e.reg.ParseSet(t.Shared)
	if err != nil {
		return Set{}, fmt.Errorf("shared scopes of %s: %w", t.Owner, err)
	}
	return owner.Union(shared), nil
}

// tokenRequest expands a token's own scopes with its client's access scope
// and the owner's identify scopes.
func (e *Engine) tokenRequest(t Token) (Set, error) {
	raw := slices.Clone(t.Scopes)
	raw = append(raw, t.Client.AccessScopes()...)
	raw = append(raw, IdentifyScopes(t.Owner)...)
	s, err := e.reg.ExpandFor(raw, t.Owner, t.Client)
	if err != nil {
		return Set{}, fmt.Errorf("token scopes of %s: %w", t.Owner, err)
	}
	return s, nil
}

// CheckTokenScopes checks scopes requested for a new token against what
// its owner holds now (scopes.py _check_token_scopes): every expanded
// requested scope must survive the intersection with the owner's scopes.
// `inherit` alone always passes. The error wraps ErrScopesNotHeld and
// lists the excess scopes; unknown scopes wrap ErrUnknownScope.
func (e *Engine) CheckTokenScopes(t Token, groups GroupLookup) error {
	raw := slices.DeleteFunc(slices.Clone(t.Scopes), func(s string) bool { return s == ScopeInherit })
	requested, err := e.reg.ExpandFor(raw, t.Owner, t.Client)
	if err != nil {
		return err
	}
	if requested.IsEmpty() {
		return nil
	}
	owner, err := e.ownerWithShares(t)
	if err != nil {
		return err
	}
	return checkSubset(requested, owner, groups, t.Owner)
}

// CheckSubset returns an error wrapping ErrScopesNotHeld, listing the
// excess, unless every scope of requested is also held by have (after
// intersection with group resolution). Use it to check that a requester
// does not hand out more than it holds itself.
func CheckSubset(requested, have Set, groups GroupLookup) error {
	return checkSubset(requested, have, groups, Owner{})
}

func checkSubset(requested, have Set, groups GroupLookup, owner Owner) error {
	inter := Intersect(requested, have, groups)
	var excess []string
	for _, s := range requested.Strings() {
		if !inter.Contains(s) {
			excess = append(excess, s)
		}
	}
	if len(excess) == 0 {
		return nil
	}
	if owner.Kind != OwnerNone {
		return fmt.Errorf("%w: %s not held by %s", ErrScopesNotHeld, strings.Join(excess, ","), owner)
	}
	return fmt.Errorf("%w: %s", ErrScopesNotHeld, strings.Join(excess, ","))
}
