// Package authtest helps test authenticator modules the way the hub app
// uses them: parse `authenticator <name> { ... }` from a Caddyfile, load a
// module from its JSON through a Caddy context (which also provisions and
// validates it), and compare golden .caddytest files.
package authtest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
)

// Parse parses a Caddyfile segment `authenticator <name> { ... }` the way
// the hub app does (caddyfile.UnmarshalModule in the namespace
// jupyterhub.authenticators) and returns the module's JSON with its inline
// key, as the hub app stores it.
func Parse(input string) (json.RawMessage, error) {
	d := caddyfile.NewTestDispenser(input)
	if !d.Next() || d.Val() != "authenticator" {
		return nil, fmt.Errorf("input must start with 'authenticator <name>': %q", input)
	}
	if !d.NextArg() {
		return nil, d.ArgErr()
	}
	name := d.Val()
	unm, err := caddyfile.UnmarshalModule(d, "jupyterhub.authenticators."+name)
	if err != nil {
		return nil, err
	}
	return caddyconfig.JSONModuleObject(unm, "authenticator", name, nil), nil
}

// host stands in for the hub app's field that holds the authenticator.
type host struct {
	AuthenticatorRaw json.RawMessage `json:"authenticator,omitempty" caddy:"namespace=jupyterhub.authenticators inline_key=authenticator"`
}

// Load loads a module from its JSON (with "authenticator": "<name>")
// through a fresh Caddy context, as the hub app does: strict JSON, then
// Provision and Validate. The context is cancelled when the test ends.
func Load(t testing.TB, raw string) (caddy.Module, error) {
	t.Helper()
	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	t.Cleanup(cancel)
	h := host{AuthenticatorRaw: json.RawMessage(raw)}
	mod, err := ctx.LoadModule(&h, "AuthenticatorRaw")
	if err != nil {
		return nil, err
	}
	return mod.(caddy.Module), nil
}

// Golden checks every dir/*.caddytest file: a Caddyfile segment
// `authenticator <name> { ... }`, a line of ten dashes, the expected JSON.
// The JSON must also load (Load). With update, the expected JSON is
// rewritten instead.
func Golden(t *testing.T, dir string, update bool) {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*.caddytest"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no golden files in %s: %v", dir, err)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			raw, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			input, want, ok := strings.Cut(string(raw), "----------\n")
			if !ok {
				t.Fatalf("%s: no separator line", f)
			}
			got, err := Parse(input)
			if err != nil {
				t.Fatalf("parsing: %v", err)
			}
			var gotBuf bytes.Buffer
			if err := json.Indent(&gotBuf, got, "", "\t"); err != nil {
				t.Fatal(err)
			}
			if update {
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
				t.Fatalf("JSON differs\n--- got\n%s\n--- want\n%s", gotBuf.String(), wantBuf.String())
			}
			if _, err := Load(t, string(got)); err != nil {
				t.Fatalf("the adapted JSON does not load: %v", err)
			}
		})
	}
}
