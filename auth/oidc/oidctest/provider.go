// Package oidctest runs a real OpenID provider in the test process: the
// OpenID-certified github.com/zitadel/oidc/v3 pkg/op, with the example
// storage of that module, extended with groups, adjustable token
// lifetimes, signing-key rotation, and switches that make it misbehave
// (tampered ID tokens). It serves discovery, authorize, token, userinfo,
// JWKS and end_session on 127.0.0.1, plus a small login form at
// /login/username. Tests of the oidc authenticator and the end-to-end
// suites use it; it is not part of the hub.
package oidctest

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	zoidc "github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
	"golang.org/x/text/language"

	"github.com/zitadel/oidc/v3/example/server/storage"
)

// User is a person known to the provider.
type User struct {
	Username string
	Password string
	Email    string
	Groups   []string
}

// Provider is a running OpenID provider.
type Provider struct {
	// Issuer is the provider's issuer URL, http://127.0.0.1:<port>.
	Issuer string

	srv      *http.Server
	ln       net.Listener
	st       *testStorage
	users    *userStore
	tamper   atomic.Bool
	ends     atomic.Int64
	tokens   atomic.Int64
	accessNS atomic.Int64 // access token lifetime in ns; 0: the storage's (5 min)
	idNS     atomic.Int64 // ID token lifetime in ns; 0: 1 hour
}

// Start starts a provider on addr (":0" style, "" for a free loopback
// port). It stops when the test ends.
func Start(t testing.TB, addr string) *Provider {
	t.Helper()
	p, err := Listen(addr)
	if err != nil {
		t.Fatalf("oidctest: %v", err)
	}
	t.Cleanup(p.Close)
	return p
}

// Listen is Start without a test: the caller calls Close.
func Listen(addr string) (*Provider, error) {
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listening: %w", err)
	}
	p := &Provider{Issuer: "http://" + ln.Addr().String(), ln: ln}
	p.users = &userStore{users: map[string]*storage.User{}, groups: map[string][]string{}}
	p.st = &testStorage{Storage: storage.NewStorageWithClients(p.users, map[string]*storage.Client{}), p: p,
		clients: map[string]*clientEntry{}}
	p.RotateKey()
	var key [32]byte
	_, _ = rand.Read(key[:])
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	prov, err := op.NewProvider(&op.Config{
		CryptoKey: key, DefaultLogoutRedirectURI: "/logged-out", CodeMethodS256: true,
		AuthMethodPost: true, GrantTypeRefreshToken: true, SupportedUILocales: []language.Tag{language.English},
	}, p.st, op.StaticIssuer(p.Issuer), op.WithAllowInsecure(), op.WithLogger(quiet))
	if err != nil {
		ln.Close()
		return nil, fmt.Errorf("creating the provider: %w", err)
	}
	interceptor := op.NewIssuerInterceptor(prov.IssuerFromRequest)
	callback := op.AuthCallbackURL(prov)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /login/username", func(w http.ResponseWriter, r *http.Request) {
		renderLogin(w, r.FormValue("authRequestID"), "")
	})
	mux.Handle("POST /login/username", interceptor.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.FormValue("id")
		if err := p.st.CheckUsernamePassword(r.FormValue("username"), r.FormValue("password"), id); err != nil {
			w.WriteHeader(http.StatusUnauthorized)
			renderLogin(w, id, err.Error())
			return
		}
		http.Redirect(w, r, callback(r.Context(), id), http.StatusFound)
	}))
	mux.HandleFunc("GET /logged-out", func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "signed out of the provider")
	})
	mux.Handle("/oauth/token", p.tokenMiddleware(prov))
	mux.Handle("/", prov)
	p.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = p.srv.Serve(ln) }()
	return p, nil
}

// Close stops the provider.
func (p *Provider) Close() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = p.srv.Shutdown(ctx)
}

var loginPage = template.Must(template.New("login").Parse(`<!doctype html>
<html><head><title>Test provider sign-in</title></head><body>
<h1>Test provider</h1>{{if .Error}}<p id="error">{{.Error}}</p>{{end}}
<form method="post" action="/login/username">
<input type="hidden" name="id" value="{{.ID}}">
<label>Username <input id="username" name="username"></label>
<label>Password <input id="password" name="password" type="password"></label>
<button id="submit" type="submit">Sign in</button>
</form></body></html>`))

func renderLogin(w http.ResponseWriter, id, msg string) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_ = loginPage.Execute(w, struct{ ID, Error string }{id, msg})
}

// AddClient registers a confidential web client (client_secret_basic or
// _post) with its callback URLs and post-logout URLs.
func (p *Provider) AddClient(id, secret string, redirectURIs, postLogoutURIs []string) {
	p.st.mu.Lock()
	defer p.st.mu.Unlock()
	p.st.clients[id] = &clientEntry{Client: storage.WebClient(id, secret, redirectURIs...), secret: secret,
		postLogout: postLogoutURIs, p: p}
}

// AddUser adds or replaces a user.
func (p *Provider) AddUser(u User) {
	p.users.mu.Lock()
	defer p.users.mu.Unlock()
	id := "id-" + u.Username
	p.users.users[id] = &storage.User{ID: id, Username: u.Username, Password: u.Password, Email: u.Email,
		EmailVerified: true, FirstName: u.Username, LastName: "Test", PreferredLanguage: language.English}
	p.users.groups[id] = append([]string(nil), u.Groups...)
}

// SetGroups changes a user's groups (they show at the next token or
// userinfo request).
func (p *Provider) SetGroups(username string, groups ...string) {
	p.users.mu.Lock()
	defer p.users.mu.Unlock()
	p.users.groups["id-"+username] = append([]string(nil), groups...)
}

// SetAccessTokenTTL sets the lifetime the token endpoint announces for
// access tokens (expires_in); 0 restores the default (5 minutes).
func (p *Provider) SetAccessTokenTTL(d time.Duration) { p.accessNS.Store(int64(d)) }

// SetIDTokenTTL sets the lifetime of ID tokens; a negative value issues
// tokens that have already expired. 0 restores the default (1 hour).
func (p *Provider) SetIDTokenTTL(d time.Duration) { p.idNS.Store(int64(d)) }

// TamperIDTokens makes the token endpoint alter the payload of every ID
// token it issues (preferred_username becomes "mallory") without signing
// it again, as an attacker between provider and hub would.
func (p *Provider) TamperIDTokens(on bool) { p.tamper.Store(on) }

// EndSessions is the number of sessions ended at end_session.
func (p *Provider) EndSessions() int64 { return p.ends.Load() }

// TokenRequests is the number of requests to the token endpoint.
func (p *Provider) TokenRequests() int64 { return p.tokens.Load() }

// RotateKey makes a new signing key (ES256) the current one; the old keys
// stay in the JWKS.
func (p *Provider) RotateKey() {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		panic(err) // crypto/rand does not fail
	}
	p.st.mu.Lock()
	defer p.st.mu.Unlock()
	id := base64.RawURLEncoding.EncodeToString(randomBytes(8))
	p.st.keys = append([]*signingKey{{id: id, key: k}}, p.st.keys...)
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return b
}

// tokenMiddleware counts token requests and tampers with ID tokens when
// asked to.
func (p *Provider) tokenMiddleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.tokens.Add(1)
		if !p.tamper.Load() {
			next.ServeHTTP(w, r)
			return
		}
		rec := &recorder{header: http.Header{}, status: http.StatusOK}
		next.ServeHTTP(rec, r)
		body := rec.body.Bytes()
		var m map[string]any
		if json.Unmarshal(body, &m) == nil {
			if id, ok := m["id_token"].(string); ok {
				m["id_token"] = tamper(id)
				body, _ = json.Marshal(m)
			}
		}
		for k, v := range rec.header {
			w.Header()[k] = v
		}
		w.Header().Del("Content-Length")
		w.WriteHeader(rec.status)
		_, _ = w.Write(body)
	})
}

func tamper(jwt string) string {
	parts := strings.Split(jwt, ".")
	if len(parts) != 3 {
		return jwt
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return jwt
	}
	var claims map[string]any
	if json.Unmarshal(raw, &claims) != nil {
		return jwt
	}
	claims["preferred_username"] = "mallory"
	raw, _ = json.Marshal(claims)
	parts[1] = base64.RawURLEncoding.EncodeToString(raw)
	return strings.Join(parts, ".")
}

type recorder struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (r *recorder) Header() http.Header         { return r.header }
func (r *recorder) Write(b []byte) (int, error) { return r.body.Write(b) }
func (r *recorder) WriteHeader(s int)           { r.status = s }

// NewBrowser returns an HTTP client with a cookie jar that follows
// redirects, as a browser would.
func NewBrowser() *http.Client {
	jar, _ := cookiejar.New(nil)
	return &http.Client{Jar: jar, Timeout: 30 * time.Second}
}

// Login follows start (a hub URL that leads to the provider: the hub's
// oauth_login) with browser, signs in on the provider's form as username,
// and follows the redirects back to the hub. It returns the last response
// (its body unread) — the hub's page after the login, or its error page.
func (p *Provider) Login(browser *http.Client, start, username, password string) (*http.Response, error) {
	resp, err := browser.Get(start)
	if err != nil {
		return nil, fmt.Errorf("following %s: %w", start, err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.HasPrefix(resp.Request.URL.String(), p.Issuer+"/login/username") {
		return nil, fmt.Errorf("expected the provider's login form, got %s %s: %.300s", resp.Status, resp.Request.URL, body)
	}
	id := resp.Request.URL.Query().Get("authRequestID")
	resp, err = browser.PostForm(p.Issuer+"/login/username", url.Values{"id": {id}, "username": {username}, "password": {password}})
	if err != nil {
		return nil, fmt.Errorf("signing in at the provider: %w", err)
	}
	return resp, nil
}

// ErrNotFound is returned for unknown users and clients.
var ErrNotFound = errors.New("not found")

// --- storage extensions ---

type userStore struct {
	mu     sync.Mutex
	users  map[string]*storage.User
	groups map[string][]string
}

func (u *userStore) GetUserByID(id string) *storage.User {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.users[id]
}

func (u *userStore) GetUserByUsername(name string) *storage.User {
	u.mu.Lock()
	defer u.mu.Unlock()
	for _, x := range u.users {
		if x.Username == name {
			return x
		}
	}
	return nil
}

func (u *userStore) ExampleClientID() string { return "service" }

func (u *userStore) groupsOf(id string) []string {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]string(nil), u.groups[id]...)
}

type signingKey struct {
	id  string
	key *ecdsa.PrivateKey
}

func (k *signingKey) SignatureAlgorithm() jose.SignatureAlgorithm { return jose.ES256 }
func (k *signingKey) Key() any                                    { return k.key }
func (k *signingKey) ID() string                                  { return k.id }

type publicKey struct{ k *signingKey }

func (k publicKey) ID() string                         { return k.k.id }
func (k publicKey) Algorithm() jose.SignatureAlgorithm { return jose.ES256 }
func (k publicKey) Use() string                        { return "sig" }
func (k publicKey) Key() any                           { return &k.k.key.PublicKey }

type clientEntry struct {
	*storage.Client
	secret     string
	postLogout []string
	p          *Provider
}

func (c *clientEntry) PostLogoutRedirectURIs() []string     { return c.postLogout }
func (c *clientEntry) IDTokenUserinfoClaimsAssertion() bool { return true }
func (c *clientEntry) IDTokenLifetime() time.Duration {
	if d := time.Duration(c.p.idNS.Load()); d != 0 {
		return d
	}
	return time.Hour
}

// testStorage is the example storage with our clients, keys, groups and
// token lifetimes.
type testStorage struct {
	*storage.Storage
	p *Provider

	mu      sync.Mutex
	clients map[string]*clientEntry
	keys    []*signingKey
}

func (s *testStorage) GetClientByClientID(_ context.Context, id string) (op.Client, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.clients[id]
	if !ok {
		return nil, fmt.Errorf("client %q: %w", id, ErrNotFound)
	}
	return c, nil
}

func (s *testStorage) AuthorizeClientIDSecret(_ context.Context, id, secret string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.clients[id]
	if !ok || c.secret != secret {
		return zoidc.ErrInvalidClient().WithDescription("wrong client id or secret")
	}
	return nil
}

func (s *testStorage) SigningKey(context.Context) (op.SigningKey, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.keys[0], nil
}

func (s *testStorage) SignatureAlgorithms(context.Context) ([]jose.SignatureAlgorithm, error) {
	return []jose.SignatureAlgorithm{jose.ES256}, nil
}

func (s *testStorage) KeySet(context.Context) ([]op.Key, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]op.Key, len(s.keys))
	for i, k := range s.keys {
		out[i] = publicKey{k}
	}
	return out, nil
}

func (s *testStorage) addGroups(ui *zoidc.UserInfo, subject string) {
	ui.AppendClaims("groups", s.p.users.groupsOf(subject))
}

func (s *testStorage) SetUserinfoFromRequest(ctx context.Context, ui *zoidc.UserInfo, req op.IDTokenRequest, scopes []string) error {
	if err := s.Storage.SetUserinfoFromRequest(ctx, ui, req, scopes); err != nil {
		return err
	}
	s.addGroups(ui, req.GetSubject())
	return nil
}

func (s *testStorage) SetUserinfoFromToken(ctx context.Context, ui *zoidc.UserInfo, tokenID, subject, origin string) error {
	if err := s.Storage.SetUserinfoFromToken(ctx, ui, tokenID, subject, origin); err != nil {
		return err
	}
	s.addGroups(ui, subject)
	return nil
}

func (s *testStorage) accessExpiry(exp time.Time) time.Time {
	if d := time.Duration(s.p.accessNS.Load()); d != 0 {
		return time.Now().Add(d)
	}
	return exp
}

func (s *testStorage) CreateAccessToken(ctx context.Context, req op.TokenRequest) (string, time.Time, error) {
	id, exp, err := s.Storage.CreateAccessToken(ctx, req)
	return id, s.accessExpiry(exp), err
}

func (s *testStorage) CreateAccessAndRefreshTokens(ctx context.Context, req op.TokenRequest, current string) (string, string, time.Time, error) {
	id, rt, exp, err := s.Storage.CreateAccessAndRefreshTokens(ctx, req, current)
	return id, rt, s.accessExpiry(exp), err
}

func (s *testStorage) TerminateSession(ctx context.Context, userID, clientID string) error {
	s.p.ends.Add(1)
	return s.Storage.TerminateSession(ctx, userID, clientID)
}
