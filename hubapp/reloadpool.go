package hubapp

import (
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"

	"github.com/caddyhub/caddyhub/caddymodule/routetable"
	"github.com/caddyhub/caddyhub/hubapp/servers"
	"github.com/caddyhub/caddyhub/hubapp/store"
)

// reloadPool holds what must outlive a config reload, keyed by absolute data_dir. On `caddy reload`
// Caddy starts the new config before it stops the old one, so both generations run at once for a
// moment: Badger's directory lock allows only one open handle, and the route table must not blink
// (docs/design-notes.md, "State and restarts").
var reloadPool = caddy.NewUsagePool()

// activityFlushInterval is how often route activity reaches the store.
const activityFlushInterval = 5 * time.Second

// reloadState is the state of one data_dir, shared by every config generation that names it.
type reloadState struct {
	store  *store.Store
	table  *routetable.Table
	logger *zap.Logger

	// spawns tracks users' servers in flight across config generations (package servers).
	runtime *servers.Runtime

	stopFlush chan struct{}
	flushDone chan struct{}
	closeOnce sync.Once
}

func openReloadState(dir string, logger *zap.Logger) (*reloadState, error) {
	st, err := store.Open(dir, logger.Named("store"))
	if err != nil {
		return nil, err
	}
	recs, err := loadRoutes(st, logger)
	if err != nil {
		_ = st.Close()
		return nil, err
	}
	table := routetable.New()
	if err := table.Load(recs); err != nil {
		_ = st.Close()
		return nil, fmt.Errorf("loading %d routes from %s: %w", len(recs), dir, err)
	}
	table.SetPersister(servers.RoutePersister{Store: st})
	s := &reloadState{
		store:     st,
		table:     table,
		logger:    logger,
		runtime:   servers.NewRuntime(),
		stopFlush: make(chan struct{}),
		flushDone: make(chan struct{}),
	}
	go s.flushLoop()
	logger.Info("hub store opened", zap.String("data_dir", dir), zap.Int("routes", len(recs)))
	return s, nil
}

// flushLoop writes route activity to the store in batches; the hot path only stores an atomic.
func (s *reloadState) flushLoop() {
	defer close(s.flushDone)
	t := time.NewTicker(activityFlushInterval)
	defer t.Stop()
	for {
		select {
		case <-s.stopFlush:
			return
		case <-t.C:
			// A full disk is logged once by the store; the activity is kept and flushed later.
			if err := s.table.FlushActivity(); err != nil && !errors.Is(err, store.ErrDiskFull) {
				s.logger.Error("flushing route activity", zap.Error(err))
			}
		}
	}
}

// Destruct runs when the last config generation using this data_dir is unloaded.
func (s *reloadState) Destruct() error {
	var err error
	s.closeOnce.Do(func() {
		close(s.stopFlush)
		<-s.flushDone
		if ferr := s.table.FlushActivity(); ferr != nil {
			s.logger.Error("flushing route activity", zap.Error(ferr))
		}
		err = s.store.Close()
	})
	return err
}
