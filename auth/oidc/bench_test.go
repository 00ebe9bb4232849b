package oidc

import (
	"context"
	"io"
	"net/http"
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
	var failed atomic.Int64
	cpu0 := processCPU()
	start := time.Now()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		browser := oidctest.NewBrowser()
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
}

// processCPU returns the process's user+system CPU time.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
