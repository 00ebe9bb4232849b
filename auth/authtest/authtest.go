// Package authtest helps test authenticator modules the way the hub app
// uses them: parse `authenticator <name> { ... }` from a Caddyfile, load a
// module from its JSON through a Caddy context (which also provisions and
// validates it), and check that the authenticator of a golden .caddytest
// file (internal/caddyfiletest) loads.
package authtest

import (
	"context"
	"encoding/json"
	"fmt"
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

// LoadsFromHub is a caddyfiletest.Check for golden files that configure an authenticator in the
// jupyterhub global option: the authenticator the adapted config holds must load (Load).
func LoadsFromHub(t *testing.T, adapted []byte) {
	t.Helper()
	var cfg struct {
		Apps struct {
			Hub struct {
				Authenticator json.RawMessage `json:"authenticator"`
			} `json:"jupyterhub"`
		} `json:"apps"`
	}
	if err := json.Unmarshal(adapted, &cfg); err != nil {
		t.Fatalf("adapted config: %v", err)
	}
	if cfg.Apps.Hub.Authenticator == nil {
		t.Fatal("the adapted config configures no authenticator")
	}
	if _, err := Load(t, string(cfg.Apps.Hub.Authenticator)); err != nil {
		t.Fatalf("the adapted authenticator does not load: %v", err)
	}
}
