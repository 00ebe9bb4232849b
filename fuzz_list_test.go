package caddyhub

import (
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestFuzzTargetsListed: every `func FuzzXxx` of the repository is in bench/fuzz.sh's list (which
// .ci/run runs briefly and operators run for as long as they like), beside its package.
func TestFuzzTargetsListed(t *testing.T) {
	script, err := os.ReadFile("bench/fuzz.sh")
	if err != nil {
		t.Fatal(err)
	}
	fuzzFunc := regexp.MustCompile(`(?m)^func (Fuzz\w+)\(f \*testing\.F\)`)
	n := 0
	err = filepath.WalkDir(".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, "_test.go") {
			return err
		}
		src, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, m := range fuzzFunc.FindAllSubmatch(src, -1) {
			n++
			entry := "./" + filepath.ToSlash(filepath.Dir(path)) + " " + string(m[1]) + "\n"
			if !strings.Contains(string(script), "\t"+entry) {
				t.Errorf("%s: %s is not listed in bench/fuzz.sh (want a line %q)", path, m[1], strings.TrimSpace(entry))
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n == 0 {
		t.Fatal("no fuzz targets found")
	}
}
