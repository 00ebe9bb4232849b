// Package dummy is the jupyterhub.authenticators.dummy module, JupyterHub's
// DummyAuthenticator: any username logs in, with any password or, when
// password is set, with that one shared password. It exists for demos and
// tests; the hub logs a warning when it is used.
package dummy

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"fmt"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"go.uber.org/zap"

	"github.com/caddyhub/caddyhub/auth"
)

func init() {
	caddy.RegisterModule(new(Dummy))
}

// Dummy lets any username log in, with the shared password if one is set.
//
// Like JupyterHub's DummyAuthenticator (5.0), it allows every user when
// allowed_users is empty (allow_all is turned on at Provision); set
// allowed_users to restrict it. admin_users, blocked_users and the other
// common options work as for every authenticator.
type Dummy struct {
	auth.Options

	// The password every user must type. Placeholders such as
	// {env.HUB_DEMO_PASSWORD} are resolved once at start; a placeholder that
	// is unknown or resolves to an empty value is a configuration error
	// (an unset variable must not silently open the hub). Write \{ for a
	// literal brace. Default: empty, any password is accepted.
	Password string `json:"password,omitempty"`

	passwordSum [sha256.Size]byte // SHA-256 of the resolved password
	hasPassword bool
	logger      *zap.Logger
}

// CaddyModule returns the Caddy module information.
func (*Dummy) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "jupyterhub.authenticators.dummy",
		New: func() caddy.Module { return new(Dummy) },
	}
}

// Provision resolves the password and prepares the common options.
func (d *Dummy) Provision(ctx caddy.Context) error {
	d.logger = ctx.Logger()
	d.hasPassword = false
	if d.Password != "" {
		pw, err := caddy.NewReplacer().ReplaceOrErr(d.Password, true, true)
		if err != nil {
			return fmt.Errorf("dummy authenticator: password: %w", err)
		}
		d.passwordSum = sha256.Sum256([]byte(pw))
		d.hasPassword = true
	}
	if len(d.AllowedUsers) == 0 {
		d.AllowAll = true // JupyterHub 5 DummyAuthenticator._allow_all_default
	}
	if err := d.Options.Provision(); err != nil {
		return fmt.Errorf("dummy authenticator: %w", err)
	}
	if d.hasPassword {
		d.logger.Warn("using the dummy authenticator: anyone who knows the shared password can log in; not meant for production")
	} else {
		d.logger.Warn("using the dummy authenticator without a password: anyone can log in as anyone; not meant for production")
	}
	return nil
}

// Common returns the options shared by all authenticators.
func (d *Dummy) Common() *auth.Options { return &d.Options }

// Authenticate accepts any valid username with the shared password (or any
// password when none is set), then applies the allow/block policy.
func (d *Dummy) Authenticate(_ context.Context, username, password string) (*auth.User, error) {
	name, err := d.Normalize(username)
	if err != nil {
		return nil, err
	}
	if d.hasPassword {
		// Comparing fixed-size digests keeps the time independent of the
		// password's length as well as its content.
		sum := sha256.Sum256([]byte(password))
		if subtle.ConstantTimeCompare(sum[:], d.passwordSum[:]) != 1 {
			return nil, fmt.Errorf("dummy authenticator: wrong shared password: %w", auth.ErrInvalidCredentials)
		}
	}
	admin, err := d.Authorize(name)
	if err != nil {
		return nil, err
	}
	return &auth.User{Name: name, Admin: admin}, nil
}

// UnmarshalCaddyfile sets up the authenticator from Caddyfile tokens,
// with the dispenser on the module name:
//
//	authenticator dummy {
//		password {env.HUB_DEMO_PASSWORD}
//		allowed_users alice bob
//		admin_users alice
//	}
//
// plus every common option (auth.Options.UnmarshalOption).
func (d *Dummy) UnmarshalCaddyfile(disp *caddyfile.Dispenser) error {
	disp.Next() // module name
	if disp.NextArg() {
		return disp.ArgErr()
	}
	for disp.NextBlock(0) {
		if handled, err := d.UnmarshalOption(disp); handled {
			if err != nil {
				return err
			}
			continue
		}
		switch disp.Val() {
		case "password":
			if !disp.NextArg() {
				return disp.ArgErr()
			}
			d.Password = disp.Val()
			if disp.NextArg() {
				return disp.ArgErr()
			}
		default:
			return disp.Errf("unrecognized dummy authenticator option %q", disp.Val())
		}
	}
	return nil
}

// Interface guards
var (
	_ caddy.Provisioner      = (*Dummy)(nil)
	_ caddyfile.Unmarshaler  = (*Dummy)(nil)
	_ auth.FormAuthenticator = (*Dummy)(nil)
)
