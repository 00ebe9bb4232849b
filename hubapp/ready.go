package hubapp

// "hub ready at <url>": once a config with the hub has started, one log line says where to point a
// browser, worked out from the HTTP servers whose routes hand requests to the jupyterhub handler
// (their listen address, host matchers and TLS) and base_url.

import (
	"context"
	"net"
	"slices"
	"strconv"
	"strings"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyevents"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"

	"github.com/caddyhub/caddyhub/caddymodule"
)

// readyLogger is subscribed to Caddy's "started" event (the config's apps have all started).
type readyLogger struct{ a *App }

// Handle implements caddyevents.Handler. It never aborts the event.
func (r readyLogger) Handle(context.Context, caddy.Event) error {
	a := r.a
	if a.ProxyOnly || a.hub == nil {
		return nil
	}
	v, err := a.ctx.AppIfConfigured("http")
	if err != nil {
		return nil
	}
	httpApp, ok := v.(*caddyhttp.App)
	if !ok {
		return nil
	}
	if u := hubURL(httpApp, a.BaseURL); u != "" {
		a.logger.Info("hub ready at "+u, zap.String("url", u))
	} else {
		a.logger.Info("hub ready, but no HTTP server routes to the jupyterhub handler")
	}
	return nil
}

// subscribeReady makes the config's "started" event log where the hub is.
func (a *App) subscribeReady(events *caddyevents.App) error {
	return events.On("started", readyLogger{a: a})
}

// hubURL is the URL of the first HTTP server (by name) with a route to the jupyterhub handler:
// https when the server has TLS, the first host of its route's host matcher that has no wildcard
// (else "localhost" for an address on every interface or loopback, else the listen address), the
// port unless it is the scheme's default, and base_url. "" when no server routes to the hub.
func hubURL(httpApp *caddyhttp.App, base string) string {
	names := make([]string, 0, len(httpApp.Servers))
	for name := range httpApp.Servers {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		srv := httpApp.Servers[name]
		hosts, found := routesToHub(srv.Routes, nil)
		if !found || len(srv.Listen) == 0 {
			continue
		}
		addr, err := caddy.ParseNetworkAddress(srv.Listen[0])
		if err != nil {
			continue
		}
		scheme, defaultPort := "http", uint(80)
		if len(srv.TLSConnPolicies) > 0 {
			scheme, defaultPort = "https", 443
		}
		host := ""
		for _, h := range hosts {
			if !strings.Contains(h, "*") && !strings.Contains(h, "{") {
				host = h
				break
			}
		}
		if host == "" {
			host = addr.Host
			if ip := net.ParseIP(host); host == "" || ip != nil && (ip.IsUnspecified() || ip.IsLoopback()) {
				host = "localhost"
			} else if ip != nil && ip.To4() == nil {
				host = "[" + host + "]"
			}
		}
		if addr.StartPort != defaultPort {
			host += ":" + strconv.FormatUint(uint64(addr.StartPort), 10)
		}
		return scheme + "://" + host + base
	}
	return ""
}

// routesToHub reports whether routes (or their subroutes) reach the jupyterhub handler, with the
// hosts of the host matchers on the way there.
func routesToHub(routes caddyhttp.RouteList, hosts []string) ([]string, bool) {
	for _, rt := range routes {
		h := slices.Clone(hosts)
		for _, set := range rt.MatcherSets {
			for _, m := range set {
				if mh, ok := m.(*caddyhttp.MatchHost); ok {
					h = append(h, *mh...)
				}
			}
		}
		for _, handler := range rt.Handlers {
			switch x := handler.(type) {
			case *caddymodule.Handler:
				return h, true
			case *caddyhttp.Subroute:
				if got, ok := routesToHub(x.Routes, h); ok {
					return got, true
				}
			}
		}
	}
	return nil, false
}
