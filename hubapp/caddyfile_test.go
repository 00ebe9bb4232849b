package hubapp

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
	_ "github.com/caddyhub/caddyhub/auth/pam"
	_ "github.com/caddyhub/caddyhub/spawners/standard"
)

// TestCaddyfileAdapt runs the golden adapt tests in testdata/*.caddytest, like Caddy's and
// caddy-l4's: each file is a Caddyfile, a line of ten dashes, then
// either the expected JSON (compared semantically, so key order and indentation do not matter) or
// a line `error: <text>` whose text the adapt error must contain.
func TestCaddyfileAdapt(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "*.caddytest"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("no testdata/*.caddytest files")
	}
	adapter := caddyconfig.GetAdapter("caddyfile")
	if adapter == nil {
		t.Fatal("no caddyfile adapter registered")
	}
	for _, file := range files {
		t.Run(strings.TrimSuffix(filepath.Base(file), ".caddytest"), func(t *testing.T) {
			raw, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			input, want, ok := splitCaddytest(string(raw))
			if !ok {
				t.Fatalf("%s: no line of ten dashes separating the Caddyfile from the expected result", file)
			}
			got, warnings, err := adapter.Adapt([]byte(input), map[string]any{"filename": "Caddyfile"})
			for _, w := range warnings {
				t.Logf("warning: %s", w.String())
			}
			if wantErr, isErr := strings.CutPrefix(want, "error:"); isErr {
				wantErr = strings.TrimSpace(wantErr)
				if err == nil {
					t.Fatalf("adapted without error, want an error containing %q; got:\n%s", wantErr, indentJSON(got))
				}
				if !strings.Contains(err.Error(), wantErr) {
					t.Fatalf("error %q, want it to contain %q", err, wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("adapting: %v", err)
			}
			var gotV, wantV any
			if err := json.Unmarshal(got, &gotV); err != nil {
				t.Fatalf("adapter output is not JSON: %v", err)
			}
			if err := json.Unmarshal([]byte(want), &wantV); err != nil {
				t.Fatalf("%s: expected JSON does not parse: %v", file, err)
			}
			if !reflect.DeepEqual(gotV, wantV) {
				t.Fatalf("adapted JSON differs.\ngot:\n%s\nwant:\n%s", indentJSON(got), indentJSON([]byte(want)))
			}
		})
	}
}

// splitCaddytest splits a .caddytest file at its separator line (ten or more dashes).
func splitCaddytest(s string) (input, want string, ok bool) {
	lines := strings.SplitAfter(s, "\n")
	for i, l := range lines {
		if t := strings.TrimSpace(l); len(t) >= 10 && strings.Trim(t, "-") == "" {
			return strings.Join(lines[:i], ""), strings.TrimSpace(strings.Join(lines[i+1:], "")), true
		}
	}
	return "", "", false
}

func indentJSON(b []byte) string {
	var out bytes.Buffer
	if err := json.Indent(&out, b, "", "\t"); err != nil {
		return string(b)
	}
	return out.String()
}
