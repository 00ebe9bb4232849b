package hubapp

// Owned by the hub-spawn helper: spawn flow, adoption at start, polling, progress, OAuth provider.
// These stubs keep the package building until it lands.

import "net/http"

// runtimeState is what must outlive a config reload about servers in flight (per-user locks,
// pending spawns, progress), kept in the shared state of a data_dir.
type runtimeState struct{}

func newRuntimeState() *runtimeState { return &runtimeState{} }

func (h *Hub) registerSpawn(mux *http.ServeMux) {}

func (h *Hub) startSpawn() error { return nil }

func (h *Hub) stopSpawn(cleanup bool) {}
