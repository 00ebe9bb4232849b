package oidc

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	gooidc "github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/caddyhub/caddyhub/auth"
)

// Keys of the auth_state map, OAuthenticator's names.
const (
	stateAccessToken  = "access_token"
	stateRefreshToken = "refresh_token"
	stateIDToken      = "id_token"
	stateTokenType    = "token_type"
	stateExpiresAt    = "expires_at" // Unix seconds; absent when the provider gave no expiry
	stateScope        = "scope"
	stateUser         = "oauth_user" // the merged claims
)

// oauthConfig is the OAuth client for one request.
func (o *OIDC) oauthConfig(pi *providerInfo, callback string) *oauth2.Config {
	if o.CallbackURL != "" {
		callback = o.CallbackURL
	}
	return &oauth2.Config{
		ClientID: o.ClientID, ClientSecret: o.secret, Endpoint: pi.endpoint,
		RedirectURL: callback, Scopes: o.scopes,
	}
}

func (o *OIDC) clientCtx(ctx context.Context) context.Context {
	return context.WithValue(ctx, oauth2.HTTPClient, o.client)
}

// BeginLogin records the login's state, nonce and PKCE verifier and
// returns the provider's authorization URL.
func (o *OIDC) BeginLogin(w http.ResponseWriter, r *http.Request, rc auth.RedirectContext) (string, error) {
	pi, err := o.disc.get(r.Context(), o)
	if err != nil {
		return "", err
	}
	p := o.pending.Begin(w, r, rc)
	return o.oauthConfig(pi, rc.CallbackURL).AuthCodeURL(p.State, gooidc.Nonce(p.Nonce),
		oauth2.S256ChallengeOption(p.Verifier)), nil
}

// Callback checks the state, exchanges the code (with the PKCE verifier),
// verifies the ID token and its nonce, reads the userinfo and applies the
// policy.
func (o *OIDC) Callback(w http.ResponseWriter, r *http.Request, rc auth.RedirectContext) (*auth.User, string, error) {
	p, err := o.pending.Finish(r)
	if err != nil {
		return nil, "", err
	}
	q := r.URL.Query()
	if e := q.Get("error"); e != "" {
		return nil, p.Next, providerError(e, q.Get("error_description"))
	}
	code := q.Get("code")
	if code == "" {
		return nil, p.Next, fmt.Errorf("%w: the provider's callback has no code", auth.ErrInvalidToken)
	}
	pi, err := o.disc.get(r.Context(), o)
	if err != nil {
		return nil, p.Next, err
	}
	ctx := o.clientCtx(r.Context())
	tok, err := o.oauthConfig(pi, rc.CallbackURL).Exchange(ctx, code, oauth2.VerifierOption(p.Verifier))
	if err != nil {
		return nil, p.Next, tokenError("exchanging the code", err)
	}
	rawID, _ := tok.Extra("id_token").(string)
	if rawID == "" {
		return nil, p.Next, fmt.Errorf("%w: the token response has no id_token (is the openid scope allowed for this client?)", auth.ErrInvalidToken)
	}
	idt, err := pi.verifier.Verify(ctx, rawID)
	if err != nil {
		return nil, p.Next, fmt.Errorf("%w: id token: %w", auth.ErrInvalidToken, err)
	}
	if subtle.ConstantTimeCompare([]byte(idt.Nonce), []byte(p.Nonce)) != 1 {
		return nil, p.Next, fmt.Errorf("%w: id token: the nonce is not the one of this login (a replayed token)", auth.ErrInvalidToken)
	}
	if idt.AccessTokenHash != "" {
		if err := idt.VerifyAccessToken(tok.AccessToken); err != nil {
			return nil, p.Next, fmt.Errorf("%w: id token: %w", auth.ErrInvalidToken, err)
		}
	}
	claims, err := o.claims(ctx, pi, idt, tok)
	if err != nil {
		return nil, p.Next, err
	}
	u, err := o.userFromClaims(claims)
	if err != nil {
		return nil, p.Next, err
	}
	u.AuthState = o.authState(tok, rawID, claims)
	return u, p.Next, nil
}

// providerError maps the error parameter of a callback (RFC 6749 §4.1.2.1).
func providerError(code, desc string) error {
	msg := code
	if desc != "" {
		msg += ": " + auth.Truncate(desc, 200)
	}
	switch code {
	case "access_denied", "login_required", "consent_required", "interaction_required", "account_selection_required":
		return fmt.Errorf("%w: the identity provider did not sign you in (%s)", auth.ErrNotAllowed, msg)
	case "temporarily_unavailable", "server_error":
		return fmt.Errorf("%w: %s", auth.ErrProviderUnavailable, msg)
	}
	return fmt.Errorf("%w: %s", auth.ErrProviderRefused, msg)
}

// tokenError maps an error of the token endpoint: a refused client
// (invalid_client, unauthorized_client, 401) is ErrProviderRefused, a
// refused grant (a used or expired code or refresh token) ErrLoginExpired,
// the rest ErrProviderUnavailable.
func tokenError(doing string, err error) error {
	var re *oauth2.RetrieveError
	if errors.As(err, &re) {
		switch {
		case re.ErrorCode == "invalid_client" || re.ErrorCode == "unauthorized_client" ||
			(re.Response != nil && re.Response.StatusCode == http.StatusUnauthorized):
			return fmt.Errorf("%w: %s: the provider refused the client credentials (check client_id and client_secret): %s",
				auth.ErrProviderRefused, doing, retrieveText(re))
		case re.ErrorCode == "invalid_grant":
			return fmt.Errorf("%w: %s: %s", auth.ErrLoginExpired, doing, retrieveText(re))
		case re.ErrorCode != "":
			return fmt.Errorf("%w: %s: %s", auth.ErrProviderRefused, doing, retrieveText(re))
		}
	}
	return fmt.Errorf("%w: %s: %w", auth.ErrProviderUnavailable, doing, err)
}

func retrieveText(re *oauth2.RetrieveError) string {
	s := re.ErrorCode
	if re.ErrorDescription != "" {
		s += ": " + auth.Truncate(re.ErrorDescription, 200)
	}
	if s == "" && re.Response != nil {
		s = re.Response.Status
	}
	return s
}

// claims returns the ID token's claims with the userinfo answer's merged
// over them (when the provider has a userinfo endpoint).
func (o *OIDC) claims(ctx context.Context, pi *providerInfo, idt *gooidc.IDToken, tok *oauth2.Token) (map[string]any, error) {
	claims := map[string]any{}
	if idt != nil {
		if err := idt.Claims(&claims); err != nil {
			return nil, fmt.Errorf("%w: id token claims: %w", auth.ErrInvalidToken, err)
		}
	}
	if !pi.userinfo {
		return claims, nil
	}
	ui, err := pi.provider.UserInfo(ctx, oauth2.StaticTokenSource(tok))
	if err != nil {
		return nil, fmt.Errorf("%w: userinfo: %w", auth.ErrProviderUnavailable, err)
	}
	if idt != nil && ui.Subject != idt.Subject {
		return nil, fmt.Errorf("%w: userinfo is about another subject than the id token", auth.ErrInvalidToken)
	}
	var uc map[string]any
	if err := ui.Claims(&uc); err != nil {
		return nil, fmt.Errorf("%w: userinfo claims: %w", auth.ErrInvalidToken, err)
	}
	for k, v := range uc {
		claims[k] = v
	}
	return claims, nil
}

// lookup finds a claim by a dotted name ("realm_access.roles").
func lookup(claims map[string]any, name string) (any, bool) {
	var cur any = claims
	for part := range strings.SplitSeq(name, ".") {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil, false
		}
		if cur, ok = m[part]; !ok {
			return nil, false
		}
	}
	return cur, true
}

// groupsOf reads the groups claim: an array of strings, or one string.
func groupsOf(claims map[string]any, name string) []string {
	v, _ := lookup(claims, name)
	switch g := v.(type) {
	case string:
		if g == "" {
			return nil
		}
		return []string{g}
	case []any:
		out := make([]string, 0, len(g))
		for _, x := range g {
			if s, ok := x.(string); ok && s != "" {
				out = append(out, s)
			}
		}
		return out
	}
	return nil
}

// userFromClaims names the user and applies the policy: the common lists,
// allowed_groups, admin_groups.
func (o *OIDC) userFromClaims(claims map[string]any) (*auth.User, error) {
	uc := o.UsernameClaim
	if uc == "" {
		uc = defaultUsernameClaim
	}
	v, _ := lookup(claims, uc)
	raw, _ := v.(string)
	if raw == "" {
		return nil, fmt.Errorf("%w: the provider's answer has no %q claim (set username_claim to a claim it has, such as sub or email)",
			auth.ErrInvalidUsername, uc)
	}
	name, err := o.Normalize(raw)
	if err != nil {
		return nil, err
	}
	gc := o.GroupsClaim
	if gc == "" {
		gc = defaultGroupsClaim
	}
	groups := groupsOf(claims, gc)
	var g auth.Grant
	for _, grp := range groups {
		if _, ok := o.allowG[grp]; ok {
			g.Allowed = true
		}
		if _, ok := o.adminG[grp]; ok {
			g.Admin = true
		}
	}
	admin, err := o.AuthorizeWith(name, g)
	if err != nil {
		if len(o.AllowedGroups) > 0 && !g.Allowed && !strings.Contains(err.Error(), "blocked_users") {
			return nil, fmt.Errorf("%w: %q is in none of allowed_groups (its groups: %s) nor in allowed_users",
				auth.ErrNotAllowed, auth.Truncate(name, 32), auth.Truncate(strings.Join(groups, ", "), 200))
		}
		return nil, err
	}
	return &auth.User{Name: name, Admin: admin, Groups: groups}, nil
}

// authState is what the hub stores (encrypted) about a login.
func (o *OIDC) authState(tok *oauth2.Token, rawID string, claims map[string]any) map[string]any {
	st := map[string]any{
		stateAccessToken: tok.AccessToken,
		stateTokenType:   tok.Type(),
		stateUser:        claims,
	}
	if tok.RefreshToken != "" {
		st[stateRefreshToken] = tok.RefreshToken
	}
	if rawID != "" {
		st[stateIDToken] = rawID
	}
	if !tok.Expiry.IsZero() {
		st[stateExpiresAt] = float64(tok.Expiry.Unix())
	}
	if s, ok := tok.Extra("scope").(string); ok && s != "" {
		st[stateScope] = s
	}
	return st
}

// expiresAt reads expires_at from an auth_state (a number after the JSON
// round trip through the store).
func expiresAt(st map[string]any) (time.Time, bool) {
	switch v := st[stateExpiresAt].(type) {
	case float64:
		return time.Unix(int64(v), 0), true
	case int64:
		return time.Unix(v, 0), true
	case int:
		return time.Unix(int64(v), 0), true
	}
	return time.Time{}, false
}
