package hubapp

// Certificates for users' origins under subdomain_host (docs/https.md, "Certificates for users'
// origins"): the on-demand TLS permission module tls.permission.jupyterhub allows a certificate only for
// the hub's own name and for <label>.<subdomain_host> where label is an existing user's, answering from
// memory (package web's label set, web.LookupUserLabel) and limiting how fast new names are allowed.
// Caddy refuses on-demand TLS without a permission module; an `ask` URL would cost an HTTP request per
// unknown name.

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyevents"
	"github.com/caddyserver/caddy/v2/modules/caddytls"
	"go.uber.org/zap"

	"github.com/caddyhub/caddyhub/hubapp/store"
	"github.com/caddyhub/caddyhub/hubapp/web"
)

func init() {
	caddy.RegisterModule(new(Permission))
}

// Default rate of new names the permission module allows.
const (
	defaultPermissionRate     = 20
	defaultPermissionInterval = time.Minute
)

// Permission is the on-demand TLS permission module `tls.permission.jupyterhub`. It allows a
// certificate for the hub's own host (subdomain_host) and for <label>.<subdomain_host> when label
// is the DNS label of an existing user, and denies everything else, so that scanners probing
// random subdomains cause no ACME orders. It needs the `jupyterhub` app with subdomain_host set.
//
// Caddyfile, in the global options:
//
//	on_demand_tls {
//		permission jupyterhub {
//			rate_limit <names> <interval>
//		}
//	}
type Permission struct {
	// RateLimit is how many names not allowed before may be allowed per RateInterval; names
	// allowed once stay allowed (renewals and handshakes for certificates Caddy already holds are
	// not limited). Default: 20. -1 means no limit.
	RateLimit int `json:"rate_limit,omitempty"`

	// RateInterval is the window of RateLimit. Default: 1 minute.
	RateInterval caddy.Duration `json:"rate_interval,omitempty"`

	app    *App
	logger *zap.Logger
	now    func() time.Time

	mu     sync.Mutex
	seen   map[string]struct{} // names allowed before
	recent []time.Time         // when new names were allowed, oldest first
}

// CaddyModule returns the Caddy module information.
func (*Permission) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{ID: "tls.permission.jupyterhub", New: func() caddy.Module { return new(Permission) }}
}

// Provision finds the jupyterhub app of this config. The app never asks for the tls app, so there
// is no provisioning cycle.
func (p *Permission) Provision(ctx caddy.Context) error {
	p.logger = ctx.Logger()
	p.now = time.Now
	p.seen = map[string]struct{}{}
	if p.RateLimit == 0 {
		p.RateLimit = defaultPermissionRate
	}
	if p.RateInterval <= 0 {
		p.RateInterval = caddy.Duration(defaultPermissionInterval)
	}
	v, err := ctx.AppIfConfigured("jupyterhub")
	if err != nil {
		return fmt.Errorf("on-demand TLS permission jupyterhub needs the jupyterhub app (global option block `jupyterhub { subdomain_host … }`): %w", err)
	}
	app, ok := v.(*App)
	if !ok {
		return fmt.Errorf("app jupyterhub is %T, not the CaddyHub app", v)
	}
	if app.ProxyOnly {
		return fmt.Errorf("on-demand TLS permission jupyterhub: the jupyterhub app runs proxy_only and knows no users")
	}
	if web.SubdomainHostName(app.SubdomainHost) == "" {
		return fmt.Errorf("on-demand TLS permission jupyterhub needs subdomain_host (a host name) in the jupyterhub app, have %q", app.SubdomainHost)
	}
	p.app = app
	return nil
}

// CertificateAllowed implements caddytls.OnDemandPermission. Refusals wrap
// caddytls.ErrPermissionDenied (logged by Caddy at debug level); other errors are failures to
// decide.
func (p *Permission) CertificateAllowed(_ context.Context, name string) error {
	name = strings.ToLower(strings.TrimSuffix(name, "."))
	host := web.SubdomainHostName(p.app.SubdomainHost)
	if name == host {
		return nil
	}
	label, parent, ok := strings.Cut(name, ".")
	if !ok || parent != host || !web.IsDNSLabel(label) {
		return fmt.Errorf("%s: not the hub or a user's subdomain of %s: %w", name, host, caddytls.ErrPermissionDenied)
	}
	// The label set and the store are shared by every config generation of this data_dir, so
	// during a reload (or before this generation's app has started, apps start in no fixed order)
	// the answer comes from what the running generation keeps; with neither, nothing is allowed.
	if _, ok, err := web.LookupUserLabel(p.app.DataDir, sharedStore(p.app.DataDir), label, p.now()); err != nil {
		return fmt.Errorf("%s: looking up user labels: %w", name, err)
	} else if !ok {
		return fmt.Errorf("%s: no user has the label %q: %w", name, label, caddytls.ErrPermissionDenied)
	}
	if !p.allowNew(name) {
		p.logger.Warn("on-demand certificate refused: too many new names",
			zap.String("name", name), zap.Int("rate_limit", p.RateLimit),
			zap.Duration("interval", time.Duration(p.RateInterval)))
		return fmt.Errorf("%s: more than %d new names in %s: %w", name, p.RateLimit, time.Duration(p.RateInterval), caddytls.ErrPermissionDenied)
	}
	return nil
}

// allowNew records name as allowed, unless it is new and the rate of new names is exhausted.
func (p *Permission) allowNew(name string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if _, ok := p.seen[name]; ok || p.RateLimit < 0 {
		return true
	}
	now := p.now()
	cut := now.Add(-time.Duration(p.RateInterval))
	i := 0
	for i < len(p.recent) && !p.recent[i].After(cut) {
		i++
	}
	p.recent = p.recent[i:]
	if len(p.recent) >= p.RateLimit {
		return false
	}
	p.recent = append(p.recent, now)
	p.seen[name] = struct{}{}
	return true
}

// sharedStore returns the open store of dataDir, or nil when no config generation holds it.
func sharedStore(dataDir string) *store.Store {
	var st *store.Store
	reloadPool.Range(func(k, v any) bool {
		if k == dataDir {
			if s, ok := v.(*reloadState); ok {
				st = s.store
			}
			return false
		}
		return true
	})
	return st
}

// UnmarshalCaddyfile sets up the module from Caddyfile tokens:
//
//	permission jupyterhub {
//		rate_limit <names> [<interval>]
//	}
//
// rate_limit off (or -1) removes the limit.
func (p *Permission) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // the module name
	if d.NextArg() {
		return d.ArgErr()
	}
	for d.NextBlock(0) {
		switch d.Val() {
		case "rate_limit":
			args := d.RemainingArgs()
			if len(args) < 1 || len(args) > 2 {
				return d.ArgErr()
			}
			if args[0] == "off" {
				p.RateLimit = -1
			} else {
				var n int
				if _, err := fmt.Sscanf(args[0], "%d", &n); err != nil || fmt.Sprint(n) != args[0] || n == 0 || n < -1 {
					return d.Errf("rate_limit: want a positive number of names or off, got %q", args[0])
				}
				p.RateLimit = n
			}
			if len(args) == 2 {
				dur, err := caddy.ParseDuration(args[1])
				if err != nil || dur <= 0 {
					return d.Errf("rate_limit interval %q: want a positive duration", args[1])
				}
				p.RateInterval = caddy.Duration(dur)
			}
		default:
			return d.Errf("unknown option %q in permission jupyterhub", d.Val())
		}
	}
	return nil
}

// subscribeCertEvents makes this config's events app tell the hub about certificates: obtained,
// failed (logged at Error level) and loaded (certstatus.go). Subscriptions close when the events
// app starts, so this runs in Provision; it only registers a handler.
func (a *App) subscribeCertEvents(ctx caddy.Context) error {
	v, err := eventsApp(ctx)
	if err != nil {
		// A context without a config (unit tests) has no events: nothing to subscribe to.
		a.logger.Debug("not subscribing to certificate events", zap.Error(err))
		return nil
	}
	events, ok := v.(*caddyevents.App)
	if !ok {
		return fmt.Errorf("events app is %T", v)
	}
	h := &CertificateEvents{logger: a.logger.Named("tls")}
	for _, name := range certEventNames {
		if err := events.On(name, h); err != nil {
			return fmt.Errorf("subscribing to %s: %w", name, err)
		}
	}
	if err := a.subscribeReady(events); err != nil {
		return fmt.Errorf("subscribing to started: %w", err)
	}
	return registerCertMetrics(ctx)
}

// eventsApp returns this config's events app (loading it if no other app has yet). A bare
// caddy.Context, as unit tests build, has no config, and Context.App dereferences it.
func eventsApp(ctx caddy.Context) (v any, err error) {
	defer func() {
		if r := recover(); r != nil {
			v, err = nil, fmt.Errorf("context has no config: %v", r)
		}
	}()
	return ctx.App("events")
}

// Interface guards.
var (
	_ caddy.Provisioner           = (*Permission)(nil)
	_ caddytls.OnDemandPermission = (*Permission)(nil)
	_ caddyfile.Unmarshaler       = (*Permission)(nil)
)
