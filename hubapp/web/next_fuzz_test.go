package web

import (
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"unicode"
)

// FuzzSafeNext: a next= value that passes safeNext is always a place on this hub: a path (or, with
// subdomain_host, a URL on one user's own origin) under base_url, with no scheme-relative start,
// backslash, control character or white space, none in any percent-decoded form either; and
// validation is idempotent (a value that passed passes again unchanged). Two hubs: base_url "/"
// and base_url "/jh/" with subdomain_host.
func FuzzSafeNext(f *testing.F) {
	for _, s := range []string{
		"/hub/home", "/user/alice/lab?x=1#frag", "//evil.com", "/\\evil.com", "/%2F%2Fevil.com",
		"/%252F%252Fevil.com", "https://evil.com/", "http://hub.test//evil.com/x", "http://hub.test/jh/hub/",
		"https://alice.hub.test/jh/user/alice/", "https://a.b.hub.test/jh/", "javascript:alert(1)", "/\t/evil",
		"/jh/hub/%E2%82%AC", "/jh", "/jh/", "//hub.test/jh/x", "http://hub.test@evil.com/", "/%5C", "/%",
	} {
		f.Add(s, false)
		f.Add(s, true)
	}
	plain := newTestHub(f, newFakeSpawner(), nil)
	sub := newTestHub(f, newFakeSpawner(), func(a *testApp) {
		a.BaseURL = "/jh/"
		a.SubdomainHost = "https://hub.test"
	})
	f.Fuzz(func(t *testing.T, next string, useSub bool) {
		h, base := plain, "/"
		if useSub {
			h, base = sub, "/jh/"
		}
		r := httptest.NewRequest("GET", "http://hub.test/hub/login", nil)
		got := h.safeNext(r, next)
		if got == "" {
			return
		}
		if again := h.safeNext(r, got); again != got {
			t.Fatalf("not idempotent: %q → %q → %q", next, got, again)
		}
		if strings.ContainsFunc(got, func(c rune) bool { return c == '\\' || unicode.IsControl(c) || unicode.IsSpace(c) }) {
			t.Fatalf("safeNext(%q) = %q keeps a backslash, control character or space", next, got)
		}
		u, err := url.Parse(got)
		if err != nil {
			t.Fatalf("safeNext(%q) = %q does not parse: %v", next, got, err)
		}
		if u.Host != "" {
			// Only a user's own origin under subdomain_host may be absolute.
			host := strings.ToLower(u.Hostname())
			label, ok := strings.CutSuffix(host, ".hub.test")
			if !useSub || u.Scheme != "https" || !ok || label == "" || strings.Contains(label, ".") || u.User != nil {
				t.Fatalf("safeNext(%q) = %q: absolute URL off this hub", next, got)
			}
		} else if u.Scheme != "" || u.Opaque != "" || !strings.HasPrefix(got, "/") || strings.HasPrefix(got, "//") {
			t.Fatalf("safeNext(%q) = %q: not a plain path", next, got)
		}
		if !strings.HasPrefix(u.Path, base) && u.Path+"/" != base {
			t.Fatalf("safeNext(%q) = %q: outside base_url %q", next, got, base)
		}
		// Whatever a browser decodes it to is still a path on this host.
		p := u.EscapedPath()
		for i := 0; i < 3 && strings.Contains(p, "%"); i++ {
			d, err := url.PathUnescape(p)
			if err != nil {
				t.Fatalf("safeNext(%q) = %q: its path does not decode: %v", next, got, err)
			}
			if strings.HasPrefix(d, "//") || strings.HasPrefix(d, "/\\") {
				t.Fatalf("safeNext(%q) = %q decodes to %q", next, got, d)
			}
			p = d
		}
	})
}
