package caddymodule

import (
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/caddyhub/caddyhub/internal/caddyfiletest"
)

// TestCaddyfileAdapt runs the golden adapt tests of the jupyterhub site directive in testdata/caddyfile
// (internal/caddyfiletest says the layout).
func TestCaddyfileAdapt(t *testing.T) {
	caddyfiletest.Run(t, "testdata/caddyfile")
}

func TestUnmarshalCaddyfileErrors(t *testing.T) {
	for _, in := range []string{
		`jupyterhub extra`,
		"jupyterhub {\n bogus 1\n}",
		"jupyterhub {\n dial_timeout\n}",
		"jupyterhub {\n dial_timeout soon\n}",
		"jupyterhub {\n dial_timeout -1s\n}",
		"jupyterhub {\n stream_close_delay 1h 2h\n}",
		"jupyterhub {\n max_idle_conns_per_host 0\n}",
		"jupyterhub {\n max_idle_conns_per_host many\n}",
		"jupyterhub {\n tls_client_auth only-a-cert.pem\n}",
		"jupyterhub {\n tls_trusted_ca_certs\n}",
		"jupyterhub {\n tls_insecure_skip_verify yes\n}",
		"jupyterhub {\n tls_bogus x\n}",
	} {
		var h Handler
		if err := h.UnmarshalCaddyfile(caddyfile.NewTestDispenser(in)); err == nil {
			t.Errorf("%q: no error", in)
		}
	}
	var h Handler
	if err := h.UnmarshalCaddyfile(caddyfile.NewTestDispenser("jupyterhub {\n flush_interval 250ms\n tls_insecure_skip_verify\n}")); err != nil ||
		time.Duration(h.FlushInterval) != 250*time.Millisecond || h.TLS == nil || !h.TLS.InsecureSkipVerify {
		t.Errorf("flush_interval, tls_insecure_skip_verify: %v %+v", err, h)
	}
}
