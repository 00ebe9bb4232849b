// Package culler is the built-in idle culler: jupyterhub-idle-culler's behaviour (docs/protocols.md,
// "Services and culling") inside the hub, on top of the spawn engine. It reads only the index of
// active servers, never every user, and takes activity from the route table (every proxied request
// and websocket frame) and from the servers' activity reports.
package culler

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"

	"github.com/caddyhub/caddyhub/hubapp/store"
)

// Config configures the built-in idle culler, with jupyterhub-idle-culler's options.
type Config struct {
	// Timeout: servers idle this long are stopped. Default: 1h.
	Timeout caddy.Duration `json:"timeout,omitempty"`
	// Every is how often to check. Default: timeout/2, at most 5m... (JupyterHub's cull_every: 0 → timeout/2).
	Every caddy.Duration `json:"every,omitempty"`
	// MaxAge stops servers older than this even if active. Default: 0 (no limit).
	MaxAge caddy.Duration `json:"max_age,omitempty"`
	// CullUsers deletes users whose servers were culled. Default: false.
	CullUsers bool `json:"cull_users,omitempty"`
	// CullAdminUsers lets cull_users remove admins too. Default: true (as the culler's default).
	CullAdminUsers *bool `json:"cull_admin_users,omitempty"`
	// RemoveNamedServers deletes named servers instead of stopping them. Default: false.
	RemoveNamedServers bool `json:"remove_named_servers,omitempty"`
	// Concurrency limits simultaneous stops. Default: 10.
	Concurrency int `json:"concurrency,omitempty"`
}

// Stopper stops servers: the spawn engine (*servers.Engine).
type Stopper interface {
	// Stop stops a user's server and waits for it (or for ctx).
	Stop(ctx context.Context, user, server string) error
}

// Deps are what the culler works with.
type Deps struct {
	Store  *store.Store
	Engine Stopper
	// Activity is a server's last activity: its record's, or its route's when later.
	Activity func(s *store.Server) time.Time
	// DeleteUser deletes a user (cull_users).
	DeleteUser func(name string) error
	Logger     *zap.Logger
}

// Culler is one config generation's culler.
type Culler struct {
	cfg Config
	d   Deps
	// Now is the clock (tests set it).
	Now func() time.Time
}

// New returns a culler with configuration cfg.
func New(cfg Config, d Deps) *Culler { return &Culler{cfg: cfg, d: d, Now: time.Now} }

func (c *Culler) settings() (timeout, every, maxAge time.Duration, concurrency int) {
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

// Run culls every cull_every until ctx ends.
func (c *Culler) Run(ctx context.Context) {
	_, every, _, _ := c.settings()
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if n, err := c.CullOnce(ctx); err != nil {
				c.d.Logger.Error("culling idle servers", zap.Error(err))
			} else if n > 0 {
				c.d.Logger.Info("culled idle servers", zap.Int("count", n))
			}
		}
	}
}

// CullOnce stops every ready server idle for longer than timeout (or older than max_age) and returns
// how many it stopped.
func (c *Culler) CullOnce(ctx context.Context) (int, error) {
	timeout, _, maxAge, concurrency := c.settings()
	now := c.Now()
	var active []*store.Server
	if err := c.d.Store.View(func(tx *store.Txn) error {
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
		idle := now.Sub(c.d.Activity(s))
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
			last := c.d.Activity(s) // before the stop, which records its own time
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

func (c *Culler) cullServer(ctx context.Context, s *store.Server) error {
	var u *store.User
	if err := c.d.Store.View(func(tx *store.Txn) error {
		var err error
		u, err = tx.User(s.User)
		return err
	}); err != nil {
		return err
	}
	c.d.Logger.Info("culling idle server", zap.String("user", s.User), zap.String("server", s.Name),
		zap.Time("last_activity", c.d.Activity(s)))
	if err := c.d.Engine.Stop(ctx, u.Name, s.Name); err != nil {
		return err
	}
	if c.cfg.RemoveNamedServers && s.Name != "" {
		return c.d.Store.Update(func(tx *store.Txn) error {
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
func (c *Culler) cullUser(name string, serverActivity, now time.Time, timeout time.Duration) error {
	var del bool
	err := c.d.Store.View(func(tx *store.Txn) error {
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
	c.d.Logger.Info("culling idle user", zap.String("user", name))
	return c.d.DeleteUser(name)
}
