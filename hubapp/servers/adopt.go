package servers

// Adoption at start and the poll loop: a hub that starts (after a reload, an exit or kill -9) finds
// the servers its records call active, keeps the live ones routed and records the dead ones stopped;
// while it runs it polls them every poll_interval.

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/caddyhub/caddyhub/caddymodule/routetable"
	"github.com/caddyhub/caddyhub/hubapp/store"
	"github.com/caddyhub/caddyhub/spawners"
)

// Begin adopts the servers recorded as active (from the store's index, never a scan of users):
// alive ones keep (or get back) their route, dead ones and spawns a dead hub left pending are marked
// stopped. Then it starts this generation's poll loop, which End stops.
func (e *Engine) Begin() error {
	began := time.Now()
	var servers []*store.Server
	if err := e.store.View(func(tx *store.Txn) error {
		var err error
		servers, err = tx.ActiveServers()
		return err
	}); err != nil {
		return fmt.Errorf("listing active servers: %w", err)
	}
	alive, dead := e.adopt(servers)
	e.logger.Info("adopted running servers", zap.Int("running", alive), zap.Int("stopped", dead),
		zap.Duration("took", time.Since(began)))
	go e.logOrphans()

	ctx, cancel := context.WithCancel(context.Background())
	e.rt.mu.Lock()
	e.rt.loops[e] = cancel
	e.rt.mu.Unlock()
	go e.pollLoop(ctx)
	return nil
}

// End ends this generation's poll loop. Only when cleanup is set (Caddy exiting with
// cleanup_servers) are users' servers stopped.
func (e *Engine) End(cleanup bool) {
	e.rt.mu.Lock()
	if cancel := e.rt.loops[e]; cancel != nil {
		cancel()
		delete(e.rt.loops, e)
	}
	e.rt.mu.Unlock()
	if !cleanup {
		return
	}
	var servers []*store.Server
	if err := e.store.View(func(tx *store.Txn) error {
		var err error
		servers, err = tx.ActiveServers()
		return err
	}); err != nil {
		e.logger.Error("listing servers to stop", zap.Error(err))
		return
	}
	forEach(servers, func(s *store.Server) {
		op, err := e.BeginStop(s.User, s.Name, false)
		if err != nil {
			e.logger.Error("stopping server at exit", zap.String("user", s.User), zap.Error(err))
			return
		}
		if op != nil {
			<-op.done
		}
	})
}

// forEach runs f on every item, adoptConcurrency at a time, and waits for all.
func forEach[T any](items []T, f func(T)) {
	sem := make(chan struct{}, adoptConcurrency)
	var wg sync.WaitGroup
	for _, it := range items {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			f(it)
		}()
	}
	wg.Wait()
}

// adoptResult is what adoption found out about one server.
type adoptResult struct {
	s     *store.Server
	alive bool
	op    *Op // the resumed spawn of a launched server (adoptLaunchedSpawn), or nil
}

// errSpawnGoneAtStart ends the resumed spawn of a launched server that was no longer running when the
// hub started.
var errSpawnGoneAtStart = errors.New("the server stopped while the hub was down; start it again")

// adopt polls servers concurrently and reconciles records, routes and the active set.
func (e *Engine) adopt(servers []*store.Server) (alive, dead int) {
	results := make([]adoptResult, len(servers))
	var todo []int
	for i, s := range servers {
		results[i].s = s
		key := Key(s.User, s.Name)
		if e.rt.op(key) != nil {
			results[i].alive = true // in flight in this process (a reload): not ours to judge
			continue
		}
		if launchedSpawn(s) {
			// Hold the server before polling it, so that no start request launches a second process.
			if results[i].op = e.claimResumedSpawn(key); results[i].op == nil {
				results[i].alive = true // someone took it meanwhile
				continue
			}
		}
		todo = append(todo, i)
	}
	forEach(todo, func(i int) {
		if op := results[i].op; op != nil {
			results[i].alive = e.adoptLaunchedSpawn(op, results[i].s)
		} else {
			results[i].alive = e.adoptOne(results[i].s)
		}
	})

	var gone []*store.Server
	active := make(map[string]struct{}, len(servers))
	for _, r := range results {
		if r.alive {
			active[Key(r.s.User, r.s.Name)] = struct{}{}
			alive++
		} else {
			gone = append(gone, r.s)
		}
	}
	e.recordGone(gone)
	e.dropStaleRoutes(active)
	// Merge rather than replace: a spawn of the running generation may have finished meanwhile.
	e.rt.mu.Lock()
	for k := range active {
		e.rt.active[k] = struct{}{}
	}
	for _, s := range gone {
		if k := Key(s.User, s.Name); e.rt.ops[k] == nil {
			delete(e.rt.active, k)
		}
	}
	e.rt.mu.Unlock()
	// Resumed spawns whose process was gone end now that their records say stopped.
	for _, r := range results {
		if r.op != nil && !r.alive {
			r.op.progress.Finish(failedEvent(errSpawnGoneAtStart.Error()))
			e.finishOp(Key(r.s.User, r.s.Name), r.op, errSpawnGoneAtStart)
		}
	}
	return alive, len(gone)
}

// recordGone records the dead servers stopped in batched transactions (one fsync per batch, not per
// server); their route records go in the same commits, and the table then forgets them without
// writing again.
func (e *Engine) recordGone(gone []*store.Server) {
	deleted := make(map[string]bool, len(gone))
	size := 500
	for len(gone) > 0 {
		batch := gone[:min(len(gone), size)]
		// Scans run in a read transaction: an iterator in a write transaction sorts its pending
		// writes each time, which would make a big batch quadratic.
		creds := make([][]*store.Token, len(batch))
		err := e.store.View(func(tx *store.Txn) error {
			for i, s := range batch {
				var err error
				if creds[i], err = Credentials(tx, s.User, s.Name); err != nil {
					return err
				}
			}
			return nil
		})
		if err == nil {
			err = e.store.Update(func(tx *store.Txn) error {
				for i, s := range batch {
					if err := e.markStoppedTxWith(tx, s.User, s.Name, creds[i]); err != nil {
						return err
					}
					if k, err := routetable.NormalizeKey(e.site.RouteKey(s.User, s.Name)); err == nil {
						if err := tx.DeleteRouteRecord(k); err != nil {
							return err
						}
					}
				}
				return nil
			})
		}
		if errors.Is(err, store.ErrTooBig) && len(batch) > 1 {
			// Servers with many OAuth tokens: nothing was written; retry in smaller batches.
			size = len(batch) / 2
			continue
		}
		gone = gone[len(batch):]
		if err != nil {
			e.logger.Error("recording stopped servers", zap.Int("servers", len(batch)), zap.Error(err))
			continue
		}
		for _, s := range batch {
			if k, err := routetable.NormalizeKey(e.site.RouteKey(s.User, s.Name)); err == nil {
				deleted[k] = true
			}
			e.logger.Info("server not running at hub start", zap.String("user", s.User), zap.String("server", s.Name))
		}
	}
	if len(deleted) > 0 {
		e.table.SetPersister(skipDeletes{RoutePersister{e.store}, deleted})
		for k := range deleted {
			if _, err := e.table.Delete(k); err != nil {
				e.logger.Error("deleting route of dead server", zap.String("route", k), zap.Error(err))
			}
		}
		e.table.SetPersister(RoutePersister{e.store})
	}
}

// dropStaleRoutes drops user routes whose server is not active (a hub killed between a stop and its
// route delete).
func (e *Engine) dropStaleRoutes(active map[string]struct{}) {
	for _, rt := range e.table.All() {
		d := rt.Data()
		if d["jupyterhub"] != true {
			continue
		}
		user, _ := d["user"].(string)
		server, _ := d["server_name"].(string)
		if user == "" {
			continue
		}
		if _, ok := active[Key(user, server)]; !ok && e.rt.op(Key(user, server)) == nil {
			// Look again: the server may have been started since the listing (during a reload).
			if rec, err := e.Record(user, server); err != nil || (rec != nil && rec.Active()) {
				continue
			}
			if _, err := e.table.Delete(rt.Key()); err != nil {
				e.logger.Error("deleting stale route", zap.String("route", rt.Key()), zap.Error(err))
			}
		}
	}
}

// launchedSpawn reports whether s is a spawn a dead hub left in flight after its spawner had reported
// the process (RecordLaunched): pending "spawn" with a state and a target.
func launchedSpawn(s *store.Server) bool {
	return s.Pending == "spawn" && len(s.State) > 0 && s.Target != ""
}

// claimResumedSpawn takes the server for a resumed spawn, as take does for a new one: an op "spawn"
// (a second start request answers "pending" instead of launching again; stops are refused until it
// ends), its progress log, and a place in the active set. It returns nil when an op holds the server
// already.
func (e *Engine) claimResumedSpawn(key string) *Op {
	op := newOp("spawn")
	e.rt.mu.Lock()
	defer e.rt.mu.Unlock()
	if e.rt.ops[key] != nil {
		return nil
	}
	e.holdLocked(key, op)
	return op
}

// adoptLaunchedSpawn polls a launched server a dead hub left pending (JupyterHub's check_spawner).
// Not running: false, and adopt records it stopped and ends op. Running: the spawn resumes in the
// background (finishResumedSpawn) and it counts as alive; it stays pending "spawn" until it answers.
func (e *Engine) adoptLaunchedSpawn(op *Op, s *store.Server) bool {
	running, err := e.poll(context.Background(), s.State)
	if err != nil {
		e.logger.Warn("polling server at start", zap.String("user", s.User), zap.String("server", s.Name), zap.Error(err))
		return false
	}
	if !running {
		return false
	}
	e.logger.Info("resuming a spawn the hub was killed during", zap.String("user", s.User), zap.String("server", s.Name),
		zap.String("target", s.Target))
	op.progress.Add(map[string]any{"progress": 50, "message": "Server process found running after a hub restart; waiting for it to answer"})
	go e.finishResumedSpawn(Key(s.User, s.Name), op, s)
	return true
}

// finishResumedSpawn waits, as a fresh spawn does (spawners.WaitUp, within http_timeout), until a
// resumed spawn's server answers HTTP on its prefix, then finishes the spawn as runSpawn does (route,
// ready, progress 100). The server is not the hub's child: WaitUp polls the spawner to notice that
// it exited. A server that exits or never answers is stopped through the spawner and recorded as a
// failed spawn (credentials revoked), so nothing is left running.
func (e *Engine) finishResumedSpawn(key string, op *Op, s *store.Server) {
	user, server := s.User, s.Name
	o := e.spawner.Common()
	began := time.Now()
	srv := &spawners.Server{URL: s.Target, State: s.State}
	ctx, cancel := context.WithTimeout(context.Background(), time.Duration(o.HTTPTimeout)+10*time.Second)
	err := spawners.WaitUp(ctx, e.spawner, srv, e.ServerPrefix(user, server), began)
	cancel()
	if err == nil {
		err = e.recordStarted(user, server, srv)
	}
	if err != nil {
		e.stopQuietly(user, server, s.State, "stopping server whose resumed spawn failed")
	}
	e.endSpawn(key, op, user, server, srv, err, began)
}

// adoptOne polls one recorded ready server; alive servers get their route back if it is missing.
// Dead ones lose their route with their record, in a batch (recordGone). It finishes a stop the
// previous hub left pending; a spawn left pending is dead unless its spawner had reported the process
// (launchedSpawn, handled by adoptLaunchedSpawn).
func (e *Engine) adoptOne(s *store.Server) bool {
	ok := false
	if len(s.State) > 0 && s.Target != "" && s.Pending == "" {
		running, err := e.poll(context.Background(), s.State)
		if err != nil {
			e.logger.Warn("polling server at start", zap.String("user", s.User), zap.String("server", s.Name), zap.Error(err))
		}
		ok = err == nil && running
	} else if s.Pending == "stop" && len(s.State) > 0 {
		// A stop the previous hub did not finish: finish it.
		e.stopQuietly(s.User, s.Name, s.State, "finishing interrupted stop")
	}
	if !ok {
		return false
	}
	if r := e.table.Get(e.site.RouteKey(s.User, s.Name)); r == nil || r.Target() != s.Target {
		if err := e.addRoute(s.User, s.Name, s.Target); err != nil {
			e.logger.Error("restoring route", zap.String("user", s.User), zap.Error(err))
			return false
		}
	}
	return true
}

// pollLoop checks every poll_interval that active servers still run.
func (e *Engine) pollLoop(ctx context.Context) {
	interval := time.Duration(e.spawner.Common().PollInterval)
	if interval <= 0 {
		interval = 30 * time.Second
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			e.PollOnce(ctx)
		}
	}
}

// PollOnce polls every ready server not in flight, concurrently (bounded), and records the dead
// ones stopped.
func (e *Engine) PollOnce(ctx context.Context) {
	e.rt.mu.Lock()
	keys := make([]string, 0, len(e.rt.active))
	for k := range e.rt.active {
		if e.rt.ops[k] == nil {
			keys = append(keys, k)
		}
	}
	e.rt.mu.Unlock()
	forEach(keys, func(k string) {
		if ctx.Err() != nil {
			return
		}
		user, server, _ := strings.Cut(k, "/")
		s, err := e.Record(user, server)
		if err != nil || s == nil || !s.Ready || s.Pending != "" {
			return
		}
		running, err := e.poll(ctx, s.State)
		if err != nil {
			e.logger.Warn("polling server", zap.String("user", user), zap.String("server", server), zap.Error(err))
			return
		}
		if !running {
			e.ServerGone(user, server, "poll found it stopped")
		}
	})
}
