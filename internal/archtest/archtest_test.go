package archtest

import (
	"bufio"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

const module = "github.com/caddyhub/caddyhub"

// rule is one row of the table: what packages matching pkg may import from the module, and which
// other packages they must not import.
type rule struct {
	pkg     string   // "hubapp/servers", "auth/...", "."
	allow   []string // module packages (patterns); "*" allows anything
	forbid  []string // any import path (patterns)
	srcLine int
}

// match reports whether pattern covers path (module-relative; "." is the module root).
func match(pattern, path string) bool {
	if pattern == "*" {
		return true
	}
	if base, ok := strings.CutSuffix(pattern, "/..."); ok {
		return path == base || strings.HasPrefix(path, base+"/")
	}
	return pattern == path
}

// readRules parses the "Import directions" table of docs/architecture.md.
func readRules(t *testing.T, doc string) []rule {
	t.Helper()
	f, err := os.Open(doc)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var rules []rule
	in := false
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if strings.HasPrefix(line, "## ") {
			in = line == "## Import directions"
			continue
		}
		if !in || !strings.HasPrefix(line, "| `") {
			continue
		}
		cells := strings.Split(strings.Trim(line, "|"), "|")
		if len(cells) != 3 {
			t.Fatalf("%s:%d: want 3 cells: %q", doc, n, line)
		}
		r := rule{pkg: strings.Trim(strings.TrimSpace(cells[0]), "`"), srcLine: n}
		r.allow = codes(cells[1])
		r.forbid = codes(cells[2])
		rules = append(rules, r)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if len(rules) < 5 {
		t.Fatalf("%s: found %d rows in the import directions table", doc, len(rules))
	}
	return rules
}

// codes returns the `quoted` items of a cell.
func codes(cell string) []string {
	var out []string
	for _, part := range strings.Split(cell, ",") {
		if p := strings.Trim(strings.TrimSpace(part), "`"); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// ruleFor is the most specific rule matching pkg, or nil.
func ruleFor(rules []rule, pkg string) *rule {
	var best *rule
	for i := range rules {
		r := &rules[i]
		if !match(r.pkg, pkg) {
			continue
		}
		if best == nil || len(strings.TrimSuffix(r.pkg, "/...")) > len(strings.TrimSuffix(best.pkg, "/...")) ||
			(r.pkg == pkg && best.pkg != pkg) {
			best = r
		}
	}
	return best
}

// violations lists what pkg's imports break in rules.
func violations(rules []rule, pkg string, imports []string) []string {
	r := ruleFor(rules, pkg)
	if r == nil {
		return []string{pkg + ": no row in the import directions table"}
	}
	var out []string
	for _, imp := range imports {
		for _, f := range r.forbid {
			if match(f, imp) {
				out = append(out, pkg+" imports "+imp+", which its row (`"+r.pkg+"`) forbids")
			}
		}
		rel, ok := strings.CutPrefix(imp, module+"/")
		if !ok {
			if imp == module {
				rel, ok = ".", true
			}
		}
		if !ok {
			continue
		}
		if !slices.ContainsFunc(r.allow, func(a string) bool { return match(a, rel) }) {
			out = append(out, pkg+" imports "+rel+", which its row (`"+r.pkg+"`) does not allow")
		}
	}
	return out
}

// packages returns the module's packages (module-relative directories) and the imports of their
// non-test files.
func packages(t *testing.T, root string) map[string][]string {
	t.Helper()
	pkgs := map[string][]string{}
	fset := token.NewFileSet()
	err := filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			name := d.Name()
			if path != root && (name == "testdata" || strings.HasPrefix(name, ".") || strings.HasPrefix(name, "_")) {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, parser.ImportsOnly)
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(root, filepath.Dir(path))
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		for _, is := range f.Imports {
			p, err := strconv.Unquote(is.Path.Value)
			if err != nil {
				return err
			}
			if !slices.Contains(pkgs[rel], p) {
				pkgs[rel] = append(pkgs[rel], p)
			}
		}
		if _, ok := pkgs[rel]; !ok {
			pkgs[rel] = nil
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return pkgs
}

// TestImportDirections checks every package of the module against docs/architecture.md.
func TestImportDirections(t *testing.T) {
	root := filepath.Join("..", "..")
	rules := readRules(t, filepath.Join(root, "docs", "architecture.md"))
	pkgs := packages(t, root)
	for _, want := range []string{"hubapp", "hubapp/web", "hubapp/servers", "hubapp/culler", "hubapp/services", "spawners", "auth"} {
		if _, ok := pkgs[want]; !ok {
			t.Fatalf("package %s not found: the walk is broken", want)
		}
	}
	for pkg, imports := range pkgs {
		for _, v := range violations(rules, pkg, imports) {
			t.Error(v)
		}
	}
}

// TestViolationsDetected: the check fails on the imports the table forbids (an engine that imports
// net/http, the hub or a web package; the HTTP layer that imports the app; a spawner that imports
// the hub; a package with no row).
func TestViolationsDetected(t *testing.T) {
	rules := readRules(t, filepath.Join("..", "..", "docs", "architecture.md"))
	for _, c := range []struct {
		pkg string
		imp string
	}{
		{"hubapp/servers", "net/http"},
		{"hubapp/servers", module + "/hubapp"},
		{"hubapp/servers", module + "/hubapp/web"},
		{"hubapp/servers", module + "/auth"},
		{"hubapp/web", module + "/hubapp"},
		{"hubapp/culler", module + "/hubapp/servers"},
		{"hubapp/culler", "net/http"},
		{"hubapp/services", module + "/hubapp"},
		{"spawners/docker", module + "/hubapp/store"},
		{"auth/oidc", module + "/hubapp"},
		{"caddymodule", module + "/hubapp"},
		{"hubapp/store", module + "/hubapp/rbac"},
		{"nowhere/new", "fmt"},
	} {
		if v := violations(rules, c.pkg, []string{c.imp}); len(v) == 0 {
			t.Errorf("%s importing %s passed the check", c.pkg, c.imp)
		}
	}
	for _, c := range []struct {
		pkg string
		imp string
	}{
		{"hubapp/servers", module + "/hubapp/store"},
		{"hubapp/servers", module + "/spawners"},
		{"hubapp", module + "/hubapp/servers"},
		{"hubapp", module + "/hubapp/web"},
		{"hubapp/web", module + "/hubapp/servers"},
		{"hubapp/web", module + "/caddymodule"},
		{"spawners/localprocess", module + "/spawners/internal/localproc"},
		{"cmd/caddy", module + "/hubapp"},
		{"hubapp/servers", "context"},
	} {
		if v := violations(rules, c.pkg, []string{c.imp}); len(v) != 0 {
			t.Errorf("%s importing %s refused: %v", c.pkg, c.imp, v)
		}
	}
}
