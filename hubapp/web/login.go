package web

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/caddyhub/caddyhub/auth"
	"github.com/caddyhub/caddyhub/hubapp/store"
)

const (
	// loginTimeout bounds one call to the authenticator (PAM can hang on a dead directory server).
	loginTimeout = 30 * time.Second
	// maxLoginBody bounds the login form; a username is at most 255 bytes anyway.
	maxLoginBody = 64 << 10

	msgInvalidLogin = "Invalid username or password"
	msgXSRFLogin    = "Login form invalid or expired. Try again."
)

// Failed-login throttle: at most loginFailLimit failures per loginFailWindow for one username from
// one client address; then 429 until the window ends. Successful logins do not count. The key is
// the pair, not the address alone: behind a proxy that Caddy does not trust (trusted_proxies),
// every visitor has the proxy's address, and a per-address limit would let one person lock
// everybody out; nor the name alone, which would let anybody lock a known user out.
const (
	loginFailLimit  = 10
	loginFailWindow = 5 * time.Minute
	throttleMax     = 50000 // keys tracked; when full, expired entries go, then all
)

// throttleKey is the throttle's key for a login attempt.
func throttleKey(ip, username string) string {
	if n, err := auth.NormalizeUsername(username); err == nil {
		username = n
	}
	return ip + "\x00" + auth.Truncate(username, 64)
}

type loginThrottle struct {
	mu sync.Mutex
	m  map[string]*failCount
}

type failCount struct {
	n     int
	start time.Time
}

// blocked returns how long the address must wait, or 0.
func (t *loginThrottle) blocked(ip string, now time.Time) time.Duration {
	t.mu.Lock()
	defer t.mu.Unlock()
	f := t.m[ip]
	if f == nil || now.Sub(f.start) >= loginFailWindow {
		return 0
	}
	if f.n >= loginFailLimit {
		return loginFailWindow - now.Sub(f.start)
	}
	return 0
}

func (t *loginThrottle) fail(ip string, now time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.m == nil {
		t.m = make(map[string]*failCount)
	}
	f := t.m[ip]
	if f == nil || now.Sub(f.start) >= loginFailWindow {
		if len(t.m) >= throttleMax {
			for k, v := range t.m {
				if now.Sub(v.start) >= loginFailWindow {
					delete(t.m, k)
				}
			}
			if len(t.m) >= throttleMax {
				t.m = make(map[string]*failCount)
			}
		}
		f = &failCount{start: now}
		t.m[ip] = f
	}
	f.n++
}

// loginData is the login template's data.
type loginData struct {
	Username string
	Next     string
	Error    string
	// FormLogin is false when the authenticator cannot check a password (redirect authenticators).
	FormLogin bool
	// LoginService and LoginURL make the "Sign in with <LoginService>" button of a redirect
	// authenticator; Unavailable replaces it when sign-in cannot work now.
	LoginService string
	LoginURL     string
	Unavailable  string
}

// serveLoginForm is GET /hub/login: a logged-in user goes on to next (and gets fresh cookies, as
// in JupyterHub); others get the form.
func (h *Hub) serveLoginForm(w http.ResponseWriter, r *http.Request, pr *pageRequest) {
	if pr.user != nil {
		h.setSessionIDCookie(w, r, pr.sess)
		http.Redirect(w, r, h.nextURL(r, pr.user), http.StatusFound)
		return
	}
	if ra := h.redirectAuthn(); ra != nil && ra.AutoLogin() && ra.Unavailable(r.Context()) == "" {
		q := url.Values{}
		if next := h.safeNext(r, r.URL.Query().Get("next")); next != "" {
			q.Set("next", next)
		}
		http.Redirect(w, r, h.prefix+"oauth_login?"+q.Encode(), http.StatusFound)
		return
	}
	h.renderLogin(w, r, pr, http.StatusOK, r.URL.Query().Get("username"), "")
}

func (h *Hub) renderLogin(w http.ResponseWriter, r *http.Request, pr *pageRequest, status int, username, msg string) {
	_, form := h.authn.(auth.FormAuthenticator)
	ra := h.redirectAuthn()
	if !form && ra == nil && msg == "" {
		msg = "This hub's authenticator does not use a password form."
	}
	data := loginData{
		Username:  auth.Truncate(username, 255),
		Next:      h.safeNext(r, r.FormValue("next")),
		Error:     msg,
		FormLogin: form,
	}
	if ra != nil {
		data.LoginService = ra.LoginService()
		data.Unavailable = ra.Unavailable(r.Context())
		q := url.Values{}
		if data.Next != "" {
			q.Set("next", data.Next)
		}
		data.LoginURL = h.prefix + "oauth_login"
		if len(q) > 0 {
			data.LoginURL += "?" + q.Encode()
		}
	}
	h.render(w, r, pr, status, "login", "Sign in", data)
}

// serveLogin is POST /hub/login: check the XSRF token, the throttle and the credentials, record
// the user (admin granted when the authenticator says so, as JupyterHub's admin_users: login never
// removes admin), start a new session and redirect (nextURL).
func (h *Hub) serveLogin(w http.ResponseWriter, r *http.Request, pr *pageRequest) {
	r.Body = http.MaxBytesReader(w, r.Body, maxLoginBody)
	if err := r.ParseForm(); err != nil {
		h.renderError(w, r, pr, http.StatusBadRequest, "The login form could not be read.")
		return
	}
	ip := clientIP(r)
	now := time.Now()
	// The username is stripped (JupyterHub strips it, never the password).
	username := strings.TrimSpace(r.PostForm.Get("username"))
	password := r.PostForm.Get("password")
	tkey := throttleKey(ip, username)
	if wait := h.web.throttle.blocked(tkey, now); wait > 0 {
		w.Header().Set("Retry-After", fmt.Sprint(int(wait.Seconds())+1))
		h.logger.Info("login throttled", zap.String("username", auth.Truncate(username, 32)), zap.String("remote_ip", ip))
		h.renderLogin(w, r, pr, http.StatusTooManyRequests, username, "Too many failed logins. Try again in a few minutes.")
		return
	}
	if err := h.checkXSRFFor(r, pr.sess, true); err != nil {
		h.logger.Info("login refused: bad xsrf token", zap.String("remote_ip", ip), zap.Error(err))
		h.renderLogin(w, r, pr, http.StatusForbidden, username, msgXSRFLogin)
		return
	}
	fa, ok := h.authn.(auth.FormAuthenticator)
	if !ok {
		h.renderLogin(w, r, pr, http.StatusForbidden, username, "")
		return
	}
	if _, err := auth.NormalizeUsername(username); err != nil {
		h.web.throttle.fail(tkey, now)
		h.logger.Info("login failed", zap.String("username", auth.Truncate(username, 32)), zap.String("remote_ip", ip), zap.String("reason", "invalid username"))
		h.renderLogin(w, r, pr, http.StatusForbidden, username, loginErrorText(err))
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), loginTimeout)
	defer cancel()
	start := time.Now()
	au, err := fa.Authenticate(ctx, username, password)
	if err != nil {
		switch {
		case errors.Is(err, auth.ErrInvalidCredentials), errors.Is(err, auth.ErrNotAllowed), errors.Is(err, auth.ErrInvalidUsername):
			h.web.throttle.fail(tkey, now)
			h.logger.Info("login failed", zap.String("username", auth.Truncate(username, 32)), zap.String("remote_ip", ip), zap.Error(err))
			h.renderLogin(w, r, pr, http.StatusForbidden, username, loginErrorText(err))
		default:
			h.logger.Error("authenticator failed", zap.String("username", auth.Truncate(username, 32)), zap.Duration("duration", time.Since(start)), zap.Error(err))
			h.renderLogin(w, r, pr, http.StatusInternalServerError, username, "Login failed because of a problem on the server. Try again later or contact the hub's administrator.")
		}
		return
	}
	user, ok := h.finishLogin(w, r, pr, au)
	if !ok {
		return
	}
	h.logger.Info("user logged in", zap.String("user", user.Name), zap.String("remote_ip", ip), zap.Bool("admin", user.Admin))
	http.Redirect(w, r, h.nextURL(r, user), http.StatusFound)
}

// finishLogin records a successful login of au (loginUser) and starts its session, for the login
// form and the redirect (SSO) callback alike. It answers the request itself when that fails (a full
// disk, a system account that could not be made, a store error) and then returns ok false.
func (h *Hub) finishLogin(w http.ResponseWriter, r *http.Request, pr *pageRequest, au *auth.User) (user *store.User, ok bool) {
	user, err := h.loginUser(r.Context(), au)
	var sysErr *systemUserError
	switch {
	case errors.Is(err, store.ErrDiskFull):
		h.renderError(w, r, pr, http.StatusServiceUnavailable, diskFullMessage)
		return nil, false
	case errors.As(err, &sysErr):
		// create_system_users: no account, so no hub user and no login (logged by ensureSystemUser).
		h.renderError(w, r, pr, http.StatusInternalServerError, "The hub could not create the system account for "+au.Name+
			", so you cannot log in yet. Tell the hub's administrator: "+sysErr.err.Error())
		return nil, false
	case err != nil:
		h.logger.Error("recording login", zap.String("user", au.Name), zap.Error(err))
		h.renderError(w, r, pr, http.StatusInternalServerError, "The hub could not record your login. Try again in a moment.")
		return nil, false
	}
	sess, err := h.createSession(w, r, user)
	switch {
	case errors.Is(err, store.ErrDiskFull):
		h.renderError(w, r, pr, http.StatusServiceUnavailable, diskFullMessage)
		return nil, false
	case err != nil:
		h.logger.Error("starting session", zap.String("user", user.Name), zap.Error(err))
		h.renderError(w, r, pr, http.StatusInternalServerError, "The hub could not record your login. Try again in a moment.")
		return nil, false
	}
	pr.sess, pr.user = sess, user
	return user, true
}

// loginErrorText is what the form says about a failed login. Wrong name and wrong password are
// not told apart; a name that cannot be a username says why (auth.NormalizeUsername's words).
func loginErrorText(err error) string {
	if errors.Is(err, auth.ErrInvalidUsername) {
		msg := err.Error()
		if i := strings.Index(msg, auth.ErrInvalidUsername.Error()); i >= 0 {
			msg = msg[i:]
		}
		return strings.ToUpper(msg[:1]) + msg[1:] + "."
	}
	return msgInvalidLogin
}

// loginUser ensures the user record of a successful login and grants admin when the authenticator
// says so (JupyterHub 3.0: is_admin returns True or None, so login never revokes admin). With
// create_system_users the system account is made sure of first (a *systemUserError when that
// fails, and then no user record is created). It stores the login's auth_state (encrypted; only
// when the authenticator returned one and enable_auth_state is on) and, with manage_groups, the
// user's groups.
func (h *Hub) loginUser(ctx context.Context, au *auth.User) (*store.User, error) {
	if err := h.ensureSystemUser(ctx, au.Name); err != nil {
		return nil, err
	}
	var u *store.User
	err := h.store.Update(func(tx *store.Txn) error {
		var err error
		u, err = tx.User(au.Name)
		created := false
		if errors.Is(err, store.ErrNotFound) {
			u = &store.User{Name: au.Name, Admin: au.Admin}
			created = true
		} else if err != nil {
			return err
		}
		changed := false
		if au.Admin && !u.Admin {
			u.Admin = true
			changed = true
		}
		if au.AuthState != nil && h.deps.Crypter != nil {
			if err := h.setAuthState(u, au.AuthState); err != nil {
				return err
			}
			changed = true
		}
		switch {
		case created:
			if err := tx.CreateUser(u); err != nil {
				return err
			}
			h.logger.Info("user created", zap.String("user", au.Name), zap.Bool("admin", au.Admin))
		case changed:
			if err := tx.PutUser(u); err != nil {
				return err
			}
		}
		if h.manageGroups() {
			if err := syncGroups(tx, u.Name, au.Groups); err != nil {
				return fmt.Errorf("syncing the groups of %s: %w", u.Name, err)
			}
			u, err = tx.User(au.Name)
			return err
		}
		return nil
	})
	return u, err
}

// serveLogout is GET and POST /hub/logout: revoke this session (and its OAuth tokens), clear the
// cookies and go to the login page. POST ?all=1 logs the user out everywhere: every session of the
// user, in every browser, and the OAuth tokens issued under them. POSTs need the XSRF token; the
// GET stays for JupyterHub's links (a forged logout is a nuisance, not a breach).
func (h *Hub) serveLogout(w http.ResponseWriter, r *http.Request, pr *pageRequest) {
	if r.Method == http.MethodPost {
		if err := h.checkXSRFFor(r, pr.sess, false); err != nil {
			h.renderError(w, r, pr, http.StatusForbidden, "The form was invalid or expired. Go back, reload the page and try again.")
			return
		}
	}
	target := h.prefix + "login"
	if pr.user != nil {
		target = h.logoutTarget(r, pr) // before the session ends: it may need the auth_state
	}
	if pr.sess != nil {
		all := r.Method == http.MethodPost && (r.FormValue("all") == "1" || r.FormValue("all") == "true")
		var err error
		if all {
			err = h.logoutEverywhere(pr.user.Name)
		} else {
			err = h.deleteSession(pr.sess)
		}
		if err != nil {
			h.logger.Error("logging out", zap.String("user", pr.user.Name), zap.Error(err))
			h.renderError(w, r, pr, http.StatusInternalServerError, "The hub could not log you out. Try again in a moment.")
			return
		}
		h.logger.Info("user logged out", zap.String("user", pr.user.Name), zap.Bool("everywhere", all))
	}
	h.clearLoginCookies(w, r)
	http.Redirect(w, r, target, http.StatusFound)
}
