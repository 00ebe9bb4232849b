package web

import (
	"fmt"
	"net/http/httptest"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddyhub/caddyhub/caddymodule/routetable"
	"github.com/caddyhub/caddyhub/hubapp/store"
)

// benchHub fills a hub with users (every 100th running, with a route) and returns an admin token.
func benchHub(b *testing.B, users int) (*apiHub, string) {
	h := newAPIHub(b, nil)
	h.user("admin", true)
	const batch = 1000
	now := time.Now().UTC()
	var recs []routetable.Record
	for start := 0; start < users; start += batch {
		err := h.store.Update(func(tx *store.Txn) error {
			for i := start; i < min(start+batch, users); i++ {
				name := fmt.Sprintf("user%06d", i)
				if err := tx.CreateUser(&store.User{Name: name, LastActivity: now.Add(-time.Duration(i) * time.Second)}); err != nil {
					return err
				}
				if i%100 == 0 {
					if err := tx.PutServer(&store.Server{User: name, Ready: true, Target: "http://127.0.0.1:9", Started: now}); err != nil {
						return err
					}
				}
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	for i := 0; i < users; i += 100 {
		name := fmt.Sprintf("user%06d", i)
		recs = append(recs, routetable.Record{Key: "/user/" + name, Target: "http://127.0.0.1:9", Data: map[string]any{"jupyterhub": true, "user": name, "server_name": ""}})
	}
	if err := h.table.Load(recs); err != nil {
		b.Fatal(err)
	}
	return h, h.token("admin")
}

// p99 records request latencies and reports the 99th percentile.
type latencies struct{ d []time.Duration }

func (l *latencies) report(b *testing.B) {
	if len(l.d) == 0 {
		return
	}
	slices.Sort(l.d)
	b.ReportMetric(float64(l.d[len(l.d)*99/100].Microseconds())/1000, "p99-ms")
}

// BenchmarkAPIUsers100k: 100,000 users, 1,000 running. Target (issue #4): GET /users?limit=200
// p99 ≤ 50 ms; state=ready O(running); GET /users/<name> scaling with cores.
func BenchmarkAPIUsers100k(b *testing.B) {
	h, admin := benchHub(b, 100_000)
	get := func(b *testing.B, path string, header map[string]string) {
		rec := h.do(apiCall{method: "GET", path: path, token: admin, header: header})
		if rec.Code != 200 {
			b.Fatalf("%s: %d %s", path, rec.Code, rec.Body.String())
		}
	}
	pag := map[string]string{"Accept": "application/jupyterhub-pagination+json"}
	for _, bc := range []struct {
		name, path string
		header     map[string]string
	}{
		{"list-limit200-legacy", "/hub/api/users?limit=200", nil},
		{"list-limit200-paginated", "/hub/api/users?limit=200", pag},
		{"list-limit200-offset90000", "/hub/api/users?limit=200&offset=90000", pag},
		{"list-state-ready", "/hub/api/users?state=ready&limit=200", pag},
		{"list-name-filter", "/hub/api/users?name_filter=user0999&limit=200", pag},
	} {
		b.Run(bc.name, func(b *testing.B) {
			var l latencies
			for b.Loop() {
				t0 := time.Now()
				get(b, bc.path, bc.header)
				l.d = append(l.d, time.Since(t0))
			}
			l.report(b)
		})
	}
	b.Run("get-user-parallel", func(b *testing.B) {
		b.SetParallelism(100) // 100 × GOMAXPROCS concurrent clients
		var n atomic.Int64
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				i := n.Add(1)
				req := httptest.NewRequest("GET", fmt.Sprintf("http://127.0.0.1:8081/hub/api/users/user%06d", (i*37)%100_000), nil)
				req.Header.Set("Authorization", "token "+admin)
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, req)
				if rec.Code != 200 {
					b.Errorf("get user: %d", rec.Code)
					return
				}
			}
		})
	})
}
