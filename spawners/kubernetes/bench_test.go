//go:build k8se2e

package kubernetes

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/caddyhub/caddyhub/spawners"
	"github.com/caddyhub/caddyhub/spawners/kubernetes/k8stest"
)

// requestCounter counts the API requests a spawner sends, by kind.
type requestCounter struct {
	writes, reads, lists, watches atomic.Int64
}

func (rc *requestCounter) wrap(rt http.RoundTripper) http.RoundTripper {
	return roundTripFunc(func(r *http.Request) (*http.Response, error) {
		switch {
		case r.URL.Query().Get("watch") == "true":
			rc.watches.Add(1)
		case r.Method == http.MethodGet && strings.Count(strings.Trim(r.URL.Path, "/"), "/") <= 4:
			rc.lists.Add(1) // /api/v1/namespaces/<ns>/pods
		case r.Method == http.MethodGet:
			rc.reads.Add(1)
		default:
			rc.writes.Add(1)
		}
		return rt.RoundTrip(r)
	})
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// TestBenchKubernetes measures the spawner against the real API server with the kubelet stand-in
// (docs/benchmarks.md). It runs only with CADDYHUB_K8S_BENCH=1.
func TestBenchKubernetes(t *testing.T) {
	if os.Getenv("CADDYHUB_K8S_BENCH") != "1" {
		t.Skip("set CADDYHUB_K8S_BENCH=1 to run the Kubernetes benchmark")
	}
	c := k8stest.Start(t)
	c.CreateNamespace(t, "hub")
	kl := c.StartKubelet(t, "hub")
	var rc requestCounter
	s := realSpawner(t, c, c.URL, func(s *Spawner) { s.wrapTransport = rc.wrap; s.Storage = &Storage{} })
	ctx := context.Background()

	// 1. Sequential spawns: the hub's time on top of the pod becoming Running (informer notice + HTTP
	// wait-up at the pod's address).
	const seq = 20
	var overhead []time.Duration
	var states []spawners.Server
	w0, r0 := rc.writes.Load(), rc.reads.Load()
	for i := range seq {
		srv, err := s.Start(ctx, startReq(fmt.Sprintf("seq%d", i)), nil)
		if err != nil {
			t.Fatal(err)
		}
		done := time.Now()
		st, _ := parseState(srv.State)
		overhead = append(overhead, done.Sub(kl.RunningAt("hub", st.Pod)))
		states = append(states, *srv)
	}
	sort.Slice(overhead, func(i, j int) bool { return overhead[i] < overhead[j] })
	writes := float64(rc.writes.Load()-w0) / seq
	reads := float64(rc.reads.Load()-r0) / seq
	t.Logf("BENCH overhead after Running: median %v p95 %v max %v (n=%d)", overhead[seq/2], overhead[seq*95/100], overhead[seq-1], seq)
	t.Logf("BENCH API requests per spawn: %.1f writes, %.1f reads (with storage: claim + pod)", writes, reads)
	if writes > 5 || reads > 0 {
		t.Errorf("requests per spawn: %.1f writes, %.1f reads", writes, reads)
	}
	p0 := rc.reads.Load() + rc.lists.Load()
	for range 50 {
		for _, srv := range states {
			if ok, err := s.Poll(ctx, srv.State); !ok || err != nil {
				t.Fatal("poll", ok, err)
			}
		}
	}
	t.Logf("BENCH %d polls: %d API reads", 50*seq, rc.reads.Load()+rc.lists.Load()-p0)

	// 2. 100 concurrent spawns.
	const conc = 100
	began := time.Now()
	var wg sync.WaitGroup
	var failed atomic.Int64
	for i := range conc {
		wg.Go(func() {
			if _, err := s.Start(ctx, startReq(fmt.Sprintf("c%d", i)), nil); err != nil {
				failed.Add(1)
				t.Log(err)
			}
		})
	}
	wg.Wait()
	all := time.Since(began)
	t.Logf("BENCH %d concurrent spawns all ready in %v (%d failed)", conc, all, failed.Load())
	if failed.Load() > 0 || all > 5*time.Second {
		t.Errorf("concurrent spawns: %v, %d failed", all, failed.Load())
	}
	kl.Close()

	// 3. A hub start with 5,000 running pods: one list, then every poll from the cache.
	const many = 5000
	c.CreateNamespace(t, "big")
	tmpl := &Spawner{Options: s.Options, Config: s.Config}
	tmpl.Namespace = "big"
	var created sync.WaitGroup
	sem := make(chan struct{}, 32)
	raw := make([][]byte, many)
	for i := range many {
		created.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			req := startReq(fmt.Sprintf("u%d", i))
			pod, err := tmpl.buildPod(req, "big", newName("jupyter", req.User, ""), "", choice{image: "x"})
			if err != nil {
				t.Error(err)
				return
			}
			pod.Labels[LabelHub] = s.HubName
			p, err := c.Client.CoreV1().Pods("big").Create(ctx, pod, metav1.CreateOptions{})
			if err != nil {
				t.Error(err)
				return
			}
			k8stest.SetRunning(p, "127.2.0.1")
			if _, err := c.Client.CoreV1().Pods("big").UpdateStatus(ctx, p, metav1.UpdateOptions{}); err != nil {
				t.Error(err)
				return
			}
			raw[i] = state{Namespace: "big", Pod: p.Name, UID: p.UID}.raw()
		})
	}
	created.Wait()
	if t.Failed() {
		return
	}
	began = time.Now()
	hub := realSpawner(t, c, c.URL, func(s *Spawner) { s.Namespace = "big" })
	for _, st := range raw {
		if ok, err := hub.Poll(ctx, st); !ok || err != nil {
			t.Fatalf("adopting: %v %v", ok, err)
		}
	}
	adopt := time.Since(began)
	t.Logf("BENCH hub start adopting %d running pods: %v", many, adopt)
	if adopt > 2*time.Second {
		t.Errorf("adoption took %v", adopt)
	}
}
