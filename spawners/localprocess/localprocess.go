// Package localprocess is the jupyterhub.spawners.localprocess module,
// JupyterHub's LocalProcessSpawner and the hub's default: each user's server
// runs as the system account of the same name, so the operating system keeps
// users apart. Starting servers for other accounts needs a hub running as
// root.
package localprocess

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"go.uber.org/zap"

	"github.com/caddyhub/caddyhub/spawners"
	"github.com/caddyhub/caddyhub/spawners/internal/localproc"
)

func init() {
	caddy.RegisterModule(Spawner{})
}

// Spawner runs each server as the user's system account: the uid, primary
// gid and supplementary groups of the passwd entry named like the hub user;
// USER, LOGNAME, HOME and SHELL from that entry; working directory
// notebook_dir (~ is the account's home) or the home, which must exist. It
// refuses accounts with uid 0.
//
// The server's output goes to DataDir/logs/<user>/server.log, owned by the
// hub's account with mode 0600 in a 0700 directory: the user's process
// writes to it through the descriptor it inherits, but cannot read, replace
// or redirect it (a user-owned log would let a user point the hub's writes
// elsewhere with a symlink).
type Spawner struct {
	spawners.Options
	localproc.ProcessOptions

	logger *zap.Logger
}

// CaddyModule returns the Caddy module information.
func (Spawner) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "jupyterhub.spawners.localprocess",
		New: func() caddy.Module { return new(Spawner) },
	}
}

// Provision applies defaults and validates the options. It does no I/O.
func (s *Spawner) Provision(ctx caddy.Context) error {
	s.logger = ctx.Logger()
	if err := s.Options.Provision(); err != nil {
		return fmt.Errorf("spawner localprocess: %w", err)
	}
	if err := s.ProcessOptions.Provision(); err != nil {
		return fmt.Errorf("spawner localprocess: %w", err)
	}
	if err := s.ProvisionProfiles(&s.Options); err != nil {
		return fmt.Errorf("spawner localprocess: %w", err)
	}
	if euid := os.Geteuid(); euid > 0 {
		s.logger.Warn("the hub does not run as root: the localprocess spawner can start servers only for the hub's own account",
			zap.Int("euid", euid))
	}
	return nil
}

// Common returns the shared options.
func (s *Spawner) Common() *spawners.Options { return &s.Options }

// Start launches the server as the user's account and returns once its
// process runs (the hub waits for it to answer).
func (s *Spawner) Start(ctx context.Context, req *spawners.StartRequest, progress func(spawners.Event)) (*spawners.Server, error) {
	if !filepath.IsAbs(req.DataDir) {
		return nil, fmt.Errorf("spawner localprocess: data_dir %q is not an absolute path", req.DataDir)
	}
	if err := req.CheckNames(); err != nil {
		return nil, fmt.Errorf("spawner localprocess: %w", err)
	}
	opts, err := s.OptionsFor(&s.Options, req.UserOptions)
	if err != nil {
		return nil, err
	}
	acct, err := lookupAccount(req.User)
	if err != nil {
		return nil, err
	}
	var cred *localproc.Credential
	switch euid := os.Geteuid(); {
	case euid == 0:
		cred = &localproc.Credential{Uid: acct.uid, Gid: acct.gid, Groups: acct.groups}
	case uint32(euid) == acct.uid:
		// The hub's own account: nothing to switch.
	default:
		return nil, fmt.Errorf("cannot start a server as user %s: the hub runs as uid %d, not as root; run the hub as root or use spawner simple", req.User, euid)
	}
	dir := acct.home
	if root := opts.RootDir(req, acct.home); root != "" {
		dir = root
	}
	if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
		what := "notebook_dir"
		if dir == acct.home {
			what = "home directory"
		}
		return nil, fmt.Errorf("%s %s of user %s does not exist or is not a directory", what, dir, req.User)
	}
	env := map[string]string{"USER": acct.name, "LOGNAME": acct.name}
	if acct.home != "" {
		env["HOME"] = acct.home
	}
	if acct.shell != "" {
		env["SHELL"] = acct.shell
	}
	return localproc.Start(ctx, localproc.Spec{
		Options: opts,
		Local:   &s.ProcessOptions,
		Request: req,
		Env: func(serviceURL string) map[string]string {
			return s.ProcessOptions.Env(opts, req, serviceURL, acct.home, env)
		},
		Dir:        dir,
		Credential: cred,
		Account:    acct.name,
		LogPath:    localproc.LogPath(req.DataDir, req.User, req.ServerName),
		Logger:     s.logger,
	}, progress)
}

// Poll reports whether the server is still running.
func (s *Spawner) Poll(_ context.Context, state json.RawMessage) (bool, error) {
	return localproc.Poll(state)
}

// Stop stops the server and everything left in its process group: SIGTERM, term_timeout, SIGKILL.
func (s *Spawner) Stop(ctx context.Context, state json.RawMessage) error {
	return localproc.Stop(ctx, state, time.Duration(s.TermTimeout), time.Duration(s.KillTimeout))
}

// UnmarshalCaddyfile sets up the spawner from Caddyfile tokens, the
// dispenser at the module name. Syntax: as for the simple spawner.
//
//	localprocess {
//		cmd <command> [<args>...]
//		notebook_dir <dir>
//		...
//	}
func (s *Spawner) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	return spawners.UnmarshalCaddyfile(d, &s.Options, s.ProcessOptions.UnmarshalOption)
}

// errRoot refuses to run servers as uid 0.
var errRoot = errors.New("refusing to run a server as root")

// Interface guards
var (
	_ spawners.Spawner        = (*Spawner)(nil)
	_ spawners.OptionsSpawner = (*Spawner)(nil)
	_ caddy.Provisioner       = (*Spawner)(nil)
	_ caddyfile.Unmarshaler   = (*Spawner)(nil)
)
