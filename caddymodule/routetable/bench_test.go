package routetable

import (
	"fmt"
	"runtime"
	"testing"
)

func benchTable(b testing.TB, n int) *Table {
	b.Helper()
	tb := New()
	recs := make([]Record, 0, n+1)
	recs = append(recs, Record{Key: "/", Target: "http://127.0.0.1:8081"})
	for i := range n {
		recs = append(recs, Record{Key: fmt.Sprintf("/user/user%d", i), Target: "http://127.0.0.1:9000"})
	}
	if err := tb.Load(recs); err != nil {
		b.Fatal(err)
	}
	return tb
}

// BenchmarkLookup shows that lookup cost does not depend on the table size:
// compare the ns/op of the sub-benchmarks.
func BenchmarkLookup(b *testing.B) {
	for _, n := range []int{10, 10_000, 100_000} {
		tb := benchTable(b, n)
		// The same 8 users (a working set that fits the CPU cache whatever
		// the table size), looked up in turn with a deep request path.
		paths := make([]string, 8)
		for i := range paths {
			paths[i] = fmt.Sprintf("/user/user%d/api/kernels/abc/channels", i)
		}
		b.Run(fmt.Sprintf("routes=%d", n), func(b *testing.B) {
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				if tb.Lookup("hub.example.org", paths[i&7]) == nil {
					b.Fatal("no route")
				}
				i++
			}
		})
	}
}

func BenchmarkLookupHostRoutes(b *testing.B) {
	tb := benchTable(b, 10_000)
	if _, err := tb.Add("/user7.hub.example.org/user/user7", "http://127.0.0.1:9001", nil); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if tb.Lookup("user7.hub.example.org", "/user/user7/api/kernels") == nil {
			b.Fatal("no route")
		}
	}
}

func BenchmarkTouch(b *testing.B) {
	tb := benchTable(b, 10)
	r := tb.Get("/user/user1")
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			r.Touch()
		}
	})
}

func BenchmarkAdd(b *testing.B) {
	for _, n := range []int{10, 100_000} {
		tb := benchTable(b, n)
		b.Run(fmt.Sprintf("routes=%d", n), func(b *testing.B) {
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				if _, err := tb.Add(fmt.Sprintf("/user/new%d", i%1000), "http://127.0.0.1:9002", nil); err != nil {
					b.Fatal(err)
				}
				i++
			}
		})
	}
}

// BenchmarkRouteMemory reports the heap a route costs with the data JupyterHub
// adds to every user route (bytes/route), at 10,000 routes.
func BenchmarkRouteMemory(b *testing.B) {
	const n = 10_000
	var perRoute float64
	for b.Loop() {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		tb := New()
		for i := range n {
			name := fmt.Sprintf("u%05d", i)
			if _, err := tb.Add("/user/"+name, fmt.Sprintf("http://127.0.0.1:%d", 20000+i), map[string]any{"jupyterhub": true, "user": name, "server_name": ""}); err != nil {
				b.Fatal(err)
			}
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		perRoute = float64(after.HeapAlloc-before.HeapAlloc) / n
		runtime.KeepAlive(tb)
	}
	b.ReportMetric(perRoute, "bytes/route")
}
