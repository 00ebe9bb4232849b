package web

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/caddyserver/caddy/v2"

	"github.com/caddyhub/caddyhub/hubapp/culler"
	"github.com/caddyhub/caddyhub/hubapp/rbac"
)

// Config is what the HTTP layer reads of the `jupyterhub` app's options. hubapp.App embeds it, so
// its fields are options of the app in JSON and in the Caddyfile; their defaults are filled in by
// the app's Provision.
type Config struct {
	// DataDir is the directory of the hub's database (Badger). Relative paths are taken from the
	// working directory, like JupyterHub's sqlite file. Default: "caddyhub-data".
	DataDir string `json:"data_dir,omitempty"`

	// BaseURL is the URL prefix of everything the hub serves, as JupyterHub's base_url. Default: "/".
	BaseURL string `json:"base_url,omitempty"`

	// HubAPI is the listen address of the hub API that spawned servers call (JUPYTERHUB_API_URL is
	// http://<hub_api><base_url>hub/api). Default: "127.0.0.1:8081".
	HubAPI string `json:"hub_api,omitempty"`

	// HubConnectURL overrides the URL spawned servers use to reach the hub (JupyterHub's
	// hub_connect_url), e.g. when they run in containers. Default: derived from hub_api.
	HubConnectURL string `json:"hub_connect_url,omitempty"`

	// CookieSecret is the cookie secret, hex encoded (JupyterHub's cookie_secret). Placeholders are
	// expanded. Default: the JPY_COOKIE_SECRET environment variable, then cookie_secret_file.
	CookieSecret string `json:"cookie_secret,omitempty"`

	// CookieSecretFile holds the cookie secret, hex encoded; created with mode 0600 if missing, and
	// refused if group or others can read it. Default: "jupyterhub_cookie_secret" in the working directory.
	CookieSecretFile string `json:"cookie_secret_file,omitempty"`

	// CookieMaxAge is how long a login lasts. Default: 14 days (cookie_max_age_days).
	CookieMaxAge caddy.Duration `json:"cookie_max_age,omitempty"`

	// Services are JupyterHub services: API clients with their own token and roles, optionally
	// routed at /services/<name>/ or run by the hub as managed processes.
	Services []*Service `json:"services,omitempty"`

	// Roles are custom RBAC roles (JupyterHub's load_roles).
	Roles []*Role `json:"roles,omitempty"`

	// Groups pre-creates groups with members and properties (JupyterHub's load_groups).
	Groups []*GroupConfig `json:"groups,omitempty"`

	// APITokens maps legacy API tokens to the user they act as (JupyterHub's api_tokens). Placeholders
	// in the tokens are expanded.
	APITokens map[string]string `json:"api_tokens,omitempty"`

	// ConcurrentSpawnLimit is how many servers may be starting at once; more get 429 with Retry-After.
	// Default: 100. 0 in JSON means the default; -1 means no limit.
	ConcurrentSpawnLimit int `json:"concurrent_spawn_limit,omitempty"`

	// ActiveServerLimit is how many servers may be running or starting at once. Default: 0 (no limit).
	ActiveServerLimit int `json:"active_server_limit,omitempty"`

	// AllowNamedServers lets users run more than their default server. Default: false.
	AllowNamedServers bool `json:"allow_named_servers,omitempty"`

	// NamedServerLimitPerUser caps named servers per user. Default: 0 (no limit).
	NamedServerLimitPerUser int `json:"named_server_limit_per_user,omitempty"`

	// RedirectToServer sends users to their server after login instead of /hub/home. Default: true.
	RedirectToServer *bool `json:"redirect_to_server,omitempty"`

	// Branding: hub_title, logo_file, favicon_file and the announcements (branding.go).
	Branding

	// ImplicitSpawnSeconds: JupyterHub's implicit_spawn_seconds. Default: 0 (off).
	ImplicitSpawnSeconds int `json:"implicit_spawn_seconds,omitempty"`

	// CleanupServers stops every user's server when Caddy exits (not on reload). Default: false:
	// servers outlive the hub, and a restarted hub adopts them.
	CleanupServers bool `json:"cleanup_servers,omitempty"`

	// Culler configures the built-in idle culler. Default: none.
	Culler *CullerConfig `json:"culler,omitempty"`

	// SubdomainHost puts each user's server on its own origin, <user>.<subdomain_host>
	// (JupyterHub's subdomain_host, without the scheme). Default: "" (one origin).
	SubdomainHost string `json:"subdomain_host,omitempty"`

	// APIPageDefaultLimit is how many items a paginated list endpoint (GET /users, /groups, …)
	// returns when a client that asks for pagination gives no limit (JupyterHub's
	// api_page_default_limit). Default: 50.
	APIPageDefaultLimit int `json:"api_page_default_limit,omitempty"`

	// APIPageMaxLimit is the most items one call of a list endpoint returns, whatever limit it asks
	// for; clients that do not ask for pagination get this many (JupyterHub's api_page_max_limit).
	// Default: 200.
	APIPageMaxLimit int `json:"api_page_max_limit,omitempty"`

	// AdminAccess lets admins open other users' servers: the admin role gains access:servers, as
	// with JupyterHub's admin_access, and each time an admin opens another user's server the log
	// says who, whose server and when. Default: false.
	AdminAccess bool `json:"admin_access,omitempty"`
}

// Service is a JupyterHub service (docs/protocols.md, "Services and culling"): an API client with its
// own token and roles, optionally routed at /services/<name>/ (url) and optionally run by the hub
// (command).
type Service struct {
	// Name identifies the service; it appears in /services/<name>/ and in token ownership.
	Name string `json:"name"`
	// APIToken is the service's token (JUPYTERHUB_API_TOKEN). Placeholders are expanded. Default: none
	// for external services; managed services get a generated one.
	APIToken string `json:"api_token,omitempty"`
	// Admin grants the admin role (JupyterHub's deprecated admin flag). Default: false.
	Admin bool `json:"admin,omitempty"`
	// Roles names roles granted to the service. Default: none.
	Roles []string `json:"roles,omitempty"`
	// URL is where the service listens; it is routed at /services/<name>/. Default: not routed.
	URL string `json:"url,omitempty"`
	// Command runs the service as a managed process, restarted when it exits. Default: not managed.
	Command []string `json:"command,omitempty"`
	// Environment is added to a managed service's environment.
	Environment map[string]string `json:"environment,omitempty"`
	// Cwd is a managed service's working directory. Default: the hub's.
	Cwd string `json:"cwd,omitempty"`
	// OAuthClientID is the service's OAuth client id. Default: "service-<name>".
	OAuthClientID string `json:"oauth_client_id,omitempty"`
	// OAuthRedirectURI is the service's OAuth callback. Default: <base_url>services/<name>/oauth_callback.
	OAuthRedirectURI string `json:"oauth_redirect_uri,omitempty"`
	// OAuthNoConfirm skips the consent page for this service. Default: false.
	OAuthNoConfirm bool `json:"oauth_no_confirm,omitempty"`
	// OAuthRoles are the roles tokens issued to this service through OAuth may carry.
	OAuthRoles []string `json:"oauth_roles,omitempty"`
	// Display lists the service on users' home page. Default: true.
	Display *bool `json:"display,omitempty"`
	// Info is free-form data shown in the API's service model.
	Info map[string]any `json:"info,omitempty"`
}

// Role is a custom RBAC role (JupyterHub's load_roles).
type Role struct {
	// Name of the role. The built-in names user, admin, server and token may be redefined.
	Name string `json:"name"`
	// Description is shown by the API.
	Description string `json:"description,omitempty"`
	// Scopes the role grants, e.g. "read:users!group=class".
	Scopes []string `json:"scopes,omitempty"`
	// Users, Groups and Services that hold the role.
	Users    []string `json:"users,omitempty"`
	Groups   []string `json:"groups,omitempty"`
	Services []string `json:"services,omitempty"`
}

// GroupConfig pre-creates a group (JupyterHub's load_groups).
type GroupConfig struct {
	// Name of the group.
	Name string `json:"name"`
	// Users in the group; created if missing.
	Users []string `json:"users,omitempty"`
	// Properties are free-form data (JupyterHub 4+ group properties).
	Properties map[string]any `json:"properties,omitempty"`
}

// CullerConfig configures the built-in idle culler (package culler).
type CullerConfig = culler.Config

var serviceNameRE = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9._-]*$`)

// Validate checks the hub's options for mistakes that need no I/O to find; Branding.Validate
// checks the branding options (the app checks those even with proxy_only).
func (a *Config) Validate() error {
	if a.ActiveServerLimit < 0 {
		return fmt.Errorf("active_server_limit must not be negative")
	}
	if a.ConcurrentSpawnLimit < -1 {
		return fmt.Errorf("concurrent_spawn_limit must be -1 (no limit) or positive")
	}
	seen := map[string]bool{}
	for _, s := range a.Services {
		if !serviceNameRE.MatchString(s.Name) {
			return fmt.Errorf("service name %q: use letters, digits, '.', '_' and '-'", s.Name)
		}
		if seen[s.Name] {
			return fmt.Errorf("service %q is defined twice", s.Name)
		}
		seen[s.Name] = true
		if s.APIToken != "" && len(s.APIToken) < 8 {
			return fmt.Errorf("service %q: api_token must be at least 8 characters", s.Name)
		}
		if s.URL != "" && !strings.HasPrefix(s.URL, "http://") && !strings.HasPrefix(s.URL, "https://") {
			return fmt.Errorf("service %q: url %q must be an http(s) URL", s.Name, s.URL)
		}
	}
	for tok := range a.APITokens {
		if len(tok) < 8 {
			return fmt.Errorf("api_tokens: tokens must be at least 8 characters")
		}
	}
	if a.SubdomainHost != "" {
		if _, ok := parseSubdomainHost(a.SubdomainHost); !ok {
			return fmt.Errorf("subdomain_host %q: want a host name, optionally with scheme and port (hub.example.org, https://hub.example.org:8443)", a.SubdomainHost)
		}
	}
	// Roles are checked here too, so that `caddy validate` reports a bad scope, not only Start.
	if _, err := rbac.NewEngine(rbac.EngineOptions{Roles: a.rbacRoles()}); err != nil {
		return fmt.Errorf("roles: %w", err)
	}
	if a.APIPageDefaultLimit < 0 || a.APIPageMaxLimit < 0 {
		return fmt.Errorf("api_page_default_limit and api_page_max_limit must not be negative")
	}
	if a.APIPageDefaultLimit > a.pageMaxLimit() {
		return fmt.Errorf("api_page_default_limit %d is more than api_page_max_limit %d", a.APIPageDefaultLimit, a.pageMaxLimit())
	}
	if a.Culler != nil && a.Culler.Timeout < 0 {
		return fmt.Errorf("culler timeout must not be negative")
	}
	return nil
}
