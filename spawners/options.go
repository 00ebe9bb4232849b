package spawners

import (
	"fmt"
	"math"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
)

// Defaults of the shared options, JupyterHub 3.0's (docs/protocols.md, "Spawner options").
var (
	// DefaultCmd is the command run when cmd is not set.
	DefaultCmd = []string{"jupyterhub-singleuser"}
	// DefaultEnvKeep lists the hub variables passed on when env_keep is not set.
	DefaultEnvKeep = []string{"PATH", "PYTHONPATH", "CONDA_ROOT", "CONDA_DEFAULT_ENV",
		"VIRTUAL_ENV", "LANG", "LC_ALL", "JUPYTERHUB_SINGLEUSER_APP"}
)

const (
	defaultStartTimeout = 60 * time.Second
	defaultHTTPTimeout  = 30 * time.Second
	defaultPollInterval = 30 * time.Second
	defaultTermTimeout  = 5 * time.Second
	defaultKillTimeout  = 5 * time.Second
	defaultIP           = "127.0.0.1"
)

// Options are the options every spawner shares, JupyterHub's Spawner traits in
// snake_case. Spawner modules embed them anonymously, so in JSON they sit at
// the top level of the module object, and call Provision and UnmarshalOption.
type Options struct {
	// Cmd is the command that starts a single-user server, looked up in the
	// PATH of the server's environment. Default: ["jupyterhub-singleuser"].
	Cmd []string `json:"cmd,omitempty"`

	// Args are extra arguments appended to cmd. Default: none.
	Args []string `json:"args,omitempty"`

	// NotebookDir is the directory the server starts in and serves
	// (JUPYTERHUB_ROOT_DIR). A leading ~ means the user's home; {username}
	// and {servername} are replaced, as are Caddy's global placeholders such
	// as {env.VAR}. Default: the user's home.
	NotebookDir string `json:"notebook_dir,omitempty"`

	// DefaultURL is the page users land on, e.g. "/lab"
	// (JUPYTERHUB_DEFAULT_URL). Placeholders as for notebook_dir.
	// Default: unset, the server's own default.
	DefaultURL string `json:"default_url,omitempty"`

	// Environment holds extra variables for the server. They are applied
	// after the hub's JUPYTERHUB_* variables and may override them; only
	// USER, HOME, SHELL and LOGNAME, which the spawner sets from the account,
	// come later. Placeholders as for notebook_dir. Default: none.
	Environment map[string]string `json:"environment,omitempty"`

	// EnvKeep names variables of the hub's own environment passed on to the
	// server. Default: PATH, PYTHONPATH, CONDA_ROOT, CONDA_DEFAULT_ENV,
	// VIRTUAL_ENV, LANG, LC_ALL and JUPYTERHUB_SINGLEUSER_APP (JupyterHub
	// 3.0's list; 5.2 and later keep only JUPYTERHUB_SINGLEUSER_APP, which
	// you get by setting exactly that). In JSON, an empty list [] keeps
	// nothing.
	EnvKeep []string `json:"env_keep,omitempty"`

	// StartTimeout bounds a whole start, from launching the process until
	// it answers HTTP. Default: 60s.
	StartTimeout caddy.Duration `json:"start_timeout,omitempty"`

	// HTTPTimeout bounds the wait for the started server to answer HTTP at
	// its URL; any HTTP response counts. Default: 30s.
	HTTPTimeout caddy.Duration `json:"http_timeout,omitempty"`

	// PollInterval is how often the hub checks that a server still runs.
	// Default: 30s.
	PollInterval caddy.Duration `json:"poll_interval,omitempty"`

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

	// MemLimit is the memory limit given to the server in MEM_LIMIT, as bytes
	// or with a K, M, G or T suffix (powers of 1024), e.g. "1G". The local
	// spawners only pass it on; they do not enforce it. Default: unset.
	MemLimit string `json:"mem_limit,omitempty"`

	// CPULimit is the number of CPU cores given to the server in CPU_LIMIT.
	// The local spawners only pass it on. Default: 0, unset.
	CPULimit float64 `json:"cpu_limit,omitempty"`

	memLimit int64
}

// Provision applies defaults and validates the options. It does no I/O.
func (o *Options) Provision() error {
	if len(o.Cmd) == 0 {
		o.Cmd = append([]string(nil), DefaultCmd...)
	}
	for i, c := range o.Cmd {
		if c == "" {
			return fmt.Errorf("cmd: argument %d is empty", i)
		}
	}
	if o.EnvKeep == nil {
		o.EnvKeep = append([]string(nil), DefaultEnvKeep...)
	}
	for _, k := range o.EnvKeep {
		if err := checkEnvName(k); err != nil {
			return fmt.Errorf("env_keep: %w", err)
		}
	}
	for k, v := range o.Environment {
		if err := checkEnvName(k); err != nil {
			return fmt.Errorf("environment: %w", err)
		}
		if strings.ContainsRune(v, 0) {
			return fmt.Errorf("environment: value of %s contains a NUL byte", k)
		}
	}
	for _, d := range []struct {
		name string
		v    *caddy.Duration
		def  time.Duration
	}{
		{"start_timeout", &o.StartTimeout, defaultStartTimeout},
		{"http_timeout", &o.HTTPTimeout, defaultHTTPTimeout},
		{"poll_interval", &o.PollInterval, defaultPollInterval},
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
	if o.MemLimit != "" {
		n, err := ParseByteSize(o.MemLimit)
		if err != nil {
			return fmt.Errorf("mem_limit: %w", err)
		}
		o.memLimit = n
	}
	if o.CPULimit < 0 || math.IsNaN(o.CPULimit) || math.IsInf(o.CPULimit, 0) {
		return fmt.Errorf("cpu_limit: %v is not a positive number of cores", o.CPULimit)
	}
	return nil
}

func checkEnvName(k string) error {
	if k == "" || strings.ContainsAny(k, "=\x00") {
		return fmt.Errorf("%q is not a valid variable name", k)
	}
	return nil
}

// ParseByteSize parses a memory size the way JupyterHub's ByteSpecification
// does: a number of bytes, or a number with a K, M, G or T suffix meaning
// powers of 1024 ("1G" = 1073741824, "1.5M"). Lower-case suffixes are accepted.
func ParseByteSize(s string) (int64, error) {
	bad := fmt.Errorf("%q is not a memory size: use bytes or a number with a K, M, G or T suffix", s)
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, bad
	}
	mult := 1.0
	switch s[len(s)-1] {
	case 'K', 'k':
		mult = 1 << 10
	case 'M', 'm':
		mult = 1 << 20
	case 'G', 'g':
		mult = 1 << 30
	case 'T', 't':
		mult = 1 << 40
	}
	num := s
	if mult != 1 {
		num = s[:len(s)-1]
	}
	f, err := strconv.ParseFloat(num, 64)
	if err != nil || f < 0 || math.IsInf(f, 0) || math.IsNaN(f) || f*mult > math.MaxInt64/2 {
		return 0, bad
	}
	return int64(f * mult), nil
}

// UnmarshalOption parses one sub-option line of a spawner's Caddyfile block,
// the dispenser at the option's name. It reports handled=false for names
// that are not shared options, so the module can parse its own or fail.
//
//	cmd <command> [<args>...]
//	args <args>...                    (repeatable, appends)
//	notebook_dir <dir>
//	default_url <url>
//	environment <name> <value>       (repeatable), or
//	environment {
//		<name> <value>
//	}
//	env_keep <name>...                (repeatable)
//	start_timeout|http_timeout|poll_interval|term_timeout|kill_timeout <duration>
//	ip <address>
//	port <port>
//	mem_limit <size>
//	cpu_limit <cores>
func (o *Options) UnmarshalOption(d *caddyfile.Dispenser) (handled bool, err error) {
	name := d.Val()
	switch name {
	case "cmd":
		args := d.RemainingArgs()
		if len(args) == 0 {
			return true, d.ArgErr()
		}
		o.Cmd = args
	case "args":
		args := d.RemainingArgs()
		if len(args) == 0 {
			return true, d.ArgErr()
		}
		o.Args = append(o.Args, args...)
	case "notebook_dir", "default_url", "ip", "mem_limit":
		var v string
		if !d.AllArgs(&v) {
			return true, d.ArgErr()
		}
		switch name {
		case "notebook_dir":
			o.NotebookDir = v
		case "default_url":
			o.DefaultURL = v
		case "ip":
			if net.ParseIP(v) == nil {
				return true, d.Errf("ip: %q is not an IP address", v)
			}
			o.IP = v
		case "mem_limit":
			if _, err := ParseByteSize(v); err != nil {
				return true, d.Errf("mem_limit: %v", err)
			}
			o.MemLimit = v
		}
	case "environment":
		if o.Environment == nil {
			o.Environment = make(map[string]string)
		}
		args := d.RemainingArgs()
		switch len(args) {
		case 2:
			o.Environment[args[0]] = args[1]
		case 0:
			for nesting := d.Nesting(); d.NextBlock(nesting); {
				k := d.Val()
				var v string
				if !d.AllArgs(&v) {
					return true, d.Errf("environment: %s needs exactly one value", k)
				}
				o.Environment[k] = v
			}
		default:
			return true, d.Errf("environment: want <name> <value> or a block, got %d arguments", len(args))
		}
	case "env_keep":
		args := d.RemainingArgs()
		if len(args) == 0 {
			return true, d.Errf("env_keep needs at least one variable name (to keep only what JupyterHub 5.2+ keeps: env_keep JUPYTERHUB_SINGLEUSER_APP)")
		}
		o.EnvKeep = append(o.EnvKeep, args...)
	case "start_timeout", "http_timeout", "poll_interval", "term_timeout", "kill_timeout":
		var v string
		if !d.AllArgs(&v) {
			return true, d.ArgErr()
		}
		dur, err := caddy.ParseDuration(v)
		if err != nil {
			return true, d.Errf("%s: %v", name, err)
		}
		if dur < 0 {
			return true, d.Errf("%s: must not be negative, got %s", name, v)
		}
		*map[string]*caddy.Duration{
			"start_timeout": &o.StartTimeout,
			"http_timeout":  &o.HTTPTimeout,
			"poll_interval": &o.PollInterval,
			"term_timeout":  &o.TermTimeout,
			"kill_timeout":  &o.KillTimeout,
		}[name] = caddy.Duration(dur)
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
	case "cpu_limit":
		var v string
		if !d.AllArgs(&v) {
			return true, d.ArgErr()
		}
		f, err := strconv.ParseFloat(v, 64)
		if err != nil || f < 0 || math.IsInf(f, 0) || math.IsNaN(f) {
			return true, d.Errf("cpu_limit: %q is not a positive number of cores", v)
		}
		o.CPULimit = f
	default:
		return false, nil
	}
	return true, nil
}

// UnmarshalCaddyfile parses a spawner module's Caddyfile segment, the
// dispenser at the module name: no arguments, then a block of shared
// options (UnmarshalOption) and, if own is not nil, the module's own, which
// own parses and reports as handled.
func UnmarshalCaddyfile(d *caddyfile.Dispenser, o *Options, own func(d *caddyfile.Dispenser) (bool, error)) error {
	d.Next() // the module name
	name := d.Val()
	if d.NextArg() {
		return d.Errf("spawner %s takes no arguments, got %q", name, d.Val())
	}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		handled, err := o.UnmarshalOption(d)
		if err != nil {
			return err
		}
		if !handled && own != nil {
			handled, err = own(d)
			if err != nil {
				return err
			}
		}
		if !handled {
			return d.Errf("spawner %s: unrecognized option %q", name, d.Val())
		}
	}
	return nil
}
