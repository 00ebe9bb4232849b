//go:build k8se2e

package kubernetes

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"go.uber.org/zap/zaptest"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/caddyhub/caddyhub/spawners"
	"github.com/caddyhub/caddyhub/spawners/kubernetes/k8stest"
)

// realSpawner is a spawner talking to the test cluster at url (the cluster's, or a proxy's).
func realSpawner(t *testing.T, c *k8stest.Cluster, url string, edit func(*Spawner)) *Spawner {
	t.Helper()
	s := &Spawner{logger: zaptest.NewLogger(t)}
	s.Server, s.Token, s.InsecureSkipTLSVerify, s.Namespace = url, c.Token, true, "hub"
	s.StartTimeout = spawnersDuration(60 * time.Second)
	if edit != nil {
		edit(s)
	}
	if err := s.provision(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Cleanup() })
	return s
}

func TestIntegrationSpawnReachProfilesAdoptEvict(t *testing.T) {
	c := k8stest.Start(t)
	c.CreateNamespace(t, "hub")
	kl := c.StartKubelet(t, "hub")
	s := realSpawner(t, c, c.URL, func(s *Spawner) {
		s.Storage = &Storage{Class: "standard"}
		s.Profiles = []Profile{{Slug: "small", CPULimit: 1}, {Slug: "big", MemLimit: "4G", Image: "example/big"}}
	})
	ctx := context.Background()

	// Spawn with a profile; the start waits for HTTP at the pod's own loopback address.
	req := startReq("alice")
	req.UserOptions = map[string]any{"profile": "big"}
	var events []string
	var mu sync.Mutex
	srv, err := s.Start(ctx, req, func(e spawners.Event) { mu.Lock(); events = append(events, e.Message); mu.Unlock() })
	if err != nil {
		t.Fatalf("start: %v\n%s", err, c.Logs())
	}
	if !strings.HasPrefix(srv.URL, "http://127.1.") {
		t.Fatalf("URL %s", srv.URL)
	}
	st, _ := parseState(srv.State)
	pod, err := c.Client.CoreV1().Pods("hub").Get(ctx, st.Pod, metav1.GetOptions{})
	if err != nil || pod.Spec.Containers[0].Image != "example/big" || pod.Spec.Containers[0].Resources.Limits.Memory().String() != "4Gi" {
		t.Fatalf("pod of profile big: %v %+v", err, pod.Spec.Containers)
	}
	if _, err := c.Client.CoreV1().PersistentVolumeClaims("hub").Get(ctx, st.PVC, metav1.GetOptions{}); err != nil {
		t.Fatalf("claim %s: %v", st.PVC, err)
	}
	resp, err := http.Get(srv.URL + "/user/alice/api")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(body), `"user":"alice"`) {
		t.Fatalf("server answered %s", body)
	}
	ws, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(srv.URL, "http")+"/user/alice/api/kernels/k/channels", nil)
	if err != nil {
		t.Fatal(err)
	}
	_ = ws.WriteMessage(websocket.TextMessage, []byte("ping"))
	if _, msg, err := ws.ReadMessage(); err != nil || string(msg) != st.Pod+": ping" {
		t.Fatalf("websocket: %q %v", msg, err)
	}
	ws.Close()

	// An unknown profile creates nothing.
	bad := startReq("alice")
	bad.UserOptions = map[string]any{"profile": "gpu"}
	if _, err := s.Start(ctx, bad, nil); err == nil || !strings.Contains(err.Error(), "unknown profile") {
		t.Fatalf("unknown profile: %v", err)
	}

	// A second spawn for the orphan check.
	other, err := s.Start(ctx, startReq("bob"), nil)
	if err != nil {
		t.Fatal(err)
	}

	// A new hub process adopts alice's pod from the cluster and reports bob's as an orphan.
	s2 := realSpawner(t, c, c.URL, nil)
	if ok, err := s2.Poll(ctx, srv.State); !ok || err != nil {
		t.Fatalf("adopt: %v %v", ok, err)
	}
	orphans, err := s2.Orphans(ctx, []json.RawMessage{srv.State})
	ost, _ := parseState(other.State)
	if err != nil || len(orphans) != 1 || !strings.Contains(orphans[0], ost.Pod) {
		t.Fatalf("orphans %+v %v", orphans, err)
	}

	// Evicted: the next poll says gone, and why.
	if err := c.Evict(ctx, "hub", st.Pod); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { ok, _ := s2.Poll(ctx, srv.State); return !ok })
	if why := s2.ExitReason(srv.State); !strings.Contains(why, "evicted") {
		t.Errorf("reason %q", why)
	}
	_ = kl
}

// proxy forwards TCP connections to target and can cut them all.
type proxy struct {
	l     net.Listener
	mu    sync.Mutex
	conns []net.Conn
}

func newProxy(t *testing.T, target string) *proxy {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{l: l}
	t.Cleanup(func() { l.Close(); p.cut() })
	go func() {
		for {
			in, err := l.Accept()
			if err != nil {
				return
			}
			out, err := net.Dial("tcp", target)
			if err != nil {
				in.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, in, out)
			p.mu.Unlock()
			go func() { _, _ = io.Copy(out, in); out.Close() }()
			go func() { _, _ = io.Copy(in, out); in.Close() }()
		}
	}()
	return p
}

func (p *proxy) cut() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := len(p.conns)
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
	return n
}

func TestIntegrationWatchCutMidSpawn(t *testing.T) {
	c := k8stest.Start(t)
	c.CreateNamespace(t, "hub")
	kl := c.StartKubelet(t, "hub")
	held := make(chan *corev1.Pod, 1)
	kl.Hold(func(p *corev1.Pod) bool { held <- p; return true })
	px := newProxy(t, strings.TrimPrefix(c.URL, "https://"))
	s := realSpawner(t, c, "https://"+px.l.Addr().String(), nil)
	type result struct {
		srv *spawners.Server
		err error
	}
	done := make(chan result, 1)
	go func() {
		srv, err := s.Start(context.Background(), startReq("carol"), nil)
		done <- result{srv, err}
	}()
	pod := <-held
	if n := px.cut(); n == 0 {
		t.Fatal("no connection to cut")
	}
	kl.Release(pod)
	select {
	case r := <-done:
		if r.err != nil {
			t.Fatalf("start after the watch was cut: %v", r.err)
		}
	case <-time.After(45 * time.Second):
		t.Fatal("start did not finish after the watch was cut")
	}
}

func TestIntegrationAPIUnreachable(t *testing.T) {
	c := k8stest.Start(t)
	c.CreateNamespace(t, "hub")
	s := realSpawner(t, c, c.URL, func(s *Spawner) { s.StartTimeout = spawnersDuration(5 * time.Second) })
	c.StopAPIServer()
	_, err := s.Start(context.Background(), startReq("dan"), nil)
	var se *spawners.StartError
	if !errors.As(err, &se) || !strings.Contains(err.Error(), "could not be reached") {
		t.Fatalf("err %v", err)
	}
}
