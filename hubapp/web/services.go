package web

// JupyterHub services (docs/protocols.md, "Services and culling"): routes at /services/<name>/ and
// OAuth clients so that users log in to services through the hub. Their processes are supervised by
// package services.

import (
	"errors"
	"fmt"
	"maps"
	"net/url"
	"os"
	"slices"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/caddyhub/caddyhub/hubapp/services"
	"github.com/caddyhub/caddyhub/hubapp/store"
)

func (h *Hub) serviceKey(name string) string { return h.cfg.DataDir + "\x00" + name }

// serviceToken returns a service's token: configured, or generated when the service started.
func (h *Hub) serviceToken(s *Service) string {
	if s.APIToken != "" {
		return s.APIToken
	}
	if sv := h.serviceSupervisor(); sv != nil {
		return sv.Token(h.serviceKey(s.Name))
	}
	return ""
}

// serviceSupervisor is this generation's supervisor of managed services, nil before startAPI.
func (h *Hub) serviceSupervisor() *services.Supervisor {
	st := h.apiState()
	st.bgMu.Lock()
	defer st.bgMu.Unlock()
	return st.services
}

// servicePID returns the pid of a managed service's process, 0 when none runs.
func (h *Hub) servicePID(name string) int { return services.PID(h.serviceKey(name)) }

// hubAPIURL is JUPYTERHUB_API_URL for processes the hub starts.
func (h *Hub) hubAPIURL() string { return h.serverAPIURL() }

// serviceEnv is a managed service's environment (JupyterHub's _ServiceSpawner.get_env).
func (h *Hub) serviceEnv(s *Service, token string) []string {
	env := map[string]string{}
	for _, k := range []string{"PATH", "PYTHONPATH", "CONDA_ROOT", "CONDA_DEFAULT_ENV", "VIRTUAL_ENV", "LANG", "LC_ALL", "HOME", "USER", "TZ"} {
		if v, ok := os.LookupEnv(k); ok {
			env[k] = v
		}
	}
	prefix := h.base + "services/" + s.Name + "/"
	env["JUPYTERHUB_SERVICE_NAME"] = s.Name
	env["JUPYTERHUB_API_TOKEN"] = token
	env["JPY_API_TOKEN"] = token
	env["JUPYTERHUB_API_URL"] = h.hubAPIURL()
	env["JUPYTERHUB_BASE_URL"] = h.base
	env["JUPYTERHUB_CLIENT_ID"] = s.OAuthClientID
	env["JUPYTERHUB_HOST"] = ""
	env["JUPYTERHUB_OAUTH_CALLBACK_URL"] = s.OAuthRedirectURI
	env["JUPYTERHUB_OAUTH_SCOPES"] = `["access:services!service=` + s.Name + `"]`
	env["JUPYTERHUB_OAUTH_ACCESS_SCOPES"] = env["JUPYTERHUB_OAUTH_SCOPES"]
	env["JUPYTERHUB_OAUTH_CLIENT_ALLOWED_SCOPES"] = "[]"
	env["JUPYTERHUB_SERVICE_PREFIX"] = prefix
	if s.URL != "" {
		env["JUPYTERHUB_SERVICE_URL"] = s.URL
	}
	maps.Copy(env, s.Environment)
	out := make([]string, 0, len(env))
	for _, k := range slices.Sorted(maps.Keys(env)) {
		out = append(out, k+"="+env[k])
	}
	return out
}

// serviceSpec fingerprints what, when changed, needs a new process.
func serviceSpec(s *Service) string {
	envKeys := slices.Sorted(maps.Keys(s.Environment))
	var b strings.Builder
	fmt.Fprintf(&b, "%q|%q|%q|%q|", s.Command, s.Cwd, s.URL, s.APIToken)
	for _, k := range envKeys {
		fmt.Fprintf(&b, "%q=%q|", k, s.Environment[k])
	}
	return b.String()
}

// startServices adds the services' routes and OAuth clients and starts (or adopts) managed
// processes.
func (h *Hub) startServices(st *apiState) error {
	defs := make([]services.Def, 0, len(h.cfg.Services))
	for _, s := range h.cfg.Services {
		token := s.APIToken
		if token == "" {
			token = store.NewToken() // kept only when the process is new
		}
		defs = append(defs, services.Def{
			Key: h.serviceKey(s.Name), Name: s.Name, Spec: serviceSpec(s), Token: token,
			Command: s.Command, Cwd: s.Cwd, URL: redactURL(s.URL),
			Env: func(token string) []string { return h.serviceEnv(s, token) },
		})
	}
	sv := services.Start(defs, h.logger)
	st.bgMu.Lock()
	st.services = sv
	st.bgMu.Unlock()
	for _, s := range h.cfg.Services {
		if err := h.registerService(s); err != nil {
			return err
		}
	}
	h.removeStaleServiceRoutes()
	return nil
}

// removeStaleServiceRoutes drops the routes of services no longer configured (or no longer routed).
func (h *Hub) removeStaleServiceRoutes() {
	for _, r := range h.table.All() {
		d := r.Data()
		name, ok := d["service"].(string)
		if hub, _ := d["jupyterhub"].(bool); !ok || !hub {
			continue
		}
		if s := h.cfg.service(name); s != nil && s.URL != "" {
			continue
		}
		if _, err := h.table.Delete(r.Key()); err != nil {
			h.logger.Error("removing the route of a removed service", zap.String("service", name), zap.Error(err))
		} else {
			h.logger.Info("removed the route of a removed service", zap.String("service", name))
		}
	}
}

// registerService routes a service with a url and registers its OAuth client.
func (h *Hub) registerService(s *Service) error {
	if s.URL != "" {
		key := h.base + "services/" + s.Name
		if r := h.table.Get(key); r == nil || r.Target() != s.URL {
			start := time.Now()
			if _, err := h.table.Add(key, s.URL, map[string]any{"jupyterhub": true, "service": s.Name}); err != nil {
				return fmt.Errorf("service %s: adding route: %w", s.Name, err)
			}
			h.observeRouteAdd(time.Since(start))
		}
	}
	token := h.serviceToken(s)
	if token == "" {
		return nil
	}
	eng := h.apiState().engine
	scopes, err := eng.RoleScopes(s.OAuthRoles)
	if err != nil {
		return fmt.Errorf("service %s: oauth_roles: %w", s.Name, err)
	}
	redirect := s.OAuthRedirectURI
	return h.store.Update(func(tx *store.Txn) error {
		c, err := tx.OAuthClient(s.OAuthClientID)
		if err == nil && c.SecretHash == store.Hash(token) && c.RedirectURI == redirect && c.Service == s.Name && slices.Equal(c.Scopes, scopes) {
			return nil
		} else if err != nil && !errors.Is(err, store.ErrNotFound) {
			return err
		}
		return tx.PutOAuthClient(&store.OAuthClient{
			ID: s.OAuthClientID, SecretHash: store.Hash(token), RedirectURI: redirect,
			Description: "Service " + s.Name, Service: s.Name, Scopes: scopes,
		})
	})
}

func redactURL(u string) string {
	p, err := url.Parse(u)
	if err != nil {
		return ""
	}
	p.User = nil
	return p.String()
}
