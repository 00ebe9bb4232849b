package servers

// The spawner calls, with the authenticator's spawn hooks (SpawnHooks, e.g. PAM's
// open_sessions), JupyterHub's pre_spawn_start and post_spawn_stop: every start and stop of a server
// goes through startAndWait and stopServer here, so that the hooks run around each of them wherever
// the engine starts or stops a server (API, pages, culler, user deletion, exit with cleanup_servers,
// adoption). Every poll goes through poll.

import (
	"context"
	"encoding/json"
	"time"

	"go.uber.org/zap"

	"github.com/caddyhub/caddyhub/spawners"
)

const (
	// spawnHookTimeout bounds one call of a spawn hook.
	spawnHookTimeout = 30 * time.Second
	// pollTimeout bounds one spawner Poll.
	pollTimeout = 10 * time.Second
	// stopTimeout bounds one spawner Stop. Spawners bound their own grace periods (term_timeout and
	// kill_timeout for local processes); this only keeps a stuck engine from holding a server forever.
	stopTimeout = 2 * time.Minute
)

// startAndWait starts a server and waits until it answers (spawners.StartAndWait), after the
// authenticator's PreSpawnStart. A failed start is followed by PostSpawnStop, as JupyterHub stops a
// failed spawn.
func (e *Engine) startAndWait(ctx context.Context, req *spawners.StartRequest, progress func(spawners.Event)) (*spawners.Server, error) {
	e.preSpawnStart(ctx, req.User)
	srv, err := spawners.StartAndWait(ctx, e.spawner, req, progress)
	if err != nil {
		e.postSpawnStop(req.User)
	}
	return srv, err
}

// stopServer asks the spawner to stop a server of user and, once it stopped, runs the
// authenticator's PostSpawnStop. A failed stop leaves the server running: no hook.
func (e *Engine) stopServer(ctx context.Context, user string, state json.RawMessage) error {
	if err := e.spawner.Stop(ctx, state); err != nil {
		return err
	}
	e.postSpawnStop(user)
	return nil
}

// stopQuietly stops a server through the spawner after a failure, logging (not returning) an error.
func (e *Engine) stopQuietly(user, server string, state json.RawMessage, what string) {
	ctx, cancel := context.WithTimeout(context.Background(), stopTimeout)
	defer cancel()
	if err := e.stopServer(ctx, user, state); err != nil {
		e.logger.Error(what, zap.String("user", user), zap.String("server", server), zap.Error(err))
	}
}

// poll asks the spawner whether a server still runs, within pollTimeout.
func (e *Engine) poll(ctx context.Context, state json.RawMessage) (bool, error) {
	pctx, cancel := context.WithTimeout(ctx, pollTimeout)
	defer cancel()
	return e.spawner.Poll(pctx, state)
}

// preSpawnStart runs the authenticator's PreSpawnStart. Its errors are for the log: they do not
// stop the spawn (auth.SpawnHooks).
func (e *Engine) preSpawnStart(ctx context.Context, user string) {
	hooks := e.hooks
	if hooks == nil {
		return
	}
	hctx, cancel := context.WithTimeout(ctx, spawnHookTimeout)
	defer cancel()
	if err := hooks.PreSpawnStart(hctx, user); err != nil {
		e.logger.Warn("authenticator pre-spawn hook failed", zap.String("user", user), zap.Error(err))
	}
}

// postSpawnStop runs the authenticator's PostSpawnStop after a server of user stopped (or was found
// gone).
func (e *Engine) postSpawnStop(user string) {
	hooks := e.hooks
	if hooks == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), spawnHookTimeout)
	defer cancel()
	if err := hooks.PostSpawnStop(ctx, user); err != nil {
		e.logger.Warn("authenticator post-stop hook failed", zap.String("user", user), zap.Error(err))
	}
}
