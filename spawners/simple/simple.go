// Package simple is the jupyterhub.spawners.simple module, JupyterHub's
// SimpleLocalProcessSpawner: every user's server runs as the hub's own
// account, with a private home under the hub's data_dir. It gives no
// isolation between users — their code runs with the hub's rights and can
// read the hub's data_dir (database, cookie secret) — so use it for demos and
// tests, and localprocess for real users.
package simple

import (
	"context"
	"encoding/json"
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

// Spawner runs each server as the hub's own account. Its home is
// DataDir/users/<username> (created 0700), set as HOME; it starts in
// notebook_dir, created if missing, or in that home. USER is the hub
// username and SHELL /bin/bash, as in JupyterHub.
type Spawner struct {
	spawners.Options
	localproc.ProcessOptions

	logger *zap.Logger
}

// CaddyModule returns the Caddy module information.
func (Spawner) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "jupyterhub.spawners.simple",
		New: func() caddy.Module { return new(Spawner) },
	}
}

// Provision applies defaults and validates the options. It does no I/O.
func (s *Spawner) Provision(ctx caddy.Context) error {
	s.logger = ctx.Logger()
	if err := s.Options.Provision(); err != nil {
		return fmt.Errorf("spawner simple: %w", err)
	}
	if err := s.ProcessOptions.Provision(); err != nil {
		return fmt.Errorf("spawner simple: %w", err)
	}
	if err := s.ProvisionProfiles(&s.Options); err != nil {
		return fmt.Errorf("spawner simple: %w", err)
	}
	return nil
}

// Common returns the shared options.
func (s *Spawner) Common() *spawners.Options { return &s.Options }

// HomeDir is the home of user's servers under the simple spawner.
func HomeDir(dataDir, user string) string {
	return filepath.Join(dataDir, "users", localproc.SafeName(user))
}

// Start launches the server and returns once its process runs (the hub waits for it to answer).
func (s *Spawner) Start(ctx context.Context, req *spawners.StartRequest, progress func(spawners.Event)) (*spawners.Server, error) {
	if !filepath.IsAbs(req.DataDir) {
		return nil, fmt.Errorf("spawner simple: data_dir %q is not an absolute path", req.DataDir)
	}
	if err := req.CheckNames(); err != nil {
		return nil, fmt.Errorf("spawner simple: %w", err)
	}
	opts, err := s.OptionsFor(&s.Options, req.UserOptions)
	if err != nil {
		return nil, err
	}
	home := HomeDir(req.DataDir, req.User)
	if err := os.MkdirAll(home, 0o700); err != nil {
		return nil, fmt.Errorf("creating home of %s: %w", req.User, err)
	}
	dir := home
	if root := opts.RootDir(req, home); root != "" {
		if err := os.MkdirAll(root, 0o700); err != nil {
			return nil, fmt.Errorf("creating notebook_dir of %s: %w", req.User, err)
		}
		dir = root
	}
	account := map[string]string{"USER": req.User, "HOME": home, "SHELL": "/bin/bash"}
	return localproc.Start(ctx, localproc.Spec{
		Options: opts,
		Local:   &s.ProcessOptions,
		Request: req,
		Env: func(serviceURL string) map[string]string {
			return s.ProcessOptions.Env(opts, req, serviceURL, home, account)
		},
		Dir:     dir,
		LogPath: localproc.LogPath(req.DataDir, req.User, req.ServerName),
		Logger:  s.logger,
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
// dispenser at the module name. Syntax:
//
//	simple {
//		cmd <command> [<args>...]
//		args <args>...
//		notebook_dir <dir>
//		default_url <url>
//		environment <name> <value>
//		env_keep <names>...
//		start_timeout <duration>
//		http_timeout <duration>
//		poll_interval <duration>
//		term_timeout <duration>
//		kill_timeout <duration>
//		ip <address>
//		port <port>
//		mem_limit <size>
//		cpu_limit <cores>
//	}
func (s *Spawner) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	return spawners.UnmarshalCaddyfile(d, &s.Options, s.ProcessOptions.UnmarshalOption)
}

// Interface guards
var (
	_ spawners.Spawner        = (*Spawner)(nil)
	_ spawners.OptionsSpawner = (*Spawner)(nil)
	_ caddy.Provisioner       = (*Spawner)(nil)
	_ caddyfile.Unmarshaler   = (*Spawner)(nil)
)
