package auth

import (
	"context"
	"errors"
	"net/http"
)

// RedirectAuthenticator is implemented by authenticators that log people in
// through an identity provider's own pages (OpenID Connect, GitHub), like
// JupyterHub's OAuthenticator. The hub drives a login in two steps:
//
//  1. The login page shows a "Sign in with <LoginService>" button that links
//     to <base>hub/oauth_login?next=… (with AutoLogin the login page
//     redirects there at once). That handler calls BeginLogin and redirects
//     the browser to the URL it returns.
//  2. The provider sends the browser back to <base>hub/oauth_callback; that
//     handler calls Callback, records the user it returns (name, admin flag,
//     groups, auth_state) exactly as a form login does, starts a session
//     and redirects to the next URL Callback returns.
//
// BeginLogin and Callback may set and clear their own short-lived cookies
// (state, nonce and PKCE verifier bound to the browser) with the path and
// Secure flag the RedirectContext gives.
type RedirectAuthenticator interface {
	Authenticator
	// LoginService names the provider on the login page's button:
	// "Sign in with <LoginService>".
	LoginService() string
	// AutoLogin reports that the login page should skip itself and start
	// the redirect at once (JupyterHub's auto_login).
	AutoLogin() bool
	// Unavailable returns "" when sign-in can be attempted, or a sentence
	// for the login page saying why it cannot (the provider could not be
	// reached at start, for example). Users who are logged in already are
	// not affected.
	Unavailable(ctx context.Context) string
	// BeginLogin prepares a login and returns the provider URL the browser
	// is sent to.
	BeginLogin(w http.ResponseWriter, r *http.Request, rc RedirectContext) (providerURL string, err error)
	// Callback finishes a login at <base>hub/oauth_callback and returns the
	// authorized user and the next URL that BeginLogin was given. Errors
	// wrap the sentinels of this package (ErrNotAllowed, ErrInvalidUsername,
	// ErrLoginExpired, ErrProviderUnavailable, ErrProviderRefused,
	// ErrInvalidToken).
	Callback(w http.ResponseWriter, r *http.Request, rc RedirectContext) (u *User, next string, err error)
}

// RedirectContext is what the hub tells a RedirectAuthenticator about
// itself for one request.
type RedirectContext struct {
	// CallbackURL is the absolute URL of <base>hub/oauth_callback, which the
	// provider must redirect to (the authenticator's own callback_url
	// option, when it has one, wins).
	CallbackURL string
	// CookiePath is the path of the authenticator's cookies: <base>hub/.
	CookiePath string
	// Secure is set when the browser reached the hub over HTTPS; cookies
	// then carry the Secure attribute.
	Secure bool
	// Next is where to go after the login, already checked by the hub to
	// stay on the hub; BeginLogin keeps it for Callback.
	Next string
}

// LogoutRedirecter is implemented by redirect authenticators that can end
// the session at the provider too (OpenID Connect's end_session_endpoint).
// The hub ends its own session first, then redirects to the URL returned;
// "" means: go to the hub's login page as usual.
// hubLoginURL is the absolute URL of the hub's login page, the default
// destination after the provider's logout.
type LogoutRedirecter interface {
	LogoutURL(ctx context.Context, u *User, hubLoginURL string) string
}

// UserRefresher is implemented by authenticators whose logins age: the
// hub calls RefreshUser before it starts a user's server (and before it
// hands the auth_state to the spawner), like JupyterHub's refresh_user.
// It returns the user with a new auth_state (and admin flag, groups) when
// something was refreshed, u itself when nothing needed to be, or an error:
// wrapping ErrLoginExpired when the person must log in again, ErrNotAllowed
// when the provider now says they may not use the hub.
type UserRefresher interface {
	RefreshUser(ctx context.Context, u *User) (*User, error)
}

// GroupManager is implemented by authenticators that own the membership
// of hub groups (OAuthenticator's manage_groups): when ManageGroups is
// true, the hub makes the user a member of exactly User.Groups at every
// login, creating groups as needed.
type GroupManager interface {
	ManageGroups() bool
}

// SpawnEnvironment is implemented by authenticators that hand parts of the
// auth_state to the user's server as environment variables (only what the
// operator configured, such as an access token for a data service).
type SpawnEnvironment interface {
	SpawnEnv(authState map[string]any) map[string]string
}

// Starter is implemented by authenticators with background work (OpenID
// discovery, retried while the provider is down). The hub calls Start when
// it starts; the work ends with ctx, which lives as long as the config.
type Starter interface {
	Start(ctx context.Context)
}

// Errors of redirect logins, besides ErrNotAllowed, ErrInvalidUsername and
// ErrInvalidCredentials.
var (
	// ErrInvalidToken is returned when the provider's answer fails
	// verification: an ID token with a bad signature, issuer, audience,
	// expiry or nonce, a callback without a code. The hub refuses the
	// login (403) and logs the reason.
	ErrInvalidToken = errors.New("the identity provider's answer failed verification")

	// ErrLoginExpired is returned when the login's state is missing,
	// expired or was used already (a replayed callback, a second tab), or
	// when a refresh needs the person to log in again. The hub says:
	// "Your sign-in expired or was already used; sign in again."
	ErrLoginExpired = errors.New("sign-in expired or already used")

	// ErrProviderUnavailable is returned when the identity provider cannot
	// be reached (discovery has not succeeded yet, a network error).
	ErrProviderUnavailable = errors.New("identity provider unavailable")

	// ErrProviderRefused is returned when the identity provider refuses the
	// hub itself: a wrong client_id or client_secret, an unregistered
	// callback URL. The person cannot fix it; the administrator can.
	ErrProviderRefused = errors.New("identity provider refused the hub's credentials")
)
