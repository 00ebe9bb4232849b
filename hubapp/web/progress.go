package web

// Spawn progress: every start records its events in a progressLog that any number of EventSource
// subscribers read (docs/protocols.md, "Spawn progress stream").

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"

	"time"

	"github.com/caddyhub/caddyhub/hubapp/rbac"
	"github.com/caddyhub/caddyhub/hubapp/servers"
	"github.com/caddyhub/caddyhub/hubapp/store"
)

// progressKeepalive is how often an idle progress stream gets a keep-alive (JupyterHub: 8 s).
var progressKeepalive = 8 * time.Second

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
	rec, err := h.eng.Record(name, server)
	if err != nil {
		h.apiServerLookupError(w, err)
		return
	}
	key := servers.Key(name, server)
	op, log := h.eng.Current(key)
	if rec == nil && op == nil && server != "" {
		// Every user has a default server (perhaps never started); named ones must exist.
		apiError(w, http.StatusNotFound, "")
		return
	}
	readyEvent := servers.ReadyEvent(h.eng.ServerURL(name, server))
	if op == nil || op.Kind() != "spawn" {
		switch {
		case rec != nil && rec.Ready:
			h.streamEvents(w, r, []map[string]any{readyEvent})
		case op == nil && log != nil:
			if ev, failed := log.Last(); failed {
				h.streamEvents(w, r, []map[string]any{ev})
				return
			}
			apiError(w, http.StatusBadRequest, servers.LogName(name, server)+" is not starting...")
		default:
			apiError(w, http.StatusBadRequest, servers.LogName(name, server)+" is not starting...")
		}
		return
	}
	h.streamLog(w, r, op.Progress())
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
func (h *Hub) streamLog(w http.ResponseWriter, r *http.Request, log *servers.Progress) {
	rc := h.startEventStream(w)
	keep := time.NewTicker(progressKeepalive)
	defer keep.Stop()
	next := 0
	for {
		evs, done, changed := log.Since(next)
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
