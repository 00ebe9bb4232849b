package web

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"time"

	"go.uber.org/zap"

	"github.com/caddyhub/caddyhub/auth"
)

// Redirect logins (auth.RedirectAuthenticator: OpenID Connect, GitHub). The login page links to
// <base>hub/oauth_login?next=…, which sends the browser to the provider; the provider sends it
// back to <base>hub/oauth_callback, where the user is recorded exactly as after a form login.

// redirectAuthn returns the authenticator as a redirect authenticator, or nil.
func (h *Hub) redirectAuthn() auth.RedirectAuthenticator {
	ra, _ := h.authn.(auth.RedirectAuthenticator)
	return ra
}

// registerRedirectLogin mounts oauth_login and oauth_callback when the authenticator needs them.
func (h *Hub) registerRedirectLogin(mux *http.ServeMux) {
	if h.redirectAuthn() == nil {
		return
	}
	mux.HandleFunc("GET "+h.prefix+"oauth_login", h.page(h.serveOAuthLogin))
	mux.HandleFunc("GET "+h.prefix+"oauth_callback", h.page(h.serveOAuthCallback))
}

// redirectContext is what the authenticator needs to know about the hub for request r.
func (h *Hub) redirectContext(r *http.Request, next string) auth.RedirectContext {
	origin := h.hubOrigin()
	if origin == "" {
		scheme := "http"
		if requestIsTLS(r) {
			scheme = "https"
		}
		origin = scheme + "://" + r.Host
	}
	return auth.RedirectContext{
		CallbackURL: origin + h.prefix + "oauth_callback",
		CookiePath:  h.prefix,
		Secure:      requestIsTLS(r),
		Next:        next,
	}
}

// loginPageURL is the absolute URL of the login page (the default after the provider's logout).
func (h *Hub) loginPageURL(r *http.Request) string {
	rc := h.redirectContext(r, "")
	u, err := url.Parse(rc.CallbackURL)
	if err != nil {
		return h.prefix + "login"
	}
	u.Path = h.prefix + "login"
	return u.String()
}

// serveOAuthLogin is GET <base>hub/oauth_login: start a redirect login.
func (h *Hub) serveOAuthLogin(w http.ResponseWriter, r *http.Request, pr *pageRequest) {
	ra := h.redirectAuthn()
	next := h.safeNext(r, r.URL.Query().Get("next"))
	target, err := ra.BeginLogin(w, r, h.redirectContext(r, next))
	if err != nil {
		h.redirectLoginFailed(w, r, pr, err)
		return
	}
	http.Redirect(w, r, target, http.StatusFound)
}

// serveOAuthCallback is GET <base>hub/oauth_callback: finish a redirect login.
func (h *Hub) serveOAuthCallback(w http.ResponseWriter, r *http.Request, pr *pageRequest) {
	ra := h.redirectAuthn()
	ctx, cancel := context.WithTimeout(r.Context(), loginTimeout)
	defer cancel()
	r = r.WithContext(ctx)
	start := time.Now()
	au, next, err := ra.Callback(w, r, h.redirectContext(r, ""))
	if err != nil {
		h.logger.Info("redirect login failed", zap.String("remote_ip", clientIP(r)),
			zap.Duration("duration", time.Since(start)), zap.Error(err))
		h.redirectLoginFailed(w, r, pr, err)
		return
	}
	user, ok := h.finishLogin(w, r, pr, au)
	if !ok {
		return
	}
	h.logger.Info("user logged in", zap.String("user", user.Name), zap.String("remote_ip", clientIP(r)),
		zap.Bool("admin", user.Admin), zap.String("via", ra.LoginService()))
	target := h.safeNext(r, next)
	if target == "" {
		target = h.defaultURL(user)
	}
	http.Redirect(w, r, target, http.StatusFound)
}

// redirectLoginFailed shows what a person can do about a failed redirect login; the cause is in
// the log. The sentinels are auth's (docs/sso.md lists them).
func (h *Hub) redirectLoginFailed(w http.ResponseWriter, r *http.Request, pr *pageRequest, err error) {
	again, service := h.prefix+"login", h.redirectAuthn().LoginService()
	switch {
	case errors.Is(err, auth.ErrNotAllowed):
		h.renderErrorLink(w, r, pr, http.StatusForbidden, "Your account is not allowed on this hub. "+
			"If you think it should be, ask the hub's administrator.", again, "Back to sign-in")
	case errors.Is(err, auth.ErrInvalidUsername):
		h.renderErrorLink(w, r, pr, http.StatusForbidden, loginErrorText(err), again, "Back to sign-in")
	case errors.Is(err, auth.ErrLoginExpired):
		h.renderErrorLink(w, r, pr, http.StatusBadRequest, "Your sign-in expired or was already used. Sign in again.", again, "Sign in again")
	case errors.Is(err, auth.ErrInvalidToken):
		h.renderErrorLink(w, r, pr, http.StatusForbidden, "The identity provider's answer could not be verified, so you were not signed in. "+
			"Try again; if it keeps happening, tell the hub's administrator.", again, "Back to sign-in")
	case errors.Is(err, auth.ErrProviderUnavailable):
		h.logger.Warn("identity provider unavailable", zap.String("service", service), zap.Error(err))
		h.renderErrorLink(w, r, pr, http.StatusServiceUnavailable, "Sign-in with "+service+" is unavailable right now: "+
			"the hub cannot reach the identity provider. Try again in a few minutes.", again, "Back to sign-in")
	case errors.Is(err, auth.ErrProviderRefused):
		h.logger.Error("the identity provider refused the hub: check the authenticator's client_id and client_secret",
			zap.String("service", service), zap.Error(err))
		h.renderErrorLink(w, r, pr, http.StatusBadGateway, "The identity provider refused the hub's credentials, so nobody can sign in with "+
			service+" right now. Tell the hub's administrator.", again, "Back to sign-in")
	default:
		h.logger.Error("redirect login failed", zap.String("service", service), zap.Error(err))
		h.renderErrorLink(w, r, pr, http.StatusInternalServerError, "Sign-in failed because of a problem on the server. "+
			"Try again later or tell the hub's administrator.", again, "Back to sign-in")
	}
}

// logoutTarget is where the browser goes after the hub's logout: the provider's end-session URL
// when the authenticator has one, else the hub's login page.
func (h *Hub) logoutTarget(r *http.Request, pr *pageRequest) string {
	lr, ok := h.authn.(auth.LogoutRedirecter)
	if !ok {
		return h.prefix + "login"
	}
	var au *auth.User
	if pr.user != nil {
		au = h.authUser(pr.user)
	}
	if u := lr.LogoutURL(r.Context(), au, h.loginPageURL(r)); u != "" {
		return u
	}
	return h.prefix + "login"
}

// startAuthenticator starts the authenticator's background work (OpenID discovery) for the life
// of the config.
func (h *Hub) startAuthenticator() {
	if s, ok := h.authn.(auth.Starter); ok {
		s.Start(h.deps.Ctx)
	}
}
