package servers

import "sync"

// maxProgressEvents bounds a log; a spawner that reports more keeps only the first ones and the end.
const maxProgressEvents = 200

// Progress is the event log of one spawn. Subscribers read it from the start and wait on changed.
type Progress struct {
	mu      sync.Mutex
	events  []map[string]any
	done    bool
	failed  bool
	changed chan struct{} // closed and replaced on every change
}

// NewProgress returns an empty log.
func NewProgress() *Progress { return &Progress{changed: make(chan struct{})} }

// Add appends an event; a spawner's event cannot claim readiness (JupyterHub strips "ready").
func (p *Progress) Add(ev map[string]any) {
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

// Finish appends the terminal event (ready or failed) and ends the log.
func (p *Progress) Finish(ev map[string]any) {
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

// Since returns the events from index i on, whether the log has ended, and a channel closed at the
// next change.
func (p *Progress) Since(i int) ([]map[string]any, bool, <-chan struct{}) {
	p.mu.Lock()
	defer p.mu.Unlock()
	var evs []map[string]any
	if i < len(p.events) {
		evs = p.events[i:len(p.events):len(p.events)]
	}
	return evs, p.done, p.changed
}

// Last returns the final event of an ended log and whether the spawn failed.
func (p *Progress) Last() (map[string]any, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.done || len(p.events) == 0 {
		return nil, false
	}
	return p.events[len(p.events)-1], p.failed
}

// ReadyEvent is the terminal event of a spawn that succeeded, for a server at url.
func ReadyEvent(url string) map[string]any {
	return map[string]any{
		"progress": 100, "ready": true, "url": url,
		"message":      "Server ready at " + url,
		"html_message": `Server ready at <a href="` + url + `">` + url + `</a>`,
	}
}

// failedEvent is the terminal event of a spawn that failed.
func failedEvent(msg string) map[string]any {
	return map[string]any{"progress": 100, "failed": true, "message": "Spawn failed: " + msg}
}
