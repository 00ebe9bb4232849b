package hubapp

// Spawn progress: every start records its events in a progressLog that any number of EventSource
// subscribers read (docs/protocols.md, "Spawn progress stream").

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/caddyhub/caddyhub/hubapp/rbac"
	"github.com/caddyhub/caddyhub/hubapp/store"
)

// progressKeepalive is how often an idle progress stream gets a keep-alive (JupyterHub: 8 s).
var progressKeepalive = 8 * time.Second

// maxProgressEvents bounds a log; a spawner that reports more keeps only the first ones and the end.
const maxProgressEvents = 200

// progressLog is the event log of one spawn. Subscribers read it from the start and wait on changed.
type progressLog struct {
	mu      sync.Mutex
	events  []map[string]any
	done    bool
	failed  bool
	changed chan struct{} // closed and replaced on every change
}

func newProgressLog() *progressLog { return &progressLog{changed: make(chan struct{})} }

// add appends an event; a spawner's event cannot claim readiness (JupyterHub strips "ready").
func (p *progressLog) add(ev map[string]any) {
	delete(ev, "ready")
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.done || len(p.events) >= maxProgressEvents {
		return
	}
	p.events = append(p.events, ev)
	close(p.changed)
	p.changed = make(chan struct{})
}

// finish appends the terminal event (ready or failed) and ends the log.
func (p *progressLog) finish(ev map[string]any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.done {
		return
	}
	p.events = append(p.events, ev)
	p.done = true
	p.failed = ev["failed"] == true
	close(p.changed)
	p.changed = make(chan struct{})
}

// since returns the events from index i on, whether the log has ended, and a channel closed at the
// next change.
func (p *progressLog) since(i int) ([]map[string]any, bool, <-chan struct{}) {
	p.mu.Lock()
	defer p.mu.Unlock()
	var evs []map[string]any
	if i < len(p.events) {
		evs = p.events[i:len(p.events):len(p.events)]
	}
	return evs, p.done, p.changed
}

// last returns the final event of an ended log.
func (p *progressLog) last() (map[string]any, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.done || len(p.events) == 0 {
		return nil, false
	}
	return p.events[len(p.events)-1], p.failed
}

// eventData renders one event as an EventSource frame, without HTML escaping (like json.dumps).
func eventData(ev map[string]any) []byte {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(ev); err != nil {
		return nil
	}
	return append(append([]byte("data: "), bytes.TrimRight(b.Bytes(), "\n")...), '\n', '\n')
}

// serveProgress is GET /hub/api/users/{name}/server/progress and …/servers/{server}/progress:
// text/event-stream of the pending spawn's events, ending with a ready or failed event. Browsers pass
// ?_xsrf= (EventSource cannot set headers); a GET changes nothing, so it needs no XSRF check.
func (h *Hub) serveProgress(w http.ResponseWriter, r *http.Request) {
	name, server := r.PathValue("name"), r.PathValue("server")
	if _, ok := h.apiAuthorize(w, r, []string{"read:servers"}, rbac.ServerResource(name, server), name); !ok {
		return
	}
	w.Header().Set("Cache-Control", "no-cache")
	err := h.store.View(func(tx *store.Txn) error { _, err := tx.User(name); return err })
	if errors.Is(err, store.ErrNotFound) {
		apiError(w, http.StatusNotFound, "")
		return
	} else if err != nil {
		h.apiServerLookupError(w, err)
		return
	}
	rec, err := h.spawnServerRecord(name, server)
	if err != nil {
		h.apiServerLookupError(w, err)
		return
	}
	key := serverKey(name, server)
	h.rt.mu.Lock()
	op, log := h.rt.ops[key], h.rt.progress[key]
	h.rt.mu.Unlock()
	if rec == nil && op == nil && server != "" {
		// Every user has a default server (perhaps never started); named ones must exist.
		apiError(w, http.StatusNotFound, "")
		return
	}
	url := h.userOrigin(name) + h.serverPrefix(name, server)
	readyEvent := map[string]any{
		"progress": 100, "ready": true, "url": url,
		"message":      "Server ready at " + url,
		"html_message": fmt.Sprintf(`Server ready at <a href="%s">%s</a>`, url, url),
	}
	if op == nil || op.kind != "spawn" {
		switch {
		case rec != nil && rec.Ready:
			h.streamEvents(w, r, []map[string]any{readyEvent})
		case op == nil && log != nil:
			if ev, failed := log.last(); failed {
				h.streamEvents(w, r, []map[string]any{ev})
				return
			}
			apiError(w, http.StatusBadRequest, logName(name, server)+" is not starting...")
		default:
			apiError(w, http.StatusBadRequest, logName(name, server)+" is not starting...")
		}
		return
	}
	h.streamLog(w, r, op.progress)
}

func (h *Hub) startEventStream(w http.ResponseWriter) *http.ResponseController {
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	_ = rc.Flush()
	return rc
}

func (h *Hub) streamEvents(w http.ResponseWriter, _ *http.Request, evs []map[string]any) {
	rc := h.startEventStream(w)
	for _, ev := range evs {
		_, _ = w.Write(eventData(ev))
	}
	_ = rc.Flush()
}

// streamLog relays a log to one subscriber until it ends or the client goes away, with keep-alives.
func (h *Hub) streamLog(w http.ResponseWriter, r *http.Request, log *progressLog) {
	rc := h.startEventStream(w)
	keep := time.NewTicker(progressKeepalive)
	defer keep.Stop()
	next := 0
	for {
		evs, done, changed := log.since(next)
		for _, ev := range evs {
			if _, err := w.Write(eventData(ev)); err != nil {
				return
			}
		}
		next += len(evs)
		if len(evs) > 0 {
			if err := rc.Flush(); err != nil {
				return
			}
		}
		if done {
			return
		}
		select {
		case <-r.Context().Done():
			return
		case <-changed:
		case <-keep.C:
			if _, err := w.Write([]byte("\n\n")); err != nil {
				return
			}
			if err := rc.Flush(); err != nil {
				return
			}
		}
	}
}
