package rbac

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
)

// Role errors.
var (
	// ErrInvalidRoleName is returned for a role name that is not 3–255
	// characters of [a-z0-9-_~.], starting with a letter and ending with a
	// letter or digit.
	ErrInvalidRoleName = errors.New("invalid role name")
	// ErrAdminRoleOverride is returned when a role definition named "admin"
	// changes the built-in admin role's description or scopes.
	ErrAdminRoleOverride = errors.New("the admin role cannot be changed")
	// ErrDuplicateRole is returned when two role definitions share a name.
	ErrDuplicateRole = errors.New("role defined twice")
	// ErrUnknownRole is returned when a role name is not defined.
	ErrUnknownRole = errors.New("no such role")
)

// Names of the built-in roles.
const (
	RoleUser   = "user"
	RoleAdmin  = "admin"
	RoleServer = "server"
	RoleToken  = "token"
)

// Role is a named set of scopes, assigned to users, groups and services
// (JupyterHub.load_roles).
type Role struct {
	// Name is the role name: 3–255 characters of lowercase letters, digits
	// and -_~. starting with a letter and ending with a letter or digit.
	Name string `json:"name"`
	// Description is shown to administrators. Optional.
	Description string `json:"description,omitempty"`
	// Scopes are the raw scopes the role grants; bare filters (`!user`)
	// resolve to each holder.
	Scopes []string `json:"scopes"`
	// Users are the user names the role is assigned to by configuration.
	Users []string `json:"users,omitempty"`
	// Groups are the group names the role is assigned to; every member
	// holds it.
	Groups []string `json:"groups,omitempty"`
	// Services are the service names the role is assigned to.
	Services []string `json:"services,omitempty"`
}

var roleNamePattern = regexp.MustCompile(`^[a-z][a-z0-9\-_~\.]{1,253}[a-z0-9]$`)

// adminScopes are the built-in admin role's scopes (roles.py, 5.x: with
// admin:services and shares).
var adminScopes = []string{
	"admin-ui", "admin:users", "admin:servers", "admin:services", "tokens",
	"admin:groups", "list:services", "read:services", "read:hub", "proxy",
	"shutdown", "access:services", "access:servers", "read:roles",
	"read:metrics", "shares",
}

// DefaultRoles returns the built-in roles (roles.py get_default_roles):
//
//   - user: `self`; every user holds it;
//   - admin: everything; users and services with admin=true hold it;
//   - server: what a single-user server's own token may do, its owner's
//     activity and access to that server only (≥4.0: `!server`, not
//     `!user`);
//   - token: `inherit`, the default for new API tokens.
func DefaultRoles() []Role {
	return []Role{
		{Name: RoleUser, Description: "Standard user privileges", Scopes: []string{ScopeSelf}},
		{Name: RoleAdmin, Description: "Elevated privileges (can do anything)", Scopes: slices.Clone(adminScopes)},
		{Name: RoleServer, Description: "Post activity only", Scopes: []string{"users:activity!user", "access:servers!server"}},
		{Name: RoleToken, Description: "Token with same permissions as its owner", Scopes: []string{ScopeInherit}},
	}
}

// IsDefaultRole reports whether name is a built-in role (which cannot be
// deleted).
func IsDefaultRole(name string) bool {
	switch name {
	case RoleUser, RoleAdmin, RoleServer, RoleToken:
		return true
	}
	return false
}

// DefaultRoleNames returns the built-in roles an owner holds by being who
// it is (roles.py assign_default_roles): users always hold `user`, admins
// (users or services) also `admin`.
func DefaultRoleNames(owner Owner, admin bool) []string {
	var out []string
	if owner.Kind == OwnerUser {
		out = append(out, RoleUser)
	}
	if admin && owner.Kind != OwnerNone {
		out = append(out, RoleAdmin)
	}
	return out
}

// Validate checks the role name and that every scope exists with a
// well-formed filter in reg (nil: the built-in registry).
func (r Role) Validate(reg *Registry) error {
	if reg == nil {
		reg = builtin
	}
	if !roleNamePattern.MatchString(r.Name) {
		return fmt.Errorf("role %q: %w: use 3-255 characters of lowercase ascii letters, digits and -_~., starting with a letter and ending with a letter or digit", r.Name, ErrInvalidRoleName)
	}
	if err := reg.Validate(r.Scopes); err != nil {
		return fmt.Errorf("role %q: %w", r.Name, err)
	}
	if r.Name == RoleAdmin {
		def := DefaultRoles()[1]
		if (r.Description != "" && r.Description != def.Description) ||
			(r.Scopes != nil && !sameStrings(r.Scopes, def.Scopes)) {
			return fmt.Errorf("role %q: %w", r.Name, ErrAdminRoleOverride)
		}
	}
	return nil
}

func sameStrings(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(slices.Compact(a), slices.Compact(b))
}

// HasMember reports whether the role is assigned by configuration to owner,
// directly or (for users) through one of groups.
func (r Role) HasMember(owner Owner, groups []string) bool {
	switch owner.Kind {
	case OwnerUser:
		if slices.Contains(r.Users, owner.Name) {
			return true
		}
		for _, g := range groups {
			if slices.Contains(r.Groups, g) {
				return true
			}
		}
	case OwnerService:
		return slices.Contains(r.Services, owner.Name)
	}
	return false
}
