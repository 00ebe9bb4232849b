package tests

// The plugin build (README, "Build"): `xcaddy build <version> --with <our module>=<repo>`
// gives a Caddy with every CaddyHub module, and xcaddy.json names the same Caddy version as go.mod.

import (
	"bufio"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

const caddyhubModule = "github.com/caddyhub/caddyhub"

// xcaddyModules are the module IDs `caddy list-modules` must show in a plugin build.
var xcaddyModules = []string{
	"http.handlers.jupyterhub",
	"jupyterhub",
	"jupyterhub.authenticators.dummy",
	"jupyterhub.authenticators.github",
	"jupyterhub.authenticators.oidc",
	"jupyterhub.authenticators.pam",
	"jupyterhub.spawners.localprocess",
	"jupyterhub.spawners.simple",
}

// goModRequire returns the version go.mod requires for module, or "".
func goModRequire(t *testing.T, gomod, module string) string {
	t.Helper()
	f, err := os.Open(gomod)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(strings.TrimPrefix(strings.TrimSpace(sc.Text()), "require "))
		if len(fields) >= 2 && fields[0] == module {
			return fields[1]
		}
	}
	return ""
}

// TestXcaddyJSONMatchesGoMod runs always: it is cheap and catches a version bump in one place only.
func TestXcaddyJSONMatchesGoMod(t *testing.T) {
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	version, modules := readXcaddyJSON(t, root)
	if want := goModRequire(t, filepath.Join(root, "go.mod"), "github.com/caddyserver/caddy/v2"); version != want {
		t.Fatalf("xcaddy.json caddy_version %q, go.mod requires caddy %q", version, want)
	}
	if !slices.Contains(modules, caddyhubModule) {
		t.Fatalf("xcaddy.json modules %v do not include %s", modules, caddyhubModule)
	}
}

func readXcaddyJSON(t *testing.T, root string) (string, []string) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, "xcaddy.json"))
	if err != nil {
		t.Fatalf("xcaddy.json: %v", err)
	}
	var x struct {
		CaddyVersion string   `json:"caddy_version"`
		Modules      []string `json:"modules"`
	}
	if err := json.Unmarshal(b, &x); err != nil {
		t.Fatalf("xcaddy.json: %v", err)
	}
	if x.CaddyVersion == "" {
		t.Fatal("xcaddy.json has no caddy_version")
	}
	return x.CaddyVersion, x.Modules
}

// TestXcaddyBuild builds Caddy the plugin way and checks our modules are in it. It takes minutes
// on a cold cache, so it runs only with HUB_XCADDY=1 (.ci/run sets it).
func TestXcaddyBuild(t *testing.T) {
	if os.Getenv("HUB_XCADDY") != "1" {
		t.Skip("set HUB_XCADDY=1 to build with xcaddy")
	}
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	version, _ := readXcaddyJSON(t, root)
	goBin := Require(t, "go")
	out := filepath.Join(t.TempDir(), "caddy")

	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, goBin, "tool", "xcaddy", "build", version,
		"--with", caddyhubModule+"@v0.0.0-00010101000000-000000000000="+root,
		"--output", out)
	cmd.Dir = root
	// cgo on (PAM) and no -trimpath/-ldflags: the same flags as `go build`/`go test`, so the build
	// cache is shared (CI's GOFLAGS build tags pass through too); -buildvcs=false because xcaddy
	// builds in a temporary module.
	cmd.Env = append(os.Environ(), "CGO_ENABLED=1", "XCADDY_GO_BUILD_FLAGS=-buildvcs=false")
	start := time.Now()
	if msg, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("xcaddy build: %v\n%s", err, msg)
	}
	t.Logf("xcaddy build took %s", time.Since(start).Round(time.Second))

	list, err := exec.Command(out, "list-modules").Output()
	if err != nil {
		t.Fatalf("caddy list-modules: %v", err)
	}
	have := strings.Fields(string(list))
	for _, id := range xcaddyModules {
		if !slices.Contains(have, id) {
			t.Errorf("xcaddy-built caddy lacks module %s", id)
		}
	}
	ver, err := exec.Command(out, "version").Output()
	if err != nil || !strings.HasPrefix(strings.TrimSpace(string(ver)), version) {
		t.Errorf("caddy version = %q (%v), want %s", ver, err, version)
	}
}
