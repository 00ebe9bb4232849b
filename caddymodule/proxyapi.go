package caddymodule

import (
	"bytes"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/caddyhub/caddyhub/caddymodule/routetable"
)

// maxRouteBody caps a POST body of the proxy API.
const maxRouteBody = 1 << 20

// chpTimeFormat is how configurable-http-proxy prints last_activity
// (JavaScript's Date.prototype.toJSON).
const chpTimeFormat = "2006-01-02T15:04:05.000Z"

// tokenRe is CHP's `authorized` check: the header must contain "token <t>".
var tokenRe = regexp.MustCompile(`token\s+(\S+)`)

// proxyAPI is the configurable-http-proxy compatible REST API
// (docs/protocols.md, "Routes API").
type proxyAPI struct {
	table  *routetable.Table
	token  []byte
	logger *zap.Logger
}

// NewProxyAPI returns configurable-http-proxy's REST API over t:
// GET /api/routes[?inactive_since=ISO8601], GET|POST|DELETE /api/routes/<path>,
// authorized by "Authorization: token <token>" (compared in constant time).
// An empty token leaves the API open, as CHP does without
// CONFIGPROXY_AUTH_TOKEN; the app binds it to loopback only in that case.
func NewProxyAPI(t *routetable.Table, token string, logger *zap.Logger) http.Handler {
	if logger == nil {
		logger = zap.NewNop()
	}
	return &proxyAPI{table: t, token: []byte(token), logger: logger}
}

func (a *proxyAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rawPath := r.URL.EscapedPath()
	sub, ok := strings.CutPrefix(rawPath, "/api/routes")
	if !ok || (sub != "" && sub[0] != '/') {
		apiError(w, http.StatusNotFound, "Not Found")
		return
	}
	switch r.Method {
	case http.MethodGet, http.MethodPost, http.MethodDelete:
	default:
		apiError(w, http.StatusMethodNotAllowed, "Method not supported")
		return
	}
	if !a.authorized(r) {
		if c := a.logger.Check(zap.DebugLevel, "rejecting proxy API request"); c != nil {
			c.Write(zap.String("remote", r.RemoteAddr), zap.String("method", r.Method), zap.String("path", rawPath))
		}
		w.WriteHeader(http.StatusForbidden)
		return
	}
	// CHP decodes the path part (decodeURIComponent) and stores keys unescaped.
	path, err := url.PathUnescape(sub)
	if err != nil {
		apiError(w, http.StatusBadRequest, fmt.Sprintf("Invalid route path %q: %v", sub, err))
		return
	}
	switch r.Method {
	case http.MethodGet:
		if path != "" && path != "/" {
			a.getRoute(w, path)
			return
		}
		a.getRoutes(w, r)
	case http.MethodPost:
		a.postRoute(w, r, path)
	case http.MethodDelete:
		a.deleteRoute(w, path)
	}
}

func (a *proxyAPI) authorized(r *http.Request) bool {
	if len(a.token) == 0 {
		return true
	}
	m := tokenRe.FindStringSubmatch(r.Header.Get("Authorization"))
	return m != nil && subtle.ConstantTimeCompare([]byte(m[1]), a.token) == 1
}

// routeJSON renders a route as CHP does: its data, target and last_activity.
func routeJSON(rt *routetable.Route) map[string]any {
	out := rt.Data() // a fresh map, ours to extend
	if out == nil {
		out = make(map[string]any, 2)
	}
	out["target"] = rt.Target()
	out["last_activity"] = rt.LastActivity().UTC().Format(chpTimeFormat)
	return out
}

func (a *proxyAPI) getRoute(w http.ResponseWriter, path string) {
	rt := a.table.Get(path)
	if rt == nil {
		w.WriteHeader(http.StatusNotFound)
		return
	}
	writeJSON(w, http.StatusOK, routeJSON(rt))
}

func (a *proxyAPI) getRoutes(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	s, filter := queryValue(q, "inactive_since", "inactiveSince")
	var since time.Time
	if filter {
		var ok bool
		if since, ok = parseISO8601(s); !ok {
			apiError(w, http.StatusBadRequest, "Invalid datestamp '"+s+"' must be ISO8601.")
			return
		}
	}
	all := a.table.All()
	out := make(map[string]any, len(all))
	for _, rt := range all {
		if filter && !rt.LastActivity().Before(since) {
			continue
		}
		out[rt.Key()] = routeJSON(rt)
	}
	writeJSON(w, http.StatusOK, out)
}

// queryValue returns the first of names present in q (CHP lets
// inactive_since win over inactiveSince).
func queryValue(q url.Values, names ...string) (string, bool) {
	for _, n := range names {
		if v, ok := q[n]; ok {
			if len(v) == 0 {
				return "", true
			}
			return v[0], true
		}
	}
	return "", false
}

// iso8601Layouts are the forms of ISO 8601 accepted for inactive_since.
// Without a zone, UTC is assumed.
var iso8601Layouts = []string{
	time.RFC3339Nano,
	"2006-01-02T15:04:05.999999999",
	"2006-01-02T15:04Z07:00",
	"2006-01-02T15:04",
	"2006-01-02",
}

func parseISO8601(s string) (time.Time, bool) {
	for _, layout := range iso8601Layouts {
		if t, err := time.Parse(layout, s); err == nil {
			return t, true
		}
	}
	return time.Time{}, false
}

func (a *proxyAPI) postRoute(w http.ResponseWriter, r *http.Request, path string) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxRouteBody))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			apiError(w, http.StatusBadRequest, fmt.Sprintf("Body larger than %d bytes", maxRouteBody))
			return
		}
		apiError(w, http.StatusBadRequest, "Error reading body: "+err.Error())
		return
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber() // keep extra numeric fields exactly as given
	var v any
	if err := dec.Decode(&v); err != nil {
		apiError(w, http.StatusBadRequest, "Body not valid JSON: "+err.Error())
		return
	}
	if _, err := dec.Token(); err != io.EOF {
		apiError(w, http.StatusBadRequest, "Body not valid JSON: data after the JSON value")
		return
	}
	data, _ := v.(map[string]any)
	target, ok := data["target"].(string)
	if !ok {
		apiError(w, http.StatusBadRequest, "Must specify 'target' as string")
		return
	}
	rt, err := a.table.Add(path, target, data)
	switch {
	case errors.Is(err, routetable.ErrInvalidKey), errors.Is(err, routetable.ErrInvalidTarget):
		apiError(w, http.StatusBadRequest, err.Error())
		return
	case errors.Is(err, routetable.ErrStorageFull):
		// The store logs a full disk once; one line per refused request would not help.
		apiError(w, http.StatusServiceUnavailable, "Failed to save route: the hub's disk is full")
		return
	case err != nil:
		a.logger.Error("adding route", zap.String("path", path), zap.Error(err))
		apiError(w, http.StatusInternalServerError, "Failed to save route")
		return
	}
	a.logger.Info("route added", zap.String("path", rt.Key()), zap.String("target", rt.Target()))
	w.WriteHeader(http.StatusCreated)
}

func (a *proxyAPI) deleteRoute(w http.ResponseWriter, path string) {
	existed, err := a.table.Delete(path)
	switch {
	case errors.Is(err, routetable.ErrInvalidKey) || (err == nil && !existed):
		w.WriteHeader(http.StatusNotFound)
	case errors.Is(err, routetable.ErrStorageFull):
		apiError(w, http.StatusServiceUnavailable, "Failed to delete route: the hub's disk is full")
	case err != nil:
		a.logger.Error("deleting route", zap.String("path", path), zap.Error(err))
		apiError(w, http.StatusInternalServerError, "Failed to delete route")
	default:
		a.logger.Info("route removed", zap.String("path", path))
		w.WriteHeader(http.StatusNoContent)
	}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		apiError(w, http.StatusInternalServerError, "Failed to encode response")
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// apiError answers with JupyterHub's error shape, {"status": …, "message": …}.
func apiError(w http.ResponseWriter, status int, msg string) {
	b, _ := json.Marshal(map[string]any{"status": status, "message": msg})
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}
