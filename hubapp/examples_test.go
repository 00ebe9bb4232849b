package hubapp

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2/caddyconfig"
)

// TestRepositoryCaddyfiles: the Caddyfiles at the top of the repository adapt; the demo has an
// admin user (so the admin pages can be tried) and its comment runs it with the README's command.
func TestRepositoryCaddyfiles(t *testing.T) {
	adapter := caddyconfig.GetAdapter("caddyfile")
	for _, name := range []string{"Caddyfile", "Caddyfile.demo", "Caddyfile.example"} {
		raw, err := os.ReadFile(filepath.Join("..", name))
		if err != nil {
			t.Fatal(err)
		}
		out, _, err := adapter.Adapt(raw, map[string]any{"filename": name})
		if err != nil {
			t.Fatalf("adapting %s: %v", name, err)
		}
		if name != "Caddyfile.demo" {
			continue
		}
		var cfg struct {
			Apps struct {
				JupyterHub struct {
					Authenticator struct {
						AdminUsers []string `json:"admin_users"`
					} `json:"authenticator"`
				} `json:"jupyterhub"`
			} `json:"apps"`
		}
		if err := json.Unmarshal(out, &cfg); err != nil {
			t.Fatal(err)
		}
		if !slices.Contains(cfg.Apps.JupyterHub.Authenticator.AdminUsers, "admin") {
			t.Errorf("Caddyfile.demo: admin_users = %q, want an admin user", cfg.Apps.JupyterHub.Authenticator.AdminUsers)
		}
		readme, err := os.ReadFile(filepath.Join("..", "README.md"))
		if err != nil {
			t.Fatal(err)
		}
		const cmd = "HUB_DEMO_PASSWORD=change-me go run ./cmd/caddy run --config Caddyfile.demo"
		if !strings.Contains(string(raw), "#   "+cmd+"\n") || !strings.Contains(string(readme), "`"+cmd+"`") {
			t.Errorf("Caddyfile.demo's comment and the README do not both say %q", cmd)
		}
	}
}
