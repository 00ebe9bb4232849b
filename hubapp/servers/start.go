package servers

// The spawn path, top to bottom (docs/architecture.md, "The spawn path"): Start checks the request at
// the door (checkStart), validates the user options, asks the authenticator (SpawnAuth), takes the
// server under the limits (take), issues its credentials and records it pending (issueCredentials),
// then runSpawn starts it in the background: spawners.StartAndWait, RecordLaunched as soon as the
// spawner knows URL and State, recordStarted (route, ready) or recordFailed, and endSpawn.

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/caddyhub/caddyhub/hubapp/rbac"
	"github.com/caddyhub/caddyhub/hubapp/store"
	"github.com/caddyhub/caddyhub/spawners"
)

// Start starts user's server (server "" is the default) in the background and returns its
// operation; the caller waits on op.Done() as long as it likes. inFlight is true (and op nil) when a
// start of the server is already in flight. A refusal is a *Refusal. userOptions nil reuses the last
// stored options.
func (e *Engine) Start(user *store.User, server string, userOptions map[string]any) (op *Op, inFlight bool, err error) {
	name := user.Name
	key := Key(name, server)
	rec, inFlight, err := e.checkStart(name, server)
	if err != nil || inFlight {
		return nil, inFlight, err
	}
	if userOptions == nil && rec != nil {
		userOptions = rec.UserOptions
	}
	if userOptions, err = e.ValidateUserOptions(userOptions); err != nil {
		return nil, false, err
	}
	authState, authEnv, err := e.spawnAuth(user)
	if err != nil {
		return nil, false, err
	}
	if op, inFlight, err = e.take(key, name, server); err != nil || inFlight {
		return nil, inFlight, err
	}
	secret, err := e.issueCredentials(name, server, rec, userOptions)
	if err != nil {
		op.progress.Finish(failedEvent("could not record the spawn"))
		e.finishOp(key, op, err)
		return nil, false, fmt.Errorf("recording spawn of %s: %w", LogName(name, server), err)
	}
	req := &spawners.StartRequest{
		User:          name,
		ServerName:    server,
		Admin:         user.Admin,
		ServicePrefix: e.ServerPrefix(name, server),
		Env:           mergeEnv(e.Env(name, server, secret), authEnv),
		DataDir:       e.cfg.DataDir,
		UserOptions:   userOptions,
		AuthState:     authState,
	}
	if rec != nil {
		req.PrevState = e.keptState(rec.State) // what the spawner kept of the last run (keptstate.go)
	}
	req.Launched = func(srv *spawners.Server) error { return e.RecordLaunched(name, server, srv) }
	e.logger.Info("spawning server", zap.String("user", name), zap.String("server", server))
	go e.runSpawn(key, op, req)
	return op, false, nil
}

// checkStart is the door: named servers allowed and under their limit, no operation in flight, not
// already running (a server that died since the last poll is recorded stopped here). It returns the
// server's record (nil for a new one), or inFlight when a start is already under way.
func (e *Engine) checkStart(name, server string) (rec *store.Server, inFlight bool, err error) {
	if server != "" {
		if !e.cfg.AllowNamedServers {
			return nil, false, refuse(Invalid, "Named servers are not enabled.")
		}
		if strings.Contains(server, "/") {
			return nil, false, refuse(Invalid, fmt.Sprintf("Invalid server_name (may not contain '/'): %s", server))
		}
	}
	var named int
	err = e.store.View(func(tx *store.Txn) error {
		servers, err := tx.Servers(name)
		if err != nil {
			return err
		}
		for _, s := range servers {
			if s.Name == server {
				rec = s
			} else if s.Name != "" {
				named++
			}
		}
		return nil
	})
	if err != nil {
		return nil, false, fmt.Errorf("reading servers of %s: %w", name, err)
	}
	if server != "" && rec == nil {
		if err := checkNewServerName(server); err != nil {
			return nil, false, err
		}
	}
	if lim := e.cfg.NamedServerLimitPerUser; server != "" && rec == nil && lim > 0 && named >= lim {
		return nil, false, refuse(Invalid, fmt.Sprintf(
			"User %s already has the maximum of %d named servers.  One must be deleted before a new server can be created",
			name, lim))
	}
	if op := e.rt.op(Key(name, server)); op != nil {
		return nil, op.kind == "spawn", pendingRefusal(name, server, op, "")
	}
	if rec != nil && rec.Ready {
		// Notice a server that died since the last poll (poll_and_notify).
		if alive, err := e.poll(context.Background(), rec.State); err == nil && alive {
			return nil, false, refuse(Invalid, LogName(name, server)+" is already running")
		}
		e.ServerGone(name, server, "its process is gone")
	}
	return rec, false, nil
}

// pendingRefusal refuses a start or stop while op is in flight; nil when op is a spawn (the caller
// answers "pending" instead).
func pendingRefusal(name, server string, op *Op, suffix string) error {
	if op.kind == "spawn" && suffix == "" {
		return nil
	}
	return refuse(Invalid, fmt.Sprintf("%s is pending %s%s", LogName(name, server), op.kind, suffix))
}

// take takes the server for a start: concurrent_spawn_limit and active_server_limit are checked and
// the op recorded under one lock. inFlight reports a start that got there first.
func (e *Engine) take(key, name, server string) (op *Op, inFlight bool, err error) {
	op = newOp("spawn")
	e.rt.mu.Lock()
	if cur := e.rt.ops[key]; cur != nil {
		e.rt.mu.Unlock()
		return nil, cur.kind == "spawn", pendingRefusal(name, server, cur, "")
	}
	if lim := e.cfg.ConcurrentSpawnLimit; lim > 0 && e.rt.spawnsPendingLocked() >= lim {
		e.rt.mu.Unlock()
		retry := 30 + rand.IntN(31) // spawn_throttle_retry_range (30, 60)
		e.logger.Warn("too many pending spawns, throttling", zap.Int("concurrent_spawn_limit", lim), zap.Int("retry_after", retry))
		return nil, false, &Refusal{Code: Throttled, RetryAfter: retry, Msg: fmt.Sprintf(
			"Too many users trying to log in right now. Try again in %d0 seconds.", (retry+9)/10)}
	}
	if lim := e.cfg.ActiveServerLimit; lim > 0 && len(e.rt.active) >= lim {
		e.rt.mu.Unlock()
		e.logger.Info("active server limit reached", zap.Int("active_server_limit", lim))
		return nil, false, refuse(Throttled, "Active user limit exceeded. Try again in a few minutes.")
	}
	e.holdLocked(key, op)
	e.rt.mu.Unlock()
	return op, false, nil
}

// holdLocked records a spawn op on a server, its progress log and its place in the active set.
func (e *Engine) holdLocked(key string, op *Op) {
	e.rt.ops[key] = op
	e.rt.progress[key] = op.progress
	e.rt.active[key] = struct{}{}
	op.progress.Add(map[string]any{"progress": 0, "message": "Server requested"})
}

// issueCredentials revokes what an earlier run of the server left (its token, client, OAuth tokens),
// creates the server's API token and OAuth client, and records the server pending "spawn", in one
// transaction. It returns the token's secret.
func (e *Engine) issueCredentials(name, server string, rec *store.Server, userOptions map[string]any) (string, error) {
	secret := store.NewToken()
	now := time.Now().UTC()
	err := e.store.Update(func(tx *store.Txn) error {
		if err := revokeCredentials(tx, name, server); err != nil {
			return err
		}
		tok := &store.Token{
			User:       name,
			Kind:       "server",
			ServerName: server,
			Note:       e.description(name, server),
			Roles:      []string{rbac.RoleServer},
			Scopes:     rbac.ServerTokenScopes(nil, name, server),
		}
		if err := tx.CreateToken(tok, secret); err != nil {
			return err
		}
		if err := tx.PutOAuthClient(&store.OAuthClient{
			ID:          OAuthClientID(name, server),
			SecretHash:  store.Hash(secret),
			RedirectURI: e.oauthCallbackURL(name, server),
			Description: e.description(name, server),
			Scopes:      []string{}, // Spawner.oauth_client_allowed_scopes: none beyond identify and access
			User:        name,
			ServerName:  server,
		}); err != nil {
			return err
		}
		s := &store.Server{User: name, Name: server, Pending: "spawn", Started: now, LastActivity: now, UserOptions: userOptions}
		if rec != nil {
			s.LastActivity, s.State = rec.LastActivity, e.keptState(rec.State)
		}
		return tx.PutServer(s)
	})
	return secret, err
}

// runSpawn runs the spawner (startAndWait → spawners.StartAndWait: start, record the launched
// server, wait until it answers) and records the outcome: route and ready, or a failure that leaves
// nothing behind.
func (e *Engine) runSpawn(key string, op *Op, req *spawners.StartRequest) {
	o := e.spawner.Common()
	ctx, cancel := context.WithTimeout(context.Background(), time.Duration(o.StartTimeout)+30*time.Second)
	defer cancel()
	began := time.Now()
	srv, err := e.startAndWait(ctx, req, func(ev spawners.Event) {
		op.progress.Add(map[string]any{"progress": ev.Progress, "message": ev.Message})
	})
	if err == nil {
		err = e.recordStarted(req.User, req.ServerName, srv)
		if err != nil {
			// The server runs but cannot be routed or recorded: stop it, leave nothing behind.
			e.stopQuietly(req.User, req.ServerName, srv.State, "stopping server that could not be recorded")
		}
	}
	e.metrics.ObserveSpawn(outcome(err), time.Since(began))
	e.endSpawn(key, op, req.User, req.ServerName, srv, err, began)
}

// outcome is a metric's status for err.
func outcome(err error) string {
	if err != nil {
		return "failure"
	}
	return "success"
}

// RecordLaunched stores the state and target of a server the spawner has launched but that does not
// answer yet (StartRequest.Launched), in one synced transaction, leaving it pending "spawn" and not
// ready, without a route: a hub killed before the server answers finds the process at its next start
// (adoptLaunchedSpawn) instead of leaking it. JupyterHub likewise commits spawner.get_state() as soon
// as spawner.start() returns, before _wait_up (user.py spawn). recordFailed clears both again.
func (e *Engine) RecordLaunched(user, server string, srv *spawners.Server) error {
	if srv == nil || srv.URL == "" || len(srv.State) == 0 {
		return errors.New("the spawner reported a launched server without a URL or state")
	}
	err := e.putServer(user, server, func(s *store.Server) error {
		if s.Pending != "spawn" {
			return fmt.Errorf("the server is no longer pending spawn (pending %q)", s.Pending)
		}
		s.Target, s.State = srv.URL, srv.State
		return nil
	})
	if err != nil {
		return fmt.Errorf("storing the server's state: %w", err)
	}
	return nil
}

// recordStarted adds the route, then marks the server ready. The spawner's state and target are on
// the record already, written when the server launched (RecordLaunched) or, for a resumed spawn, read
// from it; the final write sets them again with the ready flag.
func (e *Engine) recordStarted(user, server string, srv *spawners.Server) error {
	began := time.Now()
	if err := e.addRoute(user, server, srv.URL); err != nil {
		return err
	}
	e.metrics.ObserveRouteAdd(time.Since(began))
	err := e.putServer(user, server, func(s *store.Server) error {
		s.Target, s.State, s.Failure = srv.URL, srv.State, ""
		s.Ready, s.Pending = true, ""
		return nil
	})
	if err != nil {
		_, _ = e.table.Delete(e.site.RouteKey(user, server))
		return fmt.Errorf("recording server ready: %w", err)
	}
	return nil
}

// recordFailed cleans up after a failed start: no route, no token, no OAuth client; the reason is
// kept on the record for the user.
func (e *Engine) recordFailed(user, server string, cause error) {
	e.deleteRoute(user, server, "deleting route of failed server")
	err := e.store.Update(func(tx *store.Txn) error {
		if err := revokeCredentials(tx, user, server); err != nil {
			return err
		}
		s, err := tx.Server(user, server)
		if errors.Is(err, store.ErrNotFound) {
			s = &store.Server{User: user, Name: server}
		} else if err != nil {
			return err
		}
		e.resetRecord(s)
		s.Failure = cause.Error()
		return tx.PutServer(s)
	})
	if err != nil {
		e.logger.Error("recording failed spawn", zap.String("user", user), zap.Error(err))
	}
}

// endSpawn records how a spawn ended (a failure cleans up with recordFailed; a success was recorded
// by recordStarted), finishes its progress log and ends its op.
func (e *Engine) endSpawn(key string, op *Op, user, server string, srv *spawners.Server, err error, began time.Time) {
	if err != nil {
		e.recordFailed(user, server, err)
		e.logger.Warn("spawn failed", zap.String("user", user), zap.String("server", server),
			zap.Duration("after", time.Since(began)), zap.String("reason", err.Error()))
		op.progress.Finish(failedEvent(err.Error()))
	} else {
		e.logger.Info("server ready", zap.String("user", user), zap.String("server", server),
			zap.String("target", srv.URL), zap.Duration("took", time.Since(began)))
		op.progress.Finish(ReadyEvent(e.ServerURL(user, server)))
	}
	e.finishOp(key, op, err)
}

// finishOp ends an op; a failed spawn and a successful stop leave the server inactive (a failed
// stop leaves it running).
func (e *Engine) finishOp(key string, op *Op, err error) {
	e.rt.mu.Lock()
	if e.rt.ops[key] == op {
		delete(e.rt.ops, key)
	}
	if (op.kind == "spawn") == (err != nil) {
		delete(e.rt.active, key)
	}
	e.rt.mu.Unlock()
	op.err = err
	close(op.done)
}
