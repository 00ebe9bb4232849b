package hubapp

// The authenticator's spawn hooks (auth.SpawnHooks, e.g. PAM's open_sessions), JupyterHub's
// pre_spawn_start and post_spawn_stop: every start and stop of a server goes through spawnerStart
// and spawnerStop here, so that the hooks run around each of them wherever the spawn flow starts
// or stops a server (API, pages, culler, user deletion, exit with cleanup_servers, adoption).

import (
	"context"
	"encoding/json"
	"time"

	"go.uber.org/zap"

	"github.com/caddyhub/caddyhub/auth"
	"github.com/caddyhub/caddyhub/spawners"
)

// spawnHookTimeout bounds one call of a spawn hook.
const spawnHookTimeout = 30 * time.Second

// spawnerStart starts a server and waits until it answers (spawners.StartAndWait), after the
// authenticator's PreSpawnStart. A
// failed start is followed by PostSpawnStop, as JupyterHub stops a failed spawn.
func (h *Hub) spawnerStart(ctx context.Context, req *spawners.StartRequest, progress func(spawners.Event)) (*spawners.Server, error) {
	h.preSpawnStart(ctx, req.User)
	srv, err := spawners.StartAndWait(ctx, h.spawner, req, progress)
	if err != nil {
		h.postSpawnStop(req.User)
	}
	return srv, err
}

// spawnerStop asks the spawner to stop a server of user and, once it stopped, runs the
// authenticator's PostSpawnStop. A failed stop leaves the server running: no hook.
func (h *Hub) spawnerStop(ctx context.Context, user string, state json.RawMessage) error {
	if err := h.spawner.Stop(ctx, state); err != nil {
		return err
	}
	h.postSpawnStop(user)
	return nil
}

// preSpawnStart runs the authenticator's PreSpawnStart. Its errors are for the log: they do not
// stop the spawn (auth.SpawnHooks).
func (h *Hub) preSpawnStart(ctx context.Context, user string) {
	hooks, ok := h.authn.(auth.SpawnHooks)
	if !ok {
		return
	}
	hctx, cancel := context.WithTimeout(ctx, spawnHookTimeout)
	defer cancel()
	if err := hooks.PreSpawnStart(hctx, user); err != nil {
		h.logger.Warn("authenticator pre-spawn hook failed", zap.String("user", user), zap.Error(err))
	}
}

// postSpawnStop runs the authenticator's PostSpawnStop after a server of user stopped (or was found
// gone).
func (h *Hub) postSpawnStop(user string) {
	hooks, ok := h.authn.(auth.SpawnHooks)
	if !ok {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), spawnHookTimeout)
	defer cancel()
	if err := hooks.PostSpawnStop(ctx, user); err != nil {
		h.logger.Warn("authenticator post-stop hook failed", zap.String("user", user), zap.Error(err))
	}
}
