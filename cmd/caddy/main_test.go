package main

import (
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"
)

// TestModules checks the build carries what a hub's Caddyfile uses (our modules, the reverse proxy,
// automatic and internal TLS, compression, headers, metrics, logs, both config adapters) and leaves out
// the standard modules it drops on purpose to stay small.
func TestModules(t *testing.T) {
	have := map[string]bool{}
	for _, id := range caddy.Modules() {
		have[id] = true
	}
	for _, id := range []string{
		"jupyterhub", "http.handlers.jupyterhub", "jupyterhub.authenticators.pam", "jupyterhub.authenticators.dummy",
		"jupyterhub.authenticators.oidc", "jupyterhub.authenticators.github",
		"jupyterhub.spawners.localprocess", "jupyterhub.spawners.simple", "tls.permission.jupyterhub",
		"http", "tls", "pki", "events", "caddy.adapters.caddyfile",
		"http.handlers.reverse_proxy", "http.reverse_proxy.transport.http",
		"tls.issuance.acme", "tls.issuance.internal", "caddy.storage.file_system",
		"http.handlers.encode", "http.encoders.gzip", "http.encoders.zstd",
		"http.handlers.headers", "http.handlers.rewrite", "http.handlers.static_response",
		"http.handlers.subroute", "http.handlers.vars", "http.handlers.map", "http.handlers.request_body",
		"http.handlers.authentication", "http.handlers.metrics", "http.handlers.intercept",
		"caddy.logging.encoders.json", "caddy.logging.writers.file", "http.handlers.log_append",
		"http.matchers.path", "http.matchers.host", "http.matchers.remote_ip",
	} {
		if !have[id] {
			t.Errorf("module %s is missing from the build", id)
		}
	}
	for _, id := range []string{"http.handlers.file_server", "http.handlers.templates", "http.handlers.acme_server", "http.handlers.tracing"} {
		if have[id] {
			t.Errorf("module %s is in the build; cmd/caddy leaves it out to stay small (see main.go)", id)
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
