package oidc

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/caddyhub/caddyhub/auth/oidc/oidctest"
)

// The hub's own share of a login is the time spent in BeginLogin and
// Callback minus the time spent waiting for the provider's answers
// (token, userinfo, JWKS), which providerTimer measures per request.

type provTimeKey struct{}

// providerTimer adds the duration of each request to the counter in the
// request's context.
type providerTimer struct{ next http.RoundTripper }

func (p providerTimer) RoundTrip(r *http.Request) (*http.Response, error) {
	exchanges.Add(1)
	start := time.Now()
	resp, err := p.next.RoundTrip(r)
	if c, ok := r.Context().Value(provTimeKey{}).(*atomic.Int64); ok {
		if err == nil {
			// The answer counts until its body is read; go-oidc and oauth2 read it at once.
			resp.Body = &timedBody{ReadCloser: resp.Body, start: start, c: c}
		} else {
			c.Add(int64(time.Since(start)))
		}
	}
	return resp, err
}

type timedBody struct {
	io.ReadCloser
	start time.Time
	c     *atomic.Int64
	done  bool
}

func (b *timedBody) Close() error {
	if !b.done {
		b.done = true
		b.c.Add(int64(time.Since(b.start)))
	}
	return b.ReadCloser.Close()
}

// timed starts measuring a hub request; done adds its hub-only time to
// h.hubNS.
func (h *hub) timed(r *http.Request) (*http.Request, func()) {
	c := new(atomic.Int64)
	start := time.Now()
	r = r.WithContext(context.WithValue(r.Context(), provTimeKey{}, c))
	return r, func() { h.hubNS.Add(int64(time.Since(start)) - c.Load()) }
}

// exchanges counts the HTTP exchanges of the benchmarks' logins: the browsers' and the hub's
// (back channel) requests.
var exchanges atomic.Int64

// countingTransport counts the requests it sends in exchanges.
type countingTransport struct{ next http.RoundTripper }

func (c countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	exchanges.Add(1)
	return c.next.RoundTrip(r)
}

// BenchmarkOIDCLogin runs whole logins (hub → provider's form → hub
// callback with code exchange, ID token verification and userinfo)
// against the in-process provider, in parallel, and reports logins/s and
// the hub's own share per login in milliseconds.
func BenchmarkOIDCLogin(b *testing.B) {
	p := provider(b)
	h := newHub(b, p, groupsConfig)
	// One login first: discovery and the JWKS are fetched once per hub, not per login.
	if resp, err := p.Login(oidctest.NewBrowser(), h.srv.URL+"/hub/oauth_login", "bob", "pw-bob"); err != nil {
		b.Fatal(err)
	} else {
		resp.Body.Close()
	}
	h.hubNS.Store(0)
	exchanges.Store(0)
	var failed atomic.Int64
	cpu0 := processCPU()
	start := time.Now()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		browser := oidctest.NewBrowser()
		browser.Transport = countingTransport{http.DefaultTransport}
		for pb.Next() {
			resp, err := p.Login(browser, h.srv.URL+"/hub/oauth_login", "bob", "pw-bob")
			if err != nil {
				failed.Add(1)
				continue
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if !strings.HasPrefix(string(body), "welcome bob") {
				failed.Add(1)
			}
		}
	})
	elapsed := time.Since(start)
	cpu := processCPU() - cpu0
	b.StopTimer()
	if n := failed.Load(); n > 0 {
		b.Fatalf("%d of %d logins failed", n, b.N)
	}
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "logins/s")
	b.ReportMetric(float64(h.hubNS.Load())/float64(b.N)/1e6, "hub-ms/login")
	// CPU time of the whole process (provider, hub and browsers) per login: on a
	// loaded machine the wall-clock figures above say more about the neighbours.
	b.ReportMetric(float64(cpu)/float64(b.N)/1e6, "cpu-ms/login")
	b.ReportMetric(float64(exchanges.Load())/float64(b.N), "http/login")
	b.ReportMetric(cpuShare(cpu, elapsed), "cores-used")
}

// cpuShare is how many of the machine's cores the process used over elapsed, on average: on a
// shared machine, what the benchmark was given.
func cpuShare(cpu, elapsed time.Duration) float64 {
	return float64(cpu) / float64(elapsed)
}

// BenchmarkLoopbackFloor is the machine's floor for the login benchmark, to run in the same
// `go test -bench` invocation: the fastest possible HTTP exchange on loopback (an empty 200 from an
// in-process server, through the same client setup as the login benchmark's browsers), in
// parallel. A login is http/login such exchanges plus the work in them, so logins/s can never
// exceed exchanges/s divided by http/login on the machine at that moment.
func BenchmarkLoopbackFloor(b *testing.B) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusOK)
	}))
	defer srv.Close()
	var failed atomic.Int64
	cpu0 := processCPU()
	start := time.Now()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		client := oidctest.NewBrowser()
		for pb.Next() {
			resp, err := client.Get(srv.URL + "/")
			if err != nil {
				failed.Add(1)
				continue
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
	})
	elapsed := time.Since(start)
	cpu := processCPU() - cpu0
	b.StopTimer()
	if n := failed.Load(); n > 0 {
		b.Fatalf("%d of %d requests failed", n, b.N)
	}
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "exchanges/s")
	b.ReportMetric(float64(cpu)/float64(b.N)/1e3, "cpu-us/exchange")
	b.ReportMetric(cpuShare(cpu, elapsed), "cores-used")
}

// processCPU returns the process's user+system CPU time.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
