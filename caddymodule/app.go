// Package caddymodule is CaddyHub's edge: the `jupyterhub` HTTP handler that
// routes every request either to the hub in process or, through the route
// table, to a user's server or a service, and the configurable-http-proxy
// compatible REST API that edits the table. The `jupyterhub` Caddy app (package hubapp) owns the table and the
// hub; this package only asks for them through the App interface, so the
// import arrow points from the hub to the edge.
package caddymodule

import (
	"net/http"

	"github.com/caddyhub/caddyhub/caddymodule/routetable"
)

// App is what the edge needs from the `jupyterhub` app: ctx.App("jupyterhub")
// is asserted to it. The hub app implements it.
type App interface {
	// RouteTable returns the live table, or nil until the app has started
	// (the handler answers 503 meanwhile).
	RouteTable() *routetable.Table
	// Ready is closed once the app has started and loaded every route. Caddy starts apps in no
	// fixed order, so the first requests after a (re)start wait on it rather than miss routes.
	Ready() <-chan struct{}
	// Hub returns the in-process hub, or nil in proxy_only mode.
	Hub() Hub
	// ErrorTarget is configurable-http-proxy's --error-target, used in
	// proxy_only mode: "" means built-in pages.
	ErrorTarget() string
}

// Hub is the in-process hub (hub mode).
type Hub interface {
	// Prefix is the path the hub serves itself, e.g. "/hub/" (base_url included).
	Prefix() string
	// ServeHTTP serves requests under Prefix and every request no route
	// matches (JupyterHub redirects /user/<name>/… to /hub/user/<name>/… and
	// / to /hub/).
	http.Handler
	// ServeProxyError answers a request whose route exists but whose server
	// did not answer: JupyterHub shows "your server is not running"
	// (docs/protocols.md, "A server that is not running"). status is 502, 503
	// or 504.
	ServeProxyError(w http.ResponseWriter, r *http.Request, status int, route *routetable.Route)
}
