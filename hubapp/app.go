// Package hubapp is the `jupyterhub` Caddy app: it owns CaddyHub's state (the Badger store and the
// route table), serves the configurable-http-proxy–compatible proxy API and, unless proxy_only is set,
// runs the hub itself — login, sessions, spawning, the JupyterHub REST API and the OAuth provider that
// single-user servers use, which package web (hubapp/web) implements over the spawn engine. The `jupyterhub` HTTP handler in caddymodule reaches it through the
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
	"github.com/caddyhub/caddyhub/hubapp/web"
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

	// Config holds the hub's options, read by the HTTP layer (package web); embedded, so that
	// they sit beside the app's own options in JSON and in the Caddyfile.
	web.Config

	authenticator auth.Authenticator
	crypter       *authstate.Crypter // nil unless enable_auth_state
	spawner       spawners.Spawner

	ctx    caddy.Context
	logger *zap.Logger
	repl   *caddy.Replacer

	ready   chan struct{}                    // closed when Start has finished
	shared  *reloadState                     // nil until Start
	table   atomic.Pointer[routetable.Table] // what the edge reads; nil until Start
	hub     *web.Hub                         // nil in proxy_only mode and until Start
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
	if err := a.Branding.Validate(); err != nil {
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
		hub, err := web.New(&a.Config, web.Deps{
			Store: a.shared.store, Table: a.shared.table, Runtime: a.shared.runtime,
			Authenticator: a.authenticator, Spawner: a.spawner, Crypter: a.crypter,
			Ctx: a.ctx, Logger: a.logger, HubAPIAddr: a.hubAPIAddr,
			Certificates: func() []CertificateInfo { return certificateInfo(a.ctx) },
		})
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
		if err := a.hub.Start(); err != nil {
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
		a.hub.Stop(caddy.Exiting(), a.CleanupServers)
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

// hubAPIAddr is the address the hub API listener of this generation listens on, "" before it does.
func (a *App) hubAPIAddr() string {
	for _, s := range a.servers {
		if s.name == "hub API" && s.ln != nil {
			return s.ln.Addr().String()
		}
	}
	return ""
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
