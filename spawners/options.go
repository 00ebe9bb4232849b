package spawners

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
)

// DefaultCmd is the command run when cmd is not set (JupyterHub's default; docs/protocols.md,
// "Spawner options").
var DefaultCmd = []string{"jupyterhub-singleuser"}

const (
	defaultStartTimeout = 60 * time.Second
	defaultHTTPTimeout  = 30 * time.Second
	defaultPollInterval = 30 * time.Second
)

// Options are the options every spawner shares, JupyterHub's Spawner traits in
// snake_case: what a server runs, its environment, the timeouts the hub
// applies and the limits it is given. Options that make sense only for some
// spawners (env_keep, ip and port for local processes; an image for
// containers) belong to those spawners. Spawner modules embed Options
// anonymously, so in JSON they sit at the top level of the module object, and
// call Provision and UnmarshalOption.
type Options struct {
	// Cmd is the command that starts a single-user server, looked up in the
	// PATH of the server's environment. Default: ["jupyterhub-singleuser"].
	Cmd []string `json:"cmd,omitempty"`

	// Args are extra arguments appended to cmd. Default: none.
	Args []string `json:"args,omitempty"`

	// NotebookDir is the directory the server starts in and serves
	// (JUPYTERHUB_ROOT_DIR). {username} and {servername} are replaced, as
	// are Caddy's global placeholders such as {env.VAR}; the local spawners
	// also read a leading ~ as the user's home. Default: the user's home.
	NotebookDir string `json:"notebook_dir,omitempty"`

	// DefaultURL is the page users land on, e.g. "/lab"
	// (JUPYTERHUB_DEFAULT_URL). Placeholders as for notebook_dir.
	// Default: unset, the server's own default.
	DefaultURL string `json:"default_url,omitempty"`

	// Environment holds extra variables for the server. They are applied
	// after the hub's JUPYTERHUB_* variables and may override them; only
	// what a spawner sets from the account (USER, HOME, SHELL and LOGNAME
	// for the local spawners) comes later. Placeholders as for
	// notebook_dir. Default: none.
	Environment map[string]string `json:"environment,omitempty"`

	// StartTimeout bounds a whole start, from calling the spawner until the
	// server answers HTTP. Default: 60s.
	StartTimeout caddy.Duration `json:"start_timeout,omitempty"`

	// HTTPTimeout bounds the wait for the started server to answer HTTP at
	// its URL; any HTTP response counts. Default: 30s.
	HTTPTimeout caddy.Duration `json:"http_timeout,omitempty"`

	// PollInterval is how often the hub checks that a server still runs.
	// Default: 30s.
	PollInterval caddy.Duration `json:"poll_interval,omitempty"`

	// MemLimit is the memory limit given to the server in MEM_LIMIT, as bytes
	// or with a K, M, G or T suffix (powers of 1024), e.g. "1G". The local
	// spawners only pass it on; container spawners enforce it. Default: unset.
	MemLimit string `json:"mem_limit,omitempty"`

	// CPULimit is the number of CPU cores given to the server in CPU_LIMIT.
	// The local spawners only pass it on; container spawners enforce it.
	// Default: 0, unset.
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
	for k, v := range o.Environment {
		if err := CheckEnvName(k); err != nil {
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
	} {
		if *d.v < 0 {
			return fmt.Errorf("%s: must not be negative, got %s", d.name, time.Duration(*d.v))
		}
		if *d.v == 0 {
			*d.v = caddy.Duration(d.def)
		}
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

// CheckEnvName rejects a name that cannot be an environment variable's:
// empty, or containing "=" or a NUL byte.
func CheckEnvName(k string) error {
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
//	start_timeout|http_timeout|poll_interval <duration>
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
	case "notebook_dir", "default_url", "mem_limit":
		var v string
		if !d.AllArgs(&v) {
			return true, d.ArgErr()
		}
		switch name {
		case "notebook_dir":
			o.NotebookDir = v
		case "default_url":
			o.DefaultURL = v
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
	case "start_timeout", "http_timeout", "poll_interval":
		dur, err := ParseDurationOption(d)
		if err != nil {
			return true, err
		}
		*map[string]*caddy.Duration{
			"start_timeout": &o.StartTimeout,
			"http_timeout":  &o.HTTPTimeout,
			"poll_interval": &o.PollInterval,
		}[name] = dur
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

// ParseDurationOption parses the single, non-negative duration argument of
// the option the dispenser is at.
func ParseDurationOption(d *caddyfile.Dispenser) (caddy.Duration, error) {
	name := d.Val()
	var v string
	if !d.AllArgs(&v) {
		return 0, d.ArgErr()
	}
	dur, err := caddy.ParseDuration(v)
	if err != nil {
		return 0, d.Errf("%s: %v", name, err)
	}
	if dur < 0 {
		return 0, d.Errf("%s: must not be negative, got %s", name, v)
	}
	return caddy.Duration(dur), nil
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
