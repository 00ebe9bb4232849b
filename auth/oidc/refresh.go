package oidc

import (
	"context"
	"fmt"
	"maps"
	"net/url"
	"strings"

	"golang.org/x/oauth2"

	"github.com/caddyhub/caddyhub/auth"
)

// RefreshUser refreshes an expired access token before a spawn when
// refresh_pre_spawn is on, reads the userinfo again and applies the policy
// again (a user removed from allowed_groups at the provider cannot start a
// server any more). It returns u unchanged when refresh_pre_spawn is off
// or the token has not expired.
func (o *OIDC) RefreshUser(ctx context.Context, u *auth.User) (*auth.User, error) {
	if !o.RefreshPreSpawn || u == nil || u.AuthState == nil {
		return u, nil
	}
	exp, ok := expiresAt(u.AuthState)
	if !ok || o.now().Before(exp) {
		return u, nil
	}
	rt, _ := u.AuthState[stateRefreshToken].(string)
	if rt == "" {
		return nil, fmt.Errorf("%w: the access token expired and the provider gave no refresh token", auth.ErrLoginExpired)
	}
	pi, err := o.disc.get(ctx, o)
	if err != nil {
		return nil, err
	}
	cctx := o.clientCtx(ctx)
	conf := o.oauthConfig(pi, "")
	tok, err := conf.TokenSource(cctx, &oauth2.Token{RefreshToken: rt, Expiry: exp}).Token()
	if err != nil {
		return nil, tokenError("refreshing the access token", err)
	}
	rawID, _ := tok.Extra("id_token").(string)
	var claims map[string]any
	if rawID != "" {
		// A refreshed ID token has no nonce (OpenID Connect Core §12.2).
		idt, err := pi.verifier.Verify(cctx, rawID)
		if err != nil {
			return nil, fmt.Errorf("%w: refreshed id token: %w", auth.ErrInvalidToken, err)
		}
		if claims, err = o.claims(cctx, pi, idt, tok); err != nil {
			return nil, err
		}
	} else {
		rawID, _ = u.AuthState[stateIDToken].(string)
		if claims, err = o.claims(cctx, pi, nil, tok); err != nil {
			return nil, err
		}
		// Without a new ID token, keep the old claims under the new ones.
		if old, ok := u.AuthState[stateUser].(map[string]any); ok {
			merged := maps.Clone(old)
			maps.Copy(merged, claims)
			claims = merged
		}
	}
	if tok.RefreshToken == "" {
		tok.RefreshToken = rt // the provider keeps the old one valid
	}
	nu, err := o.userFromClaims(claims)
	if err != nil {
		return nil, err
	}
	if nu.Name != u.Name {
		return nil, fmt.Errorf("%w: the refreshed identity is %q, not %q", auth.ErrLoginExpired, nu.Name, u.Name)
	}
	nu.AuthState = o.authState(tok, rawID, claims)
	return nu, nil
}

// LogoutURL returns the provider's end_session_endpoint with the ID token
// as a hint when end_session is on, logout_redirect_url otherwise, or "".
func (o *OIDC) LogoutURL(_ context.Context, u *auth.User, hubLoginURL string) string {
	after := o.LogoutRedirectURL
	if after == "" {
		after = hubLoginURL
	}
	pi := o.disc.info.Load()
	if !o.EndSession || pi == nil || pi.endSession == "" {
		return o.LogoutRedirectURL
	}
	q := url.Values{"client_id": {o.ClientID}}
	if after != "" {
		q.Set("post_logout_redirect_uri", after)
	}
	if u != nil && u.AuthState != nil {
		if id, ok := u.AuthState[stateIDToken].(string); ok && id != "" {
			q.Set("id_token_hint", id)
		}
	}
	sep := "?"
	if pu, err := url.Parse(pi.endSession); err == nil && pu.RawQuery != "" {
		sep = "&"
	}
	return pi.endSession + sep + q.Encode()
}

// SpawnEnv returns the variables auth_state_env asks for, from the
// auth_state; missing values are left out.
func (o *OIDC) SpawnEnv(st map[string]any) map[string]string {
	if len(o.AuthStateEnv) == 0 || st == nil {
		return nil
	}
	env := make(map[string]string, len(o.AuthStateEnv))
	for name, src := range o.AuthStateEnv {
		var v any
		if claim, ok := strings.CutPrefix(src, "claim."); ok {
			claims, _ := st[stateUser].(map[string]any)
			v, _ = lookup(claims, claim)
		} else {
			v = st[src]
		}
		switch x := v.(type) {
		case string:
			env[name] = x
		case float64, bool:
			env[name] = fmt.Sprint(x)
		}
	}
	return env
}
