package web

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
)

// TestSafeNext covers JupyterHub's next validation and every next-related advisory (docs/protocols.md,
// "next validation" and "Published advisories")
// (CVE-2019-10255, GHSA-3vff-hjqv-m7h8) plus encoded and control-character variants.
func TestSafeNext(t *testing.T) {
	wh := newWebHub(t, false)
	tests := []struct {
		next string
		want string // "" = refused, use the default
	}{
		// Plain paths on this hub.
		{"/hub/home", "/hub/home"},
		{"/user/alice/lab?x=1#frag", "/user/alice/lab?x=1#frag"},
		{"/hub/user/alice/tree/my%20notebook.ipynb", "/hub/user/alice/tree/my%20notebook.ipynb"},
		{"/javascript:alert(1)", "/javascript:alert(1)"}, // a path, not a scheme
		// CVE-2019-10255: protocol-relative and backslash variants.
		{"//evil.com", ""},
		{"//evil.com/", ""},
		{"///evil.com", ""},
		{"////evil.com/x", ""},
		{"/\\evil.com", ""},
		{"\\\\evil.com", ""},
		{"\\/evil.com", ""},
		{"/\\/evil.com", ""},
		// Other hosts and schemes.
		{"https://evil.com", ""},
		{"https://evil.com/hub/home", ""},
		{"http://evil.com", ""},
		{"HTTPS://EVIL.COM/", ""},
		{"https://hub.example.com.evil.com/hub/", ""},
		{"https://hub.example.com@evil.com/", ""},
		{"https:evil.com", ""},
		{"javascript:alert(1)", ""},
		{"JavaScript:alert(1)", ""},
		{"data:text/html,<script>alert(1)</script>", ""},
		{"evil.com", ""},
		{"hub/home", ""},
		// Encoded variants.
		{"%2F%2Fevil.com", ""},
		{"/%2F%2Fevil.com", ""},
		{"/%2Fevil.com", ""},
		{"/%5Cevil.com", ""},
		{"/%5C%5Cevil.com", ""},
		{"/%252F%252Fevil.com", ""},
		{"/%09/evil.com", ""},
		{"/%zz", ""},
		// Control characters and white space (browsers drop tabs/newlines inside URLs).
		{"/\t/evil.com", ""},
		{"/\n/evil.com", ""},
		{"/\r\n/evil.com", ""},
		{" //evil.com", ""},
		{"/ /evil.com", ""},
		{"/\x00/evil.com", ""},
		{"/hub/home\x7f", ""},
		// Our own host, absolute: reduced to the path (GHSA-3vff-hjqv-m7h8: no // left).
		{"http://hub.example.com/hub/home?a=b", "/hub/home?a=b"},
		{"//hub.example.com/user/alice/", "/user/alice/"},
		{"http://hub.example.com//evil.com/x", "/evil.com/x"},
		{"http://hub.example.com///evil.com/x", "/evil.com/x"},
		{"https://hub.example.com/hub/home", ""}, // wrong scheme for this plain-HTTP request
		// Attribute injection attempts (GHSA-c4gm-pwx9-9w8j) are refused before any template sees them.
		{`" onmouseover="alert(1)`, ""},
		{`/hub/"><script>alert(1)</script>`, `/hub/"><script>alert(1)</script>`}, // a path; templates escape it (TestLoginPageEscapesNext)
		// Far too long.
		{"/" + strings.Repeat("a", maxNextLen), ""},
	}
	for _, tc := range tests {
		r := httptest.NewRequest("GET", "http://hub.example.com/hub/login", nil)
		if got := wh.h.safeNext(r, tc.next); got != tc.want {
			t.Errorf("safeNext(%q) = %q, want %q", tc.next, got, tc.want)
		}
	}
}

func TestSafeNextBaseURL(t *testing.T) {
	wh := newWebHub(t, false, func(a *testApp) { a.BaseURL = "/jh/" })
	tests := []struct{ next, want string }{
		{"/jh/hub/home", "/jh/hub/home"},
		{"/jh/user/alice/", "/jh/user/alice/"},
		{"/jh", "/jh"},
		{"/other/app", ""}, // outside base_url
		{"/", ""},
		{"/jhx/hub/", ""},
	}
	for _, tc := range tests {
		r := httptest.NewRequest("GET", "http://hub.example.com/jh/hub/login", nil)
		if got := wh.h.safeNext(r, tc.next); got != tc.want {
			t.Errorf("safeNext(%q) = %q, want %q", tc.next, got, tc.want)
		}
	}
}

func TestSafeNextTLSAndSubdomains(t *testing.T) {
	wh := newWebHub(t, false, func(a *testApp) { a.SubdomainHost = "hub.example.com" })
	r := httptest.NewRequest("GET", "https://hub.example.com/hub/login", nil)
	tests := []struct{ next, want string }{
		{"https://hub.example.com/hub/home", "/hub/home"},
		{"http://hub.example.com/hub/home", ""}, // downgrade
		{"https://alice.hub.example.com/user/alice/", "https://alice.hub.example.com/user/alice/"},
		{"https://alice.hub.example.com.evil.com/", ""},
		{"https://evilhub.example.com/", ""},
		{"http://alice.hub.example.com/user/alice/", ""},       // not subdomain_host's scheme
		{"https://alice.hub.example.com:8443/user/alice/", ""}, // nor its port
		{"https://a.b.hub.example.com/user/alice/", ""},        // one label only
		{"https://alice.hub.example.com//evil.com/", ""},       // no protocol-relative path
		{"https://alice.hub.example.com", ""},                  // a path is required
		{"https://alice.hub.example.com/user/alice/lab?x=1", "https://alice.hub.example.com/user/alice/lab?x=1"},
	}
	for _, tc := range tests {
		if got := wh.h.safeNext(r, tc.next); got != tc.want {
			t.Errorf("safeNext(%q) = %q, want %q", tc.next, got, tc.want)
		}
	}
}

// TestLoginRedirectsOnlyToSafeNext runs the advisory cases through a real login: a refused next
// lands on the default URL, never elsewhere.
func TestLoginRedirectsOnlyToSafeNext(t *testing.T) {
	wh := newWebHub(t, false)
	for _, next := range []string{"//evil.com", "/\\evil.com", "///evil.com", "https://evil.com", "javascript:alert(1)", "/%2F%2Fevil.com", "/%5Cevil.com"} {
		c := wh.client(t)
		resp := wh.login(t, c, "alice", url.Values{"next": {next}})
		if resp.status != http.StatusFound {
			t.Fatalf("next=%q: status %d", next, resp.status)
		}
		if loc := resp.header.Get("Location"); loc != "/hub/spawn" {
			t.Errorf("next=%q: redirected to %q, want the default /hub/spawn", next, loc)
		}
	}
	c := wh.client(t)
	resp := wh.login(t, c, "alice", url.Values{"next": {"/user/alice/lab?a=1"}})
	if loc := resp.header.Get("Location"); loc != "/user/alice/lab?a=1" {
		t.Errorf("valid next: redirected to %q", loc)
	}
}
