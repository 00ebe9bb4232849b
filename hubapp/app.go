// Package hubapp is the `jupyterhub` Caddy app: it owns CaddyHub's state (the Badger store and the
// route table), serves the configurable-http-proxy–compatible proxy API and, unless proxy_only is set,
// the hub itself — login, sessions, spawning, the JupyterHub REST API and the OAuth provider that
// single-user servers use. The `jupyterhub` HTTP handler in caddymodule reaches it through the
// caddymodule.App interface: the import arrow points from the hub to the edge, never back.
package hubapp

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"

	"github.com/caddyhub/caddyhub/auth"
	"github.com/caddyhub/caddyhub/auth/authstate"
	"github.com/caddyhub/caddyhub/caddymodule"
	"github.com/caddyhub/caddyhub/caddymodule/routetable"
	"github.com/caddyhub/caddyhub/spawners"
)

func init() {
	caddy.RegisterModule(new(App))
}

// App is the `jupyterhub` app. Its Caddyfile form is the global option block `jupyterhub { … }`;
// sub-options mirror JupyterHub's trait names in snake_case.
type App struct {
	// ProxyOnly runs only the route table and the proxy API: a drop-in configurable-http-proxy for a
	// separate (Python) JupyterHub. Default: false, the hub runs in process.
	ProxyOnly bool `json:"proxy_only,omitempty"`

	// DataDir is the directory of the hub's database (Badger). Relative paths are taken from the
	// working directory, like JupyterHub's sqlite file. Default: "caddyhub-data".
	DataDir string `json:"data_dir,omitempty"`

	// ProxyAPI is the listen address of the configurable-http-proxy–compatible REST API
	// (/api/routes). Default: "127.0.0.1:8001". Set to "off" to disable it.
	ProxyAPI string `json:"proxy_api,omitempty"`

	// ProxyAuthToken is the proxy API's token (`Authorization: token …`). Placeholders are expanded,
	// e.g. "{env.CONFIGPROXY_AUTH_TOKEN}". Default: the CONFIGPROXY_AUTH_TOKEN environment variable.
	// With no token the API refuses to listen on a non-loopback address.
	ProxyAuthToken string `json:"proxy_auth_token,omitempty"`

	// ErrorTargetURL is configurable-http-proxy's --error-target (proxy_only): when a route's server does
	// not answer, the edge fetches <error_target>/<status>?url=<request URL> and relays that page.
	// Default: "" (built-in pages).
	ErrorTargetURL string `json:"error_target,omitempty"`

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

	// AuthenticatorRaw configures who may log in. Default: {"authenticator": "pam"}.
	AuthenticatorRaw json.RawMessage `json:"authenticator,omitempty" caddy:"namespace=jupyterhub.authenticators inline_key=authenticator"`

	// EnableAuthState stores what the authenticator keeps about each login (the identity
	// provider's tokens and claims: auth_state), encrypted with crypt_key, for the spawner, the
	// user's server (when the authenticator is told to hand it on) and the REST API with the
	// admin:auth_state scope. Needs crypt_key or JUPYTERHUB_CRYPT_KEY; the hub refuses to start
	// without one. Default: false: auth_state is dropped at login, as in JupyterHub.
	EnableAuthState bool `json:"enable_auth_state,omitempty"`

	// CryptKey encrypts auth_state at rest: one or more 32-byte keys, hex (64 digits) or base64
	// (44 characters), separated by ';' (JupyterHub's JUPYTERHUB_CRYPT_KEY format). The first key
	// encrypts, all decrypt: rotate by listing a new key first. Placeholders are expanded.
	// Default: the JUPYTERHUB_CRYPT_KEY environment variable.
	CryptKey string `json:"crypt_key,omitempty"`

	// SpawnerRaw configures how users' servers are started. Default: {"spawner": "localprocess"}.
	SpawnerRaw json.RawMessage `json:"spawner,omitempty" caddy:"namespace=jupyterhub.spawners inline_key=spawner"`

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

	authenticator auth.Authenticator
	crypter       *authstate.Crypter // nil unless enable_auth_state
	spawner       spawners.Spawner

	ctx    caddy.Context
	logger *zap.Logger
	repl   *caddy.Replacer

	ready   chan struct{}                    // closed when Start has finished
	shared  *reloadState                     // nil until Start
	table   atomic.Pointer[routetable.Table] // what the edge reads; nil until Start
	hub     *Hub                             // nil in proxy_only mode and until Start
	servers []*listenerServer                // proxy API and hub API listeners of this generation
}

// CaddyModule returns the Caddy module information. A pointer receiver: App holds atomic values.
func (*App) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{ID: "jupyterhub", New: func() caddy.Module { return new(App) }}
}

// Provision fills in defaults and loads guest modules. It opens nothing: `caddy validate` runs it
// while the real server may hold the database.
func (a *App) Provision(ctx caddy.Context) error {
	a.ctx, a.logger = ctx, ctx.Logger()
	a.ready = make(chan struct{})
	a.repl = caddy.NewReplacer()
	if a.DataDir == "" {
		a.DataDir = "caddyhub-data"
	}
	dir, err := filepath.Abs(a.repl.ReplaceKnown(a.DataDir, ""))
	if err != nil {
		return fmt.Errorf("data_dir %q: %w", a.DataDir, err)
	}
	a.DataDir = dir
	if a.ProxyAPI == "" {
		a.ProxyAPI = "127.0.0.1:8001"
	}
	if a.ProxyAuthToken == "" {
		a.ProxyAuthToken = os.Getenv("CONFIGPROXY_AUTH_TOKEN")
	} else {
		a.ProxyAuthToken = a.repl.ReplaceKnown(a.ProxyAuthToken, "")
	}
	a.ErrorTargetURL = strings.TrimRight(a.repl.ReplaceKnown(a.ErrorTargetURL, ""), "/")
	if a.ProxyOnly {
		return nil
	}
	return a.provisionHub(ctx)
}

// Validate checks the configuration for mistakes that need no I/O to find.
func (a *App) Validate() error {
	if err := a.Branding.validate(); err != nil {
		return err
	}
	if a.ProxyAPI != "off" {
		host, _, err := net.SplitHostPort(a.ProxyAPI)
		if err != nil {
			return fmt.Errorf("proxy_api %q: want host:port: %w", a.ProxyAPI, err)
		}
		if a.ProxyAuthToken == "" && !isLoopback(host) {
			return fmt.Errorf("proxy_api %s is not a loopback address and no proxy_auth_token (or CONFIGPROXY_AUTH_TOKEN) is set: anybody could rewrite the routes", a.ProxyAPI)
		}
	}
	if a.ErrorTargetURL != "" && !strings.HasPrefix(a.ErrorTargetURL, "http://") && !strings.HasPrefix(a.ErrorTargetURL, "https://") {
		return fmt.Errorf("error_target %q: want an http(s) URL", a.ErrorTargetURL)
	}
	if a.ProxyOnly {
		return nil
	}
	return a.validateHub()
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Start opens (or shares, across reloads) the store and the route table, loads every route before
// any request can be routed, and starts the listeners.
func (a *App) Start() error {
	v, _, err := reloadPool.LoadOrNew(a.DataDir, func() (caddy.Destructor, error) {
		return openReloadState(a.DataDir, a.logger)
	})
	if err != nil {
		return fmt.Errorf("jupyterhub: %w", err)
	}
	a.shared = v.(*reloadState)
	if !a.ProxyOnly {
		hub, err := newHub(a)
		if err != nil {
			a.release()
			return fmt.Errorf("jupyterhub: starting hub: %w", err)
		}
		a.hub = hub
		if w := auth.StartupWarning(a.authenticator); w != "" {
			a.logger.Warn("authenticator: " + w)
		}
	}
	if a.ProxyAPI != "off" {
		srv, err := a.listen("proxy API", a.ProxyAPI, caddymodule.NewProxyAPI(a.shared.table, a.ProxyAuthToken, a.logger.Named("proxy_api")))
		if err != nil {
			a.release()
			return err
		}
		a.servers = append(a.servers, srv)
	}
	if a.hub != nil {
		srv, err := a.listen("hub API", a.HubAPI, a.hub)
		if err != nil {
			a.release()
			return err
		}
		a.servers = append(a.servers, srv)
		if err := a.hub.start(); err != nil {
			a.release()
			return fmt.Errorf("jupyterhub: %w", err)
		}
	}
	a.table.Store(a.shared.table)
	close(a.ready)
	a.logger.Info("jupyterhub started",
		zap.Bool("proxy_only", a.ProxyOnly),
		zap.String("data_dir", a.DataDir),
		zap.String("proxy_api", a.ProxyAPI),
		zap.Int("routes", a.shared.table.Len()))
	return nil
}

// Stop releases this config generation's listeners and its reference to the shared state. It runs on
// every reload: users' servers keep running unless Caddy is exiting and cleanup_servers is set.
func (a *App) Stop() error {
	if a.hub != nil {
		a.hub.stop(caddy.Exiting(), a.CleanupServers)
	}
	a.release()
	return nil
}

func (a *App) release() {
	for _, s := range a.servers {
		s.close()
	}
	a.servers = nil
	if a.shared != nil {
		if _, err := reloadPool.Delete(a.DataDir); err != nil {
			a.logger.Error("releasing hub store", zap.Error(err))
		}
		a.shared = nil
	}
}

// RouteTable implements caddymodule.App.
func (a *App) RouteTable() *routetable.Table { return a.table.Load() }

// Ready implements caddymodule.App.
func (a *App) Ready() <-chan struct{} { return a.ready }

// Hub implements caddymodule.App.
func (a *App) Hub() caddymodule.Hub {
	if a.hub == nil || a.table.Load() == nil {
		return nil
	}
	return a.hub
}

// ErrorTarget implements caddymodule.App.
func (a *App) ErrorTarget() string { return a.ErrorTargetURL }

// Interface guards.
var (
	_ caddy.App         = (*App)(nil)
	_ caddy.Provisioner = (*App)(nil)
	_ caddy.Validator   = (*App)(nil)
	_ caddymodule.App   = (*App)(nil)
)
