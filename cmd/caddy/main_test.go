package main

import (
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
)

// TestModules checks the build carries Caddy's standard modules, as Caddy's own cmd/caddy does (an
// operator moving a front end to it finds file_server, templates, forward_auth, tracing), and ours.
func TestModules(t *testing.T) {
	have := map[string]bool{}
	for _, id := range caddy.Modules() {
		have[id] = true
	}
	for _, id := range []string{
		// ours
		"jupyterhub", "http.handlers.jupyterhub", "jupyterhub.authenticators.pam", "jupyterhub.authenticators.dummy",
		"jupyterhub.spawners.localprocess", "jupyterhub.spawners.simple", "tls.permission.jupyterhub",
		// Caddy's standard set
		"http", "tls", "pki", "events", "caddy.adapters.caddyfile",
		"http.handlers.reverse_proxy", "http.reverse_proxy.transport.http", "http.reverse_proxy.transport.fastcgi",
		"tls.issuance.acme", "tls.issuance.internal", "caddy.storage.file_system",
		"http.handlers.encode", "http.encoders.gzip", "http.encoders.zstd",
		"http.handlers.headers", "http.handlers.rewrite", "http.handlers.static_response",
		"http.handlers.subroute", "http.handlers.vars", "http.handlers.map", "http.handlers.request_body",
		"http.handlers.authentication", "http.handlers.metrics", "http.handlers.intercept",
		"http.handlers.file_server", "http.handlers.templates", "http.handlers.tracing", "http.handlers.acme_server",
		"http.handlers.push",
		"caddy.logging.encoders.json", "caddy.logging.writers.file", "http.handlers.log_append",
		"http.matchers.path", "http.matchers.host", "http.matchers.remote_ip",
	} {
		if !have[id] {
			t.Errorf("module %s is missing from the build", id)
		}
	}
	if t.Failed() {
		var ids []string
		for id := range have {
			ids = append(ids, id)
		}
		t.Logf("modules: %s", strings.Join(ids, " "))
	}
}

// TestStandardDirectives adapts a Caddyfile that uses the standard directives an operator replacing
// an nginx front end reaches for, beside the hub's: none may be "unrecognized".
func TestStandardDirectives(t *testing.T) {
	const input = `hub.example.org {
	tracing
	handle /maintenance/* {
		root * /srv/maintenance
		templates
		file_server
	}
	handle /admin-tools/* {
		forward_auth 127.0.0.1:9091 {
			uri /verify
			copy_headers X-User
		}
		reverse_proxy 127.0.0.1:9092
	}
	jupyterhub
}
`
	adapter := caddyconfig.GetAdapter("caddyfile")
	out, warnings, err := adapter.Adapt([]byte(input), map[string]any{"filename": "Caddyfile"})
	if err != nil {
		t.Fatalf("adapting: %v", err)
	}
	for _, w := range warnings {
		t.Errorf("warning: %s", w.String())
	}
	for _, handler := range []string{`"handler":"tracing"`, `"handler":"file_server"`, `"handler":"templates"`,
		`"handler":"reverse_proxy"`, `"handler":"jupyterhub"`, `"uri":"/verify"`} {
		if !strings.Contains(string(out), handler) {
			t.Errorf("adapted config lacks %s:\n%s", handler, out)
		}
	}
}
