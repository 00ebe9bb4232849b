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

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	k8sclient "k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"

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
		srv, err := spawners.StartAndWait(ctx, s, startReq(fmt.Sprintf("seq%d", i)), nil)
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

	// 2a. The API server's own time for the same burst, without the hub: conc pods of the same
	// template created at once by a bare client, each timed from its create call until a watch sees
	// it Running and Ready (the kubelet stand-in of namespace "base" runs them).
	const conc = 100
	c.CreateNamespace(t, "base")
	baseKL := c.StartKubelet(t, "base")
	baseKL.NoServers = true // set before any pod of the namespace exists; their IPs would clash with "hub"'s
	baseEach, baseAll := baselineBurst(t, c, s, "before", conc)

	// 2b. conc concurrent spawns through the spawner (create, informer notice, HTTP wait-up).
	began := time.Now()
	var each = make([]time.Duration, conc)
	var wg sync.WaitGroup
	var failed atomic.Int64
	for i := range conc {
		wg.Go(func() {
			t0 := time.Now()
			if _, err := spawners.StartAndWait(ctx, s, startReq(fmt.Sprintf("c%d", i)), nil); err != nil {
				failed.Add(1)
				t.Log(err)
			}
			each[i] = time.Since(t0)
		})
	}
	wg.Wait()
	all := time.Since(began)
	sort.Slice(each, func(i, j int) bool { return each[i] < each[j] })
	t.Logf("BENCH %d concurrent spawns all ready in %v (%d failed); per spawn median %v p95 %v",
		conc, all, failed.Load(), each[conc/2], each[conc*95/100])
	// The same baseline again after the spawner's burst, for the machine's drift during the run.
	baseEach2, baseAll2 := baselineBurst(t, c, s, "after", conc)
	baseKL.Close()
	for _, b := range []struct {
		name string
		each []time.Duration
		all  time.Duration
	}{{"before", baseEach, baseAll}, {"after", baseEach2, baseAll2}} {
		t.Logf("BENCH ratio spawner/API server alone (%s): burst %.2fx, median %.2fx, p95 %.2fx", b.name,
			all.Seconds()/b.all.Seconds(), each[conc/2].Seconds()/b.each[conc/2].Seconds(),
			each[conc*95/100].Seconds()/b.each[conc*95/100].Seconds())
	}
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

// baselineBurst creates n pods of the spawner's template at once with a bare client (no informer
// of the spawner) and times each from its create call until an informer of its own sees it Running
// and Ready; it returns those times and the time until all were.
func baselineBurst(t *testing.T, c *k8stest.Cluster, s *Spawner, label string, n int) ([]time.Duration, time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	// A client of its own (its own connection, the spawner's rate limits), as the spawner has.
	cfg := c.RestConfig()
	cfg.QPS, cfg.Burst = s.APIQPS, s.APIBurst
	cs, err := k8sclient.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	pods := cs.CoreV1().Pods("base")
	var mu sync.Mutex
	sent := map[string]time.Time{}
	seen := map[string]bool{}
	each := make([]time.Duration, 0, n)
	all := make(chan struct{})
	note := func(obj any) {
		pod, ok := obj.(*corev1.Pod)
		if !ok || !ready(pod) {
			return
		}
		mu.Lock()
		defer mu.Unlock()
		t0, ours := sent[pod.Name] // pods of an earlier burst are in the list too
		if !ours || seen[pod.Name] {
			return
		}
		seen[pod.Name] = true
		each = append(each, time.Since(t0))
		if len(each) == n {
			close(all)
		}
	}
	inf := cache.NewSharedIndexInformer(&cache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
			return pods.List(ctx, o)
		},
		WatchFuncWithContext: func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
			return pods.Watch(ctx, o)
		},
	}, &corev1.Pod{}, 0, cache.Indexers{})
	_, _ = inf.AddEventHandler(cache.ResourceEventHandlerFuncs{AddFunc: note, UpdateFunc: func(_, o any) { note(o) }})
	go inf.RunWithContext(ctx)
	if !cache.WaitForCacheSync(ctx.Done(), inf.HasSynced) {
		t.Fatal("baseline informer did not sync")
	}
	began := time.Now()
	for i := range n {
		go func() {
			req := startReq(fmt.Sprintf("%s%d", label, i))
			pod, err := s.buildPod(req, "base", newName("jupyter", req.User, ""), "", choice{image: s.Image})
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			sent[pod.Name] = time.Now()
			mu.Unlock()
			if _, err := pods.Create(ctx, pod, metav1.CreateOptions{}); err != nil {
				t.Error(err)
			}
		}()
	}
	select {
	case <-all:
	case <-ctx.Done():
		mu.Lock()
		defer mu.Unlock()
		t.Fatalf("baseline: %d of %d pods Running", len(each), n)
	}
	elapsed := time.Since(began)
	mu.Lock()
	defer mu.Unlock()
	out := append([]time.Duration(nil), each...)
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	t.Logf("BENCH API server alone (%s): %d pods created at once, all Running in %v; per pod create→Running median %v p95 %v",
		label, n, elapsed, out[n/2], out[n*95/100])
	return out, elapsed
}
