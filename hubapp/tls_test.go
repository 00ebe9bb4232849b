package hubapp

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"math/big"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddytls"
	"github.com/caddyserver/certmagic"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/caddyhub/caddyhub/caddymodule/routetable"
	"github.com/caddyhub/caddyhub/hubapp/web"
)

// newTestPermission returns a permission module over an app with subdomain_host hub.example.org
// whose label set holds the given users (no store: answers come from memory only).
func newTestPermission(t *testing.T, started bool, users ...string) (*Permission, *time.Time) {
	t.Helper()
	app := &App{Config: web.Config{SubdomainHost: "https://hub.example.org:8443", DataDir: t.TempDir()}}
	if started {
		app.table.Store(routetable.New())
	}
	for _, u := range users {
		web.NoteUserCreated(app.DataDir, u)
	}
	now := time.Unix(1_000_000, 0)
	p := &Permission{RateLimit: 2, RateInterval: caddy.Duration(time.Minute), app: app, logger: zap.NewNop(),
		now: func() time.Time { return now }, seen: map[string]struct{}{}}
	return p, &now
}

func TestPermissionCertificateAllowed(t *testing.T) {
	p, _ := newTestPermission(t, true, "alice", "müller", "a b")
	p.RateLimit = -1
	for _, tc := range []struct {
		name  string
		allow bool
	}{
		{"hub.example.org", true},
		{"HUB.example.org.", true},
		{"alice.hub.example.org", true},
		{"Alice.Hub.Example.Org", true},
		{"xn--mller-kva.hub.example.org", true},
		{web.UserLabel("a b") + ".hub.example.org", true},
		{"bob.hub.example.org", false},            // no such user
		{"x.alice.hub.example.org", false},        // deeper name
		{"alice.hub.example.org.evil.com", false}, // another domain
		{"alice.example.org", false},              // not under subdomain_host
		{"example.org", false},
		{"*.hub.example.org", false},
		{"a_b.hub.example.org", false}, // not a label we produce
		{"127.0.0.1", false},
		{"", false},
	} {
		err := p.CertificateAllowed(context.Background(), tc.name)
		if tc.allow && err != nil {
			t.Errorf("%q: refused: %v", tc.name, err)
		}
		if !tc.allow && !errors.Is(err, caddytls.ErrPermissionDenied) {
			t.Errorf("%q: want ErrPermissionDenied, got %v", tc.name, err)
		}
	}
}

func TestPermissionBeforeStart(t *testing.T) {
	// Labels known from a generation that shares the data_dir still answer.
	p, _ := newTestPermission(t, false, "alice")
	if err := p.CertificateAllowed(context.Background(), "alice.hub.example.org"); err != nil {
		t.Errorf("known label refused before this generation started: %v", err)
	}
	// Nothing loaded and no store open: only the hub's own name.
	p.app.DataDir = t.TempDir()
	if err := p.CertificateAllowed(context.Background(), "hub.example.org"); err != nil {
		t.Errorf("hub name refused before start: %v", err)
	}
	if err := p.CertificateAllowed(context.Background(), "alice.hub.example.org"); !errors.Is(err, caddytls.ErrPermissionDenied) {
		t.Errorf("user name with no store: want ErrPermissionDenied, got %v", err)
	}
}

func TestPermissionRateLimit(t *testing.T) {
	p, now := newTestPermission(t, true, "a1", "a2", "a3")
	allowed := func(n string) bool { return p.CertificateAllowed(context.Background(), n+".hub.example.org") == nil }
	if !allowed("a1") || !allowed("a2") {
		t.Fatal("first two new names refused")
	}
	if allowed("a3") {
		t.Error("third new name within the interval allowed (rate_limit 2)")
	}
	if !allowed("a1") {
		t.Error("a name allowed before was refused by the rate limit")
	}
	*now = now.Add(time.Minute + time.Second)
	if !allowed("a3") {
		t.Error("new name refused after the interval passed")
	}
	p.RateLimit = -1
	for _, u := range []string{"b1", "b2", "b3", "b4"} {
		web.NoteUserCreated(p.app.DataDir, u)
		if !allowed(u) {
			t.Errorf("%s refused with rate_limit off", u)
		}
	}
}

func TestPermissionUnmarshalCaddyfile(t *testing.T) {
	for _, tc := range []struct {
		in       string
		wantErr  bool
		rate     int
		interval time.Duration
	}{
		{"jupyterhub", false, 0, 0},
		{"jupyterhub {\n}", false, 0, 0},
		{"jupyterhub {\n rate_limit 5\n}", false, 5, 0},
		{"jupyterhub {\n rate_limit 5 10s\n}", false, 5, 10 * time.Second},
		{"jupyterhub {\n rate_limit off\n}", false, -1, 0},
		{"jupyterhub extra", true, 0, 0},
		{"jupyterhub {\n rate_limit\n}", true, 0, 0},
		{"jupyterhub {\n rate_limit 0\n}", true, 0, 0},
		{"jupyterhub {\n rate_limit x\n}", true, 0, 0},
		{"jupyterhub {\n rate_limit 3 -1s\n}", true, 0, 0},
		{"jupyterhub {\n ask http://x\n}", true, 0, 0},
	} {
		var p Permission
		err := p.UnmarshalCaddyfile(caddyfile.NewTestDispenser(tc.in))
		if (err != nil) != tc.wantErr {
			t.Errorf("%q: err = %v, want error %v", tc.in, err, tc.wantErr)
			continue
		}
		if err == nil && (p.RateLimit != tc.rate || time.Duration(p.RateInterval) != tc.interval) {
			t.Errorf("%q: got %d/%s, want %d/%s", tc.in, p.RateLimit, time.Duration(p.RateInterval), tc.rate, tc.interval)
		}
	}
}

func TestCertRegistryRecord(t *testing.T) {
	r := &certRegistry{names: map[string]*certRecord{}}
	at := time.Unix(2_000_000, 0)
	r.record("cached_managed_cert", map[string]any{"sans": []string{"hub.example.org"}}, at, nil)
	r.record("cert_failed", map[string]any{"identifier": "alice.hub.example.org", "renewal": false, "error": errors.New("acme: boom")}, at, nil)
	r.record("cert_obtained", map[string]any{"identifier": "hub.example.org", "renewal": true, "issuer": "acme-v02", "certificate_path": "certificates/x/hub.example.org/hub.example.org.crt"}, at.Add(time.Second), nil)
	r.record("cert_obtained", map[string]any{}, at, nil) // no identifier: ignored
	got := r.info(nil)
	if len(got) != 2 || got[0].Name != "alice.hub.example.org" || got[1].Name != "hub.example.org" {
		t.Fatalf("names: %+v", got)
	}
	if got[0].LastError != "acme: boom" || got[0].LastErrorAt == nil || !got[0].LastErrorAt.Equal(at) || got[0].LastObtained != nil {
		t.Errorf("failed name: %+v", got[0])
	}
	if got[1].Issuer != "acme-v02" || got[1].Renewals != 1 || got[1].LastObtained == nil || got[1].LastError != "" {
		t.Errorf("obtained name: %+v", got[1])
	}
}

func TestHubLabelHooksAndCertificateInfo(t *testing.T) {
	dir := t.TempDir()
	web.NoteUserCreated(dir, "dora")
	if u, ok, _ := web.LookupUserLabel(dir, nil, "dora", time.Now()); !ok || u != "dora" {
		t.Errorf("after NoteUserCreated: %q %v", u, ok)
	}
	web.NoteUserDeleted(dir, "dora")
	if _, ok, _ := web.LookupUserLabel(dir, nil, "dora", time.Now()); ok {
		t.Error("found after NoteUserDeleted")
	}
	certs.record("cert_failed", map[string]any{"identifier": "hooks.test", "error": "no"}, time.Now(), nil)
	found := false
	for _, ci := range certificateInfo(caddy.Context{}) {
		found = found || (ci.Name == "hooks.test" && ci.LastError == "no")
	}
	if !found {
		t.Error("certificateInfo misses a recorded failure")
	}
}

func TestSubscribeCertEventsBareContext(t *testing.T) {
	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	defer cancel()
	a := &App{logger: zap.NewNop()}
	if err := a.subscribeCertEvents(ctx); err != nil {
		t.Errorf("bare context: %v", err)
	}
}

// TestPermissionAdapt: the Caddyfile global option on_demand_tls { permission jupyterhub … }
// becomes the tls app's on-demand permission module.
func TestPermissionAdapt(t *testing.T) {
	in := `{
	on_demand_tls {
		permission jupyterhub {
			rate_limit 5 30s
		}
	}
	jupyterhub {
		subdomain_host hub.example.org
	}
}

hub.example.org, *.hub.example.org {
	tls {
		on_demand
	}
	respond ok
}
`
	adapter := caddyfile.Adapter{ServerType: httpcaddyfile.ServerType{}}
	out, warnings, err := adapter.Adapt([]byte(in), nil)
	if err != nil {
		t.Fatalf("adapt: %v (warnings %v)", err, warnings)
	}
	var cfg struct {
		Apps struct {
			TLS struct {
				Automation struct {
					OnDemand struct {
						Permission map[string]any `json:"permission"`
					} `json:"on_demand"`
					Policies []struct {
						OnDemand bool `json:"on_demand"`
					} `json:"policies"`
				} `json:"automation"`
			} `json:"tls"`
		} `json:"apps"`
	}
	if err := json.Unmarshal(out, &cfg); err != nil {
		t.Fatal(err)
	}
	perm := cfg.Apps.TLS.Automation.OnDemand.Permission
	if perm["module"] != "jupyterhub" || perm["rate_limit"] != float64(5) || perm["rate_interval"] != float64(30*time.Second) {
		t.Errorf("permission = %v\n%s", perm, out)
	}
	onDemand := false
	for _, p := range cfg.Apps.TLS.Automation.Policies {
		onDemand = onDemand || p.OnDemand
	}
	if !onDemand {
		t.Errorf("no on-demand automation policy:\n%s", out)
	}
}

func TestCertCollector(t *testing.T) {
	certs.record("cert_failed", map[string]any{"identifier": "metrics.test", "error": "no"}, time.Unix(3_000_000, 0), nil)
	reg := prometheus.NewRegistry()
	if err := reg.Register(certCollector{storage: func() certmagic.Storage { return nil }}); err != nil {
		t.Fatal(err)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			if mf.GetName() == "caddyhub_certificate_last_error_timestamp_seconds" && m.GetLabel()[0].GetValue() == "metrics.test" {
				found = m.GetGauge().GetValue() == 3_000_000
			}
		}
	}
	if !found {
		t.Error("no last-error gauge for metrics.test")
	}
}

func TestCertificateExpiryFromStorage(t *testing.T) {
	st := &certmagic.FileStorage{Path: t.TempDir()}
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	notAfter := time.Now().Add(90 * 24 * time.Hour).Truncate(time.Second).UTC()
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), DNSNames: []string{"store.test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: notAfter}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	pemBytes := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	// Under some issuer's directory, found without a recorded path (cached_managed_cert).
	if err := st.Store(context.Background(), certmagic.StorageKeys.SiteCert("acme.example-directory", "store.test"), pemBytes); err != nil {
		t.Fatal(err)
	}
	r := &certRegistry{names: map[string]*certRecord{}}
	r.record("cached_managed_cert", map[string]any{"sans": []string{"store.test", "missing.test"}}, time.Now(), nil)
	got := r.info(st)
	if len(got) != 2 || got[1].Name != "store.test" || got[1].NotAfter == nil || !got[1].NotAfter.Equal(notAfter) {
		t.Fatalf("info = %+v, want store.test expiring %s", got, notAfter)
	}
	if got[0].NotAfter != nil {
		t.Errorf("missing.test has an expiry: %v", got[0].NotAfter)
	}
}
