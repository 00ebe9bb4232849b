package web

// /hub/api/proxy (docs/protocols.md, "Endpoints" and "How JupyterHub drives an external proxy"): the
// routing table as JupyterHub shows it, and check_routes, which brings the table in line with the
// servers and services the hub knows.

import (
	"errors"
	"net/http"
	"slices"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/caddyhub/caddyhub/caddymodule/routetable"
	"github.com/caddyhub/caddyhub/hubapp/rbac"
	"github.com/caddyhub/caddyhub/hubapp/store"
)

// routeSpec is a route key as JupyterHub writes routespecs: with a trailing slash.
func routeSpec(key string) string {
	if strings.HasSuffix(key, "/") {
		return key
	}
	return key + "/"
}

// proxyRouteModel is one entry of GET /proxy: {"routespec", "target", "data"}.
func proxyRouteModel(r *routetable.Route) map[string]any {
	data := r.Data() // a fresh map, ours to extend
	if data == nil {
		data = map[string]any{}
	}
	data["last_activity"] = isoTime(r.LastActivity())
	return map[string]any{"routespec": routeSpec(r.Key()), "target": r.Target(), "data": data}
}

// GET /proxy
func (h *Hub) apiGetProxy(q *apiRequest) error {
	if err := q.need(rbac.Resource{}, "proxy"); err != nil {
		return err
	}
	offset, limit, err := q.pagination()
	if err != nil {
		return err
	}
	routes := h.table.All() // sorted by key
	out := make(map[string]any, min(limit, len(routes)))
	for _, r := range routes[min(offset, len(routes)):min(offset+limit, len(routes))] {
		out[routeSpec(r.Key())] = proxyRouteModel(r)
	}
	return q.paginated(out, offset, limit, len(routes))
}

// POST /proxy and PATCH /proxy: resynchronize the table. PATCH's api_url and auth_token (a new
// external proxy) mean nothing for the in-process table; the body is checked and ignored.
func (h *Hub) apiSyncProxy(q *apiRequest) error {
	if err := q.need(rbac.Resource{}, "proxy"); err != nil {
		return err
	}
	if q.r.Method == http.MethodPatch {
		v, err := q.body()
		if err != nil {
			return err
		}
		if v == nil {
			return errStatus(http.StatusBadRequest, "need JSON body")
		}
		if _, ok := v.(map[string]any); !ok {
			return errStatus(http.StatusBadRequest, "Request body must be JSON dict")
		}
	}
	if err := h.checkRoutes(); err != nil {
		return err
	}
	q.w.WriteHeader(http.StatusOK)
	return nil
}

// checkRoutes adds missing routes of ready servers and services and removes hub routes whose server
// or service is gone (JupyterHub's Proxy.check_routes). Routes without "jupyterhub" data belong to
// other clients of the proxy API and are left alone.
func (h *Hub) checkRoutes() error {
	start := time.Now()
	defer func() { h.apiState().metrics.observeCheckRoutes(time.Since(start)) }()
	var active []*store.Server
	if err := h.store.View(func(tx *store.Txn) error {
		var err error
		active, err = tx.ActiveServers()
		return err
	}); err != nil {
		return err
	}
	want := map[string]string{}
	activeKeys := map[string]bool{}
	for _, s := range active {
		activeKeys[h.routeKey(s.User, s.Name)] = true
	}
	for _, s := range active {
		if s.Ready && s.Target != "" {
			want[h.routeKey(s.User, s.Name)] = s.Target
		}
	}
	for _, s := range h.cfg.Services {
		if s.URL != "" {
			want[h.base+"services/"+s.Name] = s.URL
		}
	}
	var errs []error
	have := map[string]bool{}
	for _, r := range h.table.All() {
		data := r.Data()
		if hub, _ := data["jupyterhub"].(bool); !hub {
			continue
		}
		target, ok := want[r.Key()]
		_, isUser := data["user"]
		_, isService := data["service"]
		switch {
		case ok:
			have[r.Key()] = target == r.Target()
		case isUser && activeKeys[r.Key()]:
			// Starting or stopping: the spawn flow owns the route meanwhile.
		case isUser || isService:
			h.logger.Info("removing stale route", zap.String("route", r.Key()))
			if _, err := h.table.Delete(r.Key()); err != nil {
				errs = append(errs, err)
			}
		}
	}
	byKey := map[string]*store.Server{}
	for _, s := range active {
		byKey[h.routeKey(s.User, s.Name)] = s
	}
	for _, key := range slicesSortedKeys(want) {
		if have[key] {
			continue
		}
		data := map[string]any{"jupyterhub": true}
		if s := byKey[key]; s != nil {
			data["user"], data["server_name"] = s.User, s.Name
		} else {
			data["service"] = strings.TrimPrefix(key, h.base+"services/")
		}
		h.logger.Info("adding missing route", zap.String("route", key))
		t0 := time.Now()
		if _, err := h.table.Add(key, want[key], data); err != nil {
			errs = append(errs, err)
			continue
		}
		h.observeRouteAdd(time.Since(t0))
	}
	return errors.Join(errs...)
}

func slicesSortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
