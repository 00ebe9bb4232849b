package rbac

import (
	"fmt"
	"strconv"
	"strings"
)

// OwnerKind says whether scopes belong to a user or a service.
type OwnerKind uint8

// Owner kinds.
const (
	// OwnerNone is the zero Owner: no metascope or bare filter resolves.
	OwnerNone OwnerKind = iota
	// OwnerUser is a hub user.
	OwnerUser
	// OwnerService is a hub service.
	OwnerService
)

// Owner is the user or service that holds roles and owns tokens. It gives
// `self` and bare filters (`!user`, `!service`) their meaning.
type Owner struct {
	// Kind is OwnerUser or OwnerService.
	Kind OwnerKind
	// Name is the user or service name.
	Name string
}

// UserOwner returns the Owner for a user.
func UserOwner(name string) Owner { return Owner{Kind: OwnerUser, Name: name} }

// ServiceOwner returns the Owner for a service.
func ServiceOwner(name string) Owner { return Owner{Kind: OwnerService, Name: name} }

func (o Owner) user() string {
	if o.Kind == OwnerUser {
		return o.Name
	}
	return ""
}

func (o Owner) key() string {
	switch o.Kind {
	case OwnerUser:
		return "u" + strconv.Itoa(len(o.Name)) + ":" + o.Name
	case OwnerService:
		return "s" + strconv.Itoa(len(o.Name)) + ":" + o.Name
	}
	return "-"
}

// String returns "user alice" or "service cull".
func (o Owner) String() string {
	switch o.Kind {
	case OwnerUser:
		return "user " + o.Name
	case OwnerService:
		return "service " + o.Name
	}
	return "nobody"
}

// Client is the OAuth client that issued a token. The zero Client is the
// hub itself (client id "jupyterhub"): API tokens from /hub/token or the
// REST API. Set at most one field.
type Client struct {
	// Server is the full name "<user>/<server>" when the client is a
	// single-user server; bare `!server` filters resolve to it.
	Server string
	// Service is the service name when the client is a service; bare
	// `!service` filters resolve to it.
	Service string
}

func (c Client) key() string {
	return strconv.Itoa(len(c.Server)) + ":" + c.Server + strconv.Itoa(len(c.Service)) + ":" + c.Service
}

// AccessScopes returns the scope needed to use the OAuth client's own
// server or service (scopes.py access_scopes); none for the hub.
func (c Client) AccessScopes() []string {
	switch {
	case c.Server != "":
		return []string{"access:servers!server=" + c.Server}
	case c.Service != "":
		return []string{"access:services!service=" + c.Service}
	}
	return nil
}

// IdentifyScopes returns the scopes every credential gets to read its own
// owner's identity on GET /hub/api/user (scopes.py identify_scopes).
func IdentifyScopes(owner Owner) []string {
	switch owner.Kind {
	case OwnerUser:
		return []string{"read:users:groups!user=" + owner.Name, "read:users:name!user=" + owner.Name}
	case OwnerService:
		return []string{"read:services:name!service=" + owner.Name}
	}
	return nil
}

func errBareFilter(scope string) error {
	return fmt.Errorf("scope %q: %w: a bare filter needs an owner", scope, ErrInvalidFilter)
}

// Expand returns the closure of raw scopes in the built-in registry, with
// no owner: see [Registry.Expand].
func Expand(scopes []string) (Set, error) { return builtin.Expand(scopes) }

// Expand returns the closure of raw scopes with no owner: sub-scopes are
// added, `self` and bare filters (`!user`) are dropped, as JupyterHub does
// when it has no owner to resolve them to. An unknown scope or malformed
// filter is an error naming it.
func (r *Registry) Expand(scopes []string) (Set, error) {
	return r.ExpandFor(scopes, Owner{}, Client{})
}

// ExpandFor returns the full closure of raw scopes held by owner, for a
// token issued by client (the zero Client for roles and API tokens),
// following scopes.py expand_scopes:
//
//   - every scope implies its sub-scopes, with the same filter;
//   - a `!server=` filter applies to server-level scopes only: sub-scopes
//     about users (read:servers → read:users:name) are not carried with it
//     (JupyterHub ≥ 3.1; 3.0 granted read:users:name on the owner instead);
//   - bare filters resolve to the owner or client: `!user` → the owning user,
//     `!service` → the owning service or the client service, `!server` →
//     the client's server; with nothing to resolve to they are dropped;
//   - `self` becomes the owning user's own scopes ([Registry.SelfScopes]
//     filtered to `!user=<name>`); for services it grants nothing;
//   - `inherit` and `(no_scope)` stay in the set as markers.
func (r *Registry) ExpandFor(scopes []string, owner Owner, client Client) (Set, error) {
	b := newBuilder()
	self := false
	for _, s := range scopes {
		p, err := r.parse(s)
		if err != nil {
			return Set{}, err
		}
		if p.base == ScopeSelf && p.kind == FilterNone {
			self = true
			continue
		}
		if p.bare {
			p.value = resolveBare(p.kind, owner, client)
			if p.value == "" {
				continue
			}
		}
		r.addClosure(b, p)
	}
	if self && owner.Kind == OwnerUser && owner.Name != "" {
		for _, name := range r.self {
			b.add(name, FilterUser, owner.Name)
		}
	}
	return b.set(), nil
}

// addClosure adds p and everything it implies.
func (r *Registry) addClosure(b *setBuilder, p rawScope) {
	for _, name := range r.closure[p.base] {
		if p.kind == FilterServer && strings.HasPrefix(name, "read:user") {
			continue
		}
		b.add(name, p.kind, p.value)
	}
}

func resolveBare(kind FilterKind, owner Owner, client Client) string {
	switch kind {
	case FilterUser:
		return owner.user()
	case FilterService:
		if client.Service != "" {
			return client.Service
		}
		if owner.Kind == OwnerService {
			return owner.Name
		}
	case FilterServer:
		return client.Server
	}
	return ""
}
