package docker

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"sort"
	"sync"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"go.uber.org/zap"

	"github.com/caddyhub/caddyhub/spawners"
)

func parseState(raw json.RawMessage) (state, error) {
	var st state
	if err := json.Unmarshal(raw, &st); err != nil {
		return st, fmt.Errorf("spawner docker: reading server state: %w", err)
	}
	if st.ID == "" {
		return st, fmt.Errorf("spawner docker: server state names no container")
	}
	return st, nil
}

// Poll reports whether the server's container is running. A running one is
// answered from one listing of the hub's running containers shared by all
// Polls for runningCacheTTL (the hub polls every starting server four times a
// second, and a busy engine answers a list as fast as one inspect); anything
// else is inspected. A container that
// stopped on its own is removed here when remove is true, once it has been
// stopped for removeExitedAfter (whoever noticed the exit may still read its
// output for the user).
func (s *Spawner) Poll(ctx context.Context, raw json.RawMessage) (bool, error) {
	st, err := parseState(raw)
	if err != nil {
		return false, err
	}
	if s.running.has(ctx, s, st.ID) {
		return true, nil
	}
	// Not among the running containers of the last listing: ask about this one.
	info, err := s.cli.ContainerInspect(ctx, st.ID)
	if cerrdefs.IsNotFound(err) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("spawner docker: inspecting container %s: %w", st.Name, err)
	}
	if info.State != nil && info.State.Running {
		return true, nil
	}
	if s.removeOnStop() && !inflight.held(s.HubID, st.Name) && exitedBefore(info, time.Now().Add(-removeExitedAfter)) {
		if err := s.cli.ContainerRemove(ctx, st.ID, container.RemoveOptions{Force: true}); err != nil && !cerrdefs.IsNotFound(err) {
			s.logger.Warn("removing a container that stopped", zap.String("container", st.Name), zap.Error(err))
		}
	}
	return false, nil
}

// runningCacheTTL is how long one listing of running containers answers Polls.
var runningCacheTTL = 200 * time.Millisecond

// runningCache holds the IDs of this hub's running containers from one listing.
type runningCache struct {
	mu   sync.Mutex
	at   time.Time
	ids  map[string]bool
	busy chan struct{} // closed when the listing in flight ends
}

// has reports whether id was running at a listing at most runningCacheTTL old, listing again
// (once for all callers) when the last one is older. An error counts as "not known running".
func (c *runningCache) has(ctx context.Context, s *Spawner, id string) bool {
	for {
		c.mu.Lock()
		if time.Since(c.at) < runningCacheTTL {
			ok := c.ids[id]
			c.mu.Unlock()
			return ok
		}
		if busy := c.busy; busy != nil {
			c.mu.Unlock()
			select {
			case <-busy:
				continue
			case <-ctx.Done():
				return false
			}
		}
		busy := make(chan struct{})
		c.busy = busy
		c.mu.Unlock()
		began := time.Now()
		list, err := s.cli.ContainerList(ctx, container.ListOptions{
			Filters: filters.NewArgs(filters.Arg("label", LabelHub+"="+s.HubID), filters.Arg("status", "running"))})
		c.mu.Lock()
		c.busy = nil
		close(busy)
		if err != nil {
			c.mu.Unlock()
			return false
		}
		c.ids = make(map[string]bool, len(list))
		for _, ct := range list {
			c.ids[ct.ID] = true
		}
		c.at = began
		ok := c.ids[id]
		c.mu.Unlock()
		return ok
	}
}

// removeExitedAfter is how long Poll leaves a container that exited on its own.
var removeExitedAfter = 10 * time.Second

// exitedBefore reports whether the container finished before t.
func exitedBefore(info container.InspectResponse, t time.Time) bool {
	if info.State == nil {
		return false
	}
	fin, err := time.Parse(time.RFC3339Nano, info.State.FinishedAt)
	return err == nil && !fin.IsZero() && fin.Year() > 1 && fin.Before(t)
}

// Stop stops the server's container (the engine sends SIGTERM, then SIGKILL
// after term_timeout) and removes it when remove is true. Idempotent: a
// container that is gone is stopped.
func (s *Spawner) Stop(ctx context.Context, raw json.RawMessage) error {
	st, err := parseState(raw)
	if err != nil {
		return err
	}
	secs := int(math.Ceil(time.Duration(s.TermTimeout).Seconds()))
	err = s.cli.ContainerStop(ctx, st.ID, container.StopOptions{Timeout: &secs})
	if cerrdefs.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("spawner docker: stopping container %s: %w", st.Name, err)
	}
	if s.removeOnStop() {
		err := s.cli.ContainerRemove(ctx, st.ID, container.RemoveOptions{Force: true})
		if err != nil && !cerrdefs.IsNotFound(err) {
			return fmt.Errorf("spawner docker: removing container %s: %w", st.Name, err)
		}
	}
	return nil
}

// Orphans lists this hub's containers (by the org.caddyhub.hub label) that
// none of the claimed states names and no start in progress is creating:
// running ones, and stopped ones when remove is true (with remove false a
// stopped container is kept on purpose). Each is described as
// "<name> (<short id>, user <u>, server <s>, <state>)". New orphans are
// logged once each. Containers without the label are never listed.
func (s *Spawner) Orphans(ctx context.Context, claimed []json.RawMessage) ([]string, error) {
	ids := make(map[string]bool, len(claimed))
	for _, raw := range claimed {
		if st, err := parseState(raw); err == nil {
			ids[st.ID] = true
		}
	}
	list, err := s.cli.ContainerList(ctx, container.ListOptions{All: true,
		Filters: filters.NewArgs(filters.Arg("label", LabelHub+"="+s.HubID))})
	if err != nil {
		return nil, fmt.Errorf("spawner docker: listing containers at %s: %w", s.hostName(), err)
	}
	out := []string{}
	for _, c := range list {
		if ids[c.ID] || c.Labels[LabelHub] != s.HubID {
			continue
		}
		name := c.ID
		if len(c.Names) > 0 {
			name = trimSlash(c.Names[0])
		}
		if inflight.held(s.HubID, name) {
			continue
		}
		running := c.State == "running"
		if !running && !s.removeOnStop() {
			continue
		}
		desc := fmt.Sprintf("%s (%s, user %s, server %q, %s)", name, shortID(c.ID), c.Labels[LabelUser], c.Labels[LabelServer], c.State)
		out = append(out, desc)
		if s.orphans.first(c.ID) {
			s.logger.Warn("container of this hub that no server record claims (orphan); stop and remove it by hand if it is not needed",
				zap.String("container", name), zap.String("id", shortID(c.ID)), zap.String("user", c.Labels[LabelUser]),
				zap.String("server", c.Labels[LabelServer]), zap.String("state", c.State))
		}
	}
	sort.Strings(out)
	return out, nil
}

func trimSlash(s string) string {
	if len(s) > 0 && s[0] == '/' {
		return s[1:]
	}
	return s
}

func shortID(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

// orphanLog remembers the orphans already logged.
type orphanLog struct {
	mu   sync.Mutex
	seen map[string]bool
}

func (l *orphanLog) first(id string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.seen[id] {
		return false
	}
	if l.seen == nil {
		l.seen = map[string]bool{}
	}
	l.seen[id] = true
	return true
}

// inflight is the set of containers starts are creating in this process, by
// hub ID and name, across spawner instances (a config reload makes a new
// one while starts of the old one run): Orphans skips them.
var inflight = &inflightSet{m: map[string]int{}}

type inflightSet struct {
	mu sync.Mutex
	m  map[string]int
}

func (f *inflightSet) hold(hub, name string) (release func()) {
	k := hub + "\x00" + name
	f.mu.Lock()
	f.m[k]++
	f.mu.Unlock()
	return func() {
		f.mu.Lock()
		if f.m[k]--; f.m[k] <= 0 {
			delete(f.m, k)
		}
		f.mu.Unlock()
	}
}

func (f *inflightSet) held(hub, name string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.m[hub+"\x00"+name] > 0
}

var _ spawners.OrphanLister = (*Spawner)(nil)
