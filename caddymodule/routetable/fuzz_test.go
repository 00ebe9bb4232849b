package routetable

import (
	"errors"
	"net"
	"strings"
	"testing"
	"unicode/utf8"
)

// segmentPrefix reports whether key is p or a prefix of p that ends at a segment boundary.
func segmentPrefix(key, p string) bool {
	return key == "/" || p == key || strings.HasPrefix(p, key+"/")
}

// FuzzNormalizeKey: a key either normalizes or fails with ErrInvalidKey; a normalized key is a
// fixed point, starts with "/", has no trailing "/" (except the root), no empty or dot segment and
// no control character.
func FuzzNormalizeKey(f *testing.F) {
	for _, s := range []string{"", "/", "user/alice", "/user/alice/", "/user//alice", "/user/./a", "/a/..", "/\x00", "/ü", "\xff", "//"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, key string) {
		k, err := NormalizeKey(key)
		if err != nil {
			if !errors.Is(err, ErrInvalidKey) {
				t.Fatalf("NormalizeKey(%q): %v does not wrap ErrInvalidKey", key, err)
			}
			return
		}
		if k2, err := NormalizeKey(k); err != nil || k2 != k {
			t.Fatalf("NormalizeKey not idempotent: %q → %q → %q, %v", key, k, k2, err)
		}
		if !strings.HasPrefix(k, "/") || (k != "/" && strings.HasSuffix(k, "/")) || !utf8.ValidString(k) || len(k) > MaxKeyLen {
			t.Fatalf("NormalizeKey(%q) = %q: not a normal key", key, k)
		}
		if k != "/" {
			for _, seg := range strings.Split(k[1:], "/") {
				if seg == "" || seg == "." || seg == ".." {
					t.Fatalf("NormalizeKey(%q) = %q has segment %q", key, k, seg)
				}
			}
		}
		if strings.ContainsFunc(k, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
			t.Fatalf("NormalizeKey(%q) = %q has a control character", key, k)
		}
	})
}

// FuzzLookup: with two routes in a table, a request (host, path) gets a route only if its key is a
// whole-segment prefix of the cleaned path (or, for a host route, of "/"+host+path); when both keys
// qualify the longer wins; a path route is reachable at its own key and below it; a host route is
// never served for a request without its host.
func FuzzLookup(f *testing.F) {
	f.Add("/user/alice", "/user/al", "", "/user/alice/lab")
	f.Add("/user/al", "/user/alice", "", "/user/alice/x/../y")
	f.Add("/", "/user", "", "/user//a")
	f.Add("/hub.example.org/user/a", "/user/a", "hub.example.org", "/user/a/b")
	f.Add("/a:1", "/a", "A:1", "/")
	f.Fuzz(func(t *testing.T, key1, key2, host, path string) {
		tbl := New()
		var routes []*Route
		for _, k := range []string{key1, key2} {
			r, err := tbl.Add(k, "http://127.0.0.1:1", nil)
			if err != nil {
				if !errors.Is(err, ErrInvalidKey) {
					t.Fatalf("Add(%q): %v", k, err)
				}
				continue
			}
			routes = append(routes, r)
		}
		for _, r := range routes {
			if got := tbl.Get(r.Key()); got == nil || got.Key() != r.Key() {
				if len(routes) == 2 && routes[0].Key() == routes[1].Key() {
					continue // the second Add replaced the first
				}
				t.Fatalf("Get(%q) = %v", r.Key(), got)
			}
			if !r.IsHostRoute() {
				for _, p := range []string{r.Key(), strings.TrimSuffix(r.Key(), "/") + "/below"} {
					got := tbl.Lookup("", p)
					if got == nil || !segmentPrefix(got.Key(), cleanPath(p)) || len(got.Key()) < len(r.Key()) {
						t.Fatalf("Lookup(%q) = %v, want %q or a longer match", p, got, r.Key())
					}
				}
			}
		}
		got := tbl.Lookup(host, path)
		if got == nil {
			for _, r := range routes {
				if !r.IsHostRoute() && segmentPrefix(r.Key(), trimTrailingSlashes(cleanPath(path))) && !strings.Contains(cleanPath(path), "//") {
					t.Fatalf("Lookup(%q, %q) = nil, but route %q matches", host, path, r.Key())
				}
			}
			return
		}
		cp := cleanPath(path)
		if got.IsHostRoute() {
			if host == "" || !segmentPrefix(got.Key(), "/"+strings.ToLower(host)+cp) {
				t.Fatalf("Lookup(%q, %q) = host route %q", host, path, got.Key())
			}
		} else if !segmentPrefix(got.Key(), cp) {
			t.Fatalf("Lookup(%q, %q) = %q: not a whole-segment prefix of %q", host, path, got.Key(), cp)
		}
		for _, r := range routes {
			if r.IsHostRoute() == got.IsHostRoute() && len(r.Key()) > len(got.Key()) {
				p := cp
				if r.IsHostRoute() {
					p = "/" + strings.ToLower(host) + cp
				}
				if segmentPrefix(r.Key(), p) && !strings.Contains(p, "//") {
					t.Fatalf("Lookup(%q, %q) = %q, but the longer %q matches too", host, path, got.Key(), r.Key())
				}
			}
		}
	})
}

// FuzzTarget: a target is accepted or refused with ErrInvalidTarget; an accepted one is kept
// verbatim and has an http(s) scheme and a host:port to dial.
func FuzzTarget(f *testing.F) {
	for _, s := range []string{"http://127.0.0.1:8888", "https://h/p/", "http+unix://%2Ftmp%2Fs.sock/x", "ftp://h", "http://", "http://[::1]:1/a%2Fb", "//h", "http://h:99999"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, target string) {
		r, err := New().Add("/x", target, nil)
		if err != nil {
			if !errors.Is(err, ErrInvalidTarget) {
				t.Fatalf("Add target %q: %v does not wrap ErrInvalidTarget", target, err)
			}
			return
		}
		if r.Target() != target {
			t.Fatalf("target %q stored as %q", target, r.Target())
		}
		if s := r.Scheme(); s != "http" && s != "https" {
			t.Fatalf("target %q: scheme %q", target, s)
		}
		if d := r.Dial(); !strings.HasPrefix(d, "unix//") {
			if h, port, err := net.SplitHostPort(d); err != nil || h == "" || port == "" {
				t.Fatalf("target %q: dial %q is not host:port (%v)", target, d, err)
			}
		}
	})
}
