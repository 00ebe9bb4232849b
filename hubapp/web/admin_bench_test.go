package web

import (
	"fmt"
	"net/http"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/caddyhub/caddyhub/hubapp/store"
)

// TestAdminPageSpeed (HUB_ADMIN_BENCH=1) serves /hub/admin over a store of 100,000 users, 1,000 of them with a running
// server record (records only: no processes), logged in as an admin: the first page, a name
// search, and the active filter, and logs the median and worst of 20 requests each (time to the last
// byte at the client, loopback). Figures: docs/benchmarks.md.
func TestAdminPageSpeed(t *testing.T) {
	if os.Getenv("HUB_ADMIN_BENCH") == "" {
		t.Skip("set HUB_ADMIN_BENCH=1 to measure the admin page at 100,000 users")
	}
	wh := newWebHub(t, false)
	const users, running = 100_000, 1_000
	for start := 0; start < users; start += 1_000 {
		err := wh.h.store.Update(func(tx *store.Txn) error {
			for i := start; i < start+1_000; i++ {
				name := fmt.Sprintf("user%06d", i)
				if err := tx.CreateUser(&store.User{Name: name, Created: time.Now()}); err != nil {
					return err
				}
				if i%(users/running) == 0 {
					if err := tx.PutServer(&store.Server{User: name, Ready: true, Started: time.Now()}); err != nil {
						return err
					}
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	c := wh.client(t)
	wh.mustLogin(t, c, "root")
	for _, q := range []string{"", "?q=user0543", "?q=user099999", "?state=active", "?state=inactive&offset=50000"} {
		var times []time.Duration
		for range 20 {
			start := time.Now()
			r := wh.do(t, c, "GET", "/hub/admin"+q, nil)
			times = append(times, time.Since(start))
			if r.status != http.StatusOK || !strings.Contains(r.body, "<tr data-user=") {
				t.Fatalf("GET /hub/admin%s: %d", q, r.status)
			}
		}
		slices.Sort(times)
		t.Logf("GET /hub/admin%-28s median %6.2f ms, worst %6.2f ms", q, ms(times[len(times)/2]), ms(times[len(times)-1]))
	}
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
