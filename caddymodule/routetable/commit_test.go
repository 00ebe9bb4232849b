package routetable

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"
)

// batchPersister records batches; while gate is set, the first write blocks
// until the gate is closed, so that later saves queue up behind it.
type batchPersister struct {
	fakePersister
	gate    chan struct{}
	entered chan struct{}
	once    sync.Once
	batches []int
	fail    error
}

func (p *batchPersister) wait() {
	p.once.Do(func() {
		if p.gate != nil {
			close(p.entered)
			<-p.gate
		}
	})
}

func (p *batchPersister) SaveRoute(rec Record) error {
	p.wait()
	p.mu.Lock()
	p.batches = append(p.batches, 1)
	p.mu.Unlock()
	if p.fail != nil {
		return p.fail
	}
	return p.fakePersister.SaveRoute(rec)
}

func (p *batchPersister) SaveRoutes(recs []Record) error {
	p.wait()
	p.mu.Lock()
	defer p.mu.Unlock()
	p.batches = append(p.batches, len(recs))
	if p.fail != nil {
		return p.fail
	}
	seen := map[string]bool{}
	for _, r := range recs {
		if seen[r.Key] {
			return fmt.Errorf("duplicate key %s in one batch", r.Key)
		}
		seen[r.Key] = true
		p.routes[r.Key] = r
	}
	return nil
}

func TestGroupCommit(t *testing.T) {
	for _, fail := range []error{nil, errDisk} {
		p := &batchPersister{
			fakePersister: fakePersister{routes: map[string]Record{}, acts: map[string]time.Time{}},
			gate:          make(chan struct{}),
			entered:       make(chan struct{}),
			fail:          fail,
		}
		tb := New()
		tb.SetPersister(p)
		const n = 20
		keys := distinctShardKeys(tb, "/user/first", n)
		errs := make(chan error, n+1)
		go func() { _, err := tb.Add("/user/first", "http://127.0.0.1:1", nil); errs <- err }()
		<-p.entered // the leader is writing; the next saves must queue
		for _, k := range keys {
			go func() { _, err := tb.Add(k, "http://127.0.0.1:1", nil); errs <- err }()
		}
		waitQueued(t, &tb.commits, n)
		close(p.gate)
		for range n + 1 {
			if err := <-errs; !errors.Is(err, fail) || (fail == nil && err != nil) {
				t.Errorf("fail=%v: Add returned %v", fail, err)
			}
		}
		p.mu.Lock()
		if fmt.Sprint(p.batches) != fmt.Sprint([]int{1, n}) {
			t.Errorf("fail=%v: batches %v, want [1 %d]", fail, p.batches, n)
		}
		stored := len(p.routes)
		p.mu.Unlock()
		want := n + 1
		if fail != nil {
			want = 0
		}
		if stored != want || tb.Len() != want {
			t.Errorf("fail=%v: %d stored, %d in the table, want %d", fail, stored, tb.Len(), want)
		}
	}
}

// distinctShardKeys returns n keys that share no shard with each other or
// with first, so that no Add waits for another's shard lock.
func distinctShardKeys(tb *Table, first string, n int) []string {
	firstShard, _ := tb.shardFor(first)
	used := map[*shard]bool{firstShard: true}
	var keys []string
	for i := 0; len(keys) < n; i++ {
		k := fmt.Sprintf("/user/u%d", i)
		if s, _ := tb.shardFor(k); !used[s] {
			used[s] = true
			keys = append(keys, k)
		}
	}
	return keys
}

func waitQueued(t *testing.T, g *groupCommit, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		g.mu.Lock()
		q := len(g.pending)
		g.mu.Unlock()
		if q == n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d saves queued, want %d", q, n)
		}
		time.Sleep(time.Millisecond)
	}
}

// TestGroupCommitConcurrent hammers the batcher; run with -race.
func TestGroupCommitConcurrent(t *testing.T) {
	p := &batchPersister{fakePersister: fakePersister{routes: map[string]Record{}, acts: map[string]time.Time{}}}
	tb := New()
	tb.SetPersister(p)
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			for i := range 300 {
				key := fmt.Sprintf("/user/w%d-%d", w, i%50)
				if _, err := tb.Add(key, "http://127.0.0.1:1", nil); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.routes) != 400 || tb.Len() != 400 {
		t.Errorf("%d stored, %d in the table, want 400", len(p.routes), tb.Len())
	}
	total := 0
	for _, b := range p.batches {
		total += b
	}
	if total != 8*300 {
		t.Errorf("%d records written, want %d", total, 8*300)
	}
}
