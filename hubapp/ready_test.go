package hubapp

import (
	"testing"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/caddyserver/caddy/v2/modules/caddytls"

	"github.com/caddyhub/caddyhub/caddymodule"
)

// TestHubURL: the "hub ready at" URL comes from the server that routes to the jupyterhub handler.
func TestHubURL(t *testing.T) {
	hub := func() []caddyhttp.MiddlewareHandler { return []caddyhttp.MiddlewareHandler{&caddymodule.Handler{}} }
	other := caddyhttp.RouteList{{Handlers: []caddyhttp.MiddlewareHandler{&caddyhttp.StaticResponse{}}}}
	tests := []struct {
		name string
		srvs map[string]*caddyhttp.Server
		base string
		want string
	}{
		{"quick start :8000", map[string]*caddyhttp.Server{
			"srv0": {Listen: []string{":8000"}, Routes: caddyhttp.RouteList{{Handlers: hub()}}},
		}, "/", "http://localhost:8000/"},
		{"bound to loopback, base_url", map[string]*caddyhttp.Server{
			"srv0": {Listen: []string{"tcp/127.0.0.1:8123"}, Routes: caddyhttp.RouteList{{Handlers: hub()}}},
		}, "/prefix/", "http://localhost:8123/prefix/"},
		{"a site name with TLS, in a subroute, beside another server", map[string]*caddyhttp.Server{
			"a": {Listen: []string{":80"}, Routes: other},
			"srv0": {Listen: []string{":443"}, TLSConnPolicies: caddytls.ConnectionPolicies{{}}, Routes: caddyhttp.RouteList{{
				MatcherSets: caddyhttp.MatcherSets{{&caddyhttp.MatchHost{"*.hub.example.org", "hub.example.org"}}},
				Handlers:    []caddyhttp.MiddlewareHandler{&caddyhttp.Subroute{Routes: caddyhttp.RouteList{{Handlers: hub()}}}},
			}}},
		}, "/", "https://hub.example.org/"},
		{"a specific address", map[string]*caddyhttp.Server{
			"srv0": {Listen: []string{"10.1.2.3:8000"}, Routes: caddyhttp.RouteList{{Handlers: hub()}}},
		}, "/", "http://10.1.2.3:8000/"},
		{"no route to the hub", map[string]*caddyhttp.Server{"a": {Listen: []string{":80"}, Routes: other}}, "/", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := hubURL(&caddyhttp.App{Servers: tt.srvs}, tt.base); got != tt.want {
				t.Fatalf("hubURL = %q, want %q", got, tt.want)
			}
		})
	}
}
