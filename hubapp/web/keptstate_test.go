package web

import (
	"context"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caddyhub/caddyhub/spawners"
)

// keeperSpawner is a fake spawner that keeps part of a stopped server's state (a claim named after
// the server's id), says why a server stopped, and records storage deletions.
type keeperSpawner struct {
	*fakeSpawner
	mu      sync.Mutex
	deleted []json.RawMessage
}

func (k *keeperSpawner) KeepState(state json.RawMessage) json.RawMessage {
	var s struct {
		ID    string `json:"id"`
		Claim string `json:"claim"`
	}
	if json.Unmarshal(state, &s) != nil {
		return nil
	}
	if s.Claim == "" {
		s.Claim = "claim-of-" + s.ID
	}
	b, _ := json.Marshal(map[string]string{"claim": s.Claim})
	return b
}

func (k *keeperSpawner) ExitReason(json.RawMessage) string {
	return "it ran out of memory (limit 1Gi) and was killed"
}

func (k *keeperSpawner) DeleteUserStorage(_ context.Context, states []json.RawMessage) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.deleted = append(k.deleted, states...)
	return nil
}

var (
	_ spawners.StateKeeper    = (*keeperSpawner)(nil)
	_ spawners.ExitReasoner   = (*keeperSpawner)(nil)
	_ spawners.StorageDeleter = (*keeperSpawner)(nil)
)

func TestKeptStateExitReasonAndUserStorage(t *testing.T) {
	sp := &keeperSpawner{fakeSpawner: newFakeSpawner()}
	h := newTestHub(t, sp, nil)
	alice := mustUser(t, h, "alice", false)
	const kept = `{"claim":"claim-of-alice/"}`

	// A stopped server keeps what the spawner keeps; the next start gets it as PrevState.
	if _, err := h.startServer(alice, "", nil); err != nil {
		t.Fatal(err)
	}
	waitIdle(t, h, "alice", "")
	if req := sp.lastRequest(); req.PrevState != nil {
		t.Fatalf("first start got PrevState %s", req.PrevState)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := h.stopServer(ctx, alice, ""); err != nil {
		t.Fatal(err)
	}
	if s := getServer(t, h, "alice", ""); s.Ready || string(s.State) != kept {
		t.Fatalf("stopped record: ready %v state %s", s.Ready, s.State)
	}
	if _, err := h.startServer(alice, "", nil); err != nil {
		t.Fatal(err)
	}
	waitIdle(t, h, "alice", "")
	if req := sp.lastRequest(); string(req.PrevState) != kept {
		t.Fatalf("second start got PrevState %s", req.PrevState)
	}

	// A server found stopped by a poll: the spawner's reason is on the record for the not-running
	// page, and the state is kept.
	sp.fakeSpawner.mu.Lock()
	sp.alive["alice/"] = false
	sp.fakeSpawner.mu.Unlock()
	engineOf(h).PollOnce(ctx)
	s := getServer(t, h, "alice", "")
	if s.Ready || s.Failure != "Your server stopped: it ran out of memory (limit 1Gi) and was killed." || string(s.State) != kept {
		t.Fatalf("record after the poll: ready %v failure %q state %s", s.Ready, s.Failure, s.State)
	}
	if !strings.Contains(failureText(s.Failure), "ran out of memory") {
		t.Errorf("page text %q", failureText(s.Failure))
	}

	// Deleting the user hands the kept states to the spawner's storage deletion.
	if err := h.deleteUser("alice"); err != nil {
		t.Fatal(err)
	}
	sp.mu.Lock()
	defer sp.mu.Unlock()
	if len(sp.deleted) != 1 || string(sp.deleted[0]) != kept {
		t.Fatalf("storage deletions %s", sp.deleted)
	}
}
