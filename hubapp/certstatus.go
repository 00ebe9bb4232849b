package hubapp

// Certificate state for admins: the hub subscribes to Caddy's certificate events (cert_obtained,
// cert_failed, cached_managed_cert; emitted by certmagic through the tls app) and keeps, per
// managed name, when it was last obtained and the last error. certificateInfo adds each
// certificate's expiry, read from Caddy's storage, for /hub/api/info.

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"path"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyevents"
	"github.com/caddyserver/certmagic"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/caddyhub/caddyhub/hubapp/web"
)

func init() {
	caddy.RegisterModule(new(CertificateEvents))
}

// certEventNames are the events CertificateEvents records.
var certEventNames = []string{"cert_obtained", "cert_failed", "cached_managed_cert"}

// CertificateEvents is the events handler `events.handlers.jupyterhub_certificates`. The jupyterhub
// app subscribes it by itself; it is a module so that a JSON config may subscribe it to events from
// other origins as well. It records what it sees for /hub/api/info and logs failures at Error level.
type CertificateEvents struct {
	logger *zap.Logger
}

// CaddyModule returns the Caddy module information.
func (*CertificateEvents) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{ID: "events.handlers.jupyterhub_certificates", New: func() caddy.Module { return new(CertificateEvents) }}
}

// Provision sets the logger.
func (e *CertificateEvents) Provision(ctx caddy.Context) error {
	e.logger = ctx.Logger()
	return nil
}

// Handle implements caddyevents.Handler. It never aborts the event.
func (e *CertificateEvents) Handle(_ context.Context, ev caddy.Event) error {
	certs.record(ev.Name(), ev.Data, ev.Timestamp(), e.logger)
	return nil
}

// certRecord is what the hub knows about one managed name.
type certRecord struct {
	issuer       string
	certPath     string // storage key of the PEM certificate, when known
	lastObtained time.Time
	renewals     int
	lastError    string
	lastErrorAt  time.Time
	renewalError bool

	// Parsed from storage: notAfter of the certificate at certPath as of parsedAt.
	notAfter time.Time
	parsedAt time.Time
}

// certRegistry is process-wide: the tls app, like certificates, outlives config generations.
type certRegistry struct {
	mu    sync.Mutex
	names map[string]*certRecord
}

var certs = &certRegistry{names: map[string]*certRecord{}}

func (r *certRegistry) get(name string) *certRecord {
	rec := r.names[name]
	if rec == nil {
		rec = &certRecord{}
		r.names[name] = rec
	}
	return rec
}

func (r *certRegistry) record(event string, data map[string]any, at time.Time, logger *zap.Logger) {
	if logger == nil {
		logger = zap.NewNop()
	}
	name, _ := data["identifier"].(string)
	renewal, _ := data["renewal"].(bool)
	r.mu.Lock()
	defer r.mu.Unlock()
	switch event {
	case "cached_managed_cert":
		sans, _ := data["sans"].([]string)
		for _, n := range sans {
			r.get(n)
		}
	case "cert_obtained":
		if name == "" {
			return
		}
		rec := r.get(name)
		rec.issuer, _ = data["issuer"].(string)
		rec.certPath, _ = data["certificate_path"].(string)
		rec.lastObtained = at
		rec.notAfter, rec.parsedAt = time.Time{}, time.Time{}
		if renewal {
			rec.renewals++
		}
		logger.Info("certificate obtained", zap.String("name", name), zap.Bool("renewal", renewal), zap.String("issuer", rec.issuer))
	case "cert_failed":
		if name == "" {
			return
		}
		rec := r.get(name)
		msg := "unknown error"
		if err, ok := data["error"].(error); ok && err != nil {
			msg = err.Error()
		} else if s, ok := data["error"].(string); ok && s != "" {
			msg = s
		}
		rec.lastError, rec.lastErrorAt, rec.renewalError = msg, at, renewal
		// Loudly: without a certificate the hub (or a user's origin) cannot be reached over HTTPS.
		logger.Error("certificate issuance failed", zap.String("name", name), zap.Bool("renewal", renewal), zap.String("error", msg))
	}
}

// CertificateInfo is one managed name's certificate state (package web shows it).
type CertificateInfo = web.CertificateInfo

// certificateInfo lists the state of every certificate name this process has seen managed,
// sorted by name, read from ctx's certificate storage (none when ctx is the zero value).
func certificateInfo(ctx caddy.Context) []CertificateInfo {
	var st certmagic.Storage
	if ctx.Context != nil {
		st = ctx.Storage()
	}
	return certs.info(st)
}

// parseEvery bounds how often a certificate's expiry is re-read from storage.
const parseEvery = time.Minute

func (r *certRegistry) info(st certmagic.Storage) []CertificateInfo {
	// Read expiries from storage without holding the lock: certificate events (which take it)
	// must not wait for storage I/O.
	now := time.Now()
	if st != nil {
		type due struct{ name, path string }
		var todo []due
		r.mu.Lock()
		for name, rec := range r.names {
			if now.Sub(rec.parsedAt) > parseEvery {
				todo = append(todo, due{name, rec.certPath})
				rec.parsedAt = now // one reader at a time per name
			}
		}
		r.mu.Unlock()
		for _, d := range todo {
			na, err := readNotAfter(st, d.name, d.path)
			if err != nil {
				continue
			}
			r.mu.Lock()
			if rec := r.names[d.name]; rec != nil && rec.certPath == d.path {
				rec.notAfter = na
			}
			r.mu.Unlock()
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]CertificateInfo, 0, len(r.names))
	for name, rec := range r.names {
		ci := CertificateInfo{Name: name, Issuer: rec.issuer, Renewals: rec.renewals, LastError: rec.lastError}
		if !rec.notAfter.IsZero() {
			t := rec.notAfter
			ci.NotAfter = &t
		}
		if !rec.lastObtained.IsZero() {
			t := rec.lastObtained
			ci.LastObtained = &t
		}
		if !rec.lastErrorAt.IsZero() {
			t := rec.lastErrorAt
			ci.LastErrorAt = &t
		}
		out = append(out, ci)
	}
	slices.SortFunc(out, func(a, b CertificateInfo) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// readNotAfter finds name's certificate in storage (at certPath, else under any issuer's
// directory) and returns its expiry.
func readNotAfter(st certmagic.Storage, name, certPath string) (time.Time, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	paths := []string{}
	if certPath != "" {
		paths = append(paths, certPath)
	}
	if issuers, err := st.List(ctx, "certificates", false); err == nil {
		for _, dir := range issuers {
			paths = append(paths, certmagic.StorageKeys.SiteCert(path.Base(dir), name))
		}
	}
	for _, p := range paths {
		b, err := st.Load(ctx, p)
		if err != nil {
			continue
		}
		if na, err := pemNotAfter(b); err == nil {
			return na, nil
		}
	}
	return time.Time{}, fmt.Errorf("%s: no certificate in storage", name)
}

// pemNotAfter returns the expiry of the first certificate in a PEM bundle (the leaf).
func pemNotAfter(b []byte) (time.Time, error) {
	block, _ := pem.Decode(b)
	if block == nil || block.Type != "CERTIFICATE" {
		return time.Time{}, errors.New("no PEM certificate")
	}
	c, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return time.Time{}, err
	}
	return c.NotAfter, nil
}

// certCollector exports the certificate state as Prometheus gauges in the config's metrics
// registry (Caddy's /metrics and the hub's /hub/metrics when they share it):
// caddyhub_certificate_expiry_timestamp_seconds{name} and
// caddyhub_certificate_last_error_timestamp_seconds{name}.
type certCollector struct {
	storage func() certmagic.Storage
}

var (
	certExpiryDesc = prometheus.NewDesc("caddyhub_certificate_expiry_timestamp_seconds",
		"When the managed certificate for a name expires (Unix time).", []string{"name"}, nil)
	certErrorDesc = prometheus.NewDesc("caddyhub_certificate_last_error_timestamp_seconds",
		"When obtaining or renewing the certificate for a name last failed (Unix time).", []string{"name"}, nil)
)

func (c certCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- certExpiryDesc
	ch <- certErrorDesc
}

func (c certCollector) Collect(ch chan<- prometheus.Metric) {
	for _, ci := range certs.info(c.storage()) {
		if ci.NotAfter != nil {
			ch <- prometheus.MustNewConstMetric(certExpiryDesc, prometheus.GaugeValue, float64(ci.NotAfter.Unix()), ci.Name)
		}
		if ci.LastErrorAt != nil {
			ch <- prometheus.MustNewConstMetric(certErrorDesc, prometheus.GaugeValue, float64(ci.LastErrorAt.Unix()), ci.Name)
		}
	}
}

// registerCertMetrics adds the certificate gauges to the config's metrics registry.
func registerCertMetrics(ctx caddy.Context) error {
	reg := ctx.GetMetricsRegistry()
	if reg == nil {
		return nil
	}
	err := reg.Register(certCollector{storage: ctx.Storage})
	var already prometheus.AlreadyRegisteredError
	if err != nil && !errors.As(err, &already) {
		return fmt.Errorf("registering certificate metrics: %w", err)
	}
	return nil
}

// Interface guards.
var (
	_ caddy.Provisioner   = (*CertificateEvents)(nil)
	_ caddyevents.Handler = (*CertificateEvents)(nil)
)
