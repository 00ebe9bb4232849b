package web

// Endpoints about the hub itself (docs/protocols.md, "Endpoints"): info, shutdown, metrics and the
// deprecated /authorizations endpoints that pre-2.0 services use.

import (
	"net/http"
	"os"
	"runtime"
	"runtime/debug"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"

	"github.com/caddyhub/caddyhub/hubapp/rbac"
)

// apiShutdownSignal ends the process as Ctrl-C would (Caddy stops gracefully, apps run Stop with
// caddy.Exiting() true). Tests replace it.
var apiShutdownSignal = func() {
	if p, err := os.FindProcess(os.Getpid()); err == nil {
		_ = p.Signal(os.Interrupt)
	}
}

// POST /shutdown: {"servers": bool, "proxy": bool}. servers overrides cleanup_servers; proxy means
// nothing here (the proxy is this process).
func (h *Hub) apiShutdown(q *apiRequest) error {
	if err := q.need(rbac.Resource{}, "shutdown"); err != nil {
		return err
	}
	data, err := q.bodyObject()
	if err != nil {
		return err
	}
	for _, k := range []string{"proxy", "servers"} {
		if v, ok := data[k]; ok {
			if _, isBool := v.(bool); !isBool {
				return errStatus(http.StatusBadRequest, "%s must be true or false, got %s", k, pyRepr(v))
			}
		}
	}
	if v, ok := data["servers"].(bool); ok {
		h.cfg.CleanupServers = v
	}
	h.logger.Warn("shutdown requested through the api", zap.String("requester", q.id.Name()))
	if err := q.writeJSON(http.StatusAccepted, map[string]string{"message": "Shutting down Hub"}); err != nil {
		return err
	}
	if f, ok := q.w.(http.Flusher); ok {
		f.Flush()
	}
	go apiShutdownSignal()
	return nil
}

// GET /info
func (h *Hub) apiInfo(q *apiRequest) error {
	if err := q.need(rbac.Resource{}, "read:hub"); err != nil {
		return err
	}
	exe, _ := os.Executable()
	version := "unknown"
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, d := range bi.Deps {
			if d.Path == "github.com/caddyhub/caddyhub" {
				version = d.Version
			}
		}
		if bi.Main.Path == "github.com/caddyhub/caddyhub" && bi.Main.Version != "" {
			version = bi.Main.Version
		}
	}
	classInfo := func(m any) map[string]string {
		class := "unknown"
		if mod, ok := m.(caddy.Module); ok {
			class = string(mod.CaddyModule().ID)
		}
		return map[string]string{"class": class, "version": version}
	}
	info := map[string]any{
		"version":        apiJupyterHubVersion,
		"python":         "Go " + runtime.Version(),
		"sys_executable": exe,
		"authenticator":  classInfo(h.authn),
		"spawner":        classInfo(h.spawner),
	}
	// Certificate state (issue #5): each managed name's expiry and last error, for admins only.
	if q.scopes().Allows("admin:users", rbac.Resource{}, nil) {
		info["certificates"] = h.certificateInfo()
		// Servers the spawner found that no record claims (containers with the hub's labels).
		if orphans, err := h.eng.Orphans(q.r.Context()); err != nil {
			info["orphans_error"] = err.Error()
		} else if orphans != nil {
			info["orphans"] = orphans
		}
	}
	return q.writeJSON(http.StatusOK, info)
}

// GET /metrics, /hub/metrics: Prometheus text, with read:metrics (JupyterHub's
// authenticate_prometheus default).
func (h *Hub) apiMetrics(q *apiRequest) error {
	if !q.scopes().Allows("read:metrics", rbac.Resource{}, nil) {
		return errStatus(http.StatusForbidden, "Access to metrics requires scope 'read:metrics'")
	}
	h.apiState().metrics.serve(q.w, q.r)
	return nil
}

// ownerModel is the model of a token's owner for the deprecated /authorizations endpoints: the
// requester's view, plus the owner's identify scopes.
func (h *Hub) ownerModel(q *apiRequest, owner *Identity) (map[string]any, error) {
	reg := h.apiState().engine.Registry()
	switch {
	case owner.User != nil:
		o := rbac.UserOwner(owner.User.Name)
		ident, err := reg.ExpandFor(rbac.IdentifyScopes(o), o, rbac.Client{})
		if err != nil {
			return nil, err
		}
		return h.fullUserModel(q.scopes().Union(ident), owner.User, false)
	case owner.Service != nil:
		o := rbac.ServiceOwner(owner.Service.Name)
		ident, err := reg.ExpandFor(rbac.IdentifyScopes(o), o, rbac.Client{})
		if err != nil {
			return nil, err
		}
		return h.serviceModel(q.scopes().Union(ident), owner.Service), nil
	}
	return nil, nil
}

// requireToken is JupyterHub's @token_authenticated: a token (not a cookie) must authenticate.
func (q *apiRequest) requireToken() error {
	if q.id == nil || (q.id.Token == nil && tokenFromRequest(q.r) == "") {
		return errStatus(http.StatusForbidden, "Missing or invalid credentials.")
	}
	return nil
}

// GET /authorizations/token/{token} (deprecated in 2.0; pre-2.0 services)
func (h *Hub) apiAuthorizationsToken(q *apiRequest) error {
	if err := q.requireToken(); err != nil {
		return err
	}
	owner, err := h.identifyToken(q.r.PathValue("token"))
	if err != nil || owner == nil {
		return errStatus(http.StatusNotFound, "")
	}
	m, err := h.ownerModel(q, owner)
	if err != nil {
		return err
	}
	if m == nil {
		return errStatus(http.StatusNotFound, "")
	}
	return q.writeJSON(http.StatusOK, m)
}

// POST /authorizations/token: removed in 2.0.
func (h *Hub) apiAuthorizationsTokenRemoved(q *apiRequest) error {
	return errStatus(http.StatusNotFound, "Deprecated endpoint /hub/api/authorizations/token is removed in JupyterHub 2.0. Use /hub/api/users/:user/tokens instead.")
}

// GET /authorizations/cookie/{cookie}[/{value}] (deprecated): the user of a hub login cookie.
func (h *Hub) apiAuthorizationsCookie(q *apiRequest) error {
	if err := q.requireToken(); err != nil {
		return err
	}
	value := q.r.PathValue("value")
	if value == "" {
		b, err := q.rawBody()
		if err != nil {
			return err
		}
		value = string(b)
	}
	probe, _ := http.NewRequestWithContext(q.r.Context(), http.MethodGet, h.prefix, nil)
	probe.Host = q.r.Host
	probe.AddCookie(&http.Cookie{Name: q.r.PathValue("cookie"), Value: value})
	_, u, err := h.sessionFromRequest(probe)
	if err != nil || u == nil {
		return errStatus(http.StatusNotFound, "")
	}
	m, err := h.ownerModel(q, &Identity{User: u})
	if err != nil {
		return err
	}
	return q.writeJSON(http.StatusOK, m)
}
