package hubapp

// JupyterHub services (docs/protocols.md, "Services and culling"): routes at /services/<name>/, OAuth
// clients so that users log in to services through the hub, and managed processes the hub starts,
// restarts when they die and stops when Caddy exits.
//
// A managed process outlives a config reload when its definition did not change: the new config
// generation adopts it (Start of the new generation runs before Stop of the old one), so a service
// listening on a fixed port is not started twice.

import (
	"errors"
	"fmt"
	"maps"
	"net/url"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"

	"github.com/caddyhub/caddyhub/hubapp/store"
)

// Restart backoff of managed services: doubled after each quick exit, reset after a long run.
const (
	serviceRestartMin   = 500 * time.Millisecond
	serviceRestartMax   = 30 * time.Second
	serviceHealthyAfter = time.Minute
	serviceStopGrace    = 5 * time.Second
)

// managedProcs are the services' processes and generated tokens of every data_dir, keyed by
// data_dir + "\x00" + service name.
var (
	managedMu    sync.Mutex
	managedProcs = map[string]*managedService{}
)

// managedService is one service's runtime: its token (configured or generated) and, with a
// command, its process.
type managedService struct {
	key   string
	spec  string // fingerprint of the definition; a change means restart
	token string
	owner atomic.Pointer[Hub]

	command bool
	pid     atomic.Int64
	stopCh  chan struct{}
	done    chan struct{}
	once    sync.Once
}

// serviceManager is one generation's view of its services.
type serviceManager struct {
	h     *Hub
	byKey map[string]*managedService
}

func caddyExiting() bool { return caddy.Exiting() }

func (h *Hub) serviceKey(name string) string { return h.app.DataDir + "\x00" + name }

// serviceToken returns a service's token: configured, or generated when the service started.
func (h *Hub) serviceToken(s *Service) string {
	if s.APIToken != "" {
		return s.APIToken
	}
	managedMu.Lock()
	defer managedMu.Unlock()
	if m := managedProcs[h.serviceKey(s.Name)]; m != nil && m.owner.Load() == h {
		return m.token
	}
	return ""
}

// servicePID returns the pid of a managed service's process, 0 when none runs.
func (h *Hub) servicePID(name string) int {
	managedMu.Lock()
	defer managedMu.Unlock()
	if m := managedProcs[h.serviceKey(name)]; m != nil {
		return int(m.pid.Load())
	}
	return 0
}

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
	sm := &serviceManager{h: h, byKey: map[string]*managedService{}}
	st.services = sm
	managedMu.Lock()
	for _, s := range h.app.Services {
		key := h.serviceKey(s.Name)
		spec := serviceSpec(s)
		m := managedProcs[key]
		if m != nil && m.spec == spec {
			m.owner.Store(h) // adopt from the previous generation
		} else {
			if m != nil {
				go m.stop(h.logger)
			}
			token := s.APIToken
			if token == "" {
				token = store.NewToken()
			}
			m = &managedService{key: key, spec: spec, token: token, command: len(s.Command) > 0,
				stopCh: make(chan struct{}), done: make(chan struct{})}
			m.owner.Store(h)
			managedProcs[key] = m
			if m.command {
				go m.run(h, s)
			} else {
				close(m.done)
			}
		}
		sm.byKey[key] = m
	}
	managedMu.Unlock()
	for _, s := range h.app.Services {
		if err := h.registerService(s); err != nil {
			return err
		}
	}
	h.removeStaleServiceRoutes()
	return nil
}

// removeStaleServiceRoutes drops the routes of services no longer configured (or no longer routed).
func (h *Hub) removeStaleServiceRoutes() {
	if h.table == nil {
		return
	}
	for _, r := range h.table.All() {
		d := r.Data()
		name, ok := d["service"].(string)
		if hub, _ := d["jupyterhub"].(bool); !ok || !hub {
			continue
		}
		if s := h.app.service(name); s != nil && s.URL != "" {
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
	if s.URL != "" && h.table != nil {
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

// stop ends the processes this generation still owns; on reload the next generation has adopted
// the unchanged ones.
func (sm *serviceManager) stop(exiting bool) {
	managedMu.Lock()
	var toStop []*managedService
	for key, m := range sm.byKey {
		if exiting || m.owner.Load() == sm.h {
			toStop = append(toStop, m)
			if managedProcs[key] == m {
				delete(managedProcs, key)
			}
		}
	}
	managedMu.Unlock()
	var wg sync.WaitGroup
	for _, m := range toStop {
		wg.Add(1)
		go func() { defer wg.Done(); m.stop(sm.h.logger) }()
	}
	wg.Wait()
}

// stop terminates the process (SIGTERM, then SIGKILL after a grace period) and its restart loop.
func (m *managedService) stop(logger *zap.Logger) {
	m.once.Do(func() { close(m.stopCh) })
	select {
	case <-m.done:
	case <-time.After(serviceStopGrace + 2*time.Second):
		logger.Warn("managed service did not stop", zap.String("service", m.key[strings.IndexByte(m.key, 0)+1:]))
	}
}

// run starts the process and restarts it whenever it exits, with backoff, until stopped.
func (m *managedService) run(h0 *Hub, s *Service) {
	defer close(m.done)
	backoff := serviceRestartMin
	logger := h0.logger.With(zap.String("service", s.Name))
	for {
		h := m.owner.Load()
		cmd := exec.Command(s.Command[0], s.Command[1:]...)
		cmd.Env = h.serviceEnv(s, m.token)
		cmd.Dir = s.Cwd
		cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
		cmd.SysProcAttr = serviceSysProcAttr()
		started := time.Now()
		err := cmd.Start()
		if err != nil {
			logger.Error("starting managed service", zap.Strings("command", s.Command), zap.Error(err))
		} else {
			m.pid.Store(int64(cmd.Process.Pid))
			logger.Info("managed service started", zap.Int("pid", cmd.Process.Pid), zap.String("url", redactURL(s.URL)))
			waited := make(chan error, 1)
			go func() { waited <- cmd.Wait() }()
			select {
			case err = <-waited:
				m.pid.Store(0)
				logger.Warn("managed service exited", zap.Error(err), zap.Duration("ran", time.Since(started)))
			case <-m.stopCh:
				terminate(cmd.Process)
				select {
				case <-waited:
				case <-time.After(serviceStopGrace):
					killGroup(cmd.Process)
					<-waited
				}
				m.pid.Store(0)
				logger.Info("managed service stopped")
				return
			}
		}
		if time.Since(started) > serviceHealthyAfter {
			backoff = serviceRestartMin
		}
		select {
		case <-m.stopCh:
			return
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, serviceRestartMax)
	}
}

func serviceSysProcAttr() *syscall.SysProcAttr { return newProcessGroupAttr() }

func redactURL(u string) string {
	p, err := url.Parse(u)
	if err != nil {
		return ""
	}
	p.User = nil
	return p.String()
}
