package hubapp

// The built-in idle culler: jupyterhub-idle-culler's behaviour (docs/protocols.md, "Services and
// culling") inside the hub. It reads only the index of active servers, never every user, and takes
// activity from the route table (every proxied request and websocket frame) and from the servers'
// activity reports.

import (
	"context"
	"errors"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/caddyhub/caddyhub/hubapp/store"
)

// culler is one generation's culling loop.
type culler struct {
	h   *Hub
	cfg CullerConfig
	now func() time.Time
}

func (c *culler) settings() (timeout, every, maxAge time.Duration, concurrency int) {
	timeout = time.Duration(c.cfg.Timeout)
	if timeout <= 0 {
		timeout = time.Hour
	}
	every = time.Duration(c.cfg.Every)
	if every <= 0 {
		every = timeout / 2
	}
	concurrency = c.cfg.Concurrency
	if concurrency <= 0 {
		concurrency = 10
	}
	return timeout, every, time.Duration(c.cfg.MaxAge), concurrency
}

// startCuller runs the culler loop until stopAPI when a culler block is configured.
func (h *Hub) startCuller(st *apiState) {
	if h.app.Culler == nil {
		return
	}
	c := &culler{h: h, cfg: *h.app.Culler, now: time.Now}
	st.culler = c
	_, every, _, _ := c.settings()
	st.wg.Add(1)
	go func() {
		defer st.wg.Done()
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-st.ctx.Done():
				return
			case <-t.C:
				if n, err := c.cullOnce(st.ctx); err != nil {
					h.logger.Error("culling idle servers", zap.Error(err))
				} else if n > 0 {
					h.logger.Info("culled idle servers", zap.Int("count", n))
				}
			}
		}
	}()
}

// cullOnce stops every ready server idle for longer than timeout (or older than max_age) and returns
// how many it stopped.
func (c *culler) cullOnce(ctx context.Context) (int, error) {
	h := c.h
	timeout, _, maxAge, concurrency := c.settings()
	now := c.now()
	var active []*store.Server
	if err := h.store.View(func(tx *store.Txn) error {
		var err error
		active, err = tx.ActiveServers()
		return err
	}); err != nil {
		return 0, err
	}
	var victims []*store.Server
	for _, s := range active {
		if s.Pending != "" || !s.Ready {
			continue // the culler leaves servers on their way up or down alone
		}
		idle := now.Sub(h.serverActivity(s))
		age := now.Sub(s.Started)
		if idle > timeout || (maxAge > 0 && !s.Started.IsZero() && age > maxAge) {
			victims = append(victims, s)
		}
	}
	sem := make(chan struct{}, concurrency)
	var (
		wg     sync.WaitGroup
		mu     sync.Mutex
		culled int
		errs   []error
		users  = map[string]time.Time{} // culled users → latest activity of their culled servers
	)
	for _, s := range victims {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			last := h.serverActivity(s) // before the stop, which records its own time
			err := c.cullServer(ctx, s)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, err)
				return
			}
			culled++
			if last.After(users[s.User]) {
				users[s.User] = last
			}
		}()
	}
	wg.Wait()
	if c.cfg.CullUsers {
		for name, last := range users {
			if err := c.cullUser(name, last, now, timeout); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return culled, errors.Join(errs...)
}

func (c *culler) cullServer(ctx context.Context, s *store.Server) error {
	h := c.h
	var u *store.User
	if err := h.store.View(func(tx *store.Txn) error {
		var err error
		u, err = tx.User(s.User)
		return err
	}); err != nil {
		return err
	}
	h.logger.Info("culling idle server", zap.String("user", s.User), zap.String("server", s.Name),
		zap.Time("last_activity", h.serverActivity(s)))
	if err := h.callStopServer(ctx, u, s.Name); err != nil {
		return err
	}
	if c.cfg.RemoveNamedServers && s.Name != "" {
		return h.store.Update(func(tx *store.Txn) error {
			cur, err := tx.Server(s.User, s.Name)
			if errors.Is(err, store.ErrNotFound) {
				return nil
			} else if err != nil {
				return err
			}
			if cur.Active() {
				return nil
			}
			return tx.DeleteServer(s.User, s.Name)
		})
	}
	return nil
}

// cullUser deletes a user whose servers were culled, if nothing else of theirs is active and they
// have been idle for timeout, counting the culled servers' activity (admins only with
// cull_admin_users, the culler's default).
func (c *culler) cullUser(name string, serverActivity, now time.Time, timeout time.Duration) error {
	h := c.h
	var del bool
	err := h.store.View(func(tx *store.Txn) error {
		u, err := tx.User(name)
		if err != nil {
			return err
		}
		if u.Admin && c.cfg.CullAdminUsers != nil && !*c.cfg.CullAdminUsers {
			return nil
		}
		servers, err := tx.Servers(name)
		if err != nil {
			return err
		}
		for _, s := range servers {
			if s.Active() {
				return nil
			}
		}
		// The user's own activity (token use, activity reports) and the culled servers' activity
		// before they stopped (stopping stamps the server record with the stop time).
		last := u.LastActivity
		if serverActivity.After(last) {
			last = serverActivity
		}
		del = now.Sub(last) > timeout
		return nil
	})
	if err != nil || !del {
		if errors.Is(err, store.ErrNotFound) {
			return nil
		}
		return err
	}
	h.logger.Info("culling idle user", zap.String("user", name))
	return h.deleteUser(name)
}
