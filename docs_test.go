package caddyhub

import (
	"bufio"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// outsideDocument matches a pointer at a document that is not in the repository: the research notes the
// project was started from, by name or by a section number of "the spec", and paths out of the tree.
var outsideDocument = regexp.MustCompile(`jupyterhub-spec\.md|DESIGN\.md|caddy-architecture\.md|peers\.md|engines\.md|` +
	`anchor-baseline\.md|\.\./shared|/work/shared|\bspec §`)

// docsSection matches a pointer at a section of a page in docs/: docs/protocols.md, "Endpoints" and "Models".
var docsSection = regexp.MustCompile(`docs/([\w-]+\.md),? ((?:"[^"]+"(?:,| and|;)? ?)+)`)

// TestCommentsStayInRepository keeps the repository explaining itself: no Go comment points at a
// document outside it, and every docs/ page and section a comment names exists.
func TestCommentsStayInRepository(t *testing.T) {
	headings := map[string]map[string]bool{}
	err := filepath.WalkDir(".", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if name := d.Name(); path != "." && (strings.HasPrefix(name, ".") || name == "testdata") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") {
			return nil
		}
		fset := token.NewFileSet()
		f, err := parser.ParseFile(fset, path, nil, parser.ParseComments|parser.SkipObjectResolution)
		if err != nil {
			return err
		}
		for _, group := range f.Comments {
			for _, c := range group.List {
				if m := outsideDocument.FindString(c.Text); m != "" {
					t.Errorf("%s: comment points outside the repository (%q); put what a reader needs in docs/",
						fset.Position(c.Pos()), m)
				}
			}
			// Section names wrap across lines: read the group as one text.
			text := strings.Join(strings.Fields(group.Text()), " ")
			for _, m := range docsSection.FindAllStringSubmatch(text, -1) {
				page := filepath.Join("docs", m[1])
				hs, ok := headings[page]
				if !ok {
					hs = readHeadings(t, page)
					headings[page] = hs
				}
				if hs == nil {
					t.Errorf("%s: comment names %s, which does not exist", fset.Position(group.Pos()), page)
					continue
				}
				for _, s := range regexp.MustCompile(`"([^"]+)"`).FindAllStringSubmatch(m[2], -1) {
					if !hs[s[1]] {
						t.Errorf("%s: comment names section %q of %s, which has no such heading",
							fset.Position(group.Pos()), s[1], page)
					}
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// readHeadings returns the Markdown headings of page, nil when the page does not exist.
func readHeadings(t *testing.T, page string) map[string]bool {
	f, err := os.Open(page)
	if os.IsNotExist(err) {
		return nil
	} else if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	hs := map[string]bool{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if line := sc.Text(); strings.HasPrefix(line, "#") {
			hs[strings.TrimSpace(strings.TrimLeft(line, "#"))] = true
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return hs
}
