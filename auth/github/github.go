// Package github is the jupyterhub.authenticators.github module: sign-in
// with GitHub or GitHub Enterprise Server, like OAuthenticator's
// GitHubOAuthenticator.
//
// GitHub is OAuth 2.0, not OpenID Connect: after the authorization code
// flow (with state bound to the browser by auth/loginstate, and PKCE) the
// user is read from the REST API (GET /user) with the access token, and
// membership is checked there: organizations from GET /user/orgs, teams
// from GET /orgs/{org}/teams/{team}/memberships/{login} (an active
// membership counts). The username is the GitHub login, through the common
// normalization and allow/admin/block policy.
package github

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"go.uber.org/zap"
	"golang.org/x/oauth2"

	"github.com/caddyhub/caddyhub/auth"
	"github.com/caddyhub/caddyhub/auth/loginstate"
)

func init() {
	caddy.RegisterModule(new(GitHub))
}

const (
	defaultGitHubURL = "https://github.com"
	defaultAPIURL    = "https://api.github.com"
	defaultTimeout   = 10 * time.Second
	stateCookie      = "caddyhub-github-state"
	maxOrgPages      = 10 // 1,000 organizations
)

// GitHub signs people in with their GitHub account.
type GitHub struct {
	auth.Options

	// The client ID of the hub's GitHub OAuth App. Required.
	ClientID string `json:"client_id,omitempty"`

	// The OAuth App's client secret; placeholders such as
	// {env.GITHUB_CLIENT_SECRET} are resolved at start. Required.
	ClientSecret string `json:"client_secret,omitempty"`

	// Members of these organizations may log in. An item "org:team" means
	// the team of that organization, as in allowed_teams. Default: empty.
	AllowedOrganizations []string `json:"allowed_organizations,omitempty"`

	// Members of these teams, written "org:team-slug", may log in.
	// Default: empty.
	AllowedTeams []string `json:"allowed_teams,omitempty"`

	// Members of these teams ("org:team-slug") are admins. Default: empty.
	AdminTeams []string `json:"admin_teams,omitempty"`

	// The base URL of GitHub Enterprise Server (https://github.example.org);
	// its API is <github_url>/api/v3. Default: https://github.com, with
	// the API at https://api.github.com.
	GitHubURL string `json:"github_url,omitempty"`

	// The API's base URL when it is not where github_url implies.
	// Default: derived from github_url.
	APIURL string `json:"api_url,omitempty"`

	// Extra scopes to ask for. read:org is added when organizations or
	// teams are checked. Default: read:user.
	Scopes []string `json:"scopes,omitempty"`

	// Skip the login page: visitors go straight to GitHub. Default: false.
	AutoLoginFlag bool `json:"auto_login,omitempty"`

	// The absolute callback URL registered for the OAuth App, when the hub
	// cannot derive it from the request. Default:
	// <scheme>://<host><base_url>hub/oauth_callback.
	CallbackURL string `json:"callback_url,omitempty"`

	// Timeout of each request to GitHub. Default: 10s.
	Timeout caddy.Duration `json:"timeout,omitempty"`

	secret   string
	webURL   string
	apiURL   string
	scopes   []string
	orgs     []string
	teams    []team
	admins   []team
	client   *http.Client
	pending  *loginstate.Store
	logger   *zap.Logger
	endpoint oauth2.Endpoint
}

type team struct{ org, slug string }

func (t team) String() string { return t.org + ":" + t.slug }

// CaddyModule returns the Caddy module information.
func (*GitHub) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "jupyterhub.authenticators.github",
		New: func() caddy.Module { return new(GitHub) },
	}
}

// Provision checks the options. It does no I/O.
func (g *GitHub) Provision(ctx caddy.Context) error {
	g.logger = ctx.Logger()
	if g.ClientID == "" || g.ClientSecret == "" {
		return fmt.Errorf("github authenticator: client_id and client_secret are required")
	}
	s, err := caddy.NewReplacer().ReplaceOrErr(g.ClientSecret, true, true)
	if err != nil {
		return fmt.Errorf("github authenticator: client_secret: %w", err)
	}
	g.secret = s
	g.webURL = strings.TrimSuffix(g.GitHubURL, "/")
	if g.webURL == "" {
		g.webURL = defaultGitHubURL
	}
	if u, err := url.Parse(g.webURL); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return fmt.Errorf("github authenticator: github_url %q must be an absolute http(s) URL", g.GitHubURL)
	}
	g.apiURL = strings.TrimSuffix(g.APIURL, "/")
	switch {
	case g.apiURL != "":
	case g.webURL == defaultGitHubURL:
		g.apiURL = defaultAPIURL
	default:
		g.apiURL = g.webURL + "/api/v3"
	}
	g.endpoint = oauth2.Endpoint{AuthURL: g.webURL + "/login/oauth/authorize", TokenURL: g.webURL + "/login/oauth/access_token",
		AuthStyle: oauth2.AuthStyleInParams}
	g.orgs, g.teams = nil, nil
	for _, o := range g.AllowedOrganizations {
		if strings.Contains(o, ":") {
			t, err := parseTeam("allowed_organizations", o)
			if err != nil {
				return err
			}
			g.teams = append(g.teams, t)
			continue
		}
		g.orgs = append(g.orgs, strings.ToLower(o))
	}
	for _, s := range g.AllowedTeams {
		t, err := parseTeam("allowed_teams", s)
		if err != nil {
			return err
		}
		g.teams = append(g.teams, t)
	}
	g.admins = nil
	for _, s := range g.AdminTeams {
		t, err := parseTeam("admin_teams", s)
		if err != nil {
			return err
		}
		g.admins = append(g.admins, t)
	}
	g.scopes = slices.Clone(g.Scopes)
	if !slices.Contains(g.scopes, "read:user") && !slices.Contains(g.scopes, "user") {
		g.scopes = append(g.scopes, "read:user")
	}
	if (len(g.orgs) > 0 || len(g.teams) > 0 || len(g.admins) > 0) && !slices.Contains(g.scopes, "read:org") {
		g.scopes = append(g.scopes, "read:org")
	}
	if len(g.orgs) > 0 || len(g.teams) > 0 || len(g.admins) > 0 {
		g.AnyAllowConfig = true
	}
	if err := g.Options.Provision(); err != nil {
		return fmt.Errorf("github authenticator: %w", err)
	}
	timeout := time.Duration(g.Timeout)
	if timeout <= 0 {
		timeout = defaultTimeout
	}
	g.client = &http.Client{Timeout: timeout}
	g.pending = loginstate.New(stateCookie, 0)
	return nil
}

func parseTeam(opt, s string) (team, error) {
	org, slug, ok := strings.Cut(s, ":")
	if !ok || org == "" || slug == "" || strings.ContainsAny(s, "/?#") {
		return team{}, fmt.Errorf("github authenticator: %s: %q must be written org:team-slug", opt, s)
	}
	return team{strings.ToLower(org), strings.ToLower(slug)}, nil
}

// Common returns the options shared by all authenticators.
func (g *GitHub) Common() *auth.Options { return &g.Options }

// LoginService is the provider's name on the login button.
func (g *GitHub) LoginService() string { return "GitHub" }

// AutoLogin reports whether the login page redirects at once.
func (g *GitHub) AutoLogin() bool { return g.AutoLoginFlag }

// Unavailable is always "": GitHub needs no discovery; an outage shows
// when the login fails.
func (g *GitHub) Unavailable(context.Context) string { return "" }

func (g *GitHub) oauthConfig(callback string) *oauth2.Config {
	if g.CallbackURL != "" {
		callback = g.CallbackURL
	}
	return &oauth2.Config{ClientID: g.ClientID, ClientSecret: g.secret, Endpoint: g.endpoint,
		RedirectURL: callback, Scopes: g.scopes}
}

// BeginLogin returns GitHub's authorization URL.
func (g *GitHub) BeginLogin(w http.ResponseWriter, r *http.Request, rc auth.RedirectContext) (string, error) {
	p := g.pending.Begin(w, r, rc)
	return g.oauthConfig(rc.CallbackURL).AuthCodeURL(p.State, oauth2.S256ChallengeOption(p.Verifier)), nil
}

// Callback exchanges the code, reads the user and checks membership.
func (g *GitHub) Callback(w http.ResponseWriter, r *http.Request, rc auth.RedirectContext) (*auth.User, string, error) {
	p, err := g.pending.Finish(r)
	if err != nil {
		return nil, "", err
	}
	q := r.URL.Query()
	if e := q.Get("error"); e != "" {
		if e == "access_denied" {
			return nil, p.Next, fmt.Errorf("%w: you did not authorize the hub on GitHub", auth.ErrNotAllowed)
		}
		return nil, p.Next, fmt.Errorf("%w: %s: %s", auth.ErrProviderRefused, e, auth.Truncate(q.Get("error_description"), 200))
	}
	code := q.Get("code")
	if code == "" {
		return nil, p.Next, fmt.Errorf("%w: the callback has no code", auth.ErrInvalidToken)
	}
	ctx := context.WithValue(r.Context(), oauth2.HTTPClient, g.client)
	tok, err := g.oauthConfig(rc.CallbackURL).Exchange(ctx, code, oauth2.VerifierOption(p.Verifier))
	if err != nil {
		return nil, p.Next, tokenError(err)
	}
	u, err := g.authorize(ctx, tok)
	if err != nil {
		return nil, p.Next, err
	}
	return u, p.Next, nil
}

// tokenError maps GitHub's token endpoint errors (which come with status
// 200 and an "error" field).
func tokenError(err error) error {
	var re *oauth2.RetrieveError
	if errors.As(err, &re) {
		switch re.ErrorCode {
		case "incorrect_client_credentials", "redirect_uri_mismatch", "unverified_user_email":
			return fmt.Errorf("%w: exchanging the code: %s: %s (check client_id, client_secret and the OAuth App's callback URL)",
				auth.ErrProviderRefused, re.ErrorCode, auth.Truncate(re.ErrorDescription, 200))
		case "bad_verification_code":
			return fmt.Errorf("%w: exchanging the code: the code expired or was used", auth.ErrLoginExpired)
		}
		if re.ErrorCode != "" {
			return fmt.Errorf("%w: exchanging the code: %s", auth.ErrProviderRefused, re.ErrorCode)
		}
	}
	return fmt.Errorf("%w: exchanging the code: %w", auth.ErrProviderUnavailable, err)
}

// authorize reads the user and applies the policy.
func (g *GitHub) authorize(ctx context.Context, tok *oauth2.Token) (*auth.User, error) {
	var gu map[string]any
	if _, err := g.api(ctx, tok, "/user", &gu); err != nil {
		return nil, err
	}
	login, _ := gu["login"].(string)
	if login == "" {
		return nil, fmt.Errorf("%w: GitHub's /user answer has no login", auth.ErrInvalidToken)
	}
	name, err := g.Normalize(login)
	if err != nil {
		return nil, err
	}
	var grant auth.Grant
	var why []string
	if len(g.orgs) > 0 {
		orgs, err := g.userOrgs(ctx, tok)
		if err != nil {
			return nil, err
		}
		for _, o := range g.orgs {
			if slices.Contains(orgs, o) {
				grant.Allowed = true
			}
		}
		if !grant.Allowed {
			why = append(why, "a member of none of allowed_organizations")
		}
	}
	// Teams cost a request each; skip what cannot change the outcome.
	for _, t := range g.admins {
		if ok, err := g.inTeam(ctx, tok, t, login); err != nil {
			return nil, err
		} else if ok {
			grant.Admin = true
			break
		}
	}
	if !grant.Allowed && !grant.Admin {
		for _, t := range g.teams {
			if ok, err := g.inTeam(ctx, tok, t, login); err != nil {
				return nil, err
			} else if ok {
				grant.Allowed = true
				break
			}
		}
		if !grant.Allowed && len(g.teams) > 0 {
			why = append(why, "a member of none of allowed_teams")
		}
	}
	admin, err := g.AuthorizeWith(name, grant)
	if err != nil {
		if len(why) > 0 && !strings.Contains(err.Error(), "blocked_users") {
			return nil, fmt.Errorf("%w: %q is not in allowed_users and is %s", auth.ErrNotAllowed, auth.Truncate(name, 32), strings.Join(why, ", "))
		}
		return nil, err
	}
	st := map[string]any{"access_token": tok.AccessToken, "token_type": tok.Type(), "github_user": gu}
	if s, ok := tok.Extra("scope").(string); ok {
		st["scope"] = s
	}
	return &auth.User{Name: name, Admin: admin, AuthState: st}, nil
}

// userOrgs lists the logins of the user's organizations, lower-cased.
func (g *GitHub) userOrgs(ctx context.Context, tok *oauth2.Token) ([]string, error) {
	var out []string
	for page := 1; page <= maxOrgPages; page++ {
		var orgs []struct {
			Login string `json:"login"`
		}
		if _, err := g.api(ctx, tok, fmt.Sprintf("/user/orgs?per_page=100&page=%d", page), &orgs); err != nil {
			return nil, err
		}
		for _, o := range orgs {
			out = append(out, strings.ToLower(o.Login))
		}
		if len(orgs) < 100 {
			break
		}
	}
	return out, nil
}

// inTeam reports an active membership of login in t.
func (g *GitHub) inTeam(ctx context.Context, tok *oauth2.Token, t team, login string) (bool, error) {
	var m struct {
		State string `json:"state"`
	}
	status, err := g.api(ctx, tok, "/orgs/"+url.PathEscape(t.org)+"/teams/"+url.PathEscape(t.slug)+
		"/memberships/"+url.PathEscape(login), &m)
	if status == http.StatusNotFound {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return m.State == "active", nil
}

// api GETs path from the API with the user's token and decodes the JSON.
// It returns the status; 404 is an error for the caller to interpret.
func (g *GitHub) api(ctx context.Context, tok *oauth2.Token, path string, v any) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, g.apiURL+path, nil)
	if err != nil {
		return 0, fmt.Errorf("github: building request: %w", err)
	}
	req.Header.Set("Accept", "application/vnd.github+json")
	req.Header.Set("X-GitHub-Api-Version", "2022-11-28")
	tok.SetAuthHeader(req)
	resp, err := g.client.Do(req)
	if err != nil {
		return 0, fmt.Errorf("%w: github api %s: %w", auth.ErrProviderUnavailable, stripQuery(path), err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return resp.StatusCode, fmt.Errorf("%w: github api %s: reading: %w", auth.ErrProviderUnavailable, stripQuery(path), err)
	}
	switch {
	case resp.StatusCode == http.StatusUnauthorized:
		return resp.StatusCode, fmt.Errorf("%w: github api %s: the token was refused", auth.ErrLoginExpired, stripQuery(path))
	case resp.StatusCode != http.StatusOK:
		return resp.StatusCode, fmt.Errorf("%w: github api %s: %s", auth.ErrProviderUnavailable, stripQuery(path), resp.Status)
	}
	if err := json.Unmarshal(body, v); err != nil {
		return resp.StatusCode, fmt.Errorf("%w: github api %s: decoding: %w", auth.ErrInvalidToken, stripQuery(path), err)
	}
	return resp.StatusCode, nil
}

func stripQuery(p string) string {
	p, _, _ = strings.Cut(p, "?")
	return p
}

// UnmarshalCaddyfile sets up the authenticator from Caddyfile tokens:
//
//	authenticator github {
//		client_id Iv1.0123456789abcdef
//		client_secret {env.GITHUB_CLIENT_SECRET}
//		allowed_organizations my-org
//		allowed_teams my-org:data-science
//		admin_teams my-org:hub-admins
//		github_url https://github.example.org
//		api_url https://github.example.org/api/v3
//		scopes user:email
//		auto_login
//		callback_url https://hub.example.org/hub/oauth_callback
//		timeout 10s
//	}
//
// plus every common option (auth.Options.UnmarshalOption).
func (g *GitHub) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // module name
	if d.NextArg() {
		return d.ArgErr()
	}
	for d.NextBlock(0) {
		if handled, err := g.UnmarshalOption(d); handled {
			if err != nil {
				return err
			}
			continue
		}
		opt := d.Val()
		switch opt {
		case "client_id", "client_secret", "github_url", "api_url", "callback_url", "timeout":
			if !d.NextArg() {
				return d.ArgErr()
			}
			v := d.Val()
			if d.NextArg() {
				return d.ArgErr()
			}
			switch opt {
			case "client_id":
				g.ClientID = v
			case "client_secret":
				g.ClientSecret = v
			case "github_url":
				g.GitHubURL = v
			case "api_url":
				g.APIURL = v
			case "callback_url":
				g.CallbackURL = v
			default:
				dur, err := caddy.ParseDuration(v)
				if err != nil {
					return d.Errf("timeout: %v", err)
				}
				g.Timeout = caddy.Duration(dur)
			}
		case "allowed_organizations", "allowed_teams", "admin_teams", "scopes":
			args := d.RemainingArgs()
			if len(args) == 0 {
				return d.Errf("%s needs at least one value", opt)
			}
			switch opt {
			case "allowed_organizations":
				g.AllowedOrganizations = append(g.AllowedOrganizations, args...)
			case "allowed_teams":
				g.AllowedTeams = append(g.AllowedTeams, args...)
			case "admin_teams":
				g.AdminTeams = append(g.AdminTeams, args...)
			default:
				g.Scopes = append(g.Scopes, args...)
			}
		case "auto_login":
			v, err := auth.ParseFlag(d)
			if err != nil {
				return err
			}
			g.AutoLoginFlag = v
		default:
			return d.Errf("unrecognized github authenticator option %q", opt)
		}
	}
	return nil
}

// Interface guards
var (
	_ caddy.Provisioner          = (*GitHub)(nil)
	_ caddyfile.Unmarshaler      = (*GitHub)(nil)
	_ auth.RedirectAuthenticator = (*GitHub)(nil)
)
