//go:build unix

package localproc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"syscall"
	"time"
)

// leader describes what became of the process a State names.
type leader int

const (
	leaderGone  leader = iota // no such process, or a zombie
	leaderOurs                // running, and the same process
	leaderOther               // the PID now belongs to another process
)

func (s State) leader() (leader, error) {
	if s.PID <= 0 {
		return leaderGone, nil
	}
	if s.BootID != "" && bootID() != "" && s.BootID != bootID() {
		return leaderGone, nil
	}
	// Signal 0 checks existence; EPERM means it exists but is not ours to
	// signal, which /proc below settles.
	if err := syscall.Kill(s.PID, 0); errors.Is(err, syscall.ESRCH) {
		return leaderGone, nil
	}
	if !haveProcfs() {
		return leaderOurs, nil // exists; its start time cannot be checked
	}
	st, err := readStat(s.PID)
	if errors.Is(err, errNoProcess) {
		return leaderGone, nil
	}
	if err != nil {
		return leaderGone, err
	}
	if s.StartTicks != 0 && st.StartTicks != s.StartTicks {
		return leaderOther, nil
	}
	if st.State == 'Z' {
		return leaderGone, nil
	}
	return leaderOurs, nil
}

// Poll reports whether the server a state describes is running: one
// signal-0 and one read of /proc/<pid>/stat.
func Poll(raw json.RawMessage) (bool, error) {
	s, err := ParseState(raw)
	if err != nil {
		return false, err
	}
	l, err := s.leader()
	if err != nil {
		return false, err
	}
	return l == leaderOurs, nil
}

// Stop stops the server a state describes and everything left in its
// process group: SIGTERM, up to term for the group to go, then SIGKILL and
// up to kill. Stopping a server that is not running is not an error. If
// ctx ends first, Stop sends SIGKILL at once and returns ctx's error.
func Stop(ctx context.Context, raw json.RawMessage, term, kill time.Duration) error {
	s, err := ParseState(raw)
	if err != nil {
		return err
	}
	if s.PID <= 0 {
		return nil
	}
	l, err := s.leader()
	if err != nil {
		return err
	}
	switch l {
	case leaderOther:
		return nil // the PID was reused, so our group is gone too
	case leaderGone:
		if s.StartTicks == 0 || (s.BootID != "" && bootID() != "" && s.BootID != bootID()) {
			return nil // cannot tell leftovers from strangers: leave them
		}
		// The leader died; children it left in its group (kernels) may live.
		alive, err := groupMembersAlive(s.PID, s.StartTicks)
		if err != nil || !alive {
			return err
		}
	}
	return stopGroup(ctx, s.PID, s.StartTicks, term, kill)
}

// stopGroup sends SIGTERM, then SIGKILL, to process group pgid and waits
// for it to empty.
func stopGroup(ctx context.Context, pgid int, notBefore uint64, term, kill time.Duration) error {
	if err := signalGroup(pgid, syscall.SIGTERM); err != nil {
		return err
	}
	gone, err := waitGroupGone(ctx, pgid, notBefore, term)
	if err != nil && ctx.Err() == nil {
		return err
	}
	if gone {
		return nil
	}
	if err := signalGroup(pgid, syscall.SIGKILL); err != nil {
		return err
	}
	if ctx.Err() != nil {
		return fmt.Errorf("stopping process group %d: %w", pgid, ctx.Err())
	}
	gone, err = waitGroupGone(ctx, pgid, notBefore, kill)
	if err != nil {
		return err
	}
	if !gone {
		return fmt.Errorf("process group %d did not end within %s of SIGKILL", pgid, kill)
	}
	return nil
}

func signalGroup(pgid int, sig syscall.Signal) error {
	err := syscall.Kill(-pgid, sig)
	if err == nil || errors.Is(err, syscall.ESRCH) {
		return nil
	}
	return fmt.Errorf("sending %s to process group %d: %w", sig, pgid, err)
}

// waitGroupGone polls until no live process is left in the group, for at
// most d. The leader, while it lives, answers without a /proc scan.
func waitGroupGone(ctx context.Context, pgid int, notBefore uint64, d time.Duration) (bool, error) {
	deadline := time.Now().Add(d)
	delay := 5 * time.Millisecond
	for {
		alive, err := groupAlive(pgid, notBefore)
		if err != nil {
			return false, err
		}
		if !alive {
			return true, nil
		}
		left := time.Until(deadline)
		if left <= 0 {
			return false, nil
		}
		t := time.NewTimer(min(delay, left))
		select {
		case <-ctx.Done():
			t.Stop()
			return false, fmt.Errorf("waiting for process group %d to end: %w", pgid, ctx.Err())
		case <-t.C:
		}
		delay = min(delay*2, 100*time.Millisecond)
	}
}

func groupAlive(pgid int, notBefore uint64) (bool, error) {
	st, err := readStat(pgid)
	if err == nil && st.State != 'Z' && st.PGID == pgid && st.StartTicks == notBefore {
		return true, nil
	}
	return groupMembersAlive(pgid, notBefore)
}
