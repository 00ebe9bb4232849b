package web

import (
	"context"
	"encoding/hex"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/caddyhub/caddyhub/auth"
	"github.com/caddyhub/caddyhub/auth/dummy"
	"github.com/caddyhub/caddyhub/caddymodule/routetable"
	"github.com/caddyhub/caddyhub/hubapp/servers"
	"github.com/caddyhub/caddyhub/hubapp/store"
)

// webTestPassword is the dummy authenticator's shared password in these tests.
const webTestPassword = "correct horse"

// webHub is a Hub built directly over a temporary store, with the dummy authenticator (shared
// password, admin_users root), served by an httptest server.
type webHub struct {
	h    *Hub
	srv  *httptest.Server
	logs *observer.ObservedLogs

	mu     sync.Mutex
	hashes []string // session hashes seen in jupyterhub-session-id cookies
}

func (wh *webHub) knownHashes() []string {
	wh.mu.Lock()
	defer wh.mu.Unlock()
	return slices.Clone(wh.hashes)
}

// ServeHTTP serves the hub and remembers the session hashes it hands out.
func (wh *webHub) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	wh.h.ServeHTTP(w, r)
	for _, line := range w.Header()["Set-Cookie"] {
		if c, err := http.ParseSetCookie(line); err == nil && c.Name == sessionIDCookie && c.Value != "" {
			wh.mu.Lock()
			wh.hashes = append(wh.hashes, c.Value)
			wh.mu.Unlock()
		}
	}
}

type webHubOption func(a *testApp)

func newWebHub(t *testing.T, tlsServer bool, opts ...webHubOption) *webHub {
	t.Helper()
	st, err := store.Open(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	t.Cleanup(cancel)
	d := &dummy.Dummy{Password: webTestPassword}
	d.AdminUsers = []string{"root"}
	if err := d.Provision(ctx); err != nil {
		t.Fatal(err)
	}
	core, logs := observer.New(zap.DebugLevel)
	a := &testApp{
		Config: Config{
			BaseURL:      "/",
			CookieSecret: hex.EncodeToString([]byte("0123456789abcdef0123456789abcdef")),
		},
		authenticator: d,
		spawner:       newFakeSpawner(),
		logger:        zap.New(core),
		ctx:           ctx,
	}
	for _, o := range opts {
		o(a)
	}
	a.shared = &reloadState{store: st, table: routetable.New(), runtime: servers.NewRuntime(), logger: a.logger}
	h, err := newHub(a)
	if err != nil {
		t.Fatal(err)
	}
	a.hub = h
	wh := &webHub{h: h, logs: logs}
	wh.srv = httptest.NewUnstartedServer(wh)
	if tlsServer {
		wh.srv.StartTLS()
	} else {
		wh.srv.Start()
	}
	t.Cleanup(wh.srv.Close)
	return wh
}

// client is a browser: a cookie jar, no redirects followed.
func (wh *webHub) client(t *testing.T) *http.Client {
	t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	c := new(http.Client)
	*c = *wh.srv.Client() // a copy: srv.Client() returns one shared client
	c.Jar = jar
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return c
}

type webResp struct {
	status int
	header http.Header
	body   string
	resp   *http.Response
}

func (wh *webHub) do(t *testing.T, c *http.Client, method, path string, form url.Values, hdr ...string) webResp {
	t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, wh.srv.URL+path, body)
	if err != nil {
		t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	req.Header.Set("User-Agent", "webtest")
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return webResp{status: resp.StatusCode, header: resp.Header, body: string(b), resp: resp}
}

var xsrfInputRE = regexp.MustCompile(`name="_xsrf" value="([^"]+)"`)

// xsrfOf returns the _xsrf token of a page.
func xsrfOf(t *testing.T, page string) string {
	t.Helper()
	m := xsrfInputRE.FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("no _xsrf input in page:\n%s", page)
	}
	return m[1]
}

// login logs c in as user through the login form and returns the login POST's response.
func (wh *webHub) login(t *testing.T, c *http.Client, user string, extra url.Values) webResp {
	t.Helper()
	page := wh.do(t, c, "GET", wh.h.prefix+"login", nil)
	if page.status != http.StatusOK {
		t.Fatalf("GET login: %d", page.status)
	}
	form := url.Values{"_xsrf": {xsrfOf(t, page.body)}, "username": {user}, "password": {webTestPassword}}
	for k, v := range extra {
		form[k] = v
	}
	return wh.do(t, c, "POST", wh.h.prefix+"login", form)
}

func (wh *webHub) mustLogin(t *testing.T, c *http.Client, user string) {
	t.Helper()
	if r := wh.login(t, c, user, nil); r.status != http.StatusFound {
		t.Fatalf("login %s: status %d, body %s", user, r.status, r.body)
	}
}

func cookieNamed(resp *http.Response, name string) *http.Cookie {
	for _, c := range resp.Cookies() {
		if c.Name == name {
			return c
		}
	}
	return nil
}

func (wh *webHub) setServer(t *testing.T, s *store.Server) {
	t.Helper()
	if err := wh.h.store.Update(func(tx *store.Txn) error { return tx.PutServer(s) }); err != nil {
		t.Fatal(err)
	}
}

func (wh *webHub) user(t *testing.T, name string) *store.User {
	t.Helper()
	u, err := wh.h.findUser(name)
	if err != nil {
		t.Fatalf("user %s: %v", name, err)
	}
	return u
}

var _ auth.FormAuthenticator = (*dummy.Dummy)(nil)
