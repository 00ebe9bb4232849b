package kubernetes_test

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2/caddyconfig"
	_ "github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile" // the caddyfile adapter

	_ "github.com/caddyhub/caddyhub/auth/dummy"
	_ "github.com/caddyhub/caddyhub/hubapp"
	_ "github.com/caddyhub/caddyhub/spawners/kubernetes"
)

// TestCaddyfileAdapt runs the golden adapt tests in testdata/*.caddytest: a Caddyfile, a line of
// ten dashes, then the expected JSON (compared semantically) or `error: <text>`.
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
			input, want, ok := strings.Cut(string(raw), "\n----------\n")
			if !ok {
				t.Fatalf("%s: no line of ten dashes", file)
			}
			got, _, err := adapter.Adapt([]byte(input), map[string]any{"filename": "Caddyfile"})
			if wantErr, isErr := strings.CutPrefix(strings.TrimSpace(want), "error:"); isErr {
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
				t.Fatalf("%s: expected JSON does not parse: %v", file, err)
			}
			if !reflect.DeepEqual(gotV, wantV) {
				var b bytes.Buffer
				_ = json.Indent(&b, got, "", "\t")
				t.Fatalf("adapted JSON differs; got:\n%s", b.String())
			}
		})
	}
}
