package web

import (
	"context"
	"encoding/json"
	"time"

	"go.uber.org/zap"

	"github.com/caddyhub/caddyhub/hubapp/store"
	"github.com/caddyhub/caddyhub/spawners"
)

// deleteUserStorage lets the spawner delete the storage it keeps for a user being deleted
// (spawners.StorageDeleter; it deletes only when its configuration says so). A failure is logged:
// the user is deleted anyway, and the storage stays for an admin.
func (h *Hub) deleteUserStorage(user string, servers []*store.Server) {
	d, ok := h.spawner.(spawners.StorageDeleter)
	if !ok {
		return
	}
	states := make([]json.RawMessage, 0, len(servers))
	for _, s := range servers {
		if len(s.State) > 0 {
			states = append(states, s.State)
		}
	}
	if len(states) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := d.DeleteUserStorage(ctx, states); err != nil {
		h.logger.Error("deleting the storage of a deleted user", zap.String("user", user), zap.Error(err))
	}
}
