package servers

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"go.uber.org/zap"

	"github.com/caddyhub/caddyhub/hubapp/store"
	"github.com/caddyhub/caddyhub/spawners"
)

// Orphans lists the servers the spawner finds on its own (spawners.OrphanLister: containers with
// the hub's labels) that no active server record claims; nil when the spawner cannot list them.
// The spawner logs each new orphan.
func (e *Engine) Orphans(ctx context.Context) ([]string, error) {
	ol, ok := e.spawner.(spawners.OrphanLister)
	if !ok {
		return nil, nil
	}
	var claimed []json.RawMessage
	err := e.store.View(func(tx *store.Txn) error {
		servers, err := tx.ActiveServers()
		for _, s := range servers {
			if len(s.State) > 0 {
				claimed = append(claimed, s.State)
			}
		}
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("listing active servers: %w", err)
	}
	return ol.Orphans(ctx, claimed)
}

// logOrphans looks for orphans once, after adoption, so that they are in the log from the start.
func (e *Engine) logOrphans() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := e.Orphans(ctx); err != nil {
		e.logger.Warn("looking for orphaned servers", zap.Error(err))
	}
}
