package caddymodule

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
)

var updateGolden = flag.Bool("update", false, "rewrite the expected JSON of testdata/caddyfile_adapt/*.caddytest")

// TestCaddyfileAdapt adapts every testdata/caddyfile_adapt/*.caddytest file
// (Caddyfile, a line of dashes, expected JSON) and compares the JSON.
func TestCaddyfileAdapt(t *testing.T) {
	files, err := filepath.Glob("testdata/caddyfile_adapt/*.caddytest")
	if err != nil || len(files) == 0 {
		t.Fatalf("no golden files: %v", err)
	}
	adapter := caddyconfig.GetAdapter("caddyfile")
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			raw, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			input, want, ok := strings.Cut(string(raw), "----------\n")
			if !ok {
				t.Fatalf("%s: no separator", f)
			}
			got, warnings, err := adapter.Adapt([]byte(input), map[string]any{"filename": "Caddyfile"})
			if err != nil {
				t.Fatalf("adapting: %v", err)
			}
			for _, w := range warnings {
				t.Errorf("warning: %s", w.String())
			}
			var gotBuf bytes.Buffer
			if err := json.Indent(&gotBuf, got, "", "\t"); err != nil {
				t.Fatal(err)
			}
			if *updateGolden {
				if err := os.WriteFile(f, []byte(input+"----------\n"+gotBuf.String()+"\n"), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			var wantBuf bytes.Buffer
			if err := json.Indent(&wantBuf, []byte(want), "", "\t"); err != nil {
				t.Fatalf("expected JSON: %v", err)
			}
			if strings.TrimSpace(gotBuf.String()) != strings.TrimSpace(wantBuf.String()) {
				t.Errorf("adapted JSON differs\n--- got\n%s\n--- want\n%s", gotBuf.String(), wantBuf.String())
			}
		})
	}
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
