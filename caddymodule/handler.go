package caddymodule

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp/headers"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp/reverseproxy"
	"go.uber.org/zap"

	"github.com/caddyhub/caddyhub/caddymodule/routetable"
)

func init() {
	caddy.RegisterModule(Handler{})
}

// Defaults of the handler's options.
const (
	defaultDialTimeout         = 2 * time.Second
	defaultStreamCloseDelay    = 8 * time.Hour
	defaultMaxIdleConnsPerHost = 256
	healthzPath                = "/_chp_healthz"
)

// routeVarKey is the request variable that carries the matched
// *routetable.Route from ServeHTTP to the upstream source.
const routeVarKey = "jupyterhub.route"

var (
	errHubNotStarted = errors.New("jupyterhub app has not started yet")
	errNoRoute       = errors.New("no route in request")
)

// Handler is the `jupyterhub` HTTP handler: it serves the hub's own pages in
// process and proxies everything else along the route table to users'
// servers and services, like configurable-http-proxy in front of JupyterHub.
// Streams (websockets, EventSource, downloads) are passed through unbuffered,
// and traffic marks its route active.
type Handler struct {
	// DialTimeout is how long to wait for a user server to accept a
	// connection; a dead server then turns quickly into the hub's "server
	// not running" page. Default: 2s.
	DialTimeout caddy.Duration `json:"dial_timeout,omitempty"`

	// StreamCloseDelay keeps upgraded connections (notebook kernel
	// websockets) open this long across a config reload before closing
	// them. Default: 8h.
	StreamCloseDelay caddy.Duration `json:"stream_close_delay,omitempty"`

	// FlushInterval is how often buffered response bodies are flushed to
	// the client; -1 flushes after every write. EventSource responses,
	// responses of unknown length and HTTP/2 streams are always flushed
	// immediately. Default: 0 (flush when the buffer fills or the response
	// ends).
	FlushInterval caddy.Duration `json:"flush_interval,omitempty"`

	// MaxIdleConnsPerHost is how many idle keep-alive connections to keep
	// open to each user server. Default: 256.
	MaxIdleConnsPerHost int `json:"max_idle_conns_per_host,omitempty"`

	// TLS configures connections to https targets (JupyterHub's
	// internal_ssl, CHP's --client-ssl-*): trusted CAs, a client
	// certificate, the server name to verify. The client's Host header is
	// still sent to the target. Default: the system's trusted roots, no
	// client certificate.
	TLS *reverseproxy.TLSConfig `json:"tls,omitempty"`

	app        App
	rp         *reverseproxy.Handler // http targets
	rpTLS      *reverseproxy.Handler // https targets
	transports []*reverseproxy.HTTPTransport
	errors     *http.Client
	logger     *zap.Logger
}

// CaddyModule returns the Caddy module information.
func (Handler) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.jupyterhub",
		New: func() caddy.Module { return new(Handler) },
	}
}

// Provision finds the `jupyterhub` app and builds the embedded reverse
// proxies. It does no I/O.
func (h *Handler) Provision(ctx caddy.Context) error {
	h.logger = ctx.Logger()
	appIface, err := ctx.App("jupyterhub")
	if err != nil {
		return fmt.Errorf("getting jupyterhub app: %w", err)
	}
	app, ok := appIface.(App)
	if !ok {
		return fmt.Errorf("jupyterhub app is %T, which does not provide a route table", appIface)
	}
	h.app = app
	if h.DialTimeout == 0 {
		h.DialTimeout = caddy.Duration(defaultDialTimeout)
	}
	if h.StreamCloseDelay == 0 {
		h.StreamCloseDelay = caddy.Duration(defaultStreamCloseDelay)
	}
	if h.MaxIdleConnsPerHost == 0 {
		h.MaxIdleConnsPerHost = defaultMaxIdleConnsPerHost
	}
	h.rp, err = h.newReverseProxy(ctx, false)
	if err != nil {
		return err
	}
	h.rpTLS, err = h.newReverseProxy(ctx, true)
	if err != nil {
		return err
	}
	h.errors = &http.Client{
		Timeout: 10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
	return nil
}

// newReverseProxy builds and provisions one embedded reverse proxy whose
// upstream is the route stashed in the request.
func (h *Handler) newReverseProxy(ctx caddy.Context, useTLS bool) (*reverseproxy.Handler, error) {
	noCompression := false
	transport := &reverseproxy.HTTPTransport{
		DialTimeout: h.DialTimeout,
		KeepAlive: &reverseproxy.KeepAlive{
			MaxIdleConnsPerHost: h.MaxIdleConnsPerHost,
		},
		// Forward Accept-Encoding as the client sent it. Go's transport
		// would otherwise ask servers for gzip on behalf of clients that
		// did not, then decompress the answer itself: CPU on both ends for
		// nothing, and not what configurable-http-proxy does.
		Compression: &noCompression,
	}
	rp := &reverseproxy.Handler{
		Transport:        transport,
		DynamicUpstreams: routeUpstreams{},
		FlushInterval:    h.FlushInterval,
		StreamCloseDelay: h.StreamCloseDelay,
	}
	if useTLS {
		transport.TLS = &reverseproxy.TLSConfig{}
		if h.TLS != nil {
			transport.TLS = h.TLS
		}
		// The TLS transport sends the upstream's address as Host by
		// default; configurable-http-proxy keeps the client's Host.
		rp.Headers = &headers.Handler{Request: &headers.HeaderOps{
			Set: http.Header{"Host": []string{"{http.request.hostport}"}},
		}}
	}
	if err := transport.Provision(ctx); err != nil {
		return nil, fmt.Errorf("provisioning transport: %w", err)
	}
	h.transports = append(h.transports, transport)
	if err := rp.Provision(ctx); err != nil {
		return nil, fmt.Errorf("provisioning embedded reverse proxy: %w", err)
	}
	return rp, nil
}

// Cleanup releases the embedded reverse proxies (closing hijacked
// connections after StreamCloseDelay).
func (h *Handler) Cleanup() error {
	var errs []error
	for _, rp := range []*reverseproxy.Handler{h.rp, h.rpTLS} {
		if rp != nil {
			errs = append(errs, rp.Cleanup())
		}
	}
	for _, t := range h.transports {
		errs = append(errs, t.Cleanup())
	}
	return errors.Join(errs...)
}

// ServeHTTP implements caddyhttp.MiddlewareHandler. It never calls next: the
// hub (or, without one, an error page) answers what no route matches.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request, _ caddyhttp.Handler) error {
	if err := h.waitReady(r); err != nil {
		return err
	}
	if r.URL.Path == healthzPath && r.URL.RawQuery == "" {
		w.Header().Set("Content-Type", "application/json")
		_, err := w.Write([]byte(`{"status":"OK"}`))
		return err
	}
	table := h.app.RouteTable()
	if table == nil {
		return caddyhttp.Error(http.StatusServiceUnavailable, errHubNotStarted)
	}
	hub := h.app.Hub()
	if hub != nil && strings.HasPrefix(r.URL.Path, hub.Prefix()) {
		hub.ServeHTTP(w, r)
		return nil
	}
	route := table.Lookup(hostOnly(r.Host), r.URL.Path)
	if route == nil {
		if hub != nil {
			hub.ServeHTTP(w, r)
			return nil
		}
		h.serveError(w, r, http.StatusNotFound)
		return nil
	}
	return h.proxy(w, r, route, hub)
}

// proxy sends r to route's target through the embedded reverse proxy and
// turns a failure to reach it into the hub's (or CHP's) error page.
func (h *Handler) proxy(w http.ResponseWriter, r *http.Request, route *routetable.Route, hub Hub) error {
	caddyhttp.SetVar(r.Context(), routeVarKey, route)
	setForwardedPort(r)
	if !isHubRoute(route) {
		stripHubLoginCookie(r)
	}
	upstreamReq := r
	if p, raw := route.PrependPath(); p != "" {
		upstreamReq = withPrependedPath(r, p, raw)
	}
	rp := h.rp
	if route.Scheme() == "https" {
		rp = h.rpTLS
	}
	aw := newActivityWriter(w, route)
	err := rp.ServeHTTP(aw, upstreamReq, nil)
	if err == nil || aw.status != 0 {
		return err // success, or too late to replace the response
	}
	status := http.StatusBadGateway
	var he caddyhttp.HandlerError
	if errors.As(err, &he) && he.StatusCode != 0 {
		status = he.StatusCode
	}
	if status < 500 { // 499: the client went away; nobody to answer
		return err
	}
	if c := h.logger.Check(zap.InfoLevel, "user server did not answer"); c != nil {
		c.Write(zap.String("route", route.Key()), zap.String("target", route.Target()),
			zap.Int("status", status), zap.Error(err))
	}
	if hub != nil {
		hub.ServeProxyError(w, r, status, route)
		return nil
	}
	// configurable-http-proxy answers 503 for any upstream failure.
	h.serveError(w, r, http.StatusServiceUnavailable)
	return nil
}

// routeUpstreams is the embedded proxy's upstream source: the route that
// ServeHTTP found, as a fresh Upstream (the proxy mutates what it gets).
type routeUpstreams struct{}

func (routeUpstreams) GetUpstreams(r *http.Request) ([]*reverseproxy.Upstream, error) {
	route, _ := caddyhttp.GetVar(r.Context(), routeVarKey).(*routetable.Route)
	if route == nil {
		return nil, errNoRoute
	}
	return []*reverseproxy.Upstream{{Dial: route.Dial()}}, nil
}

// hostOnly strips the port from a Host header value.
func hostOnly(hostport string) string {
	if hostport == "" {
		return ""
	}
	if host, _, err := net.SplitHostPort(hostport); err == nil {
		return host
	}
	return strings.TrimSuffix(strings.TrimPrefix(hostport, "["), "]")
}

// setForwardedPort adds X-Forwarded-Port as node-http-proxy (CHP) does: the
// Host header's port, else the scheme's. Caddy sets X-Forwarded-For, -Proto
// and -Host itself; a value from a trusted proxy is kept.
func setForwardedPort(r *http.Request) {
	if trusted, _ := caddyhttp.GetVar(r.Context(), caddyhttp.TrustedProxyVarKey).(bool); trusted &&
		r.Header.Get("X-Forwarded-Port") != "" {
		return
	}
	port := "80"
	if r.TLS != nil {
		port = "443"
	}
	if _, p, err := net.SplitHostPort(r.Host); err == nil && p != "" {
		port = p
	}
	r.Header.Set("X-Forwarded-Port", port)
}

// withPrependedPath returns a shallow copy of r whose path starts with the
// target's path (CHP's prependPath).
func withPrependedPath(r *http.Request, p, raw string) *http.Request {
	r2 := r.WithContext(r.Context())
	u := *r.URL
	u.Path = p + r.URL.Path
	u.RawPath = raw + r.URL.EscapedPath()
	r2.URL = &u
	return r2
}

// Interface guards
var (
	_ caddy.Provisioner           = (*Handler)(nil)
	_ caddy.CleanerUpper          = (*Handler)(nil)
	_ caddyhttp.MiddlewareHandler = (*Handler)(nil)
	_ reverseproxy.UpstreamSource = routeUpstreams{}
)

// appStartWait bounds how long a request waits for the jupyterhub app to start.
const appStartWait = 15 * time.Second

// waitReady holds a request that arrives before the jupyterhub app has loaded its routes (Caddy
// starts apps in random order), so that the first request after a restart is routed, not refused.
func (h *Handler) waitReady(r *http.Request) error {
	ready := h.app.Ready()
	select {
	case <-ready:
		return nil
	default:
	}
	t := time.NewTimer(appStartWait)
	defer t.Stop()
	select {
	case <-ready:
		return nil
	case <-r.Context().Done():
		return caddyhttp.Error(http.StatusServiceUnavailable, r.Context().Err())
	case <-t.C:
		return caddyhttp.Error(http.StatusServiceUnavailable, errHubNotStarted)
	}
}

// hubLoginCookie is the hub's login cookie (JupyterHub's name). Browsers scope it to /hub/, so it
// should never come with a request for a user's server or a service; if it does (a cookie set with
// a wider path by a misconfigured proxy in front, or a crafted client), it is removed before the
// request leaves the edge: a user's server must never see the hub's credentials.
const hubLoginCookie = "jupyterhub-hub-login"

// isHubRoute reports whether route leads to a hub: JupyterHub marks its own route {"hub": true}
// when it drives us as its proxy (proxy_only), and that hub needs its login cookie.
func isHubRoute(route *routetable.Route) bool {
	return route.Hub()
}

// stripHubLoginCookie removes the hub's login cookie from r's Cookie headers, keeping the others.
func stripHubLoginCookie(r *http.Request) {
	values := r.Header.Values("Cookie")
	found := false
	for _, v := range values {
		if strings.Contains(v, hubLoginCookie) {
			found = true
			break
		}
	}
	if !found {
		return
	}
	var kept []string
	for _, c := range r.Cookies() {
		if c.Name != hubLoginCookie {
			kept = append(kept, c.Name+"="+c.Value)
		}
	}
	r.Header.Del("Cookie")
	if len(kept) > 0 {
		r.Header.Set("Cookie", strings.Join(kept, "; "))
	}
}
