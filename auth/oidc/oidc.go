// Package oidc is the jupyterhub.authenticators.oidc module: sign-in
// through any OpenID Connect provider (Keycloak, Dex, Authentik, Zitadel,
// Entra ID, Google…), like OAuthenticator's GenericOAuthenticator with
// OpenID discovery.
//
// It is a redirect authenticator (auth.RedirectAuthenticator): the login
// page links to the provider; the provider sends the browser back to
// <base>hub/oauth_callback. The flow is the authorization code flow with
// PKCE (S256); the state, the nonce and the PKCE verifier stay in the hub
// and are bound to the browser by a short-lived cookie (auth/loginstate).
// The ID token is verified with github.com/coreos/go-oidc/v3 (issuer,
// audience, expiry, signature against the provider's JWKS, refetched when
// the provider rotates its keys, nonce); the claims of the userinfo
// endpoint are merged over the ID token's. The username comes from a claim
// and goes through the common normalization and allow/admin/block policy,
// with allowed_groups and admin_groups read from a groups claim.
//
// Discovery runs in the background from the hub's start and is retried
// while the provider is unreachable; meanwhile the login page says that
// sign-in is unavailable and people already logged in are not affected.
package oidc

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"go.uber.org/zap"

	"github.com/caddyhub/caddyhub/auth"
	"github.com/caddyhub/caddyhub/auth/loginstate"
)

func init() {
	caddy.RegisterModule(new(OIDC))
}

const (
	defaultUsernameClaim = "preferred_username"
	defaultGroupsClaim   = "groups"
	defaultLoginService  = "OpenID Connect"
	defaultTimeout       = 10 * time.Second
	stateCookie          = "caddyhub-oidc-state"
)

var defaultScopes = []string{"openid", "profile", "email"}

// OIDC signs people in through an OpenID Connect provider.
type OIDC struct {
	auth.Options

	// The issuer URL of the provider, exactly as it appears in the
	// provider's discovery document and in its ID tokens
	// (<issuer>/.well-known/openid-configuration is fetched). Required.
	Issuer string `json:"issuer,omitempty"`

	// The client ID the provider registered for the hub. Required.
	ClientID string `json:"client_id,omitempty"`

	// The client secret. Placeholders such as {env.OIDC_CLIENT_SECRET}
	// are resolved at start; an unknown or empty placeholder is a
	// configuration error. Default: empty (a public client, which PKCE
	// protects).
	ClientSecret string `json:"client_secret,omitempty"`

	// The scopes to ask for; "openid" is added when missing. Default:
	// openid profile email.
	Scopes []string `json:"scopes,omitempty"`

	// The claim (of the ID token, or of the userinfo answer, which wins)
	// whose value becomes the username, before the common normalization
	// (lower-casing, username_map, username_pattern). A dotted name looks
	// into nested objects. Default: preferred_username.
	UsernameClaim string `json:"username_claim,omitempty"`

	// The claim that lists the user's groups (an array of strings, or one
	// string). A dotted name looks into nested objects. Default: groups.
	GroupsClaim string `json:"groups_claim,omitempty"`

	// Members of any of these groups may log in, in addition to
	// allowed_users. Default: empty.
	AllowedGroups []string `json:"allowed_groups,omitempty"`

	// Members of any of these groups are admins (and may log in).
	// Default: empty.
	AdminGroups []string `json:"admin_groups,omitempty"`

	// Make the user a member of exactly the hub groups named by the groups
	// claim at every login, creating groups as needed (OAuthenticator's
	// manage_groups). Default: false: hub groups are managed by the API.
	ManageGroupsFlag bool `json:"manage_groups,omitempty"`

	// Skip the login page: visitors go straight to the provider.
	// Default: false.
	AutoLoginFlag bool `json:"auto_login,omitempty"`

	// The provider's name on the login page's button, "Sign in with
	// <login_service>". Default: OpenID Connect.
	LoginServiceName string `json:"login_service,omitempty"`

	// The absolute URL of the hub's callback as registered at the
	// provider, when the hub cannot derive it from the request (a proxy in
	// front that rewrites the host). Default: derived,
	// <scheme>://<host><base_url>hub/oauth_callback.
	CallbackURL string `json:"callback_url,omitempty"`

	// At logout, also end the session at the provider: redirect to its
	// end_session_endpoint (from discovery) with the ID token as a hint.
	// Default: false: only the hub's session ends.
	EndSession bool `json:"end_session,omitempty"`

	// Where to go after logout. With end_session it is the
	// post_logout_redirect_uri given to the provider (which must have it
	// registered); without, the hub redirects there itself. Default: the
	// hub's login page.
	LogoutRedirectURL string `json:"logout_redirect_url,omitempty"`

	// Before a spawn, refresh the access token with the refresh token when
	// it has expired, and check the user's groups again
	// (OAuthenticator's refresh_pre_spawn). A refresh the provider refuses
	// means the person must log in again. Default: false.
	RefreshPreSpawn bool `json:"refresh_pre_spawn,omitempty"`

	// Environment variables set in the user's server from the auth_state:
	// variable name → access_token, id_token, refresh_token, or
	// claim.<name>. Default: none: tokens never reach the server unless
	// listed here.
	AuthStateEnv map[string]string `json:"auth_state_env,omitempty"`

	// Timeout of each request to the provider. Default: 10s.
	Timeout caddy.Duration `json:"timeout,omitempty"`

	secret  string
	scopes  []string
	logger  *zap.Logger
	client  *http.Client
	pending *loginstate.Store
	allowG  map[string]struct{}
	adminG  map[string]struct{}
	disc    discovery
	baseCtx context.Context
	now     func() time.Time
	once    sync.Once
}

// CaddyModule returns the Caddy module information.
func (*OIDC) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "jupyterhub.authenticators.oidc",
		New: func() caddy.Module { return new(OIDC) },
	}
}

// Provision checks the options and resolves the client secret. It does no
// I/O: discovery starts with Start (or at the first login).
func (o *OIDC) Provision(ctx caddy.Context) error {
	o.logger = ctx.Logger()
	o.baseCtx = ctx
	if o.now == nil {
		o.now = time.Now
	}
	if o.Issuer == "" {
		return fmt.Errorf("oidc authenticator: issuer is required")
	}
	if u, err := url.Parse(o.Issuer); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return fmt.Errorf("oidc authenticator: issuer %q must be an absolute http(s) URL", o.Issuer)
	}
	if o.ClientID == "" {
		return fmt.Errorf("oidc authenticator: client_id is required")
	}
	o.secret = ""
	if o.ClientSecret != "" {
		s, err := caddy.NewReplacer().ReplaceOrErr(o.ClientSecret, true, true)
		if err != nil {
			return fmt.Errorf("oidc authenticator: client_secret: %w", err)
		}
		o.secret = s
	}
	o.scopes = slices.Clone(o.Scopes)
	if len(o.scopes) == 0 {
		o.scopes = slices.Clone(defaultScopes)
	}
	if !slices.Contains(o.scopes, "openid") {
		o.scopes = append([]string{"openid"}, o.scopes...)
	}
	for v, src := range o.AuthStateEnv {
		if v == "" || strings.ContainsAny(v, "=\x00") {
			return fmt.Errorf("oidc authenticator: auth_state_env: invalid variable name %q", v)
		}
		if !validEnvSource(src) {
			return fmt.Errorf("oidc authenticator: auth_state_env %s: %q is not access_token, id_token, refresh_token or claim.<name>", v, src)
		}
	}
	if o.CallbackURL != "" {
		if u, err := url.Parse(o.CallbackURL); err != nil || u.Host == "" {
			return fmt.Errorf("oidc authenticator: callback_url %q must be an absolute URL", o.CallbackURL)
		}
	}
	o.allowG = toSet(o.AllowedGroups)
	o.adminG = toSet(o.AdminGroups)
	if len(o.AllowedGroups) > 0 || len(o.AdminGroups) > 0 {
		o.AnyAllowConfig = true
	}
	if err := o.Options.Provision(); err != nil {
		return fmt.Errorf("oidc authenticator: %w", err)
	}
	timeout := time.Duration(o.Timeout)
	if timeout <= 0 {
		timeout = defaultTimeout
	}
	o.client = &http.Client{Timeout: timeout}
	o.pending = loginstate.New(stateCookie, 0)
	return nil
}

func toSet(list []string) map[string]struct{} {
	m := make(map[string]struct{}, len(list))
	for _, g := range list {
		m[g] = struct{}{}
	}
	return m
}

func validEnvSource(src string) bool {
	switch src {
	case "access_token", "id_token", "refresh_token":
		return true
	}
	return strings.HasPrefix(src, "claim.") && len(src) > len("claim.")
}

// Common returns the options shared by all authenticators.
func (o *OIDC) Common() *auth.Options { return &o.Options }

// LoginService is the provider's name on the login button.
func (o *OIDC) LoginService() string {
	if o.LoginServiceName != "" {
		return o.LoginServiceName
	}
	return defaultLoginService
}

// AutoLogin reports whether the login page redirects at once.
func (o *OIDC) AutoLogin() bool { return o.AutoLoginFlag }

// ManageGroups reports whether the hub syncs the groups claim into hub groups.
func (o *OIDC) ManageGroups() bool { return o.ManageGroupsFlag }

// Start begins discovery in the background; it is retried until it
// succeeds or ctx ends.
func (o *OIDC) Start(ctx context.Context) {
	o.once.Do(func() { go o.disc.loop(ctx, o) })
}

// start is Start with the config's context, for logins that come before
// the hub called Start (tests, other hosts).
func (o *OIDC) start() {
	ctx := o.baseCtx
	if ctx == nil {
		ctx = context.Background()
	}
	o.Start(ctx)
}

// UnmarshalCaddyfile sets up the authenticator from Caddyfile tokens,
// with the dispenser on the module name:
//
//	authenticator oidc {
//		issuer https://login.example.org/realms/hub
//		client_id hub
//		client_secret {env.OIDC_CLIENT_SECRET}
//		scopes openid profile email groups
//		username_claim preferred_username
//		groups_claim groups
//		allowed_groups staff students
//		admin_groups hub-admins
//		manage_groups
//		auto_login
//		login_service "Example SSO"
//		callback_url https://hub.example.org/hub/oauth_callback
//		end_session
//		logout_redirect_url https://hub.example.org/
//		refresh_pre_spawn
//		auth_state_env OIDC_ACCESS_TOKEN access_token
//		timeout 10s
//	}
//
// plus every common option (auth.Options.UnmarshalOption).
func (o *OIDC) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // module name
	if d.NextArg() {
		return d.ArgErr()
	}
	for d.NextBlock(0) {
		if handled, err := o.UnmarshalOption(d); handled {
			if err != nil {
				return err
			}
			continue
		}
		opt := d.Val()
		switch opt {
		case "issuer", "client_id", "client_secret", "username_claim", "groups_claim", "login_service",
			"callback_url", "logout_redirect_url":
			v, err := oneArg(d)
			if err != nil {
				return err
			}
			switch opt {
			case "issuer":
				o.Issuer = v
			case "client_id":
				o.ClientID = v
			case "client_secret":
				o.ClientSecret = v
			case "username_claim":
				o.UsernameClaim = v
			case "groups_claim":
				o.GroupsClaim = v
			case "login_service":
				o.LoginServiceName = v
			case "callback_url":
				o.CallbackURL = v
			default:
				o.LogoutRedirectURL = v
			}
		case "scopes", "allowed_groups", "admin_groups":
			args := d.RemainingArgs()
			if len(args) == 0 {
				return d.Errf("%s needs at least one value", opt)
			}
			switch opt {
			case "scopes":
				o.Scopes = append(o.Scopes, args...)
			case "allowed_groups":
				o.AllowedGroups = append(o.AllowedGroups, args...)
			default:
				o.AdminGroups = append(o.AdminGroups, args...)
			}
		case "manage_groups", "auto_login", "end_session", "refresh_pre_spawn":
			v, err := auth.ParseFlag(d)
			if err != nil {
				return err
			}
			switch opt {
			case "manage_groups":
				o.ManageGroupsFlag = v
			case "auto_login":
				o.AutoLoginFlag = v
			case "end_session":
				o.EndSession = v
			default:
				o.RefreshPreSpawn = v
			}
		case "auth_state_env":
			args := d.RemainingArgs()
			if len(args) != 2 {
				return d.Errf("auth_state_env needs exactly two arguments, <VARIABLE> <access_token|id_token|refresh_token|claim.NAME>")
			}
			if o.AuthStateEnv == nil {
				o.AuthStateEnv = make(map[string]string)
			}
			o.AuthStateEnv[args[0]] = args[1]
		case "timeout":
			v, err := oneArg(d)
			if err != nil {
				return err
			}
			dur, err := caddy.ParseDuration(v)
			if err != nil {
				return d.Errf("timeout: %v", err)
			}
			o.Timeout = caddy.Duration(dur)
		default:
			return d.Errf("unrecognized oidc authenticator option %q", opt)
		}
	}
	return nil
}

func oneArg(d *caddyfile.Dispenser) (string, error) {
	if !d.NextArg() {
		return "", d.ArgErr()
	}
	v := d.Val()
	if d.NextArg() {
		return "", d.ArgErr()
	}
	return v, nil
}

// Interface guards
var (
	_ caddy.Provisioner          = (*OIDC)(nil)
	_ caddyfile.Unmarshaler      = (*OIDC)(nil)
	_ auth.RedirectAuthenticator = (*OIDC)(nil)
	_ auth.LogoutRedirecter      = (*OIDC)(nil)
	_ auth.UserRefresher         = (*OIDC)(nil)
	_ auth.GroupManager          = (*OIDC)(nil)
	_ auth.SpawnEnvironment      = (*OIDC)(nil)
	_ auth.Starter               = (*OIDC)(nil)
)
