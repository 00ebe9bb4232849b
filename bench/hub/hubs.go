package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/caddyhub/caddyhub/bench/internal/procmem"
)

// adminToken is the admin service's API token in both hubs.
const adminToken = "0123456789abcdef0123456789abcdef"

// proxyToken is the proxy API's token (ours) and CHP's CONFIGPROXY_AUTH_TOKEN.
const proxyToken = "bench-proxy-token-0123456789abcdef"

// hub is one running hub: ours (caddy) or JupyterHub 3.0 with its CHP.
type hub struct {
	name     string // "CaddyHub" or "JupyterHub 3.0"
	ours     bool
	dir      string
	public   string // http://127.0.0.1:port
	proxyAPI string // http://127.0.0.1:port (our proxy API or CHP's)
	proc     *proc
	started  time.Duration // exec → /hub/health 200 through the public port
}

// hubOptions configures a hub for one scenario.
type hubOptions struct {
	cmd     []string // server command; args follow
	args    []string
	cleanup bool // stop users' servers when the hub exits
	dataDir string
	onPort  func(public string) // called with the public URL just before the hub is started
}

func (h *hub) stop() time.Duration {
	return h.proc.stop(30 * time.Second)
}

// mem returns the hub's memory: caddy alone for ours; jupyterhub + CHP summed for JupyterHub (users'
// servers excluded), and how many processes that was.
func (h *hub) mem() (procmem.Usage, int) {
	if h.ours {
		return procmem.Read(h.proc.pid()), 1
	}
	var pids []int
	for _, pid := range append([]int{h.proc.pid()}, descendants(h.proc.pid())...) {
		b, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
		cmd := strings.ReplaceAll(string(b), "\x00", " ")
		if strings.Contains(cmd, "jupyterhub ") || strings.Contains(cmd, "configurable-http-proxy") {
			pids = append(pids, pid)
		}
	}
	return procmem.Sum(pids), len(pids)
}

// rss returns the hub's VmRSS (see mem) and how many processes that was.
func (h *hub) rss() (int64, int) {
	m, n := h.mem()
	return m.VmRSS, n
}

func quoteList(list []string) string {
	q := make([]string, len(list))
	for i, s := range list {
		q[i] = strconv.Quote(s)
	}
	return strings.Join(q, " ")
}

// startOurs runs `caddy run` with a hub using the dummy authenticator and the simple spawner.
func startOurs(bin, dir string, o hubOptions) (*hub, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	pub, hubAPI, papi, admin := freePort(), freePort(), freePort(), freePort()
	data := o.dataDir
	if data == "" {
		data = filepath.Join(dir, "data")
	}
	cleanup := ""
	if o.cleanup {
		cleanup = "cleanup_servers"
	}
	args := ""
	if len(o.args) > 0 {
		args = "args " + quoteList(o.args)
	}
	cf := fmt.Sprintf(`{
	admin 127.0.0.1:%d
	persist_config off
	jupyterhub {
		data_dir %s
		hub_api 127.0.0.1:%d
		proxy_api 127.0.0.1:%d
		proxy_auth_token %s
		cookie_secret_file %s
		authenticator dummy
		spawner simple {
			cmd %s
			%s
			start_timeout 300s
			http_timeout 120s
		}
		service bench {
			api_token %s
			admin
		}
		concurrent_spawn_limit 500
		%s
	}
}
http://127.0.0.1:%d {
	jupyterhub
}
`, admin, data, hubAPI, papi, proxyToken, filepath.Join(dir, "jupyterhub_cookie_secret"),
		quoteList(o.cmd), args, adminToken, cleanup, pub)
	cfPath := filepath.Join(dir, "Caddyfile")
	if err := os.WriteFile(cfPath, []byte(cf), 0o600); err != nil {
		return nil, err
	}
	env := []string{"HOME=" + dir, "XDG_DATA_HOME=" + filepath.Join(dir, "xdg-data"), "XDG_CONFIG_HOME=" + filepath.Join(dir, "xdg-config")}
	if o.onPort != nil {
		o.onPort(fmt.Sprintf("http://127.0.0.1:%d", pub))
	}
	began := time.Now()
	p, err := startProc("caddy", dir, env, bin, "run", "--config", cfPath, "--adapter", "caddyfile")
	if err != nil {
		return nil, err
	}
	h := &hub{name: oursName, ours: true, dir: dir, proc: p,
		public: fmt.Sprintf("http://127.0.0.1:%d", pub), proxyAPI: fmt.Sprintf("http://127.0.0.1:%d", papi)}
	if err := waitStatus(h.public+"/hub/health", 200, p, 120*time.Second); err != nil {
		p.stop(5 * time.Second)
		return nil, fmt.Errorf("caddy hub: %w", err)
	}
	h.started = time.Since(began)
	return h, nil
}

func pyList(list []string) string {
	q := make([]string, len(list))
	for i, s := range list {
		q[i] = strconv.Quote(s)
	}
	return "[" + strings.Join(q, ", ") + "]"
}

// startJupyterHub runs /usr/bin/jupyterhub 3.0 with DummyAuthenticator, SimpleLocalProcessSpawner and
// the CHP it starts itself.
func startJupyterHub(dir string, o hubOptions) (*hub, error) {
	if err := os.MkdirAll(filepath.Join(dir, "home"), 0o755); err != nil {
		return nil, err
	}
	pub, hubPort, papi := freePort(), freePort(), freePort()
	cleanup := "False"
	if o.cleanup {
		cleanup = "True"
	}
	cfg := fmt.Sprintf(`c = get_config()  # noqa
c.JupyterHub.bind_url = "http://127.0.0.1:%d/"
c.JupyterHub.hub_bind_url = "http://127.0.0.1:%d"
c.ConfigurableHTTPProxy.api_url = "http://127.0.0.1:%d"
c.ConfigurableHTTPProxy.auth_token = %q
c.ConfigurableHTTPProxy.pid_file = %q
c.JupyterHub.db_url = "sqlite:///%s"
c.JupyterHub.cookie_secret_file = %q
c.JupyterHub.pid_file = %q
c.JupyterHub.authenticator_class = "dummy"
c.JupyterHub.spawner_class = "simple"
c.SimpleLocalProcessSpawner.home_dir_template = %q
c.Spawner.cmd = %s
c.Spawner.args = %s
c.Spawner.start_timeout = 300
c.Spawner.http_timeout = 120
c.JupyterHub.services = [{"name": "bench", "api_token": %q, "admin": True}]
c.JupyterHub.cleanup_servers = %s
c.JupyterHub.concurrent_spawn_limit = 500
c.JupyterHub.api_page_max_limit = 20000
`, pub, hubPort, papi, proxyToken, filepath.Join(dir, "proxy.pid"), filepath.Join(dir, "jupyterhub.sqlite"),
		filepath.Join(dir, "jupyterhub_cookie_secret"), filepath.Join(dir, "jupyterhub.pid"),
		filepath.Join(dir, "home", "{username}"), pyList(o.cmd), pyList(o.args), adminToken, cleanup)
	cfgPath := filepath.Join(dir, "jupyterhub_config.py")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		return nil, err
	}
	// node from nodesource does not search Debian's module directory, where CHP's modules are.
	env := []string{"NODE_PATH=/usr/share/nodejs", "HOME=" + dir, "CONFIGPROXY_AUTH_TOKEN=" + proxyToken}
	began := time.Now()
	p, err := startProc("jupyterhub", dir, env, *jupyterhubFlag, "-f", cfgPath)
	if err != nil {
		return nil, err
	}
	h := &hub{name: jhName, dir: dir, proc: p,
		public: fmt.Sprintf("http://127.0.0.1:%d", pub), proxyAPI: fmt.Sprintf("http://127.0.0.1:%d", papi)}
	if err := waitStatus(h.public+"/hub/health", 200, p, 120*time.Second); err != nil {
		p.stop(10 * time.Second)
		return nil, fmt.Errorf("jupyterhub: %w", err)
	}
	h.started = time.Since(began)
	return h, nil
}
