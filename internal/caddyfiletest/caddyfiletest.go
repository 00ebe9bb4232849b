// Package caddyfiletest runs the golden Caddyfile tests of every package, in the style of Caddy's own
// caddytest adapt tests: each <dir>/*.caddytest file is a Caddyfile, a line of ten dashes, then either
// the JSON the caddyfile adapter must produce (compared as JSON values, so key order and indentation
// do not matter) or a line `error: <text>` that the adapt error must contain. Adapting must not warn.
//
// A package's test calls Run with its own testdata folder and blank-imports the modules its Caddyfiles
// use. `go test -run <Test> -update` rewrites the expected JSON of the files that adapt.
package caddyfiletest

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2/caddyconfig"
	_ "github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile" // the caddyfile adapter
)

var update = flag.Bool("update", false, "rewrite the expected JSON of the .caddytest files that adapt")

// Separator is the line between the Caddyfile and the expected result.
const Separator = "----------"

// Check is an extra assertion on the adapted JSON of a file that adapts without error, for example
// that the module it configures loads and provisions.
type Check func(t *testing.T, adapted []byte)

// Run adapts every dir/*.caddytest file in a subtest named after the file and compares the result.
// It fails when dir holds no such file.
func Run(t *testing.T, dir string, checks ...Check) {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*.caddytest"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatalf("no %s/*.caddytest files", dir)
	}
	// A golden file left beside dir instead of in it would never run.
	if stray, _ := filepath.Glob(filepath.Join(filepath.Dir(dir), "*.caddytest")); len(stray) > 0 {
		t.Fatalf("golden files outside %s are not run: %v", dir, stray)
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
			input, want, ok := Split(string(raw))
			if !ok {
				t.Fatalf("%s: no line of ten dashes between the Caddyfile and the expected result", file)
			}
			got, warnings, err := adapter.Adapt([]byte(input), map[string]any{"filename": "Caddyfile"})
			for _, w := range warnings {
				t.Errorf("adapting warned: %s", w.String())
			}
			if wantErr, isErr := strings.CutPrefix(want, "error:"); isErr {
				wantErr = strings.TrimSpace(wantErr)
				if err == nil {
					t.Fatalf("adapted without error, want an error containing %q; got:\n%s", wantErr, Indent(got))
				}
				if !strings.Contains(err.Error(), wantErr) {
					t.Fatalf("error %q, want it to contain %q", err, wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("adapting: %v", err)
			}
			if *update {
				if err := os.WriteFile(file, []byte(input+Separator+"\n"+Indent(got)+"\n"), 0o644); err != nil {
					t.Fatal(err)
				}
			} else {
				var gotV, wantV any
				if err := json.Unmarshal(got, &gotV); err != nil {
					t.Fatalf("adapter output is not JSON: %v", err)
				}
				if err := json.Unmarshal([]byte(want), &wantV); err != nil {
					t.Fatalf("%s: the expected JSON does not parse: %v", file, err)
				}
				if !reflect.DeepEqual(gotV, wantV) {
					t.Fatalf("adapted JSON differs.\ngot:\n%s\nwant:\n%s", Indent(got), Indent([]byte(want)))
				}
			}
			for _, check := range checks {
				check(t, got)
			}
		})
	}
}

// Split splits a .caddytest file at its separator line (ten or more dashes, alone on the line) into
// the Caddyfile and the expected result, trimmed.
func Split(s string) (input, want string, ok bool) {
	lines := strings.SplitAfter(s, "\n")
	for i, l := range lines {
		if t := strings.TrimSpace(l); len(t) >= len(Separator) && strings.Trim(t, "-") == "" {
			return strings.Join(lines[:i], ""), strings.TrimSpace(strings.Join(lines[i+1:], "")), true
		}
	}
	return "", "", false
}

// Indent returns b indented with tabs, or b itself when it is not JSON.
func Indent(b []byte) string {
	var out bytes.Buffer
	if err := json.Indent(&out, b, "", "\t"); err != nil {
		return string(b)
	}
	return out.String()
}
