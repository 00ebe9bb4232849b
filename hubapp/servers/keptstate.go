package servers

import (
	"encoding/json"

	"github.com/caddyhub/caddyhub/hubapp/store"
	"github.com/caddyhub/caddyhub/spawners"
)

// keptState is what the spawner keeps of a stopped server's state for the server's next start
// (spawners.StateKeeper: a Kubernetes claim's name); nil for spawners that keep nothing. The engine
// stores it on the stopped record (after a stop, a failed start, or a poll that found the server
// gone), admins see it as the server's state, and the next Start gets it as StartRequest.PrevState.
func (e *Engine) keptState(state json.RawMessage) json.RawMessage {
	k, ok := e.spawner.(spawners.StateKeeper)
	if !ok || len(state) == 0 {
		return nil
	}
	return k.KeepState(state)
}

// goneReason asks the spawner why the server found stopped by itself has stopped
// (spawners.ExitReasoner: evicted, out of memory, node lost...); "" when it cannot say.
func (e *Engine) goneReason(user, server string) string {
	r, ok := e.spawner.(spawners.ExitReasoner)
	if !ok {
		return ""
	}
	var state json.RawMessage
	if err := e.store.View(func(tx *store.Txn) error {
		s, err := tx.Server(user, server)
		if err == nil {
			state = s.State
		}
		return err
	}); err != nil || len(state) == 0 {
		return ""
	}
	return r.ExitReason(state)
}

// goneFailure is the message the "not running" page shows for a server that stopped by itself.
func goneFailure(why string) string { return "Your server stopped: " + why + "." }
