package tests

// End to end: automatic HTTPS against a real ACME server (Pebble, `go tool pebble`), with a tiny
// DNS server that answers 127.0.0.1 for every name, so Pebble really validates our caddy's
// challenges on its HTTP and HTTPS ports. Cases: the hub's public name gets a certificate; login,
// spawn and the user's server over TLS; HTTP → HTTPS; issuance failure logged at Error level;
// Caddy's internal CA and manual certificates; subdomain_host with on-demand certificates for
// existing users only (and no ACME order for others), cookies and OAuth across origins; renewal of
// a short-lived certificate without a restart and without dropping an open websocket.

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/miekg/dns"
)

// tlsHubName is the hub's public name in these tests; every name resolves to 127.0.0.1 (our DNS
// server for Pebble, a custom dialer for the client). .test is reserved (RFC 2606) yet qualifies
// for a public certificate in certmagic's eyes.
const tlsHubName = "hub.example.test"

var (
	pebbleOnce sync.Once
	pebblePath string
	pebbleDir  string // the pebble module's directory (its test certificates)
	pebbleErr  error

	echoOnce sync.Once
	echoPath string
	echoErr  error
)

// pebbleBinary returns the path of Pebble (the tool in go.mod), built once into Go's cache.
func pebbleBinary(t *testing.T) (bin, moduleDir string) {
	t.Helper()
	pebbleOnce.Do(func() {
		goBin, err := exec.LookPath("go")
		if err != nil {
			pebbleErr = err
			return
		}
		out, err := exec.Command(goBin, "tool", "-n", "pebble").Output()
		if err != nil {
			pebbleErr = fmt.Errorf("go tool -n pebble: %w", err)
			return
		}
		pebblePath = strings.TrimSpace(string(out))
		out, err = exec.Command(goBin, "list", "-m", "-f", "{{.Dir}}", "github.com/letsencrypt/pebble/v2").Output()
		if err != nil {
			pebbleErr = fmt.Errorf("locating the pebble module: %w", err)
			return
		}
		pebbleDir = strings.TrimSpace(string(out))
	})
	if pebbleErr != nil {
		if RequireE2E() {
			t.Fatalf("pebble: %v", pebbleErr)
		}
		t.Skipf("pebble not available: %v", pebbleErr)
	}
	return pebblePath, pebbleDir
}

// echoServer builds tests/testdata/tls/echoserver once per test process.
func echoServer(t *testing.T) string {
	t.Helper()
	echoOnce.Do(func() {
		dir, err := os.MkdirTemp("", "caddyhub-tls-echo-")
		if err != nil {
			echoErr = err
			return
		}
		echoPath = filepath.Join(dir, "echoserver")
		if out, err := exec.Command("go", "build", "-o", echoPath, "./testdata/tls/echoserver").CombinedOutput(); err != nil {
			echoErr = fmt.Errorf("building echoserver: %w\n%s", err, out)
		}
	})
	if echoErr != nil {
		t.Fatal(echoErr)
	}
	return echoPath
}

// startDNS serves A 127.0.0.1 for every name (and no other records) on a free port, over UDP
// and TCP (Pebble's resolver uses TCP).
func startDNS(t *testing.T) string {
	t.Helper()
	handler := dns.HandlerFunc(func(w dns.ResponseWriter, q *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(q)
		for _, qq := range q.Question {
			if qq.Qtype == dns.TypeA {
				m.Answer = append(m.Answer, &dns.A{
					Hdr: dns.RR_Header{Name: qq.Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 0},
					A:   net.IPv4(127, 0, 0, 1),
				})
			}
		}
		_ = w.WriteMsg(m)
	})
	var ln net.Listener
	var pc net.PacketConn
	for attempt := 0; ; attempt++ {
		var err error
		if ln, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
			t.Fatal(err)
		}
		if pc, err = net.ListenPacket("udp", ln.Addr().String()); err == nil {
			break
		}
		ln.Close()
		if attempt == 10 {
			t.Fatalf("no port free for DNS over both TCP and UDP: %v", err)
		}
	}
	tcp := &dns.Server{Listener: ln, Handler: handler}
	udp := &dns.Server{PacketConn: pc, Handler: handler}
	go func() { _ = tcp.ActivateAndServe() }()
	go func() { _ = udp.ActivateAndServe() }()
	t.Cleanup(func() { _ = tcp.Shutdown(); _ = udp.Shutdown() })
	return ln.Addr().String()
}

// pebbleCA is one running Pebble.
type pebbleCA struct {
	DirURL   string // ACME directory
	Mgmt     string // management address host:port
	MiniCA   string // path of the CA that signed Pebble's own HTTPS certificate
	log      *syncBuffer
	mgmtHTTP *http.Client
}

// startPebble runs Pebble validating challenges against our caddy's HTTP and HTTPS ports, issuing
// certificates valid for validity (0: Pebble's default), refusing names in blocked.
func startPebble(t *testing.T, httpPort, tlsPort int, validity time.Duration, blocked ...string) *pebbleCA {
	t.Helper()
	bin, mod := pebbleBinary(t)
	dir := t.TempDir()
	listen, mgmt := FreePort(t), FreePort(t)
	period := uint64(7776000)
	if validity > 0 {
		period = uint64(validity / time.Second)
	}
	if blocked == nil {
		blocked = []string{}
	}
	cfg := map[string]any{"pebble": map[string]any{
		"listenAddress":                  fmt.Sprintf("127.0.0.1:%d", listen),
		"managementListenAddress":        fmt.Sprintf("127.0.0.1:%d", mgmt),
		"certificate":                    filepath.Join(mod, "test/certs/localhost/cert.pem"),
		"privateKey":                     filepath.Join(mod, "test/certs/localhost/key.pem"),
		"httpPort":                       httpPort,
		"tlsPort":                        tlsPort,
		"ocspResponderURL":               "",
		"externalAccountBindingRequired": false,
		"domainBlocklist":                blocked,
		"retryAfter":                     map[string]int{"authz": 1, "order": 1},
		"keyAlgorithm":                   "ecdsa",
		"profiles": map[string]any{
			"default": map[string]any{"description": "test", "validityPeriod": period},
		},
	}}
	b, _ := json.Marshal(cfg)
	cfgPath := filepath.Join(dir, "pebble.json")
	if err := os.WriteFile(cfgPath, b, 0o600); err != nil {
		t.Fatal(err)
	}
	p := &pebbleCA{
		DirURL: fmt.Sprintf("https://127.0.0.1:%d/dir", listen),
		Mgmt:   fmt.Sprintf("127.0.0.1:%d", mgmt),
		MiniCA: filepath.Join(mod, "test/certs/pebble.minica.pem"),
		log:    &syncBuffer{},
	}
	cmd := exec.Command(bin, "-config", cfgPath, "-dnsserver", startDNS(t))
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "PEBBLE_VA_NOSLEEP=1", "PEBBLE_WFE_NONCEREJECT=0", "PEBBLE_AUTHZREUSE=0")
	cmd.Stdout, cmd.Stderr = p.log, p.log
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting pebble: %v", err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-done
		if t.Failed() {
			t.Logf("pebble log:\n%s", p.log.String())
		}
	})
	pool := x509.NewCertPool()
	minica, err := os.ReadFile(p.MiniCA)
	if err != nil || !pool.AppendCertsFromPEM(minica) {
		t.Fatalf("reading pebble's minica: %v", err)
	}
	p.mgmtHTTP = &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		Proxy: nil, TLSClientConfig: &tls.Config{RootCAs: pool}}}
	// Pebble's first start on a fresh machine competes with the other test packages for the CPU:
	// give it two minutes to listen; it exiting early still ends the wait at once.
	deadline := time.Now().Add(2 * time.Minute)
	for {
		resp, err := p.mgmtHTTP.Get(p.DirURL)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		select {
		case <-done:
			t.Fatalf("pebble exited:\n%s", p.log.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("pebble not ready: %v\n%s", err, p.log.String())
		}
		time.Sleep(50 * time.Millisecond) // poll interval
	}
	return p
}

// Roots returns a pool with Pebble's issuing root (it is generated afresh at every start).
func (p *pebbleCA) Roots(t *testing.T) *x509.CertPool {
	t.Helper()
	resp, err := p.mgmtHTTP.Get("https://" + p.Mgmt + "/roots/0")
	if err != nil {
		t.Fatalf("pebble roots: %v", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		t.Fatalf("pebble root: not PEM: %.200s", b)
	}
	return pool
}

var pebbleOrdersRE = regexp.MustCompile(`There are now (\d+) orders in the db`)

// Orders is how many orders Pebble has accepted so far.
func (p *pebbleCA) Orders() int {
	m := pebbleOrdersRE.FindAllStringSubmatch(p.log.String(), -1)
	if m == nil {
		return 0
	}
	n, _ := strconv.Atoi(m[len(m)-1][1])
	return n
}

// tlsTransport dials every name at 127.0.0.1 (same port) and trusts roots.
func tlsTransport(roots *x509.CertPool) *http.Transport {
	d := &net.Dialer{Timeout: 10 * time.Second}
	return &http.Transport{
		Proxy:             nil,
		DisableKeepAlives: true,
		TLSClientConfig:   &tls.Config{RootCAs: roots},
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			_, port, err := net.SplitHostPort(addr)
			if err != nil {
				return nil, err
			}
			return d.DialContext(ctx, network, net.JoinHostPort("127.0.0.1", port))
		},
	}
}

// handshake connects to name on 127.0.0.1:port with SNI name and returns the leaf certificate.
func handshake(roots *x509.CertPool, name string, port int) (*x509.Certificate, error) {
	d := &net.Dialer{Timeout: 10 * time.Second}
	conn, err := tls.DialWithDialer(d, "tcp", fmt.Sprintf("127.0.0.1:%d", port), &tls.Config{ServerName: name, RootCAs: roots})
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	return conn.ConnectionState().PeerCertificates[0], nil
}

// waitCert polls handshakes until name has a certificate trusted by roots.
func waitCert(t *testing.T, roots *x509.CertPool, name string, port int, timeout time.Duration) *x509.Certificate {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		c, err := handshake(roots, name, port)
		if err == nil {
			return c
		}
		if time.Now().After(deadline) {
			t.Fatalf("no trusted certificate for %s within %s: %v", name, timeout, err)
		}
		time.Sleep(200 * time.Millisecond) // poll interval
	}
}

// setCookieRecorder records every Set-Cookie the server sends, with the host that sent it.
type setCookieRecorder struct {
	rt  http.RoundTripper
	mu  sync.Mutex
	all []string // "host: Set-Cookie value"
}

func (s *setCookieRecorder) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := s.rt.RoundTrip(r)
	if err == nil {
		s.mu.Lock()
		for _, c := range resp.Header.Values("Set-Cookie") {
			s.all = append(s.all, r.URL.Host+": "+c)
		}
		s.mu.Unlock()
	}
	return resp, err
}

func (s *setCookieRecorder) cookies() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.all...)
}

// tlsHub is a caddy running the hub with automatic HTTPS.
type tlsHub struct {
	t          *testing.T
	dir        string
	httpPort   int
	httpsPort  int
	hubAPI     int
	inst       *Instance
	roots      *x509.CertPool
	subdomain  bool
	setCookies *setCookieRecorder
}

const tlsPassword = "tls-e2e-pass"

// tlsHubCaddyfile returns the Caddyfile: global options (ACME CA, ports), the jupyterhub app with
// the dummy authenticator and the echo server, and the site block(s) in sites.
func (h *tlsHub) caddyfile(globalTLS, sites string) string {
	sub := ""
	if h.subdomain {
		sub = fmt.Sprintf("subdomain_host https://%s:%d", tlsHubName, h.httpsPort)
	}
	return fmt.Sprintf(`{
	default_bind 127.0.0.1
	http_port %d
	https_port %d
	grace_period 1s
	skip_install_trust
	ocsp_stapling off
	%s
	jupyterhub {
		data_dir %s/data
		proxy_api 127.0.0.1:%d
		hub_api 127.0.0.1:%d
		cookie_secret_file %s/cookie_secret
		%s
		authenticator dummy {
			password %s
		}
		spawner simple {
			cmd %s
			http_timeout 30s
		}
	}
}

%s
`, h.httpPort, h.httpsPort, globalTLS, h.dir, FreePort(h.t), h.hubAPI, h.dir, sub, tlsPassword, echoServer(h.t), sites)
}

func newTLSHub(t *testing.T, subdomain bool) *tlsHub {
	return &tlsHub{t: t, dir: t.TempDir(), httpPort: FreePort(t), httpsPort: FreePort(t), hubAPI: FreePort(t), subdomain: subdomain}
}

// acmeGlobal is the global options that point caddy at pebble.
func acmeGlobal(p *pebbleCA, extra string) string {
	return fmt.Sprintf("acme_ca %s\n\tacme_ca_root %s\n\t%s", p.DirURL, p.MiniCA, extra)
}

func (h *tlsHub) start(cfg string) {
	h.inst = Start(h.t, h.dir, cfg)
	h.t.Cleanup(h.killServers)
}

// killServers ends the echo servers this hub spawned (they outlive caddy by design), by PID.
func (h *tlsHub) killServers() {
	entries, _ := os.ReadDir("/proc")
	api := []byte("JUPYTERHUB_API_URL=http://127.0.0.1:" + strconv.Itoa(h.hubAPI) + "/hub/api\x00")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		env, err := os.ReadFile(filepath.Join("/proc", e.Name(), "environ"))
		if err == nil && bytes.Contains(env, api) {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
}

// hubURL is https://hub.example.test:<https port><path>.
func (h *tlsHub) hubURL(path string) string {
	return fmt.Sprintf("https://%s:%d%s", tlsHubName, h.httpsPort, path)
}

// userURL is the user's server URL: on its own origin under subdomain_host.
func (h *tlsHub) userURL(label, user, rest string) string {
	if h.subdomain {
		return fmt.Sprintf("https://%s.%s:%d/user/%s/%s", label, tlsHubName, h.httpsPort, user, rest)
	}
	return h.hubURL("/user/" + user + "/" + rest)
}

// browser returns a hubBrowser on the hub's HTTPS origin whose transport resolves every name to
// 127.0.0.1, trusts h.roots and records Set-Cookie headers.
func (h *tlsHub) browser() *hubBrowser {
	b := newHubBrowser(h.t, h.hubURL(""))
	h.setCookies = &setCookieRecorder{rt: tlsTransport(h.roots)}
	b.c.Transport = h.setCookies
	return b
}

// spawn logs user in and starts the default server, waiting until it is ready.
func (h *tlsHub) spawn(b *hubBrowser, user string) {
	h.t.Helper()
	b.login(user, tlsPassword)
	resp, body := b.do("GET", "/hub/spawn", nil, nil) // starts it: no options form
	if resp.StatusCode >= 500 {
		h.t.Fatalf("spawn %s: %d %v %.500s", user, resp.StatusCode, b.visits, body)
	}
	_, home := b.do("GET", "/hub/home", nil, nil)
	xsrf := hubFormXSRF(h.t, home)
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, stream := b.do("GET", "/hub/api/users/"+user+"/server/progress?_xsrf="+url.QueryEscape(xsrf), nil, nil)
		if resp.StatusCode == http.StatusOK && strings.Contains(stream, `"ready":true`) {
			return
		}
		if strings.Contains(stream, `"failed":true`) || time.Now().After(deadline) {
			h.t.Fatalf("spawn %s: %d %s\ncaddy log:\n%s", user, resp.StatusCode, stream, h.inst.Log())
		}
		time.Sleep(200 * time.Millisecond) // poll interval
	}
}

// echoReport is the echo server's JSON report.
type echoReport struct {
	User        string            `json:"user"`
	Host        string            `json:"host"`
	Path        string            `json:"path"`
	Forwarded   map[string]string `json:"forwarded"`
	CookieNames []string          `json:"cookie_names"`
	Visitor     string            `json:"visitor"`
	Env         map[string]string `json:"env"`
}

func (h *tlsHub) report(b *hubBrowser, u string) echoReport {
	h.t.Helper()
	resp, body := b.do("GET", u, nil, nil)
	var rep echoReport
	if resp.StatusCode != http.StatusOK || json.Unmarshal([]byte(body), &rep) != nil {
		h.t.Fatalf("GET %s: %d %v %.400s", u, resp.StatusCode, b.visits, body)
	}
	return rep
}

// wsEcho opens a websocket to u (https URL) through the edge.
func (h *tlsHub) wsDial(b *hubBrowser, u string) *websocket.Conn {
	h.t.Helper()
	d := websocket.Dialer{
		NetDialContext:   tlsTransport(nil).DialContext,
		TLSClientConfig:  &tls.Config{RootCAs: h.roots},
		Jar:              b.jar,
		HandshakeTimeout: 10 * time.Second,
	}
	c, resp, err := d.Dial("wss"+strings.TrimPrefix(u, "https"), nil)
	if err != nil {
		status := 0
		if resp != nil {
			status = resp.StatusCode
		}
		h.t.Fatalf("websocket %s: %v (status %d)", u, err, status)
	}
	h.t.Cleanup(func() { c.Close() })
	return c
}

func wsRoundTrip(t *testing.T, c *websocket.Conn, msg string) {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	_ = c.SetWriteDeadline(time.Now().Add(10 * time.Second))
	if err := c.WriteMessage(websocket.TextMessage, []byte(msg)); err != nil {
		t.Fatalf("websocket write: %v", err)
	}
	_, got, err := c.ReadMessage()
	if err != nil || string(got) != msg {
		t.Fatalf("websocket echo: %q, %v; want %q", got, err, msg)
	}
}

// checkHubCookies fails if any cookie the hub set is visible beyond the host that set it (a
// Domain attribute) or, under TLS, lacks Secure, or if the hub's login cookie was ever set by a
// response from a user's origin.
func (h *tlsHub) checkHubCookies() {
	h.t.Helper()
	hubHost := fmt.Sprintf("%s:%d", tlsHubName, h.httpsPort)
	for _, sc := range h.setCookies.cookies() {
		host, c, _ := strings.Cut(sc, ": ")
		name, _, _ := strings.Cut(c, "=")
		if !strings.HasPrefix(name, "jupyterhub-") && name != "_xsrf" {
			continue
		}
		lc := strings.ToLower(c)
		if host != hubHost {
			h.t.Errorf("hub cookie %s set by a response from %s (a user's origin): %s", name, host, c)
		}
		if strings.Contains(lc, "domain=") {
			h.t.Errorf("hub cookie with a Domain attribute would reach users' origins: %s", c)
		}
		if !strings.Contains(lc, "; secure") && !strings.Contains(lc, "max-age=0") && !strings.Contains(lc, "max-age=-1") {
			h.t.Errorf("hub cookie over HTTPS without Secure: %s", c)
		}
	}
}

// TestTLSPublicHost: `hub.example.test { jupyterhub }` and an ACME CA, nothing else.
func TestTLSPublicHost(t *testing.T) {
	h := newTLSHub(t, false)
	p := startPebble(t, h.httpPort, h.httpsPort, 0, "blocked.example.test")
	h.start(h.caddyfile(acmeGlobal(p, ""), tlsHubName+` {
	jupyterhub
}

blocked.example.test {
	respond "never served"
}
`))
	h.roots = p.Roots(t)
	leaf := waitCert(t, h.roots, tlsHubName, h.httpsPort, 60*time.Second)
	if err := leaf.VerifyHostname(tlsHubName); err != nil {
		t.Fatalf("certificate: %v", err)
	}

	// HTTP → HTTPS, keeping path and query.
	plain := Client()
	plain.Transport = tlsTransport(nil)
	resp, err := plain.Get(fmt.Sprintf("http://%s:%d/hub/login?next=%%2Fhub%%2Fhome", tlsHubName, h.httpPort))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	// Caddy leaves a non-standard https_port out of the redirect (it assumes port forwarding
	// from 443), so the Location names the standard port.
	if loc := resp.Header.Get("Location"); resp.StatusCode != http.StatusPermanentRedirect || loc != "https://"+tlsHubName+"/hub/login?next=%2Fhub%2Fhome" {
		t.Errorf("HTTP → HTTPS: %d %q", resp.StatusCode, loc)
	}

	// Log in over HTTPS, spawn, reach the server over TLS.
	b := h.browser()
	resp, _ = b.do("GET", "/hub/login", nil, nil)
	if got := resp.Header.Get("Strict-Transport-Security"); !strings.Contains(got, "max-age=") {
		t.Errorf("hub page over HTTPS without HSTS: %q", got)
	}
	for _, hd := range []string{"Content-Security-Policy", "X-Content-Type-Options", "Referrer-Policy"} {
		if resp.Header.Get(hd) == "" {
			t.Errorf("hub page without %s", hd)
		}
	}
	h.spawn(b, "alice")
	rep := h.report(b, h.userURL("alice", "alice", "report"))
	if rep.User != "alice" || rep.Forwarded["X-Forwarded-Proto"] != "https" {
		t.Errorf("user server saw %+v; want user alice and X-Forwarded-Proto https", rep)
	}
	for _, c := range rep.CookieNames {
		if c == "jupyterhub-hub-login" {
			t.Errorf("the hub's login cookie reached the user's server")
		}
	}
	ws := h.wsDial(b, h.userURL("alice", "alice", "ws"))
	wsRoundTrip(t, ws, "hello over wss")
	h.checkHubCookies()

	// The certificate events reached the hub; the failure is logged at Error level.
	deadline := time.Now().Add(60 * time.Second)
	for !strings.Contains(h.inst.Log(), `"certificate issuance failed"`) {
		if time.Now().After(deadline) {
			t.Fatalf("no error logged for blocked.example.test")
		}
		time.Sleep(200 * time.Millisecond) // poll interval
	}
	var sawObtained, sawFailed bool
	for _, line := range strings.Split(h.inst.Log(), "\n") {
		if strings.Contains(line, `"certificate obtained"`) && strings.Contains(line, tlsHubName) {
			sawObtained = true
		}
		if strings.Contains(line, `"certificate issuance failed"`) && strings.Contains(line, "blocked.example.test") &&
			strings.Contains(line, `"level":"error"`) {
			sawFailed = true
		}
	}
	if !sawObtained || !sawFailed {
		t.Errorf("log: certificate obtained for %s: %v; issuance failure at error level: %v", tlsHubName, sawObtained, sawFailed)
	}

	// The certificate state is exported: the expiry of the hub's certificate (read from Caddy's
	// storage) and the time of the last failure, on Caddy's metrics endpoint.
	resp, err = Client().Get("http://" + h.inst.Admin() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	wantExpiry := fmt.Sprintf(`caddyhub_certificate_expiry_timestamp_seconds{name="%s"} %s`, tlsHubName,
		strconv.FormatFloat(float64(leaf.NotAfter.Unix()), 'g', -1, 64))
	if !strings.Contains(string(metrics), wantExpiry) ||
		!strings.Contains(string(metrics), `caddyhub_certificate_last_error_timestamp_seconds{name="blocked.example.test"}`) {
		t.Errorf("metrics lack the certificate gauges (want %q):\n%s", wantExpiry, grepLines(string(metrics), "caddyhub_certificate"))
	}
}

// grepLines returns the lines of s that contain sub.
func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// selfSigned writes a certificate and key for names into dir and returns their paths and a pool.
func selfSigned(t *testing.T, dir string, names ...string) (certPath, keyPath string, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: names[0]},
		DNSNames:     names,
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IsCA:         true, BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, _ := x509.MarshalECPrivateKey(key)
	certPath, keyPath = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyPath, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600); err != nil {
		t.Fatal(err)
	}
	c, _ := x509.ParseCertificate(der)
	pool = x509.NewCertPool()
	pool.AddCert(c)
	return certPath, keyPath, pool
}

// TestTLSManualAndInternal: `tls cert key` and `tls internal` serve the hub the same way.
func TestTLSManualAndInternal(t *testing.T) {
	for _, mode := range []string{"manual", "internal"} {
		t.Run(mode, func(t *testing.T) {
			h := newTLSHub(t, false)
			directive := "tls internal"
			var pool *x509.CertPool
			if mode == "manual" {
				cert, key, p := selfSigned(t, h.dir, tlsHubName)
				directive, pool = "tls "+cert+" "+key, p
			}
			h.start(h.caddyfile("", fmt.Sprintf("%s {\n\t%s\n\tjupyterhub\n}\n", tlsHubName, directive)))
			if mode == "internal" {
				root, err := os.ReadFile(filepath.Join(h.dir, ".data", "caddy", "pki", "authorities", "local", "root.crt"))
				if err != nil {
					t.Fatalf("caddy's local CA root: %v", err)
				}
				pool = x509.NewCertPool()
				pool.AppendCertsFromPEM(root)
			}
			h.roots = pool
			waitCert(t, h.roots, tlsHubName, h.httpsPort, 30*time.Second)
			b := h.browser()
			h.spawn(b, "alice")
			rep := h.report(b, h.userURL("alice", "alice", "report"))
			if rep.Forwarded["X-Forwarded-Proto"] != "https" {
				t.Errorf("X-Forwarded-Proto %q, want https", rep.Forwarded["X-Forwarded-Proto"])
			}
			h.checkHubCookies()
		})
	}
}

// TestTLSSubdomains: subdomain_host with on-demand certificates allowed by tls.permission.jupyterhub.
func TestTLSSubdomains(t *testing.T) {
	h := newTLSHub(t, true)
	p := startPebble(t, h.httpPort, h.httpsPort, 0)
	config := func(rate int) string {
		return h.caddyfile(acmeGlobal(p, fmt.Sprintf(`on_demand_tls {
		permission jupyterhub {
			rate_limit %d 1m
		}
	}`, rate)), fmt.Sprintf(`%[1]s, *.%[1]s {
	tls {
		on_demand
	}
	jupyterhub
}
`, tlsHubName))
	}
	h.start(config(10))
	h.roots = p.Roots(t)
	waitCert(t, h.roots, tlsHubName, h.httpsPort, 60*time.Second)

	// A name of no user: the handshake fails and no ACME order is placed.
	before := p.Orders()
	if _, err := handshake(h.roots, "mallory."+tlsHubName, h.httpsPort); err == nil {
		t.Errorf("handshake for a user who does not exist succeeded")
	}
	if _, err := handshake(h.roots, "a.b.c."+tlsHubName, h.httpsPort); err == nil {
		t.Errorf("handshake for a deeper name succeeded")
	}
	if got := p.Orders(); got != before {
		t.Errorf("ACME orders went from %d to %d for names that must be refused", before, got)
	}

	// Two users, each on their own origin with their own certificate.
	alice := h.browser()
	aliceCookies := h.setCookies
	bob := h.browser()
	h.spawn(alice, "alice")
	h.spawn(bob, "bob")
	for _, u := range []string{"alice", "bob"} {
		c := waitCert(t, h.roots, u+"."+tlsHubName, h.httpsPort, 60*time.Second)
		if err := c.VerifyHostname(u + "." + tlsHubName); err != nil || c.VerifyHostname(tlsHubName) == nil {
			t.Errorf("%s's certificate names %v", u, c.DNSNames)
		}
	}

	// Alice reaches her server on her origin, through the hub's OAuth across origins.
	resp, body := alice.do("GET", h.userURL("alice", "alice", "login"), nil, nil)
	chain := strings.Join(alice.visits, "\n")
	var rep echoReport
	if resp.StatusCode != http.StatusOK || json.Unmarshal([]byte(body), &rep) != nil || rep.Visitor != "alice" {
		t.Fatalf("OAuth login on alice's origin: %d\n%s\n%.400s", resp.StatusCode, chain, body)
	}
	// (visits on the hub's origin are listed without it)
	if !strings.Contains(chain, "\nGET /hub/api/oauth2/authorize?") ||
		!strings.Contains(chain, fmt.Sprintf("GET https://alice.%s:%d/user/alice/oauth_callback?code=", tlsHubName, h.httpsPort)) {
		t.Errorf("OAuth flow did not cross origins:\n%s", chain)
	}
	if rep.Env["JUPYTERHUB_HOST"] != h.hubURL("") || !strings.HasPrefix(rep.Env["JUPYTERHUB_OAUTH_CALLBACK_URL"], h.userURL("alice", "alice", "")) {
		t.Errorf("server environment: %v", rep.Env)
	}
	rep = h.report(alice, h.userURL("alice", "alice", "report"))
	if rep.Host != fmt.Sprintf("alice.%s:%d", tlsHubName, h.httpsPort) || rep.Forwarded["X-Forwarded-Proto"] != "https" {
		t.Errorf("alice's server saw host %q proto %q", rep.Host, rep.Forwarded["X-Forwarded-Proto"])
	}
	for _, c := range rep.CookieNames {
		if strings.HasPrefix(c, "jupyterhub-") {
			t.Errorf("hub cookie %s reached alice's origin", c)
		}
	}

	// Host routing: alice's server is at her origin only; the hub's origin sends her there.
	for _, u := range []string{h.hubURL("/user/alice/report"), h.userURL("bob", "alice", "report")} {
		rep = h.report(alice, u)
		if rep.Host != fmt.Sprintf("alice.%s:%d", tlsHubName, h.httpsPort) {
			t.Errorf("%s was served there (host %q), not sent to alice's origin; visits %v", u, rep.Host, alice.visits)
		}
	}

	// Cookies of one origin are not sent to another: alice's server cookie never reaches bob's
	// origin, the hub's cookies never reach either.
	aliceJar := alice.jar
	hubU, _ := url.Parse(h.hubURL("/hub/"))
	if len(aliceJar.Cookies(hubU)) == 0 {
		t.Fatal("no hub cookies in alice's jar")
	}
	for _, u := range []string{h.userURL("alice", "alice", ""), h.userURL("bob", "bob", ""), h.userURL("alice", "alice", "hub/")} {
		pu, _ := url.Parse(u)
		for _, c := range aliceJar.Cookies(pu) {
			if strings.HasPrefix(c.Name, "jupyterhub-") || (strings.Contains(u, "bob") && c.Name == "echo-session") {
				t.Errorf("cookie %s would be sent to %s", c.Name, u)
			}
		}
	}
	// The echo server on bob's origin sees no cookie of alice's even with her jar.
	rep = h.report(alice, h.userURL("bob", "bob", "report"))
	if len(rep.CookieNames) != 0 || rep.Visitor != "" {
		t.Errorf("bob's origin received alice's cookies %v (visitor %q)", rep.CookieNames, rep.Visitor)
	}

	// The hub does not serve on a user's origin: /hub/login there goes to the hub's origin, so
	// its login cookie can never be set on (nor sent to) a user's origin.
	plain := &http.Client{Transport: tlsTransport(h.roots), Timeout: 10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := plain.Get(fmt.Sprintf("https://alice.%s:%d/hub/login", tlsHubName, h.httpsPort))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if loc := resp.Header.Get("Location"); !strings.HasPrefix(loc, h.hubURL("/hub/login")) || len(resp.Header.Values("Set-Cookie")) != 0 {
		t.Errorf("/hub/login on alice's origin: %d Location %q Set-Cookie %v", resp.StatusCode, loc, resp.Header.Values("Set-Cookie"))
	}
	h.setCookies = aliceCookies
	h.checkHubCookies()

	// next= across origins: a user's origin under subdomain_host is a valid place to return to
	// after login; another domain is not.
	for _, tc := range []struct {
		next     string
		wantHost string
	}{
		{h.userURL("alice", "alice", "report"), fmt.Sprintf("alice.%s:%d", tlsHubName, h.httpsPort)},
		{"https://evil.example.test/", ""}, // refused: the default (her running server)
	} {
		nb := h.browser()
		_, page := nb.do("GET", "/hub/login?next="+url.QueryEscape(tc.next), nil, nil)
		resp, _ := nb.do("POST", "/hub/login", url.Values{"username": {"alice"}, "password": {tlsPassword},
			"_xsrf": {hubFormXSRF(t, page)}, "next": {tc.next}}, nil)
		if got := resp.Request.URL.Host; (tc.wantHost != "" && got != tc.wantHost) || strings.Contains(got, "evil") {
			t.Errorf("login with next=%s ended at %s; visits %v", tc.next, resp.Request.URL, nb.visits)
		}
	}

	// After a reload the new permission module answers the same way: a user who logs in now gets
	// a certificate, a name of no user still none, and no order is placed for it.
	h.inst.Reload(config(11))
	carol := h.browser()
	carol.login("carol", tlsPassword)
	waitCert(t, h.roots, "carol."+tlsHubName, h.httpsPort, 60*time.Second)
	before = p.Orders()
	if _, err := handshake(h.roots, "trudy."+tlsHubName, h.httpsPort); err == nil {
		t.Errorf("after reload: handshake for a user who does not exist succeeded")
	}
	if got := p.Orders(); got != before {
		t.Errorf("after reload: ACME orders went from %d to %d for a refused name", before, got)
	}
}

// TestTLSRenewal: a short-lived certificate is renewed without a restart, and an open websocket
// through the edge keeps working across the renewal.
func TestTLSRenewal(t *testing.T) {
	const validity = 45 * time.Second
	h := newTLSHub(t, false)
	p := startPebble(t, h.httpPort, h.httpsPort, validity)
	h.start(h.caddyfile(acmeGlobal(p, "renew_interval 1s"), tlsHubName+" {\n\tjupyterhub\n}\n"))
	h.roots = p.Roots(t)
	first := waitCert(t, h.roots, tlsHubName, h.httpsPort, 60*time.Second)
	if life := first.NotAfter.Sub(first.NotBefore); life > 2*validity {
		t.Fatalf("certificate lifetime %s; pebble's short validity not applied", life)
	}
	b := h.browser()
	h.spawn(b, "alice")
	ws := h.wsDial(b, h.userURL("alice", "alice", "ws"))
	wsRoundTrip(t, ws, "before renewal")
	pid := h.inst.PID()

	deadline := time.Now().Add(validity + 45*time.Second)
	var renewed *x509.Certificate
	for renewed == nil {
		c, err := handshake(h.roots, tlsHubName, h.httpsPort)
		if err == nil && c.SerialNumber.Cmp(first.SerialNumber) != 0 {
			renewed = c
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("certificate not renewed within %s (last: %v)", validity+45*time.Second, err)
		}
		wsRoundTrip(t, ws, "during")       // the websocket stays usable all along
		time.Sleep(500 * time.Millisecond) // poll interval
	}
	if !renewed.NotAfter.After(first.NotAfter) {
		t.Errorf("renewed certificate expires %s, not after the first's %s", renewed.NotAfter, first.NotAfter)
	}
	wsRoundTrip(t, ws, "after renewal")
	if h.inst.PID() != pid || !h.inst.Running() {
		t.Errorf("caddy restarted")
	}
	if !regexp.MustCompile(`"certificate obtained".*"renewal":true`).MatchString(h.inst.Log()) {
		t.Errorf("no renewal recorded by the hub's certificate events")
	}
	rep := h.report(b, h.userURL("alice", "alice", "report"))
	if rep.User != "alice" {
		t.Errorf("after renewal: %+v", rep)
	}
}
