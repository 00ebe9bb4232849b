package web

// /hub/api/services endpoints (docs/protocols.md, "Endpoints"). As in JupyterHub's code (not its OpenAPI
// document), the list is an object keyed by service name and is not paginated (docs/protocols.md,
// "Surprises").

import (
	"net/http"

	"github.com/caddyhub/caddyhub/hubapp/rbac"
)

// GET /services
func (h *Hub) apiListServices(q *apiRequest) error {
	lf, dec := q.scopes().ListServices()
	if dec != rbac.Allowed {
		return q.forbidden("list:services")
	}
	out := map[string]any{}
	for _, s := range h.cfg.Services {
		if !lf.All() && !lf.IncludesService(s.Name) {
			continue
		}
		if m := h.serviceModel(q.scopes(), s); m != nil {
			out[s.Name] = m
		}
	}
	return q.writeJSON(http.StatusOK, out)
}

// GET /services/{name}
func (h *Hub) apiGetService(q *apiRequest) error {
	name := q.r.PathValue("name")
	if err := q.need(rbac.Resource{Service: name}, "read:services", "read:services:name", "read:roles:services"); err != nil {
		return err
	}
	s := h.cfg.service(name)
	if s == nil {
		return errStatus(http.StatusNotFound, "No such service: %s", name)
	}
	return q.writeJSON(http.StatusOK, h.serviceModel(q.scopes(), s))
}
