package caddyhub

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2/caddyconfig"
	_ "github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile" // the caddyfile adapter

	"github.com/caddyhub/caddyhub/caddymodule"
	"github.com/caddyhub/caddyhub/hubapp"
	"github.com/caddyhub/caddyhub/internal/caddyfiletest"
)

// FuzzCaddyfile: any Caddyfile through the real adapter, with every CaddyHub module registered (the
// `jupyterhub` global option and its authenticator, spawner, service, role, group and culler blocks;
// the `jupyterhub` site directive). Adapting never panics; when it succeeds, adapting again gives
// the same JSON, and the jupyterhub app and every jupyterhub handler in it decode into their Go
// types with no unknown field (what the adapter writes is what the modules read). Seeds: every
// golden Caddyfile under */testdata/caddyfile.
func FuzzCaddyfile(f *testing.F) {
	files, _ := filepath.Glob("*/testdata/caddyfile/*.caddytest")
	deeper, _ := filepath.Glob("*/*/testdata/caddyfile/*.caddytest")
	files = append(files, deeper...)
	for _, file := range files {
		raw, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		if input, _, ok := caddyfiletest.Split(string(raw)); ok {
			f.Add(input)
		}
	}
	if len(files) == 0 {
		f.Fatal("no golden Caddyfiles to seed from")
	}
	f.Add("{\n\tjupyterhub\n}\n:8000 {\n\tjupyterhub\n}\n")
	adapter := caddyconfig.GetAdapter("caddyfile")
	f.Fuzz(func(t *testing.T, input string) {
		if strings.Contains(input, "import") || len(input) > 8<<10 {
			return // import reads files of this machine; huge inputs only slow the run
		}
		opts := map[string]any{"filename": "Caddyfile"}
		out, _, err := adapter.Adapt([]byte(input), opts)
		if err != nil {
			return
		}
		again, _, err := adapter.Adapt([]byte(input), opts)
		if err != nil || !bytes.Equal(out, again) {
			t.Fatalf("adapting twice differs (%v):\n%s\n%s", err, out, again)
		}
		var cfg struct {
			Apps map[string]json.RawMessage `json:"apps"`
		}
		if err := json.Unmarshal(out, &cfg); err != nil {
			t.Fatalf("adapted config is not JSON: %v", err)
		}
		if raw, ok := cfg.Apps["jupyterhub"]; ok {
			strictDecode(t, raw, new(hubapp.App))
		}
		for _, h := range jupyterhubHandlers(t, out) {
			strictDecode(t, h, new(caddymodule.Handler))
		}
	})
}

func strictDecode(t *testing.T, raw []byte, v any) {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		t.Fatalf("adapted %T does not decode: %v\n%s", v, err, raw)
	}
}

// jupyterhubHandlers returns every JSON object with "handler": "jupyterhub" in the config, without
// its "handler" key.
func jupyterhubHandlers(t *testing.T, config []byte) [][]byte {
	var tree any
	if err := json.Unmarshal(config, &tree); err != nil {
		t.Fatal(err)
	}
	var out [][]byte
	var walk func(any)
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			if v["handler"] == "jupyterhub" {
				delete(v, "handler")
				b, _ := json.Marshal(v)
				out = append(out, b)
				return
			}
			for _, c := range v {
				walk(c)
			}
		case []any:
			for _, c := range v {
				walk(c)
			}
		}
	}
	walk(tree)
	return out
}
