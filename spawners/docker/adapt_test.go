package docker_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2/caddyconfig"
	_ "github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile" // the caddyfile adapter

	_ "github.com/caddyhub/caddyhub/hubapp" // the jupyterhub app and directive
	_ "github.com/caddyhub/caddyhub/spawners/docker"
)

// TestCaddyfileAdapt runs the golden adapt tests in testdata/*.caddytest: a
// Caddyfile, a line of ten dashes, then the expected JSON (compared
// semantically) or `error: <text>` that the adapt error must contain.
func TestCaddyfileAdapt(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "*.caddytest"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no testdata/*.caddytest files: %v", err)
	}
	adapter := caddyconfig.GetAdapter("caddyfile")
	for _, file := range files {
		t.Run(strings.TrimSuffix(filepath.Base(file), ".caddytest"), func(t *testing.T) {
			raw, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			input, want, ok := strings.Cut(string(raw), "----------\n")
			if !ok {
				t.Fatalf("%s: no line of ten dashes", file)
			}
			want = strings.TrimSpace(want)
			got, _, err := adapter.Adapt([]byte(input), map[string]any{"filename": "Caddyfile"})
			if wantErr, isErr := strings.CutPrefix(want, "error:"); isErr {
				if err == nil || !strings.Contains(err.Error(), strings.TrimSpace(wantErr)) {
					t.Fatalf("error %v, want one containing %q", err, strings.TrimSpace(wantErr))
				}
				return
			}
			if err != nil {
				t.Fatalf("adapting: %v", err)
			}
			var gotV, wantV any
			if err := json.Unmarshal(got, &gotV); err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal([]byte(want), &wantV); err != nil {
				t.Fatalf("%s: expected JSON: %v", file, err)
			}
			if !reflect.DeepEqual(gotV, wantV) {
				t.Fatalf("adapted JSON differs:\n%s", got)
			}
		})
	}
}
