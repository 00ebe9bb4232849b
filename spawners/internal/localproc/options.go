package localproc

import (
	"fmt"
	"net"
	"os"
	"strconv"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/caddyhub/caddyhub/spawners"
)

// DefaultEnvKeep lists the hub variables passed on when env_keep is not set (JupyterHub 3.0's).
var DefaultEnvKeep = []string{"PATH", "PYTHONPATH", "CONDA_ROOT", "CONDA_DEFAULT_ENV",
	"VIRTUAL_ENV", "LANG", "LC_ALL", "JUPYTERHUB_SINGLEUSER_APP"}

const (
	defaultTermTimeout = 5 * time.Second
	defaultKillTimeout = 5 * time.Second
	defaultIP          = "127.0.0.1"
)

// ProcessOptions are the options of the local-process spawners (simple, localprocess) beside the shared
// spawners.Options. The spawner modules embed both anonymously, so in JSON all sit at the top level
// of the module object.
type ProcessOptions struct {
	// EnvKeep names variables of the hub's own environment passed on to the
	// server. Default: PATH, PYTHONPATH, CONDA_ROOT, CONDA_DEFAULT_ENV,
	// VIRTUAL_ENV, LANG, LC_ALL and JUPYTERHUB_SINGLEUSER_APP (JupyterHub
	// 3.0's list; 5.2 and later keep only JUPYTERHUB_SINGLEUSER_APP, which
	// you get by setting exactly that). In JSON, an empty list [] keeps
	// nothing.
	EnvKeep []string `json:"env_keep,omitempty"`

	// TermTimeout is how long Stop waits after SIGTERM before it sends
	// SIGKILL to the server's process group. Default: 5s.
	TermTimeout caddy.Duration `json:"term_timeout,omitempty"`

	// KillTimeout is how long Stop waits after SIGKILL before it reports
	// that the process would not die. Default: 5s.
	KillTimeout caddy.Duration `json:"kill_timeout,omitempty"`

	// IP is the address the server listens on, given to it in
	// JUPYTERHUB_SERVICE_URL. An unspecified address (0.0.0.0, ::) makes the
	// server listen everywhere while the hub connects over loopback.
	// Default: 127.0.0.1.
	IP string `json:"ip,omitempty"`

	// Port is the port the server listens on; it must be in 0..65535.
	// Default: 0, a free port picked at each start.
	Port int `json:"port,omitempty"`

	// ProfileList are the choices offered on the spawn page (Caddyfile: repeatable `profile <slug>
	// { ... }`), each overriding cmd, args, environment, default_url, mem_limit or cpu_limit; a
	// start runs with the chosen one (user option "profile"), else the default one. Default: none,
	// no choice.
	ProfileList []Profile `json:"profiles,omitempty"`
}

// Provision applies defaults and validates the options. It does no I/O.
func (o *ProcessOptions) Provision() error {
	if o.EnvKeep == nil {
		o.EnvKeep = append([]string(nil), DefaultEnvKeep...)
	}
	for _, k := range o.EnvKeep {
		if err := spawners.CheckEnvName(k); err != nil {
			return fmt.Errorf("env_keep: %w", err)
		}
	}
	for _, d := range []struct {
		name string
		v    *caddy.Duration
		def  time.Duration
	}{
		{"term_timeout", &o.TermTimeout, defaultTermTimeout},
		{"kill_timeout", &o.KillTimeout, defaultKillTimeout},
	} {
		if *d.v < 0 {
			return fmt.Errorf("%s: must not be negative, got %s", d.name, time.Duration(*d.v))
		}
		if *d.v == 0 {
			*d.v = caddy.Duration(d.def)
		}
	}
	if o.IP == "" {
		o.IP = defaultIP
	}
	if net.ParseIP(o.IP) == nil {
		return fmt.Errorf("ip: %q is not an IP address", o.IP)
	}
	if o.Port < 0 || o.Port > 65535 {
		return fmt.Errorf("port: %d is not in 0..65535", o.Port)
	}
	return nil
}

// UnmarshalOption parses one local option line of a spawner's Caddyfile block, the dispenser at the
// option's name, for spawners.UnmarshalCaddyfile; handled is false for other names.
//
//	env_keep <name>...                (repeatable)
//	term_timeout|kill_timeout <duration>
//	ip <address>
//	port <port>
//	profile <slug> { ... }            (repeatable; see unmarshalProfile)
func (o *ProcessOptions) UnmarshalOption(d *caddyfile.Dispenser) (handled bool, err error) {
	switch name := d.Val(); name {
	case "env_keep":
		args := d.RemainingArgs()
		if len(args) == 0 {
			return true, d.Errf("env_keep needs at least one variable name (to keep only what JupyterHub 5.2+ keeps: env_keep JUPYTERHUB_SINGLEUSER_APP)")
		}
		o.EnvKeep = append(o.EnvKeep, args...)
	case "term_timeout", "kill_timeout":
		dur, err := spawners.ParseDurationOption(d)
		if err != nil {
			return true, err
		}
		if name == "term_timeout" {
			o.TermTimeout = dur
		} else {
			o.KillTimeout = dur
		}
	case "ip":
		var v string
		if !d.AllArgs(&v) {
			return true, d.ArgErr()
		}
		if net.ParseIP(v) == nil {
			return true, d.Errf("ip: %q is not an IP address", v)
		}
		o.IP = v
	case "port":
		var v string
		if !d.AllArgs(&v) {
			return true, d.ArgErr()
		}
		p, err := strconv.Atoi(v)
		if err != nil || p < 0 || p > 65535 {
			return true, d.Errf("port: %q is not a port number in 0..65535", v)
		}
		o.Port = p
	case "profile":
		return true, o.unmarshalProfile(d)
	default:
		return false, nil
	}
	return true, nil
}

// Env returns the complete environment of a local server, in JupyterHub's order
// (LocalProcessSpawner.get_env), later entries winning: env_keep variables from the hub's own
// environment; the shared environment (spawners.Options.Env, with ~ meaning home); and last the
// account (USER, HOME, SHELL...).
func (o *ProcessOptions) Env(common *spawners.Options, req *spawners.StartRequest, serviceURL, home string, account map[string]string) map[string]string {
	env := make(map[string]string, len(o.EnvKeep)+len(req.Env)+len(account)+16)
	for _, k := range o.EnvKeep {
		if v, ok := os.LookupEnv(k); ok {
			env[k] = v
		}
	}
	for k, v := range common.Env(req, serviceURL, home) {
		env[k] = v
	}
	for k, v := range account {
		env[k] = v
	}
	return env
}
