package servers

import (
	"context"
	"fmt"
	"time"

	"go.uber.org/zap"

	"github.com/caddyhub/caddyhub/hubapp/store"
)

// Stop stops user's server and waits for it (or for ctx). Stopping a server that is not running is
// not an error. A named server's record stays; BeginStop with remove deletes it.
func (e *Engine) Stop(ctx context.Context, user, server string) error {
	op, err := e.BeginStop(user, server, false)
	if err != nil || op == nil {
		return err
	}
	select {
	case <-op.done:
		return op.err
	case <-ctx.Done():
		return fmt.Errorf("stopping %s: %w", LogName(user, server), ctx.Err())
	}
}

// BeginStop starts stopping a server in the background and returns its op (nil when nothing was
// running and nothing was left to do). remove deletes the server's record once stopped.
func (e *Engine) BeginStop(user, server string, remove bool) (*Op, error) {
	key := Key(user, server)
	e.rt.mu.Lock()
	if cur := e.rt.ops[key]; cur != nil {
		e.rt.mu.Unlock()
		if cur.kind == "stop" {
			if remove {
				go func() {
					if <-cur.done; cur.err == nil {
						e.removeRecord(user, server)
					}
				}()
			}
			return cur, nil
		}
		return nil, refuse(Invalid, fmt.Sprintf("%s is pending %s, please wait", LogName(user, server), cur.kind))
	}
	rec, err := e.Record(user, server)
	if err != nil {
		e.rt.mu.Unlock()
		return nil, err
	}
	if rec == nil || !rec.Active() {
		e.rt.mu.Unlock()
		if remove && rec != nil {
			e.removeRecord(user, server)
		}
		return nil, nil
	}
	op := newOp("stop")
	e.rt.ops[key] = op
	delete(e.rt.progress, key)
	e.rt.mu.Unlock()
	go func() {
		err := e.runStop(rec)
		e.finishOp(key, op, err)
		if remove && err == nil {
			e.removeRecord(user, server)
		}
	}()
	return op, nil
}

func (e *Engine) removeRecord(user, server string) {
	if err := e.store.Update(func(tx *store.Txn) error { return tx.DeleteServer(user, server) }); err != nil {
		e.logger.Error("deleting server record", zap.String("user", user), zap.String("server", server), zap.Error(err))
	}
}

// runStop: pending "stop", route removed, spawner stop, credentials revoked, record stopped.
func (e *Engine) runStop(rec *store.Server) error {
	user, server := rec.User, rec.Name
	rec.Pending = "stop"
	if err := e.store.Update(func(tx *store.Txn) error { return tx.PutServer(rec) }); err != nil {
		return fmt.Errorf("recording stop of %s: %w", LogName(user, server), err)
	}
	e.deleteRoute(user, server, "deleting route")
	ctx, cancel := context.WithTimeout(context.Background(), stopTimeout)
	defer cancel()
	began := time.Now()
	stopErr := e.stopServer(ctx, user, rec.State)
	e.metrics.ObserveStop(outcome(stopErr), time.Since(began))
	err := e.store.Update(func(tx *store.Txn) error {
		if stopErr == nil {
			if err := revokeCredentials(tx, user, server); err != nil {
				return err
			}
		}
		s, err := tx.Server(user, server)
		if err != nil {
			return err
		}
		if stopErr != nil {
			// Keep the state so that a later stop can try again (the route comes back below if the
			// server still runs).
			s.Pending = ""
			return tx.PutServer(s)
		}
		e.resetRecord(s)
		s.LastActivity = time.Now().UTC()
		return tx.PutServer(s)
	})
	if stopErr != nil {
		e.logger.Error("stopping server failed", zap.String("user", user), zap.String("server", server), zap.Error(stopErr))
		// Still running: keep it reachable rather than orphaned without a route.
		if alive, perr := e.poll(context.Background(), rec.State); perr == nil && alive && rec.Target != "" {
			if err := e.addRoute(user, server, rec.Target); err != nil {
				e.logger.Error("restoring route after a failed stop", zap.String("user", user), zap.Error(err))
			}
		}
		return fmt.Errorf("stopping %s: %w", LogName(user, server), stopErr)
	}
	if err != nil {
		return fmt.Errorf("recording stopped %s: %w", LogName(user, server), err)
	}
	e.logger.Info("server stopped", zap.String("user", user), zap.String("server", server))
	return nil
}

// ServerGone records that a server found dead is stopped: route, credentials and state removed.
// It does nothing while a start or stop of the server is in flight.
func (e *Engine) ServerGone(user, server, why string) {
	key := Key(user, server)
	if e.rt.op(key) != nil {
		return
	}
	e.deleteRoute(user, server, "deleting route of dead server")
	reason := e.goneReason(user, server)
	err := e.store.Update(func(tx *store.Txn) error {
		if err := e.markStoppedTx(tx, user, server); err != nil || reason == "" {
			return err
		}
		s, err := tx.Server(user, server)
		if err != nil {
			return err
		}
		s.Failure = goneFailure(reason)
		return tx.PutServer(s)
	})
	if err != nil {
		e.logger.Error("recording dead server", zap.String("user", user), zap.Error(err))
		return
	}
	if reason != "" {
		why = reason
	}
	e.rt.mu.Lock()
	if e.rt.ops[key] == nil {
		delete(e.rt.active, key)
	}
	e.rt.mu.Unlock()
	e.logger.Warn("server is no longer running", zap.String("user", user), zap.String("server", server), zap.String("why", why))
	e.postSpawnStop(user)
}

// WaitIdle waits until no operation is in flight on a server (tests, shutdown).
func (e *Engine) WaitIdle(ctx context.Context, user, server string) error {
	for {
		op := e.rt.op(Key(user, server))
		if op == nil {
			return nil
		}
		select {
		case <-op.done:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}
