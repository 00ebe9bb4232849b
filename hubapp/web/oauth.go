package web

// The OAuth 2 provider single-user servers and services log their visitors in with
// (docs/protocols.md, "OAuth provider"; JupyterHub's apihandlers/auth.py and oauth/provider.py): the
// authorization endpoint (a browser page: login cookie, consent when needed, a code) and the token
// endpoint (the server exchanges the code for an access token with its client secret).

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"html/template"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/caddyhub/caddyhub/hubapp/rbac"
	"github.com/caddyhub/caddyhub/hubapp/servers"
	"github.com/caddyhub/caddyhub/hubapp/store"
)

// oauthCodeLength is the length of codes: crypto/rand.Text's 26 base32 characters (128 bits;
// oauthlib's 30 letters and digits carry 178).
const oauthCodeLength = 26

// defaultOAuthTokenLifetime is oauth_token_expires_in when cookie_max_age is not set (14 days).
const defaultOAuthTokenLifetime = 14 * 24 * time.Hour

// oauthNow is the clock of the token endpoint (tests move it to expire codes).
var oauthNow = time.Now

// identifyRawScopes are the raw identify scopes every OAuth token gets (scopes.identify_scopes()).
var identifyRawScopes = []string{"read:users:groups!user", "read:users:name!user"}

// oauthClientAccess returns the access scopes of a client (scopes.access_scopes) and the resource
// and scope a user needs to be let through.
func oauthClientAccess(c *store.OAuthClient) (access []string, scope string, res rbac.Resource, ok bool) {
	switch {
	case c.User != "":
		s := servers.Key(c.User, c.ServerName)
		return []string{"access:servers!server=" + s}, "access:servers", rbac.Resource{Server: s}, true
	case c.Service != "":
		return []string{"access:services!service=" + c.Service}, "access:services", rbac.Resource{Service: c.Service}, true
	}
	return nil, "", rbac.Resource{}, false
}

func (c *authorizeRequest) client() rbac.Client {
	switch {
	case c.oc.User != "":
		return rbac.Client{Server: servers.Key(c.oc.User, c.oc.ServerName)}
	case c.oc.Service != "":
		return rbac.Client{Service: c.oc.Service}
	}
	return rbac.Client{}
}

// authorizeRequest is a validated authorization request.
type authorizeRequest struct {
	oc                  *store.OAuthClient
	redirectURI         string
	state               string
	codeChallenge       string
	codeChallengeMethod string
	requested           []string // raw scopes, required ones included, "identify" removed
	required            []string
}

// oauthFatal is an authorization error shown on the hub's page: the redirect URI cannot be trusted.
type oauthFatal struct {
	status int
	msg    string
}

// oauthRedirectError is an authorization error sent back to the client's redirect URI.
type oauthRedirectError struct {
	code, desc string
}

// parseAuthorize validates the query of an authorization request (oauthlib's order: client,
// redirect URI, response type, PKCE method, scopes).
func (h *Hub) parseAuthorize(q url.Values) (*authorizeRequest, *oauthFatal, *oauthRedirectError, error) {
	id := q.Get("client_id")
	if id == "" {
		return nil, &oauthFatal{http.StatusBadRequest, "Missing client_id parameter."}, nil, nil
	}
	var oc *store.OAuthClient
	err := h.store.View(func(tx *store.Txn) error {
		var err error
		oc, err = tx.OAuthClient(id)
		return err
	})
	if errors.Is(err, store.ErrNotFound) {
		return nil, &oauthFatal{http.StatusBadRequest, "Invalid client_id parameter value."}, nil, nil
	} else if err != nil {
		return nil, nil, nil, err
	}
	ar := &authorizeRequest{oc: oc, state: q.Get("state"), redirectURI: q.Get("redirect_uri")}
	if ar.redirectURI == "" {
		ar.redirectURI = oc.RedirectURI
	} else if ar.redirectURI != oc.RedirectURI {
		return nil, &oauthFatal{http.StatusBadRequest, "Mismatching redirect URI."}, nil, nil
	}
	if rt := q.Get("response_type"); rt == "" {
		return ar, nil, &oauthRedirectError{"invalid_request", "Missing response_type parameter."}, nil
	} else if rt != "code" {
		return ar, nil, &oauthRedirectError{"unsupported_response_type", ""}, nil
	}
	if ch := q.Get("code_challenge"); ch != "" {
		m := q.Get("code_challenge_method")
		if m == "" {
			m = "plain"
		}
		if m != "plain" && m != "S256" {
			return ar, nil, &oauthRedirectError{"invalid_request", "Transform algorithm not supported."}, nil
		}
		if len(ch) < 43 || len(ch) > 128 {
			return ar, nil, &oauthRedirectError{"invalid_request", "Code challenge must be 43 to 128 characters."}, nil
		}
		ar.codeChallenge, ar.codeChallengeMethod = ch, m
	} else if q.Get("code_challenge_method") != "" {
		return ar, nil, &oauthRedirectError{"invalid_request", "Code challenge required."}, nil
	}
	access, _, _, ok := oauthClientAccess(oc)
	if !ok {
		h.logger.Error("oauth client has no server or service", zap.String("client_id", oc.ID))
		return nil, &oauthFatal{http.StatusInternalServerError, "OAuth configuration error"}, nil, nil
	}
	ar.required = append(slices.Clone(identifyRawScopes), access...)
	var requested []string
	if s := strings.TrimSpace(q.Get("scope")); s != "" {
		requested = strings.Fields(s)
	} else {
		// No scope parameter (what singleuser sends): the client's default scopes.
		requested = slices.Clone(oc.Scopes)
	}
	requested = slices.DeleteFunc(requested, func(s string) bool { return s == "identify" })
	requested = append(requested, ar.required...)
	slices.Sort(requested)
	ar.requested = slices.Compact(requested)
	allowedByClient := append(slices.Clone(oc.Scopes), ar.required...)
	var disallowed []string
	for _, s := range ar.requested {
		if !slices.Contains(allowedByClient, s) {
			disallowed = append(disallowed, s)
		}
	}
	if len(disallowed) > 0 {
		return ar, nil, &oauthRedirectError{"invalid_scope", "Scope(s) not allowed for " + oc.ID + ": " + strings.Join(disallowed, ", ")}, nil
	}
	return ar, nil, nil, nil
}

// serveAuthorize is GET|POST /hub/api/oauth2/authorize.
func (h *Hub) serveAuthorize(w http.ResponseWriter, r *http.Request) {
	h.page(h.authorizePage)(w, r)
}

func (h *Hub) authorizePage(w http.ResponseWriter, r *http.Request, pr *pageRequest) {
	if pr.user == nil || pr.sess == nil {
		h.redirectToLogin(w, r)
		return
	}
	if r.Method == http.MethodPost {
		// The consent form posts back to this URL (query kept); JupyterHub ≥4 checks _xsrf.
		r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
		if err := r.ParseForm(); err != nil {
			h.renderError(w, r, pr, http.StatusBadRequest, "The form could not be read.")
			return
		}
		if err := h.checkXSRFFor(r, pr.sess, false); err != nil {
			h.renderError(w, r, pr, http.StatusForbidden, "Authorization form must be sent from the authorization page.")
			return
		}
	}
	ar, fatal, rerr, err := h.parseAuthorize(r.URL.Query())
	if err != nil {
		h.logger.Error("oauth authorize", zap.Error(err))
		h.renderError(w, r, pr, http.StatusInternalServerError, "The hub could not read its database. Try again in a moment.")
		return
	}
	if fatal != nil {
		h.renderError(w, r, pr, fatal.status, fatal.msg)
		return
	}
	if rerr != nil {
		h.logger.Info("oauth authorize refused", zap.String("client_id", ar.oc.ID), zap.String("error", rerr.code))
		h.redirectOAuthError(w, r, ar, rerr)
		return
	}
	// The user must be allowed to use the server or service behind the client.
	id := &Identity{User: pr.user, SessionHash: pr.sess.Hash}
	if err := h.resolveScopes(id); err != nil {
		h.logger.Error("resolving scopes", zap.String("user", pr.user.Name), zap.Error(err))
		h.renderError(w, r, pr, http.StatusInternalServerError, "The hub could not work out your permissions.")
		return
	}
	_, scope, res, _ := oauthClientAccess(ar.oc)
	owner := ar.oc.User
	if !id.Scopes.Allows(scope, res, h.groupsOfUser(owner)) {
		h.logger.Warn("oauth authorize: user not allowed", zap.String("user", pr.user.Name), zap.String("client_id", ar.oc.ID))
		h.renderError(w, r, pr, http.StatusForbidden, "You do not have permission to access "+ar.oc.Description+
			": "+pr.user.Name+" is not authorized to use it.")
		return
	}
	allowed := h.scopesHeldBy(ar, pr.user, id.Scopes)
	if r.Method == http.MethodPost {
		chosen := r.PostForm["scopes"]
		chosen = slices.DeleteFunc(slices.Clone(chosen), func(s string) bool { return s == "identify" })
		chosen = append(chosen, ar.required...)
		allowed = slices.DeleteFunc(allowed, func(s string) bool { return !slices.Contains(chosen, s) })
	} else if h.needsConsent(ar, pr.user, allowed) {
		h.renderConsent(w, r, pr, ar, allowed)
		return
	}
	code := rand.Text()
	err = h.store.Update(func(tx *store.Txn) error {
		return tx.CreateOAuthCode(code, &store.OAuthCode{
			ClientID:            ar.oc.ID,
			RedirectURI:         ar.redirectURI,
			User:                pr.user.Name,
			SessionHash:         pr.sess.Hash,
			Scopes:              allowed,
			CodeChallenge:       ar.codeChallenge,
			CodeChallengeMethod: ar.codeChallengeMethod,
		})
	})
	if err != nil {
		h.logger.Error("storing oauth code", zap.Error(err))
		h.renderError(w, r, pr, http.StatusInternalServerError, "The hub could not record the authorization. Try again in a moment.")
		return
	}
	if owner != "" && owner != pr.user.Name && pr.user.Admin {
		// admin_access: every time an admin opens another user's server, the log says so.
		h.logger.Info("admin opened another user's server", zap.String("admin", pr.user.Name),
			zap.String("user", owner), zap.String("server", ar.oc.ServerName), zap.Time("at", time.Now().UTC()))
	}
	v := url.Values{"code": {code}}
	if ar.state != "" {
		v.Set("state", ar.state)
	}
	http.Redirect(w, r, appendQuery(ar.redirectURI, v), http.StatusFound)
}

// groupsOfUser returns a user's groups for filter checks; none for an unknown user.
func (h *Hub) groupsOfUser(name string) []string {
	if name == "" {
		return nil
	}
	var groups []string
	_ = h.store.View(func(tx *store.Txn) error {
		u, err := tx.User(name)
		if err == nil {
			groups = u.Groups
		}
		return nil
	})
	return groups
}

// scopesHeldBy keeps the requested scopes the user holds (the required ones always: identify and
// access to the client, which was checked), as OAuthAuthorizeHandler does before issuing a code.
func (h *Hub) scopesHeldBy(ar *authorizeRequest, u *store.User, have rbac.Set) []string {
	var out []string
	for _, s := range ar.requested {
		if slices.Contains(ar.required, s) || s == rbac.ScopeInherit {
			out = append(out, s)
			continue
		}
		want, err := rbac.Builtin().ExpandFor([]string{s}, rbac.UserOwner(u.Name), ar.client())
		if err != nil || want.IsEmpty() {
			continue
		}
		if rbac.Intersect(want, have, h.groupLookup()).Equal(want) {
			out = append(out, s)
		}
	}
	return out
}

// needsConsent: not for the user's own servers, services with oauth_no_confirm, or a client the user
// already gave these scopes (needs_oauth_confirm).
func (h *Hub) needsConsent(ar *authorizeRequest, u *store.User, scopes []string) bool {
	if ar.oc.User != "" && ar.oc.User == u.Name {
		return false
	}
	if ar.oc.Service != "" {
		if s := h.cfg.service(ar.oc.Service); s != nil && s.OAuthNoConfirm {
			return false
		}
	}
	var granted []string
	_ = h.store.View(func(tx *store.Txn) error {
		toks, err := tx.OwnerTokens(store.OwnerUser(u.Name), time.Now())
		for _, t := range toks {
			if t.OAuthClient == ar.oc.ID {
				granted = append(granted, t.Scopes...)
			}
		}
		return err
	})
	if len(granted) == 0 {
		return true
	}
	for _, s := range scopes {
		if !slices.Contains(granted, s) {
			return true
		}
	}
	return false
}

var consentTemplate = template.Must(template.New("consent").Parse(`<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Authorize access</title></head>
<body><main>
<h1>Authorize access</h1>
<p>{{.Client}} would like permission to identify you{{if .Scopes}} and to:{{else}}.{{end}}</p>
{{if .Scopes}}<ul>{{range .Scopes}}<li>{{.Description}}{{if .Filter}} ({{.Filter}}){{end}}</li>{{end}}</ul>{{end}}
<p>It will not be able to take actions on your behalf beyond these.</p>
<form method="post" action="{{.Action}}">
<input type="hidden" name="_xsrf" value="{{.XSRF}}">
{{range .Raw}}<input type="hidden" name="scopes" value="{{.}}">{{end}}
<button type="submit">Authorize</button>
</form>
<p>Signed in as {{.User}}. <a href="{{.Home}}">Cancel</a></p>
</main></body></html>
`))

// renderConsent shows the consent page (JupyterHub's oauth.html), whose form posts back here.
func (h *Hub) renderConsent(w http.ResponseWriter, r *http.Request, pr *pageRequest, ar *authorizeRequest, allowed []string) {
	describe := slices.DeleteFunc(slices.Clone(allowed), func(s string) bool { return slices.Contains(ar.required, s) })
	data := map[string]any{
		"Client": ar.oc.Description,
		"Scopes": rbac.Builtin().Describe(describe, pr.user.Name),
		"Raw":    allowed,
		"Action": r.URL.RequestURI(),
		"XSRF":   h.pageXSRF(w, r, pr.sess),
		"User":   pr.user.Name,
		"Home":   h.prefix + "home",
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(http.StatusOK)
	if err := consentTemplate.Execute(w, data); err != nil {
		h.logger.Error("rendering consent page", zap.Error(err))
	}
}

// redirectOAuthError sends an error back to the client's (verified) redirect URI.
func (h *Hub) redirectOAuthError(w http.ResponseWriter, r *http.Request, ar *authorizeRequest, e *oauthRedirectError) {
	v := url.Values{"error": {e.code}}
	if e.desc != "" {
		v.Set("error_description", e.desc)
	}
	if ar.state != "" {
		v.Set("state", ar.state)
	}
	http.Redirect(w, r, appendQuery(ar.redirectURI, v), http.StatusFound)
}

func appendQuery(u string, v url.Values) string {
	sep := "?"
	if strings.Contains(u, "?") {
		sep = "&"
	}
	return u + sep + v.Encode()
}

// tokenError answers the token endpoint with RFC 6749 §5.2's JSON.
func tokenError(w http.ResponseWriter, status int, code, desc string) {
	body := map[string]string{"error": code}
	if desc != "" {
		body["error_description"] = desc
	}
	if status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Basic realm="jupyterhub"`)
	}
	writeJSON(w, status, body)
}

// verifyPKCE checks a code_verifier against the stored challenge (RFC 7636).
func verifyPKCE(challenge, method, verifier string) bool {
	if len(verifier) < 43 || len(verifier) > 128 {
		return false
	}
	want := verifier
	if method == "S256" {
		sum := sha256.Sum256([]byte(verifier))
		want = base64.RawURLEncoding.EncodeToString(sum[:])
	}
	return constantTimeEqual(want, challenge)
}

// serveToken is POST /hub/api/oauth2/token: grant_type authorization_code only, client credentials
// in the form or with HTTP Basic auth. The access token is bound to the login session of the code.
func (h *Hub) serveToken(w http.ResponseWriter, r *http.Request) {
	h.apiHeaders(w)
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Pragma", "no-cache")
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	if err := r.ParseForm(); err != nil {
		tokenError(w, http.StatusBadRequest, "invalid_request", "The request body could not be read.")
		return
	}
	f := r.PostForm
	clientID, secret, basic := r.BasicAuth()
	if basic {
		// RFC 6749 §2.3.1: Basic credentials are form-urlencoded.
		if v, err := url.QueryUnescape(clientID); err == nil {
			clientID = v
		}
		if v, err := url.QueryUnescape(secret); err == nil {
			secret = v
		}
	} else {
		clientID, secret = f.Get("client_id"), f.Get("client_secret")
	}
	switch gt := f.Get("grant_type"); {
	case gt == "":
		tokenError(w, http.StatusBadRequest, "invalid_request", "Request is missing grant type.")
		return
	case gt != "authorization_code":
		tokenError(w, http.StatusBadRequest, "unsupported_grant_type", "")
		return
	}
	if clientID == "" || secret == "" {
		tokenError(w, http.StatusUnauthorized, "invalid_client", "")
		return
	}
	var oc *store.OAuthClient
	err := h.store.View(func(tx *store.Txn) error {
		var err error
		oc, err = tx.OAuthClient(clientID)
		return err
	})
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		h.logger.Error("oauth token: reading client", zap.Error(err))
		tokenError(w, http.StatusInternalServerError, "server_error", "")
		return
	}
	if oc == nil || !constantTimeEqual(store.Hash(secret), oc.SecretHash) {
		h.logger.Info("oauth token: client authentication failed", zap.String("client_id", clientID))
		tokenError(w, http.StatusUnauthorized, "invalid_client", "")
		return
	}
	code := f.Get("code")
	if code == "" {
		tokenError(w, http.StatusBadRequest, "invalid_request", "Missing code parameter.")
		return
	}
	now := oauthNow()
	lifetime := time.Duration(h.cfg.CookieMaxAge)
	if lifetime <= 0 {
		lifetime = defaultOAuthTokenLifetime
	}
	access := store.NewToken()
	var grantErr string
	var tok *store.Token
	err = h.store.Update(func(tx *store.Txn) error {
		grantErr, tok = "", nil
		c, err := tx.ConsumeOAuthCode(code, now)
		if errors.Is(err, store.ErrNotFound) {
			grantErr = "the code is invalid, expired or already used"
			return nil
		} else if err != nil {
			return err
		}
		switch ru := f.Get("redirect_uri"); {
		case c.ClientID != oc.ID:
			grantErr = "the code was issued to another client"
		case ru != c.RedirectURI && !(ru == "" && c.RedirectURI == oc.RedirectURI):
			grantErr = "Mismatching redirect URI."
		case c.CodeChallenge != "" && !verifyPKCE(c.CodeChallenge, c.CodeChallengeMethod, f.Get("code_verifier")):
			grantErr = "PKCE verification failed."
		}
		if grantErr != "" {
			return nil // the code stays consumed: a code presented wrongly is burnt
		}
		if _, err := tx.Session(c.SessionHash, now); errors.Is(err, store.ErrNotFound) {
			grantErr = "the login session of the code has ended"
			return nil
		} else if err != nil {
			return err
		}
		tok = &store.Token{
			User:        c.User,
			Kind:        "oauth",
			Scopes:      c.Scopes,
			SessionHash: c.SessionHash,
			OAuthClient: oc.ID,
			ExpiresAt:   now.Add(lifetime).UTC(),
		}
		return tx.CreateToken(tok, access)
	})
	if err != nil {
		h.logger.Error("oauth token: issuing token", zap.Error(err))
		tokenError(w, http.StatusInternalServerError, "server_error", "")
		return
	}
	if grantErr != "" {
		h.logger.Info("oauth token: grant refused", zap.String("client_id", oc.ID), zap.String("reason", grantErr))
		tokenError(w, http.StatusBadRequest, "invalid_grant", grantErr)
		return
	}
	h.logger.Debug("oauth token issued", zap.String("client_id", oc.ID), zap.String("user", tok.User), zap.String("token_id", tok.ID))
	writeJSON(w, http.StatusOK, map[string]any{
		"access_token": access,
		"token_type":   "Bearer",
		"expires_in":   int64(lifetime / time.Second),
		"scope":        strings.Join(tok.Scopes, " "),
	})
}
