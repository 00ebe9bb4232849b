package routetable

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"strings"
	"unicode/utf8"
)

// MaxKeyLen is the longest route key accepted, in bytes.
const MaxKeyLen = 2048

// Sentinel errors; wrapped errors from Add, Delete and NormalizeKey match them
// with errors.Is.
var (
	// ErrInvalidKey is returned for a route key that cannot be stored or could
	// never match a request (empty or dot segments, control characters,
	// invalid UTF-8, too long).
	ErrInvalidKey = errors.New("invalid route key")
	// ErrInvalidTarget is returned for a target that is not an absolute
	// http or https URL with a host.
	ErrInvalidTarget = errors.New("invalid route target")
)

// NormalizeKey returns p in configurable-http-proxy's normal form (its
// trie.js trimPrefix: a leading "/" ensured, one trailing "/" stripped except
// for the root) and checks that it is a key a request path can match.
func NormalizeKey(p string) (string, error) {
	if p == "" || p[0] != '/' {
		p = "/" + p
	}
	if len(p) > 1 && p[len(p)-1] == '/' {
		p = p[:len(p)-1]
	}
	if len(p) > MaxKeyLen {
		return "", fmt.Errorf("%w: longer than %d bytes", ErrInvalidKey, MaxKeyLen)
	}
	if !utf8.ValidString(p) {
		return "", fmt.Errorf("%w: not valid UTF-8", ErrInvalidKey)
	}
	for i := 0; i < len(p); i++ {
		if c := p[i]; c < 0x20 || c == 0x7f {
			return "", fmt.Errorf("%w: %q contains a control character", ErrInvalidKey, p)
		}
	}
	if p == "/" {
		return p, nil
	}
	for seg := range strings.SplitSeq(p[1:], "/") {
		switch seg {
		case "":
			return "", fmt.Errorf("%w: %q has an empty segment", ErrInvalidKey, p)
		case ".", "..":
			return "", fmt.Errorf("%w: %q has a dot segment", ErrInvalidKey, p)
		}
	}
	return p, nil
}

// isHostSegment reports whether the first segment of a key names a host:
// it contains a '.' or ':' or is "localhost". Keys like
// "/alice.hub.example.org/user/alice" are host routes (CHP --host-routing).
func isHostSegment(seg string) bool {
	return seg == "localhost" || strings.ContainsAny(seg, ".:")
}

// firstSegment returns the first segment of a normalized key or clean path.
func firstSegment(p string) string {
	p = p[1:]
	if i := strings.IndexByte(p, '/'); i >= 0 {
		return p[:i]
	}
	return p
}

// parseTarget checks target and fills the route's upstream fields.
func parseTarget(r *Route, target string) error {
	for _, prefix := range []string{"http+unix://", "unix+http://"} {
		if rest, ok := strings.CutPrefix(target, prefix); ok {
			return parseUnixTarget(r, target, rest)
		}
	}
	u, err := url.Parse(target)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrInvalidTarget, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return fmt.Errorf("%w: %q is not an http or https URL", ErrInvalidTarget, target)
	}
	host := u.Hostname()
	if host == "" {
		return fmt.Errorf("%w: %q has no host", ErrInvalidTarget, target)
	}
	// url.Parse lets through hosts no dialer can use ("http://]"); an IPv6 literal must parse.
	if strings.ContainsAny(host, "[]") {
		return fmt.Errorf("%w: %q: bad host %q", ErrInvalidTarget, target, host)
	}
	if strings.Contains(host, ":") {
		if _, err := netip.ParseAddr(host); err != nil {
			return fmt.Errorf("%w: %q: bad IPv6 address %q", ErrInvalidTarget, target, host)
		}
	}
	port := u.Port()
	if port == "" {
		port = "80"
		if u.Scheme == "https" {
			port = "443"
		}
	}
	r.scheme = u.Scheme
	r.dial = net.JoinHostPort(host, port)
	r.prependPath = strings.TrimRight(u.Path, "/")
	if r.prependPath != "" {
		r.prependRawPath = strings.TrimRight(u.EscapedPath(), "/")
	}
	return nil
}

// parseUnixTarget handles configurable-http-proxy's unix socket targets,
// "http+unix://%2Fpath%2Fto%2Fserver.sock[/path]": the socket path is the
// percent-encoded host.
func parseUnixTarget(r *Route, target, rest string) error {
	host, p := rest, ""
	if i := strings.IndexByte(rest, '/'); i >= 0 {
		host, p = rest[:i], rest[i:]
	}
	sock, err := url.PathUnescape(host)
	if err != nil || !strings.HasPrefix(sock, "/") {
		return fmt.Errorf("%w: %q: want http+unix://<percent-encoded absolute socket path>", ErrInvalidTarget, target)
	}
	u, err := url.Parse("http://localhost" + p)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrInvalidTarget, err)
	}
	r.scheme = "http"
	r.dial = "unix/" + sock // a Caddy network address
	r.prependPath = strings.TrimRight(u.Path, "/")
	if r.prependPath != "" {
		r.prependRawPath = strings.TrimRight(u.EscapedPath(), "/")
	}
	return nil
}

// cleanPath returns the request path p with a leading "/" and its dot
// segments resolved (as a WHATWG URL parser does before CHP decodes the
// path). Empty segments are kept: CHP's trie treats "/user//alice" as
// segments "user", "", "alice". It allocates only when p has dot segments.
func cleanPath(p string) string {
	if p == "" || p[0] != '/' {
		p = "/" + p
	}
	if !hasDotSegment(p) {
		return p
	}
	segs := strings.Split(p[1:], "/")
	out := make([]string, 0, len(segs))
	trailing := false
	for i, s := range segs {
		last := i == len(segs)-1
		switch s {
		case ".":
			trailing = last
		case "..":
			if len(out) > 0 {
				out = out[:len(out)-1]
			}
			trailing = last
		default:
			out = append(out, s)
			trailing = false
		}
	}
	res := "/" + strings.Join(out, "/")
	if trailing && len(res) > 1 {
		res += "/"
	}
	return res
}

// hasDotSegment reports whether p has a "." or ".." segment.
func hasDotSegment(p string) bool {
	for i := 0; i < len(p); i++ {
		if p[i] != '.' || (i > 0 && p[i-1] != '/') {
			continue
		}
		j := i + 1
		if j < len(p) && p[j] == '.' {
			j++
		}
		if j == len(p) || p[j] == '/' {
			return true
		}
	}
	return false
}
