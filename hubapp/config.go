package hubapp

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/url"
	"regexp"
	"strconv"
	"strings"

	"github.com/caddyserver/caddy/v2"

	"github.com/caddyhub/caddyhub/auth"
	"github.com/caddyhub/caddyhub/auth/authstate"
	"github.com/caddyhub/caddyhub/hubapp/culler"
	"github.com/caddyhub/caddyhub/hubapp/rbac"
	"github.com/caddyhub/caddyhub/spawners"
)

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

func (a *App) provisionHub(ctx caddy.Context) error {
	if a.BaseURL == "" {
		a.BaseURL = "/"
	}
	if !strings.HasPrefix(a.BaseURL, "/") {
		a.BaseURL = "/" + a.BaseURL
	}
	if !strings.HasSuffix(a.BaseURL, "/") {
		a.BaseURL += "/"
	}
	if a.HubAPI == "" {
		a.HubAPI = "127.0.0.1:8081"
	}
	if a.CookieSecretFile == "" {
		a.CookieSecretFile = "jupyterhub_cookie_secret"
	}
	a.CookieSecret = a.repl.ReplaceKnown(a.CookieSecret, "")
	if a.ConcurrentSpawnLimit == 0 {
		a.ConcurrentSpawnLimit = 100
	}
	if a.AuthenticatorRaw == nil {
		a.AuthenticatorRaw = json.RawMessage(`{"authenticator":"pam"}`)
	}
	if a.SpawnerRaw == nil {
		a.SpawnerRaw = json.RawMessage(`{"spawner":"localprocess"}`)
	}
	mod, err := ctx.LoadModule(a, "AuthenticatorRaw")
	if err != nil {
		return fmt.Errorf("loading authenticator: %w", err)
	}
	authn, ok := mod.(auth.Authenticator)
	if !ok {
		return fmt.Errorf("module %T is not an authenticator", mod)
	}
	a.authenticator = authn
	a.crypter = nil
	if a.EnableAuthState {
		c, err := authstate.Keys(a.repl.ReplaceKnown(a.CryptKey, ""))
		if err != nil {
			return fmt.Errorf("enable_auth_state: %w", err)
		}
		a.crypter = c
	}
	mod, err = ctx.LoadModule(a, "SpawnerRaw")
	if err != nil {
		return fmt.Errorf("loading spawner: %w", err)
	}
	sp, ok := mod.(spawners.Spawner)
	if !ok {
		return fmt.Errorf("module %T is not a spawner", mod)
	}
	a.spawner = sp
	for _, s := range a.Services {
		s.APIToken = a.repl.ReplaceKnown(s.APIToken, "")
		if s.OAuthClientID == "" {
			s.OAuthClientID = "service-" + s.Name
		}
		if s.OAuthRedirectURI == "" {
			s.OAuthRedirectURI = a.BaseURL + "services/" + s.Name + "/oauth_callback"
		}
	}
	tokens := make(map[string]string, len(a.APITokens))
	for tok, user := range a.APITokens {
		tokens[a.repl.ReplaceKnown(tok, "")] = user
	}
	a.APITokens = tokens
	// Certificate events for /hub/api/info and loud failure logs (tls.go, certstatus.go).
	return a.subscribeCertEvents(ctx)
}

func (a *App) validateHub() error {
	if _, _, err := splitHostPort(a.HubAPI); err != nil {
		return fmt.Errorf("hub_api %q: want host:port: %w", a.HubAPI, err)
	}
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
	return a.validateHubReachable()
}

// validateHubReachable refuses a spawner whose servers run elsewhere (spawners.RemoteSpawner: a
// container, a pod) when the address those servers are told to reach the hub API at is loopback:
// every server would fail to authenticate its users, after a start that looked successful.
func (a *App) validateHubReachable() error {
	rs, ok := a.spawner.(spawners.RemoteSpawner)
	if !ok || !rs.RunsElsewhere() {
		return nil
	}
	what, host := "hub_api "+a.HubAPI, ""
	if a.HubConnectURL != "" {
		u, err := url.Parse(a.HubConnectURL)
		if err != nil || u.Host == "" {
			return fmt.Errorf("hub_connect_url %q: want an absolute URL such as http://10.0.0.5:8081", a.HubConnectURL)
		}
		what, host = "hub_connect_url "+a.HubConnectURL, u.Hostname()
	} else if h, _, err := splitHostPort(a.HubAPI); err == nil {
		host = h
	}
	ip := net.ParseIP(host)
	loopback := host == "" || strings.EqualFold(host, "localhost") || (ip != nil && (ip.IsLoopback() || ip.IsUnspecified()))
	if !loopback {
		return nil
	}
	name := fmt.Sprintf("%T", a.spawner)
	if m, ok := a.spawner.(caddy.Module); ok {
		name = m.CaddyModule().ID.Name()
	}
	return fmt.Errorf("spawner %s runs servers outside the hub's host (containers or pods), where %s is not the hub: "+
		"set hub_connect_url to an address they can reach (e.g. hub_connect_url http://<the hub's address on their network>:<port>) "+
		"and hub_api to listen on that address", name, what)
}

// splitHostPort splits a listen or connect address and checks the port's range.
func splitHostPort(addr string) (string, int, error) {
	host, p, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, err
	}
	port, err := strconv.Atoi(p)
	if err != nil || port < 0 || port > 65535 {
		return "", 0, errors.New("bad port " + p)
	}
	return host, port, nil
}
