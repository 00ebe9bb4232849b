package oidc

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	gooidc "github.com/coreos/go-oidc/v3/oidc"
	"go.uber.org/zap"
	"golang.org/x/oauth2"

	"github.com/caddyhub/caddyhub/auth"
)

const (
	retryMin = time.Second
	retryMax = 30 * time.Second
)

// retryOnDemand is how soon after a failed attempt a login may try
// discovery again itself, instead of waiting for the background loop.
// A variable for tests.
var retryOnDemand = 2 * time.Second

// discovery holds the provider's metadata once it has been fetched.
type discovery struct {
	info   atomic.Pointer[providerInfo]
	failed atomic.Bool // the last attempt failed

	mu      sync.Mutex // serializes attempts
	lastTry time.Time
	lastErr error
}

// providerInfo is what discovery found.
type providerInfo struct {
	provider   *gooidc.Provider
	verifier   *gooidc.IDTokenVerifier
	endpoint   oauth2.Endpoint
	endSession string
	userinfo   bool
}

// loop tries discovery until it succeeds or ctx ends, backing off from
// retryMin to retryMax.
func (d *discovery) loop(ctx context.Context, o *OIDC) {
	wait := retryMin
	for n := 1; ; n++ {
		if _, err := d.attempt(ctx, o, true); err == nil {
			return
		} else if n == 1 || n%10 == 0 {
			o.logger.Warn("identity provider unreachable: sign-in is unavailable until discovery succeeds; retrying",
				zap.String("issuer", o.Issuer), zap.Int("attempt", n), zap.Duration("next_try", wait), zap.Error(err))
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		wait = min(wait*2, retryMax)
	}
}

// get returns the provider's metadata, trying discovery now when it has
// not succeeded yet (at most once per retryOnDemand). Errors wrap
// auth.ErrProviderUnavailable.
func (d *discovery) get(ctx context.Context, o *OIDC) (*providerInfo, error) {
	if pi := d.info.Load(); pi != nil {
		return pi, nil
	}
	o.start()
	return d.attempt(ctx, o, false)
}

func (d *discovery) attempt(ctx context.Context, o *OIDC, force bool) (*providerInfo, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if pi := d.info.Load(); pi != nil {
		return pi, nil
	}
	if !force && d.lastErr != nil && time.Since(d.lastTry) < retryOnDemand {
		return nil, d.lastErr
	}
	d.lastTry = time.Now()
	pi, err := o.discover(ctx)
	if err != nil {
		d.lastErr = fmt.Errorf("%w: discovery at %s: %w", auth.ErrProviderUnavailable, o.Issuer, err)
		d.failed.Store(true)
		return nil, d.lastErr
	}
	d.lastErr = nil
	d.info.Store(pi)
	d.failed.Store(false)
	o.logger.Info("identity provider discovered", zap.String("issuer", o.Issuer),
		zap.Bool("end_session_endpoint", pi.endSession != ""), zap.Bool("userinfo_endpoint", pi.userinfo))
	return pi, nil
}

// discover fetches <issuer>/.well-known/openid-configuration and prepares
// the ID token verifier. go-oidc checks that the document names the
// configured issuer.
func (o *OIDC) discover(ctx context.Context) (*providerInfo, error) {
	p, err := gooidc.NewProvider(gooidc.ClientContext(ctx, o.client), o.Issuer)
	if err != nil {
		return nil, err
	}
	var extra struct {
		EndSession string `json:"end_session_endpoint"`
	}
	if err := p.Claims(&extra); err != nil {
		return nil, fmt.Errorf("reading the discovery document: %w", err)
	}
	// The key set fetches the JWKS again when a token names a key it does
	// not know (the provider rotated its keys); its requests use o.client.
	v := p.VerifierContext(gooidc.ClientContext(context.Background(), o.client),
		&gooidc.Config{ClientID: o.ClientID, Now: o.now})
	return &providerInfo{
		provider: p, verifier: v, endpoint: p.Endpoint(),
		endSession: extra.EndSession, userinfo: p.UserInfoEndpoint() != "",
	}, nil
}

// Unavailable says why sign-in cannot be attempted now, or "". It does
// not wait for the provider: the answer reflects the last attempt (none
// yet counts as available; BeginLogin then tries itself), and discovery
// starts in the background when it has not started yet.
func (o *OIDC) Unavailable(context.Context) string {
	if o.disc.info.Load() != nil {
		return ""
	}
	o.start()
	if !o.disc.failed.Load() {
		return ""
	}
	return fmt.Sprintf("Sign-in with %s is unavailable right now: the hub cannot reach the identity provider. "+
		"Try again in a few minutes; if it lasts, tell the hub's administrator.", o.LoginService())
}
