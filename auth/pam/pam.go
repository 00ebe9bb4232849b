// Package pam is the jupyterhub.authenticators.pam module, JupyterHub's
// PAMAuthenticator and the hub's default authenticator: users log in with
// the name and password of their local system account, checked by the PAM
// stack of a service (/etc/pam.d/login by default).
//
// PAM needs cgo. The library is loaded at run time (dlopen of libpam.so.0),
// so building needs gcc but not the PAM headers (libpam0g-dev); running
// needs libpam0g, which every Debian or Ubuntu system has. A binary built
// with CGO_ENABLED=0 (xcaddy's default) still has the module, but every
// login fails with an error that says how to rebuild.
//
// To check the password of any account other than its own, caddy must run
// as root (pam_unix reads /etc/shadow); StartupWarning says so.
package pam

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/user"
	"strings"
	"sync/atomic"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"go.uber.org/zap"

	"github.com/caddyhub/caddyhub/auth"
)

func init() {
	caddy.RegisterModule(new(PAM))
}

// maxPasswordBytes bounds what is handed to PAM; PAM's own limit for a
// response is 512 bytes (PAM_MAX_RESP_SIZE), longer input is refused
// before it reaches a C string.
const maxPasswordBytes = 4096

// PAM authenticates local system accounts through PAM.
//
// The typed name is normalized first (trimmed, lower-cased: auth.Options),
// and PAM checks the password of the account with that normalized name, so
// that the hub user is always the account that proved its password; an
// account whose name has capital letters cannot log in. username_map then
// maps the account name to the hub user's name.
type PAM struct {
	auth.Options

	// The PAM service whose configuration (/etc/pam.d/<service>) checks
	// the password. Default: "login".
	Service string `json:"service,omitempty"`

	// Run PAM's account stack (pam_acct_mgmt) after the password check, so
	// that expired or disabled accounts, and what pam_access or
	// pam_nologin say, are enforced. A failed account check refuses the
	// login as not allowed. Turning it off lets in any account whose
	// password is right. Default: true.
	CheckAccount *bool `json:"check_account,omitempty"`

	// Open a PAM session (pam_open_session and pam_setcred) for a user
	// before their server starts and close it after it stops, like
	// JupyterHub's open_sessions. Session modules that mount home
	// directories or fetch credentials may need it; many session stacks do
	// not work for a process that is not a login shell, so after the first
	// failure sessions are turned off until the next config load (as
	// JupyterHub does). Default: false.
	OpenSessions bool `json:"open_sessions,omitempty"`

	// Members of these Unix groups may log in, in addition to
	// allowed_users and admin_users (JupyterHub's
	// LocalAuthenticator.allowed_groups, with JupyterHub 5's rule that both
	// add up). Membership counts the account's primary group too. Default:
	// empty.
	AllowedGroups []string `json:"allowed_groups,omitempty"`

	// Members of these Unix groups are admins (and may log in), in
	// addition to admin_users (JupyterHub's PAMAuthenticator.admin_groups).
	// Membership counts the account's primary group too. Default: empty.
	AdminGroups []string `json:"admin_groups,omitempty"`

	logger         *zap.Logger
	sessionsBroken atomic.Bool
	checkAccount   bool // the resolved CheckAccount
}

// CaddyModule returns the Caddy module information.
func (*PAM) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "jupyterhub.authenticators.pam",
		New: func() caddy.Module { return new(PAM) },
	}
}

// Provision fills in defaults and prepares the common options. It does not
// load libpam (that happens at the first login).
func (p *PAM) Provision(ctx caddy.Context) error {
	p.logger = ctx.Logger()
	if p.Service == "" {
		p.Service = "login"
	}
	p.checkAccount = p.CheckAccount == nil || *p.CheckAccount
	if err := p.Options.Provision(); err != nil {
		return fmt.Errorf("pam authenticator: %w", err)
	}
	if unavailable != nil {
		p.logger.Warn("PAM authenticator configured but unavailable; every login will fail", zap.Error(unavailable))
	}
	return nil
}

// Validate checks the options.
func (p *PAM) Validate() error {
	if strings.ContainsAny(p.Service, "/\x00") || p.Service == "." || p.Service == ".." {
		return fmt.Errorf("pam authenticator: service %q is not a PAM service name", p.Service)
	}
	for _, g := range append(append([]string(nil), p.AllowedGroups...), p.AdminGroups...) {
		if strings.TrimSpace(g) == "" {
			return fmt.Errorf("pam authenticator: empty group name in allowed_groups or admin_groups")
		}
	}
	return nil
}

// Common returns the options shared by all authenticators.
func (p *PAM) Common() *auth.Options { return &p.Options }

// Authenticate checks the password with PAM, then the account (unless
// check_account is off), then the allow/admin/block policy with
// allowed_groups and admin_groups.
func (p *PAM) Authenticate(ctx context.Context, username, password string) (*auth.User, error) {
	account, err := auth.NormalizeUsername(username)
	if err != nil {
		return nil, err
	}
	name, err := p.Normalize(username)
	if err != nil {
		return nil, err
	}
	if password == "" || len(password) > maxPasswordBytes || strings.ContainsRune(password, 0) {
		return nil, fmt.Errorf("pam authenticator: password empty, too long or with a NUL byte: %w", auth.ErrInvalidCredentials)
	}
	if err := authenticate(ctx, p.Service, account, password, p.checkAccount); err != nil {
		return nil, fmt.Errorf("pam authenticator: %w", err)
	}
	var g auth.Grant
	if len(p.AllowedGroups) > 0 || len(p.AdminGroups) > 0 {
		groups, err := accountGroups(account)
		if err != nil {
			return nil, fmt.Errorf("pam authenticator: %w", err)
		}
		g.Allowed = p.memberOfAny(groups, p.AllowedGroups)
		g.Admin = p.memberOfAny(groups, p.AdminGroups)
	}
	admin, err := p.AuthorizeWith(name, g)
	if err != nil {
		return nil, err
	}
	return &auth.User{Name: name, Admin: admin}, nil
}

// accountGroups returns the group ids of a system account, its primary
// group included.
func accountGroups(account string) (map[string]bool, error) {
	u, err := user.Lookup(account)
	if err != nil {
		return nil, fmt.Errorf("looking up account %q for its groups: %w", account, err)
	}
	gids, err := u.GroupIds()
	if err != nil {
		return nil, fmt.Errorf("listing groups of %q: %w", account, err)
	}
	set := make(map[string]bool, len(gids)+1)
	set[u.Gid] = true
	for _, g := range gids {
		set[g] = true
	}
	return set, nil
}

// memberOfAny reports whether one of the named groups is among gids.
// Groups are looked up at every login, so changes apply without a reload;
// a group that does not exist is logged and skipped.
func (p *PAM) memberOfAny(gids map[string]bool, names []string) bool {
	for _, name := range names {
		g, err := user.LookupGroup(name)
		if err != nil {
			p.log().Warn("pam authenticator: unknown group in configuration", zap.String("group", name), zap.Error(err))
			continue
		}
		if gids[g.Gid] {
			return true
		}
	}
	return false
}

func (p *PAM) log() *zap.Logger {
	if p.logger == nil {
		return zap.NewNop()
	}
	return p.logger
}

// PreSpawnStart opens a PAM session for the user when open_sessions is on.
func (p *PAM) PreSpawnStart(ctx context.Context, name string) error {
	return p.session(ctx, name, true)
}

// PostSpawnStop closes the user's PAM session when open_sessions is on.
func (p *PAM) PostSpawnStop(ctx context.Context, name string) error {
	return p.session(ctx, name, false)
}

func (p *PAM) session(ctx context.Context, name string, open bool) error {
	if !p.OpenSessions || p.sessionsBroken.Load() {
		return nil
	}
	if err := session(ctx, p.Service, name, open); err != nil {
		if !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) {
			p.sessionsBroken.Store(true)
			p.log().Warn("PAM session failed; PAM sessions are off until the next config load",
				zap.String("user", name), zap.Error(err))
		}
		return fmt.Errorf("pam authenticator: %w", err)
	}
	return nil
}

// StartupWarning adds to the common warnings what makes PAM logins fail
// quietly: a missing service configuration, not running as root, a build
// without cgo.
func (p *PAM) StartupWarning() string {
	o := p.Options // a copy: allowed_groups counts as allow configuration
	if len(p.AllowedGroups) > 0 || len(p.AdminGroups) > 0 {
		o.AnyAllowConfig = true
	}
	var w []string
	if s := o.StartupWarning(); s != "" {
		w = append(w, s)
	}
	if unavailable != nil {
		w = append(w, unavailable.Error()+".")
	}
	if !serviceConfigured(p.Service) {
		w = append(w, fmt.Sprintf("PAM service %q has no file /etc/pam.d/%s, so PAM uses the service \"other\", which usually refuses everyone.",
			p.Service, p.Service))
	}
	if uid := os.Geteuid(); uid != 0 {
		w = append(w, fmt.Sprintf("caddy runs as uid %d, not root, so PAM can check the password of that account only.", uid))
	}
	return strings.Join(w, " ")
}

// serviceConfigured reports whether Linux-PAM finds a configuration for
// service. When /etc/pam.d exists, Linux-PAM ignores /etc/pam.conf; newer
// versions also read a vendor directory.
func serviceConfigured(service string) bool {
	if st, err := os.Stat("/etc/pam.d"); err != nil || !st.IsDir() {
		return true // /etc/pam.conf or a system we do not know: don't guess
	}
	for _, dir := range []string{"/etc/pam.d/", "/usr/lib/pam.d/", "/usr/share/pam.d/"} {
		if _, err := os.Stat(dir + service); err == nil {
			return true
		}
	}
	return false
}

// UnmarshalCaddyfile sets up the authenticator from Caddyfile tokens,
// with the dispenser on the module name:
//
//	authenticator pam {
//		service login
//		check_account [true|false]
//		open_sessions [true|false]
//		allowed_groups <group...>
//		admin_groups <group...>
//		allowed_users alice bob
//		admin_users alice
//	}
//
// plus every common option (auth.Options.UnmarshalOption).
func (p *PAM) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // module name
	if d.NextArg() {
		return d.ArgErr()
	}
	for d.NextBlock(0) {
		if handled, err := p.UnmarshalOption(d); handled {
			if err != nil {
				return err
			}
			continue
		}
		switch opt := d.Val(); opt {
		case "service":
			if !d.NextArg() {
				return d.ArgErr()
			}
			p.Service = d.Val()
			if d.NextArg() {
				return d.ArgErr()
			}
		case "check_account":
			v, err := auth.ParseFlag(d)
			if err != nil {
				return err
			}
			p.CheckAccount = &v
		case "open_sessions":
			v, err := auth.ParseFlag(d)
			if err != nil {
				return err
			}
			p.OpenSessions = v
		case "allowed_groups", "admin_groups":
			groups := d.RemainingArgs()
			if len(groups) == 0 {
				return d.Errf("%s needs at least one group name", opt)
			}
			if opt == "allowed_groups" {
				p.AllowedGroups = append(p.AllowedGroups, groups...)
			} else {
				p.AdminGroups = append(p.AdminGroups, groups...)
			}
		default:
			return d.Errf("unrecognized pam authenticator option %q", opt)
		}
	}
	return nil
}

// Interface guards
var (
	_ caddy.Provisioner      = (*PAM)(nil)
	_ caddy.Validator        = (*PAM)(nil)
	_ caddyfile.Unmarshaler  = (*PAM)(nil)
	_ auth.FormAuthenticator = (*PAM)(nil)
	_ auth.StartupWarner     = (*PAM)(nil)
	_ auth.SpawnHooks        = (*PAM)(nil)
)
