package rbac

// Field is a set of JSON model keys (a bit mask) that a requester may see,
// after JupyterHub's _filter_model access maps (apihandlers/base.py,
// docs/protocols.md, "Models"). An empty Field means the whole entity is hidden
// (omitted from lists, 404 alone).
type Field uint32

// Model keys.
const (
	FieldKind Field = 1 << iota
	FieldName
	FieldAdmin
	FieldRoles
	FieldGroups
	FieldServer
	FieldPending
	FieldCreated
	FieldLastActivity
	FieldAuthState
	FieldServers
	FieldUsers
	FieldProperties
	FieldURL
	FieldPrefix
	FieldCommand
	FieldPID
	FieldInfo
	FieldDisplay
)

var fieldNames = [...]string{
	"kind", "name", "admin", "roles", "groups", "server", "pending", "created",
	"last_activity", "auth_state", "servers", "users", "properties", "url",
	"prefix", "command", "pid", "info", "display",
}

// Has reports whether every key of g is in f.
func (f Field) Has(g Field) bool { return f&g == g }

// Names returns the JSON keys in f, in model order.
func (f Field) Names() []string {
	var out []string
	for i, n := range fieldNames {
		if f&(1<<i) != 0 {
			out = append(out, n)
		}
	}
	return out
}

type access struct {
	scope  string
	fields Field
}

var (
	userAccess = [...]access{
		{"read:users", FieldKind | FieldName | FieldAdmin | FieldRoles | FieldGroups | FieldServer | FieldPending | FieldCreated | FieldLastActivity},
		{"read:users:name", FieldKind | FieldName | FieldAdmin},
		{"read:users:groups", FieldKind | FieldName | FieldGroups},
		{"read:users:activity", FieldKind | FieldName | FieldLastActivity},
		{"read:servers", FieldKind | FieldName | FieldServers},
		{"read:roles:users", FieldKind | FieldName | FieldRoles | FieldAdmin},
		{"admin:auth_state", FieldKind | FieldName | FieldAuthState},
	}
	groupAccess = [...]access{
		{"read:groups", FieldKind | FieldName | FieldProperties | FieldUsers},
		{"read:groups:name", FieldKind | FieldName},
		{"read:roles:groups", FieldKind | FieldName | FieldRoles},
	}
	serviceAccess = [...]access{
		{"read:services", FieldKind | FieldName | FieldAdmin | FieldURL | FieldPrefix | FieldCommand | FieldPID | FieldInfo | FieldDisplay},
		{"read:services:name", FieldKind | FieldName | FieldAdmin},
		{"read:roles:services", FieldKind | FieldName | FieldRoles | FieldAdmin},
	}
)

// UserFields returns the keys of user's model the set may see:
// `read:users:name` alone gives kind, name, admin; `read:users` most keys;
// `read:users:activity` last_activity; `read:servers` the servers map;
// `read:roles:users` roles; `admin:auth_state` (not admin:users as such)
// auth_state. Every scope counts only if its filter matches the user.
//
// The servers map lists only servers the set may read
// ([Set.ServerVisibility]); JupyterHub includes the key when FieldServers is
// granted or when some server is visible through a !server= filter.
func (s Set) UserFields(user string, groupsOfUser []string) Field {
	res := Resource{User: user}
	var f Field
	for _, a := range userAccess {
		if s.Allows(a.scope, res, groupsOfUser) {
			f |= a.fields
		}
	}
	return f
}

// GroupFields returns the keys of a group's model the set may see.
func (s Set) GroupFields(group string) Field {
	res := Resource{Group: group}
	var f Field
	for _, a := range groupAccess {
		if s.Allows(a.scope, res, nil) {
			f |= a.fields
		}
	}
	return f
}

// ServiceFields returns the keys of a service's model the set may see.
func (s Set) ServiceFields(service string) Field {
	res := Resource{Service: service}
	var f Field
	for _, a := range serviceAccess {
		if s.Allows(a.scope, res, nil) {
			f |= a.fields
		}
	}
	return f
}

// ServerVisibility says whether a server's model may be shown (in a user's
// servers map, or on its own: `read:servers`) and whether it includes the
// spawner state (`admin:server_state`). server is "<user>/<server>";
// groupsOfUser are the owner's groups.
func (s Set) ServerVisibility(server string, groupsOfUser []string) (visible, state bool) {
	res := Resource{Server: server}
	return s.Allows("read:servers", res, groupsOfUser), s.Allows("admin:server_state", res, groupsOfUser)
}
