package caddymodule

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"sync/atomic"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/caddyhub/caddyhub/caddymodule/routetable"
)

// activityWriter marks its route active as the response flows, as
// configurable-http-proxy moves a route's last_activity (docs/protocols.md,
// "Proxying"); the idle culler reads it.
//
// What counts: every chunk of a response whose status is below 400 (2xx,
// 3xx — a browser revalidating assets gets 304s — and 101 upgrades), and
// every read or write on a hijacked (websocket) connection, in both
// directions. Error responses do not count: configurable-http-proxy keeps a
// flood of 403s, 404s or 503s from making a route look active, and so do we
// (CHP also ignores 3xx; we count them, as they are real browser use).
type activityWriter struct {
	*caddyhttp.ResponseWriterWrapper
	route *routetable.Route
	// status is the final status written, 0 before any.
	status int
}

func newActivityWriter(w http.ResponseWriter, route *routetable.Route) *activityWriter {
	return &activityWriter{
		ResponseWriterWrapper: &caddyhttp.ResponseWriterWrapper{ResponseWriter: w},
		route:                 route,
	}
}

func (w *activityWriter) counts() bool { return w.status < 400 }

// WriteHeader records the final status (1xx other than 101 are interim).
func (w *activityWriter) WriteHeader(code int) {
	if w.status == 0 && (code >= 200 || code == http.StatusSwitchingProtocols) {
		w.status = code
		if w.counts() {
			w.route.Touch()
		}
	}
	w.ResponseWriterWrapper.WriteHeader(code)
}

func (w *activityWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	if w.counts() {
		w.route.Touch()
	}
	return w.ResponseWriterWrapper.Write(b)
}

// ReadFrom must be overridden too: ResponseWriterWrapper.ReadFrom bypasses
// Write. The source is wrapped so a long copy keeps touching the route.
func (w *activityWriter) ReadFrom(r io.Reader) (int64, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	if w.counts() {
		r = activityReader{r: r, route: w.route}
	}
	return w.ResponseWriterWrapper.ReadFrom(r)
}

// Hijack wraps the client connection so that websocket frames count as
// activity. The reverse proxy hijacks through http.NewResponseController,
// which finds this method first.
func (w *activityWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	conn, brw, err := http.NewResponseController(w.ResponseWriterWrapper.ResponseWriter).Hijack()
	if err != nil {
		return nil, nil, err
	}
	if w.status == 0 {
		w.status = http.StatusSwitchingProtocols
	}
	openUpgraded.Add(1)
	return &activityConn{Conn: conn, route: w.route}, brw, nil
}

// openUpgraded counts hijacked (upgraded: websocket) client connections that are still open.
var openUpgraded atomic.Int64

// OpenWebsockets returns how many upgraded connections (websockets) the edge is proxying now, for
// the hub's caddyhub_websockets_open metric.
func OpenWebsockets() int64 { return openUpgraded.Load() }

type activityReader struct {
	r     io.Reader
	route *routetable.Route
}

func (a activityReader) Read(p []byte) (int, error) {
	n, err := a.r.Read(p)
	if n > 0 {
		a.route.Touch()
	}
	return n, err
}

// activityConn is a hijacked client connection that touches its route on
// every read and write.
type activityConn struct {
	net.Conn
	route  *routetable.Route
	closed atomic.Bool
}

// Close closes the connection and, the first time, stops counting it as open.
func (c *activityConn) Close() error {
	if c.closed.CompareAndSwap(false, true) {
		openUpgraded.Add(-1)
	}
	return c.Conn.Close()
}

func (c *activityConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if n > 0 {
		c.route.Touch()
	}
	return n, err
}

func (c *activityConn) Write(p []byte) (int, error) {
	c.route.Touch()
	return c.Conn.Write(p)
}

// Interface guards
var (
	_ http.Hijacker = (*activityWriter)(nil)
	_ io.ReaderFrom = (*activityWriter)(nil)
)
