package web

import (
	"crypto/tls"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/caddyhub/caddyhub/hubapp/store"
	"go.uber.org/zap"
)

// TestDNSLabel checks dnsLabel against JupyterHub 5.x's _strict_dns_safe_encode (utils.py), run
// with Python's idna 3.3 to produce the expected values.
func TestDNSLabel(t *testing.T) {
	for _, tc := range []struct{ name, want string }{
		{"alice", "alice"},
		{"bob-1", "bob-1"},
		{"1a", "1a"},
		{"a--b", "u-ab--90827a2"},
		{"xn--mller-kva", "u-xnmllerk--3e380bd"},
		{"müller", "xn--mller-kva"},
		{"Müller", "u-mller--a784298"},
		{"123", "u-123--a665a45"},
		{"-a", "u-a--c274891"},
		{"a-", "u-a--9baf440"},
		{"a_b", "u-ab--648fa9b"},
		{"a.b", "u-ab--2e7336d"},
		{"alice@example.org", "u-aliceexa--7a64adf"},
		{"日本語", "xn--wgv71a119e"},
		{"ñandú", "xn--and-6ma2c"},
		{"b\u00fccher", "xn--bcher-kva"},
		{"e\u0301", "u-e--bf12767"}, // not NFC
		{"", "u-x--e3b0c44"},
		{".", "u-x--cdb4ee2"},
		{"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"},
		{"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "u-aaaaaaaa--ffe054f"},
		{"über.alice", "u-beralice--a87ea08"},
		{"Σίσυφος", "u-x--02bfeed"},
		{"ﬁ", "u-x--b6554cc"},
		{"admin user", "u-adminuse--6286d10"},
		{"a\u200db", "u-ab--57d3077"},
		{"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxü", "u-xxxxxxxx--455f67d"},
		{"-é", "u-x--2546b3d"},
		{"é-", "u-x--0236661"},
		// Deliberate differences: JupyterHub keeps these as they are (its case-insensitive regex
		// accepts U+212A KELVIN SIGN and U+0130 as letters), which are not valid host names;
		// CaddyHub hashes them, and lower-cases ASCII.
		{"KELVIN\u212a", "u-kelvink--" + trimAndHash("KELVIN\u212a")[len("u-kelvink--"):]},
		{"Alice", "alice"},
	} {
		got := dnsLabel(tc.name)
		if got != tc.want {
			t.Errorf("dnsLabel(%q) = %q, want %q", tc.name, got, tc.want)
		}
		if !isDNSSafe(got) || got != toLowerASCII(got) {
			t.Errorf("dnsLabel(%q) = %q is not a lower-case DNS label", tc.name, got)
		}
	}
	if got := dnsLabel("\u0130stanbul"); !isDNSSafe(got) {
		t.Errorf("dnsLabel(İstanbul) = %q is not a DNS label", got)
	}
}

func toLowerASCII(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c >= 'A' && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}

func TestParseSubdomainHost(t *testing.T) {
	for _, tc := range []struct {
		in   string
		ok   bool
		want subdomainConfig
	}{
		{"", false, subdomainConfig{}},
		{"hub.example.org", true, subdomainConfig{"https", "hub.example.org", ""}},
		{"https://Hub.Example.org/", true, subdomainConfig{"https", "hub.example.org", ""}},
		{"http://hub.example.org:8000", true, subdomainConfig{"http", "hub.example.org", "8000"}},
		{"hub.example.org:8443", true, subdomainConfig{"https", "hub.example.org", "8443"}},
		{"ftp://hub.example.org", false, subdomainConfig{}},
		{"https://hub.example.org/prefix/", false, subdomainConfig{}},
		{"127.0.0.1", false, subdomainConfig{}},
		{"https://[::1]:443", false, subdomainConfig{}},
	} {
		got, ok := parseSubdomainHost(tc.in)
		if ok != tc.ok || got != tc.want {
			t.Errorf("parseSubdomainHost(%q) = %+v, %v; want %+v, %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
}

func TestSubdomainURLs(t *testing.T) {
	for _, tc := range []struct {
		sub, base, user, server                   string
		wantKey, wantURL, wantHubOrigin, wantHost string
	}{
		{"", "/", "alice", "", "/user/alice", "/user/alice/", "", ""},
		{"", "/jh/", "alice", "gpu", "/jh/user/alice/gpu", "/jh/user/alice/gpu/", "", ""},
		{"hub.example.org", "/", "alice", "", "/alice.hub.example.org/user/alice",
			"https://alice.hub.example.org/user/alice/", "https://hub.example.org", "alice.hub.example.org"},
		{"https://hub.example.org:8443", "/", "müller", "gpu", "/xn--mller-kva.hub.example.org/user/müller/gpu",
			"https://xn--mller-kva.hub.example.org:8443/user/m%C3%BCller/gpu/", "https://hub.example.org:8443", "xn--mller-kva.hub.example.org"},
		{"http://hub.test", "/jh/", "a b", "", "/u-ab--" + trimAndHash("a b")[len("u-ab--"):] + ".hub.test/jh/user/a b",
			"http://" + trimAndHash("a b") + ".hub.test/jh/user/a%20b/", "http://hub.test", trimAndHash("a b") + ".hub.test"},
	} {
		h := &Hub{cfg: &Config{SubdomainHost: tc.sub}, base: tc.base}
		if got := h.subdomainRouteKey(tc.user, tc.server); got != tc.wantKey {
			t.Errorf("%q: subdomainRouteKey = %q, want %q", tc.sub, got, tc.wantKey)
		}
		if got := h.fullServerURL(tc.user, tc.server); got != tc.wantURL {
			t.Errorf("%q: fullServerURL = %q, want %q", tc.sub, got, tc.wantURL)
		}
		if got := h.hubOrigin(); got != tc.wantHubOrigin {
			t.Errorf("%q: hubOrigin = %q, want %q", tc.sub, got, tc.wantHubOrigin)
		}
		if got := h.userHost(tc.user); got != tc.wantHost {
			t.Errorf("%q: userHost = %q, want %q", tc.sub, got, tc.wantHost)
		}
	}
}

func TestIsHubHost(t *testing.T) {
	h := &Hub{cfg: &Config{SubdomainHost: "https://hub.example.org:8443"}}
	for host, want := range map[string]bool{
		"hub.example.org":            true,
		"HUB.example.org:8443":       true,
		"hub.example.org.":           true,
		"alice.hub.example.org":      false,
		"alice.hub.example.org:8443": false,
		"evil.org":                   false,
		"127.0.0.1:8081":             false,
	} {
		if got := h.isHubHost(host); got != want {
			t.Errorf("isHubHost(%q) = %v, want %v", host, got, want)
		}
	}
	one := &Hub{cfg: &Config{}}
	if !one.isHubHost("anything:1") {
		t.Error("on one origin every host is the hub's")
	}
}

func TestUserLabels(t *testing.T) {
	st, err := store.Open(t.TempDir(), zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	if err := st.Update(func(tx *store.Txn) error {
		for _, n := range []string{"alice", "müller"} {
			if err := tx.CreateUser(&store.User{Name: n}); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	l := &userLabels{byLabel: map[string]string{}}
	now := time.Unix(1000, 0)
	if err := l.load(st, now); err != nil {
		t.Fatal(err)
	}
	l.watched = st // pretend a watch runs: first test the point reads and reloads alone
	if u, ok, err := l.lookup(st, "xn--mller-kva", now); err != nil || !ok || u != "müller" {
		t.Fatalf("lookup after first load = %q, %v, %v", u, ok, err)
	}
	// A user created behind the set's back: a plain or IDNA label is found at once (point read),
	// a hashed one on the next reload, not before.
	if err := st.Update(func(tx *store.Txn) error {
		for _, n := range []string{"bob", "jürgen", "a.b"} {
			if err := tx.CreateUser(&store.User{Name: n}); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"bob", "jürgen"} {
		if u, ok, err := l.lookup(st, dnsLabel(n), now.Add(time.Second)); err != nil || !ok || u != n {
			t.Errorf("%s created later: lookup = %q %v %v", n, u, ok, err)
		}
	}
	if _, ok, _ := l.lookup(st, dnsLabel("a.b"), now.Add(time.Second)); ok {
		t.Error("hashed label found before the reload interval passed")
	}
	if u, ok, _ := l.lookup(st, dnsLabel("a.b"), now.Add(labelReloadEvery)); !ok || u != "a.b" {
		t.Errorf("hashed label not found after the reload interval: %q %v", u, ok)
	}
	// A label that only looks like a user's name: "Bob" is stored as-is, its label is "bob".
	if _, ok, _ := l.lookup(st, "xn--zz-zzz", now.Add(time.Second)); ok {
		t.Error("an invalid A-label was found")
	}
	// The watch follows deletions (and creations) made by any path.
	l.mu.Lock()
	l.watched = nil
	l.mu.Unlock()
	if _, ok, err := l.lookup(st, "bob", now.Add(time.Second)); err != nil || !ok {
		t.Fatalf("bob: %v %v", ok, err)
	}
	if err := st.Update(func(tx *store.Txn) error { return tx.DeleteUser("bob") }); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		l.mu.RLock()
		_, still := l.byLabel["bob"]
		l.mu.RUnlock()
		if !still {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("deleted user's label still in the set: the watch did not follow the store")
		}
		time.Sleep(10 * time.Millisecond) // poll interval
	}
	if err := st.Update(func(tx *store.Txn) error { return tx.CreateUser(&store.User{Name: "x.y"}) }); err != nil {
		t.Fatal(err)
	}
	for {
		l.mu.RLock()
		u := l.byLabel[dnsLabel("x.y")]
		l.mu.RUnlock()
		if u == "x.y" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("new user with a hashed label not added by the watch")
		}
		time.Sleep(10 * time.Millisecond) // poll interval
	}

	// Hooks act at once.
	l.add("carol")
	if _, ok, _ := l.lookup(nil, "carol", now); !ok {
		t.Error("carol not found after add")
	}
	l.remove("alice")
	if _, ok, _ := l.lookup(nil, "alice", now); ok {
		t.Error("alice found after remove")
	}
	if _, ok, _ := l.lookup(nil, "nobody", now); ok {
		t.Error("unknown label found")
	}
}

func TestGuardHost(t *testing.T) {
	for _, tc := range []struct {
		sub, host, method, target string
		tls                       bool
		wantStatus                int // 0: not answered
		wantLocation, wantHSTS    string
	}{
		{"", "hub.example.org", "GET", "/hub/login", true, 0, "", "max-age=31536000"},
		{"", "hub.example.org", "GET", "/hub/login", false, 0, "", ""},
		{"hub.example.org", "hub.example.org", "GET", "/hub/login", true, 0, "", "max-age=31536000; includeSubDomains"},
		{"hub.example.org", "127.0.0.1:8081", "GET", "/hub/api/user", false, 0, "", ""},
		{"hub.example.org", "alice.hub.example.org", "GET", "/hub/login?next=/x", true, http.StatusFound,
			"https://hub.example.org/hub/login?next=/x", "max-age=31536000; includeSubDomains"},
		{"https://hub.example.org:8443", "alice.hub.example.org:8443", "POST", "/hub/api/users", true, http.StatusTemporaryRedirect,
			"https://hub.example.org:8443/hub/api/users", "max-age=31536000; includeSubDomains"},
		{"hub.example.org", "ALICE.hub.example.org.", "GET", "/user/alice/", true, http.StatusFound,
			"https://hub.example.org/user/alice/", "max-age=31536000; includeSubDomains"},
	} {
		h := &Hub{cfg: &Config{SubdomainHost: tc.sub}, base: "/", prefix: "/hub/"}
		r := httptest.NewRequest(tc.method, "http://"+tc.host+tc.target, nil)
		r.Host = tc.host
		if tc.tls {
			r.TLS = &tls.ConnectionState{}
		}
		w := httptest.NewRecorder()
		answered := h.guardHost(w, r)
		if answered != (tc.wantStatus != 0) || (answered && w.Code != tc.wantStatus) {
			t.Errorf("%s %s: answered=%v status %d, want %d", tc.host, tc.target, answered, w.Code, tc.wantStatus)
		}
		if loc := w.Header().Get("Location"); loc != tc.wantLocation {
			t.Errorf("%s %s: Location %q, want %q", tc.host, tc.target, loc, tc.wantLocation)
		}
		if hsts := w.Header().Get("Strict-Transport-Security"); hsts != tc.wantHSTS {
			t.Errorf("%s %s: HSTS %q, want %q", tc.host, tc.target, hsts, tc.wantHSTS)
		}
	}
}
