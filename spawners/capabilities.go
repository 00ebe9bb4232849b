package spawners

import (
	"context"
	"encoding/json"
)

// More optional capabilities, checked by the hub with a type assertion like RemoteSpawner and
// OptionsSpawner. They serve spawners whose servers leave things behind on purpose (a storage claim)
// or stop for reasons the engine reports (a pod evicted or killed for memory).

// StateKeeper is implemented by spawners that need part of a stopped server's state at its next
// start. When the server stops (or its start fails, or a poll finds it gone), the hub stores
// KeepState(state) instead of nothing, shows it to admins as the server's state, and hands it to the
// next Start as StartRequest.PrevState. KeepState returns nil when nothing is to be kept.
type StateKeeper interface {
	KeepState(state json.RawMessage) json.RawMessage
}

// ExitReasoner is implemented by spawners that can say why a server stopped by itself. The hub asks
// after Poll reported the server gone, and shows the answer on the user's "not running" page; ""
// means unknown.
type ExitReasoner interface {
	ExitReason(state json.RawMessage) string
}

// StorageDeleter is implemented by spawners that keep a user's storage past their servers (a
// Kubernetes claim). The hub calls DeleteUserStorage with the stored states of every server of a
// user it deletes, after stopping them; the spawner deletes the storage when its configuration says
// so and does nothing otherwise.
type StorageDeleter interface {
	DeleteUserStorage(ctx context.Context, states []json.RawMessage) error
}
