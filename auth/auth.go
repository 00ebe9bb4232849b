// Package auth is the contract between the hub app (hubapp) and the
// authenticators, the guest modules in the Caddy namespace
// jupyterhub.authenticators.*.
//
// An authenticator turns what a person typed or what an identity provider
// said into a normalized, authorized JupyterHub user name. The checks that
// are common to every authenticator — username normalization and
// validation, allowed_users, admin_users, blocked_users, allow_all — live in
// Options, which each module embeds, so that they have the same names and
// meaning everywhere (JupyterHub's Authenticator traits; docs/protocols.md,
// "Authenticator options"). The form authenticators of this repository live in the
// subpackages auth/dummy and auth/pam; the hub app blank-imports them.
//
// How the hub app uses an authenticator:
//
//	// field of the app, default {"authenticator":"pam"}:
//	AuthenticatorRaw json.RawMessage `json:"authenticator,omitempty" caddy:"namespace=jupyterhub.authenticators inline_key=authenticator"`
//	// Caddyfile: caddyfile.UnmarshalModule(d, "jupyterhub.authenticators."+name)
//	// Start: if w := auth.StartupWarning(a); w != "" { log it }
//	// login form:
//	u, err := a.(auth.FormAuthenticator).Authenticate(auth.WithRemoteIP(ctx, ip), name, password)
//	// errors.Is(err, ErrInvalidCredentials) → "Invalid username or password"
//	// errors.Is(err, ErrInvalidUsername)    → show err.Error(), it says why
//	// errors.Is(err, ErrNotAllowed)         → 403 page; log err
//	// other errors                          → 500 page; log err
//	// then, if a.Common().CreateSystemUsers: a.Common().EnsureSystemUser(ctx, u.Name) before
//	// the user is recorded (also for users added through the API and allowed_users/admin_users)
//	// around every start and stop, if a implements SpawnHooks: PreSpawnStart / PostSpawnStop
//
// Where this package deliberately differs from JupyterHub:
//   - Names are trimmed, not refused, for surrounding white space; names
//     with control characters, longer than 255 bytes, or starting with '.'
//     or '-' are refused (they make bad path segments and command
//     arguments).
//   - username_pattern must match the whole name (JupyterHub's re.match
//     anchors only the start).
//   - JupyterHub 5 rules throughout: allow_all defaults to false, admin_users
//     may always log in, blocked_users beats everything, allowed_groups adds
//     to allowed_users.
//   - PAM checks the password of the normalized (lower-cased) account name,
//     so the hub user is always the account that proved its password;
//     JupyterHub asks PAM about the name as typed and lower-cases afterwards.
package auth

import (
	"context"
	"errors"
)

// Authenticator is implemented by every jupyterhub.authenticators.* module.
type Authenticator interface {
	// Common returns the options shared by all authenticators (allow/admin/block lists...).
	Common() *Options
}

// FormAuthenticator checks a username and password typed into the hub's login form.
type FormAuthenticator interface {
	Authenticator
	// Authenticate returns the normalized, authorized user, or an error wrapping one of the sentinels.
	//
	// Errors that wrap none of the sentinels are failures of the system
	// (PAM misconfigured, a library missing); the hub shows a generic error
	// page for them and logs the error.
	Authenticate(ctx context.Context, username, password string) (*User, error)
}

// StartupWarner is implemented by authenticators that have allow
// configuration of their own (allowed_groups, for example), so that the
// generic Options.StartupWarning would cry wolf. Use the StartupWarning
// function rather than calling either method directly.
type StartupWarner interface {
	// StartupWarning returns "" or a sentence for the log at start.
	StartupWarning() string
}

// SpawnHooks is implemented by authenticators that act around a user's
// server, like JupyterHub's pre_spawn_start and post_spawn_stop (PAM
// sessions). The hub calls PreSpawnStart before it asks the spawner to start
// a server and PostSpawnStop after the server stopped. Errors are for the
// log; they do not stop the spawn.
type SpawnHooks interface {
	PreSpawnStart(ctx context.Context, name string) error
	PostSpawnStop(ctx context.Context, name string) error
}

// User is the outcome of a successful login.
type User struct {
	// Name is the normalized JupyterHub user name.
	Name string
	// Admin reports that the user is an admin (admin_users, or the
	// authenticator's own notion such as the PAM admin_groups).
	Admin bool
	// AuthState is what the authenticator wants to keep about the login
	// (tokens of an identity provider, for example); nil when it has none.
	// It is handed to the spawner and must be stored encrypted
	// (enable_auth_state with a crypt_key); without encryption the hub
	// drops it.
	AuthState map[string]any
	// Groups are the user's groups as the identity provider says at this
	// login (already filtered to what the authenticator manages). The hub
	// syncs them into hub groups only when the authenticator implements
	// GroupManager and ManageGroups returns true.
	Groups []string
}

// The sentinel errors. Authenticators wrap them with %w and a reason; the
// hub maps them to what the login page shows with errors.Is.
var (
	// ErrInvalidCredentials is returned when the name or the password is
	// wrong. The login form says "Invalid username or password" and
	// nothing more, so that it does not tell which of the two was wrong.
	ErrInvalidCredentials = errors.New("invalid username or password")

	// ErrNotAllowed is returned when the credentials were right but the
	// allow/block policy (allowed_users, blocked_users, allow_all, groups,
	// the PAM account check) does not let the user in.
	ErrNotAllowed = errors.New("user is not allowed to use this hub")

	// ErrInvalidUsername is returned when a name fails normalization or
	// validation; the wrapping error says why in words ("username must not
	// contain '/'"), which may be shown to the person who typed it.
	ErrInvalidUsername = errors.New("invalid username")
)

// StartupWarning returns the sentence the hub should log at start about
// a's configuration, or "" when all is well. It asks a itself when a
// implements StartupWarner and its Options otherwise.
func StartupWarning(a Authenticator) string {
	if w, ok := a.(StartupWarner); ok {
		return w.StartupWarning()
	}
	if o := a.Common(); o != nil {
		return o.StartupWarning()
	}
	return ""
}
