package web

// subdomain_host: each user's server on its own origin, <label>.<subdomain_host>
// (docs/protocols.md, "subdomain_host isolation"; docs/https.md). This file turns usernames into DNS
// labels, builds the host-routed route keys and absolute URLs of users' servers, and keeps the
// in-memory set of labels of existing users that the on-demand TLS permission module
// (tls.permission.jupyterhub, in package hubapp) answers from.

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net"
	"net/url"
	"strings"
	"sync"
	"time"

	"golang.org/x/net/idna"

	"github.com/caddyhub/caddyhub/hubapp/store"
)

// dnsLabel encodes a username as one DNS label exactly as JupyterHub 5's default subdomain_hook
// ("idna"; utils.py _strict_dns_safe_encode) does, then lower-cases it (DNS names are
// case-insensitive, and certificates and the route table hold lower-case names):
//   - a name containing "--" takes the hash route, so no name can collide with an encoded one;
//   - a name that is already a safe label (letters, digits, inner hyphens, not all digits, at most
//     63 bytes) is its own label: "alice" → "alice";
//   - otherwise its IDNA 2008 A-label if that is a safe label: "müller" → "xn--mller-kva";
//   - otherwise "u-<first 8 safe characters or x>--<7 hex of sha256(name)>": "a.b" → "u-ab--…".
//
// The result is a pure function of the name, so a user's label is stable for as long as the user
// exists; it never contains a dot.
func dnsLabel(name string) string {
	if strings.Contains(name, "--") {
		return trimAndHash(name)
	}
	if isDNSSafe(name) {
		return strings.ToLower(name)
	}
	// Python's idna.encode returns ASCII labels unchanged (or fails on them), and a name with a
	// dot yields several labels: neither can give a different, safe single label.
	if !isASCII(name) && !strings.Contains(name, ".") {
		if a, err := idna.Registration.ToASCII(name); err == nil && a != name && isDNSSafe(a) {
			return strings.ToLower(a)
		}
	}
	return trimAndHash(name)
}

// isDNSSafe is JupyterHub's _is_dns_safe: 1–63 of [A-Za-z0-9-], not all digits, no hyphen at
// either end.
func isDNSSafe(label string) bool {
	if len(label) == 0 || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
		return false
	}
	digits := true
	for i := 0; i < len(label); i++ {
		c := label[i]
		switch {
		case c >= '0' && c <= '9':
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c == '-':
			digits = false
		default:
			return false
		}
	}
	return !digits
}

// trimAndHash is JupyterHub's _trim_and_hash: "u-" + up to 8 of the name's lower-cased [a-z0-9]
// ("x" if none) + "--" + the first 7 hex digits of the name's SHA-256.
func trimAndHash(name string) string {
	sum := sha256.Sum256([]byte(name))
	var stub strings.Builder
	for _, c := range strings.ToLower(name) {
		if stub.Len() == 8 {
			break
		}
		if (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') {
			stub.WriteRune(c)
		}
	}
	if stub.Len() == 0 {
		stub.WriteByte('x')
	}
	return "u-" + stub.String() + "--" + hex.EncodeToString(sum[:])[:7]
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

// subdomainConfig is subdomain_host taken apart. subdomain_host may be given as JupyterHub does
// ("https://hub.example.org", with an optional port) or as a bare host ("hub.example.org";
// scheme https).
type subdomainConfig struct {
	scheme string // "https" (default) or "http"
	host   string // lower-case host name without port: "hub.example.org"
	port   string // "" or the explicit port: "8443"
}

// parseSubdomainHost parses subdomain_host; ok is false when it is empty or unusable.
func parseSubdomainHost(s string) (c subdomainConfig, ok bool) {
	s = strings.TrimSpace(s)
	if s == "" {
		return c, false
	}
	if !strings.Contains(s, "://") {
		s = "https://" + s
	}
	u, err := url.Parse(s)
	if err != nil || u.Hostname() == "" || (u.Scheme != "http" && u.Scheme != "https") ||
		(u.Path != "" && u.Path != "/") || u.User != nil || u.RawQuery != "" {
		return c, false
	}
	c = subdomainConfig{scheme: u.Scheme, host: strings.ToLower(strings.TrimSuffix(u.Hostname(), ".")), port: u.Port()}
	if strings.Contains(c.host, ":") || net.ParseIP(c.host) != nil {
		return subdomainConfig{}, false // an IP address has no subdomains
	}
	return c, true
}

// hostPort is host with the configured port, if any.
func (c subdomainConfig) hostPort(host string) string {
	if c.port == "" {
		return host
	}
	return net.JoinHostPort(host, c.port)
}

// subdomain returns the parsed subdomain_host of this hub; ok is false on one origin.
func (h *Hub) subdomain() (subdomainConfig, bool) {
	return parseSubdomainHost(h.cfg.SubdomainHost)
}

// userHost is the host name of a user's origin, "<label>.<subdomain_host>", or "" when
// subdomain_host is not set.
func (h *Hub) userHost(user string) string {
	c, ok := h.subdomain()
	if !ok {
		return ""
	}
	return dnsLabel(user) + "." + c.host
}

// userOrigin is the origin of a user's servers, "https://<label>.<subdomain_host>[:port]", or ""
// when subdomain_host is not set.
func (h *Hub) userOrigin(user string) string {
	c, ok := h.subdomain()
	if !ok {
		return ""
	}
	return c.scheme + "://" + c.hostPort(dnsLabel(user)+"."+c.host)
}

// hubOrigin is the hub's own origin under subdomain_host ("https://hub.example.org[:port]"),
// JupyterHub's JUPYTERHUB_HOST; "" on one origin.
func (h *Hub) hubOrigin() string {
	c, ok := h.subdomain()
	if !ok {
		return ""
	}
	return c.scheme + "://" + c.hostPort(c.host)
}

// subdomainRouteKey is the route-table key of a user's server: "<base>user/<name>[/<server>]" on
// one origin, "/<label>.<subdomain_host><base>user/<name>[/<server>]" with subdomain_host (the
// table treats a first segment with a dot as a host; CHP's host routing). Use it wherever a
// server's route is added, deleted or looked up.
func (h *Hub) subdomainRouteKey(user, server string) string {
	k := h.base + "user/" + user
	if server != "" {
		k += "/" + server
	}
	if host := h.userHost(user); host != "" {
		k = "/" + host + k
	}
	return k
}

// fullServerURL is the absolute URL of a user's server under subdomain_host
// ("https://<label>.<host>/user/<name>/[<server>/]", JupyterHub's user.url), or the path on one
// origin.
func (h *Hub) fullServerURL(user, server string) string {
	p := h.base + "user/" + url.PathEscape(user) + "/"
	if server != "" {
		p += url.PathEscape(server) + "/"
	}
	return h.userOrigin(user) + p
}

// isHubHost reports whether the request host (with or without port) is the hub's own host under
// subdomain_host. On one origin every host is the hub's.
func (h *Hub) isHubHost(hostport string) bool {
	c, ok := h.subdomain()
	if !ok {
		return true
	}
	return strings.EqualFold(strings.TrimSuffix(hostOf(hostport), "."), c.host)
}

// hostOf strips the port (and IPv6 brackets) from a Host header value.
func hostOf(hostport string) string {
	if host, _, err := net.SplitHostPort(hostport); err == nil {
		return host
	}
	return strings.TrimSuffix(strings.TrimPrefix(hostport, "["), "]")
}

// userLabels is the in-memory set of DNS labels of existing users, per data_dir (it outlives
// config reloads like the store). The permission module answers from it during TLS handshakes.
// It follows the store: loaded when first needed, then kept current by a watch on user records
// (Store.WatchUsers, which ends when the store closes), so users created or deleted by any path
// (login, REST API, token command) are seen. NoteUserCreated and NoteUserDeleted update it at
// once as well. A label not in the set is checked with one point read when it names its user,
// and otherwise reloads the set at most every labelReloadEvery.
type userLabels struct {
	mu       sync.RWMutex
	loaded   bool
	loadedAt time.Time
	byLabel  map[string]string // label → username
	watched  *store.Store      // the store a watch follows, nil when none runs
}

// labelReloadEvery bounds how often a miss reloads the label set from the store.
const labelReloadEvery = 5 * time.Second

// labelSets holds one *userLabels per absolute data_dir.
var labelSets sync.Map

func labelsFor(dataDir string) *userLabels {
	v, _ := labelSets.LoadOrStore(dataDir, &userLabels{byLabel: map[string]string{}})
	return v.(*userLabels)
}

// lookup returns the user whose label is label, loading or reloading the set from st if needed.
func (l *userLabels) lookup(st *store.Store, label string, now time.Time) (string, bool, error) {
	if st != nil {
		l.watch(st)
	}
	l.mu.RLock()
	user, found := l.byLabel[label]
	stale := !l.loaded || now.Sub(l.loadedAt) >= labelReloadEvery
	l.mu.RUnlock()
	if found || st == nil {
		return user, found, nil
	}
	// Most labels name their user directly ("alice", or the A-label of "müller"): one point read
	// finds a user created since the set was loaded.
	if name := labelName(label); name != "" {
		var u *store.User
		err := st.View(func(tx *store.Txn) error {
			var err error
			u, err = tx.User(name)
			return err
		})
		switch {
		case err == nil && dnsLabel(u.Name) == label:
			l.add(u.Name)
			return u.Name, true, nil
		case err != nil && !errors.Is(err, store.ErrNotFound):
			return "", false, err
		}
	}
	if !stale {
		return "", false, nil
	}
	if err := l.load(st, now); err != nil {
		return "", false, err
	}
	l.mu.RLock()
	defer l.mu.RUnlock()
	user, found = l.byLabel[label]
	return user, found, nil
}

// watch starts following st's user records unless a watch of st runs already.
func (l *userLabels) watch(st *store.Store) {
	l.mu.Lock()
	if l.watched == st {
		l.mu.Unlock()
		return
	}
	l.watched = st
	l.mu.Unlock()
	go func() {
		// Returns when the store closes (the last config generation using it stopped).
		_ = st.WatchUsers(context.Background(), func() { _ = l.load(st, time.Now()) }, func(name string, deleted bool) {
			if deleted {
				l.remove(name)
			} else {
				l.add(name)
			}
		})
		l.mu.Lock()
		if l.watched == st {
			l.watched = nil
		}
		l.mu.Unlock()
	}()
}

// labelName is the username a label was made from when that can be told from the label alone:
// the label itself for a plain name, the Unicode form of an IDNA A-label; "" for hashed labels.
func labelName(label string) string {
	if strings.HasPrefix(label, "xn--") {
		u, err := idna.Registration.ToUnicode(label)
		if err != nil || strings.Contains(u, ".") {
			return ""
		}
		return u
	}
	if strings.Contains(label, "--") {
		return ""
	}
	return label
}

// load replaces the set with the labels of every user in st.
func (l *userLabels) load(st *store.Store, now time.Time) error {
	var users []*store.User
	if err := st.View(func(tx *store.Txn) error {
		var err error
		users, err = tx.Users(0, 0)
		return err
	}); err != nil {
		return err
	}
	m := make(map[string]string, len(users))
	for _, u := range users {
		m[dnsLabel(u.Name)] = u.Name
	}
	l.mu.Lock()
	l.byLabel, l.loaded, l.loadedAt = m, true, now
	l.mu.Unlock()
	return nil
}

func (l *userLabels) add(name string) {
	l.mu.Lock()
	l.byLabel[dnsLabel(name)] = name
	l.mu.Unlock()
}

func (l *userLabels) remove(name string) {
	label := dnsLabel(name)
	l.mu.Lock()
	if l.byLabel[label] == name {
		delete(l.byLabel, label)
	}
	l.mu.Unlock()
}

// NoteUserCreated records a new user's label in the label set of the hub of dataDir, so that its
// origin can get a certificate at once, before the store's watch reports the user.
func NoteUserCreated(dataDir, name string) { labelsFor(dataDir).add(name) }

// NoteUserDeleted forgets a deleted user's label in the label set of the hub of dataDir: no new
// certificate is allowed for its origin.
func NoteUserDeleted(dataDir, name string) { labelsFor(dataDir).remove(name) }

// SubdomainHostName is the host name of subdomain_host s (no scheme, no port), "" when s is not one.
func SubdomainHostName(s string) string {
	c, _ := parseSubdomainHost(s)
	return c.host
}

// IsDNSLabel reports whether label could be a user's label under subdomain_host.
func IsDNSLabel(label string) bool { return isDNSSafe(label) }

// LookupUserLabel returns the user whose subdomain label is label in the hub of dataDir, loading
// the label set from st (nil: only what is loaded already) when needed.
func LookupUserLabel(dataDir string, st *store.Store, label string, now time.Time) (string, bool, error) {
	return labelsFor(dataDir).lookup(st, label, now)
}

// UserLabel is user name's DNS label under subdomain_host: <label>.<subdomain_host> is its origin.
func UserLabel(name string) string { return dnsLabel(name) }
