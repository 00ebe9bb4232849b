package rbac

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
)

// Sentinel errors. They are wrapped with the offending scope, filter or role
// first, so that messages read `scope "foo": no such scope`; test with
// errors.Is.
var (
	// ErrUnknownScope is returned when a scope name is not defined (neither
	// built in nor a configured custom scope).
	ErrUnknownScope = errors.New("no such scope")
	// ErrInvalidFilter is returned when a scope filter is not one of
	// !user[=name], !server[=user/name], !group=name or !service[=name].
	ErrInvalidFilter = errors.New("invalid scope filter")
	// ErrInvalidCustomScope is returned for a malformed custom scope
	// definition (bad name, no description, unknown or non-custom subscope,
	// a cycle).
	ErrInvalidCustomScope = errors.New("invalid custom scope")
)

// Metascopes and other scope names with a special meaning.
const (
	// ScopeSelf stands for the owner's own resources: see [SelfScopes].
	ScopeSelf = "self"
	// ScopeInherit gives a token everything its owner has.
	ScopeInherit = "inherit"
	// ScopeNoScope grants nothing beyond identifying the owner.
	ScopeNoScope = "(no_scope)"
)

// ScopeDefinition describes one scope: what the OAuth consent page shows and
// which narrower scopes it implies.
type ScopeDefinition struct {
	// Description is the one-sentence text shown to users. Required for
	// custom scopes.
	Description string `json:"description"`
	// Subscopes are the scopes this one implies (transitively). Custom
	// scopes may only imply other custom scopes.
	Subscopes []string `json:"subscopes,omitempty"`
}

// builtinScopes is JupyterHub's scope tree (scopes.py scope_definitions,
// 5.5.1, plus start:servers from 6.0; docs/protocols.md, "RBAC: scopes and roles").
var builtinScopes = map[string]ScopeDefinition{
	ScopeNoScope: {Description: "Identify the owner of the requesting entity."},
	ScopeSelf:    {Description: "Your own resources"},
	ScopeInherit: {Description: "Anything you have access to"},
	"admin-ui":   {Description: "Access the admin page."},
	"admin:users": {
		Description: "Read, modify, create, and delete users and their authentication state, not including their servers or tokens. This is an extremely privileged scope and should be considered tantamount to superuser.",
		Subscopes:   []string{"admin:auth_state", "users", "read:roles:users", "delete:users"},
	},
	"admin:auth_state": {Description: "Read a user’s authentication state."},
	"users": {
		Description: "Read and write permissions to user models (excluding servers, tokens and authentication state).",
		Subscopes:   []string{"read:users", "list:users", "users:activity"},
	},
	"delete:users": {Description: "Delete users."},
	"list:users": {
		Description: "List users, including at least their names.",
		Subscopes:   []string{"read:users:name"},
	},
	"read:users": {
		Description: "Read user models (including the URL of the default server if it is running).",
		Subscopes:   []string{"read:users:name", "read:users:groups", "read:users:activity"},
	},
	"read:users:name":     {Description: "Read names of users."},
	"read:users:groups":   {Description: "Read users’ group membership."},
	"read:users:activity": {Description: "Read time of last user activity."},
	"read:roles": {
		Description: "Read role assignments.",
		Subscopes:   []string{"read:roles:users", "read:roles:services", "read:roles:groups"},
	},
	"read:roles:users":    {Description: "Read user role assignments."},
	"read:roles:services": {Description: "Read service role assignments."},
	"read:roles:groups":   {Description: "Read group role assignments."},
	"users:activity": {
		Description: "Update time of last user activity.",
		Subscopes:   []string{"read:users:activity"},
	},
	"admin:servers": {
		Description: "Read, start, stop, create and delete user servers and their state.",
		Subscopes:   []string{"admin:server_state", "servers"},
	},
	"admin:server_state": {Description: "Read and write users’ server state."},
	"servers": {
		Description: "Start and stop user servers.",
		Subscopes:   []string{"read:servers", "start:servers", "delete:servers"},
	},
	"read:servers": {
		Description: "Read users’ names and their server models (excluding the server state).",
		Subscopes:   []string{"read:users:name"},
	},
	"start:servers":  {Description: "Start and edit users' servers."},
	"delete:servers": {Description: "Stop and delete users' servers."},
	"tokens": {
		Description: "Read, write, create and delete user tokens.",
		Subscopes:   []string{"read:tokens"},
	},
	"read:tokens": {Description: "Read user tokens."},
	"admin:groups": {
		Description: "Read and write group information, create and delete groups.",
		Subscopes:   []string{"groups", "read:roles:groups", "delete:groups"},
	},
	"groups": {
		Description: "Read and write group information, including adding/removing any users to/from groups. Note: adding users to groups may affect permissions.",
		Subscopes:   []string{"read:groups", "list:groups"},
	},
	"list:groups": {
		Description: "List groups, including at least their names.",
		Subscopes:   []string{"read:groups:name"},
	},
	"read:groups": {
		Description: "Read group models.",
		Subscopes:   []string{"read:groups:name"},
	},
	"read:groups:name": {Description: "Read group names."},
	"delete:groups":    {Description: "Delete groups."},
	"admin:services": {
		Description: "Create, read, update, delete services, not including services defined from config files.",
		Subscopes:   []string{"list:services", "read:services", "read:roles:services"},
	},
	"list:services": {
		Description: "List services, including at least their names.",
		Subscopes:   []string{"read:services:name"},
	},
	"read:services": {
		Description: "Read service models.",
		Subscopes:   []string{"read:services:name"},
	},
	"read:services:name": {Description: "Read service names."},
	"read:hub":           {Description: "Read detailed information about the Hub."},
	"access:servers":     {Description: "Access user servers via API or browser."},
	"access:services":    {Description: "Access services via API or browser."},
	"users:shares": {
		Description: "Read and revoke a user's access to shared servers.",
		Subscopes:   []string{"read:users:shares"},
	},
	"read:users:shares": {Description: "Read servers shared with a user."},
	"groups:shares": {
		Description: "Read and revoke a group's access to shared servers.",
		Subscopes:   []string{"read:groups:shares"},
	},
	"read:groups:shares": {Description: "Read servers shared with a group."},
	"read:shares":        {Description: "Read information about shared access to servers."},
	"shares": {
		Description: "Manage access to shared servers.",
		Subscopes:   []string{"access:servers", "read:shares", "users:shares", "groups:shares"},
	},
	"proxy":        {Description: "Read information about the proxy’s routing table, sync the Hub with the proxy and notify the Hub about a new proxy."},
	"shutdown":     {Description: "Shutdown the hub."},
	"read:metrics": {Description: "Read prometheus metrics."},
}

// selfRawScopes is what the `self` metascope stands for, each filtered to
// the owning user (scopes.py _expand_self_scope, 6.0 form: expanded).
var selfRawScopes = []string{
	"read:users", "users:shares", "read:shares", "users:activity",
	"servers", "tokens", "access:servers",
}

// customScopePattern is JupyterHub's rule for custom scope names.
var customScopePattern = regexp.MustCompile(`^custom:[a-z0-9][a-z0-9_\-\*:]+[a-z0-9_\*]$`)

// Registry is a scope tree: the built-in scopes plus any custom scopes
// (JupyterHub.custom_scopes). It is immutable and safe for concurrent use.
type Registry struct {
	defs map[string]ScopeDefinition
	// closure maps each scope to itself and all scopes it implies, sorted.
	closure map[string][]string
	// self is the closure of selfRawScopes, sorted.
	self []string
}

var builtin = mustRegistry(nil)

func mustRegistry(custom map[string]ScopeDefinition) *Registry {
	r, err := NewRegistry(custom)
	if err != nil {
		panic(err) // only reachable for the built-in table, checked by tests
	}
	return r
}

// Builtin returns the registry of JupyterHub's built-in scopes.
func Builtin() *Registry { return builtin }

// NewRegistry returns the built-in scope tree extended by custom scopes.
// Custom scope names must match `custom:[a-z0-9][a-z0-9_-*:]+[a-z0-9_*]`,
// have a description, and imply only other custom scopes.
func NewRegistry(custom map[string]ScopeDefinition) (*Registry, error) {
	r := &Registry{
		defs:    make(map[string]ScopeDefinition, len(builtinScopes)+len(custom)),
		closure: make(map[string][]string, len(builtinScopes)+len(custom)),
	}
	for name, def := range builtinScopes {
		r.defs[name] = def
	}
	for name, def := range custom {
		if _, ok := builtinScopes[name]; ok {
			return nil, fmt.Errorf("custom scope %q: %w: redefines a built-in scope", name, ErrInvalidCustomScope)
		}
		if !customScopePattern.MatchString(name) {
			return nil, fmt.Errorf("custom scope %q: %w: the name must start with \"custom:\", contain only lowercase ascii letters, digits and -_:*, and end with a letter, digit, _ or *", name, ErrInvalidCustomScope)
		}
		if strings.TrimSpace(def.Description) == "" {
			return nil, fmt.Errorf("custom scope %q: %w: missing description", name, ErrInvalidCustomScope)
		}
		for _, sub := range def.Subscopes {
			if _, ok := custom[sub]; ok {
				continue
			}
			if _, ok := builtinScopes[sub]; ok {
				return nil, fmt.Errorf("custom scope %q: %w: non-custom subscope %q (use a role to grant scopes together)", name, ErrInvalidCustomScope, sub)
			}
			return nil, fmt.Errorf("custom scope %q: %w: subscope %q is not defined", name, ErrInvalidCustomScope, sub)
		}
		r.defs[name] = ScopeDefinition{Description: def.Description, Subscopes: slices.Clone(def.Subscopes)}
	}
	for name := range r.defs {
		c, err := r.computeClosure(name)
		if err != nil {
			return nil, err
		}
		r.closure[name] = c
	}
	var self []string
	for _, s := range selfRawScopes {
		self = append(self, r.closure[s]...)
	}
	slices.Sort(self)
	r.self = slices.Compact(self)
	return r, nil
}

// computeClosure walks the subscope graph depth first, rejecting cycles
// (JupyterHub would recurse forever on one).
func (r *Registry) computeClosure(name string) ([]string, error) {
	seen := map[string]bool{}
	onPath := map[string]bool{}
	var walk func(string) error
	walk = func(n string) error {
		if onPath[n] {
			return fmt.Errorf("custom scope %q: %w: subscope cycle", n, ErrInvalidCustomScope)
		}
		if seen[n] {
			return nil
		}
		seen[n], onPath[n] = true, true
		for _, sub := range r.defs[n].Subscopes {
			if err := walk(sub); err != nil {
				return err
			}
		}
		onPath[n] = false
		return nil
	}
	if err := walk(name); err != nil {
		return nil, err
	}
	out := make([]string, 0, len(seen))
	for n := range seen {
		out = append(out, n)
	}
	slices.Sort(out)
	return out, nil
}

// Definition returns the definition of a scope name (without filter).
func (r *Registry) Definition(name string) (ScopeDefinition, bool) {
	d, ok := r.defs[name]
	if !ok {
		return ScopeDefinition{}, false
	}
	d.Subscopes = slices.Clone(d.Subscopes)
	return d, true
}

// Names returns every defined scope name, sorted.
func (r *Registry) Names() []string {
	out := make([]string, 0, len(r.defs))
	for n := range r.defs {
		out = append(out, n)
	}
	slices.Sort(out)
	return out
}

// Subscopes returns the scope name itself and every scope it implies,
// sorted; nil for an unknown name.
func (r *Registry) Subscopes(name string) []string {
	return slices.Clone(r.closure[name])
}

// SelfScopes returns the unfiltered scope names that `self` grants on the
// owning user's own resources, sorted.
func (r *Registry) SelfScopes() []string { return slices.Clone(r.self) }

// FilterKind is the kind of resource a scope filter restricts to.
type FilterKind uint8

// Filter kinds, in the order JupyterHub lists them.
const (
	// FilterNone marks an unfiltered scope.
	FilterNone FilterKind = iota
	// FilterUser is `!user=<name>`: one user and all their servers.
	FilterUser
	// FilterServer is `!server=<user>/<server>`: one server ("alice/" is the
	// default server).
	FilterServer
	// FilterGroup is `!group=<name>`: the group itself and all its members.
	FilterGroup
	// FilterService is `!service=<name>`.
	FilterService
)

// String returns the filter keyword: "user", "server", "group", "service".
func (k FilterKind) String() string {
	switch k {
	case FilterUser:
		return "user"
	case FilterServer:
		return "server"
	case FilterGroup:
		return "group"
	case FilterService:
		return "service"
	}
	return ""
}

// rawScope is one parsed, validated raw scope.
type rawScope struct {
	base  string
	kind  FilterKind
	value string // empty for unfiltered and bare filters
	bare  bool   // `!user`, `!server`, `!service`: resolved against the owner
}

// parse splits and validates a raw scope: the name must be defined and the
// filter well formed (scopes.py _check_scopes_exist, plus 5.x's rejection of
// empty filter values; server values must name "<user>/<server>").
func (r *Registry) parse(scope string) (rawScope, error) {
	base, filter, hasFilter := strings.Cut(scope, "!")
	if _, ok := r.defs[base]; !ok {
		if base == "all" {
			return rawScope{}, fmt.Errorf("scope %q: %w (the draft scope 'all' is now called 'inherit')", scope, ErrUnknownScope)
		}
		return rawScope{}, fmt.Errorf("scope %q: %w", scope, ErrUnknownScope)
	}
	if !hasFilter {
		return rawScope{base: base}, nil
	}
	key, value, hasValue := strings.Cut(filter, "=")
	p := rawScope{base: base}
	switch key {
	case "user":
		p.kind = FilterUser
	case "server":
		p.kind = FilterServer
	case "group":
		p.kind = FilterGroup
	case "service":
		p.kind = FilterService
	default:
		return rawScope{}, fmt.Errorf("scope %q: %w: unknown filter %q", scope, ErrInvalidFilter, "!"+key)
	}
	if !hasValue {
		if p.kind == FilterGroup {
			return rawScope{}, fmt.Errorf("scope %q: %w: !group needs a group name", scope, ErrInvalidFilter)
		}
		p.bare = true
		return p, nil
	}
	if value == "" {
		return rawScope{}, fmt.Errorf("scope %q: %w: empty %s name", scope, ErrInvalidFilter, key)
	}
	if strings.ContainsFunc(value, func(c rune) bool { return c < 0x20 || c == 0x7f }) {
		return rawScope{}, fmt.Errorf("scope %q: %w: control character in %s name", scope, ErrInvalidFilter, key)
	}
	if p.kind == FilterServer {
		if u, _, ok := strings.Cut(value, "/"); !ok || u == "" {
			return rawScope{}, fmt.Errorf("scope %q: %w: a server filter is !server=<user>/<server>", scope, ErrInvalidFilter)
		}
	}
	p.value = value
	return p, nil
}

// Validate checks that every raw scope exists and has a well-formed filter.
// The error names the first offending scope.
func (r *Registry) Validate(scopes []string) error {
	for _, s := range scopes {
		if _, err := r.parse(s); err != nil {
			return err
		}
	}
	return nil
}
