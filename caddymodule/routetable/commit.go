package routetable

import "sync"

// groupCommit batches concurrent SaveRoute calls for a BatchPersister: the
// first caller becomes the leader and writes batches until none is waiting;
// the others wait for the batch that holds their record.
type groupCommit struct {
	mu      sync.Mutex
	pending []*pendingSave
	leading bool
}

type pendingSave struct {
	rec  Record
	done chan error
}

// maxBatch bounds one write, keeping transactions well under store limits.
const maxBatch = 256

// save makes rec durable through p, grouped with concurrent saves when p is a
// BatchPersister.
func (g *groupCommit) save(p Persister, rec Record) error {
	bp, ok := p.(BatchPersister)
	if !ok {
		return p.SaveRoute(rec)
	}
	me := &pendingSave{rec: rec, done: make(chan error, 1)}
	g.mu.Lock()
	g.pending = append(g.pending, me)
	if g.leading {
		g.mu.Unlock()
		return <-me.done
	}
	g.leading = true
	for len(g.pending) > 0 {
		n := min(len(g.pending), maxBatch)
		batch := g.pending[:n:n]
		g.pending = g.pending[n:]
		g.mu.Unlock()
		writeBatch(bp, batch)
		g.mu.Lock()
	}
	g.leading = false
	g.pending = nil
	g.mu.Unlock()
	return <-me.done
}

func writeBatch(bp BatchPersister, batch []*pendingSave) {
	var err error
	if len(batch) == 1 {
		err = bp.SaveRoute(batch[0].rec)
	} else {
		recs := make([]Record, len(batch))
		for i, ps := range batch {
			recs[i] = ps.rec
		}
		err = bp.SaveRoutes(recs)
	}
	for _, ps := range batch {
		ps.done <- err
	}
}
