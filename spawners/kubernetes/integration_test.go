//go:build k8se2e

package kubernetes

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
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
		s.Config.Profiles = []Profile{{ProfileInfo: spawners.ProfileInfo{Slug: "small"}, CPULimit: 1}, {ProfileInfo: spawners.ProfileInfo{Slug: "big"}, MemLimit: "4G", Image: "example/big"}}
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
		t.Fatalf("start bob: %v\n%s", err, c.Logs())
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

// TestIntegrationWatchCutMidSpawn cuts every connection of the spawner (its pod and event watches)
// once the pod exists and the spawner waits for it to run, and only then lets the kubelet run it: the
// informer must watch again from where it was and see the pod become ready.
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
	created := make(chan struct{})
	var once sync.Once
	go func() {
		srv, err := s.Start(context.Background(), startReq("carol"), func(e spawners.Event) {
			if strings.HasPrefix(e.Message, "Pod ") && strings.Contains(e.Message, " created") {
				once.Do(func() { close(created) })
			}
		})
		done <- result{srv, err}
	}()
	// The spawner has its create answer (and waits on the informer), and the kubelet holds the pod.
	<-created
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
		st, _ := parseState(r.srv.State)
		if st.UID != pod.UID {
			t.Errorf("started pod %s, the kubelet ran %s", st.UID, pod.UID)
		}
	case <-time.After(45 * time.Second):
		t.Fatal("start did not finish after the watch was cut")
	}
}

// lossyTransport loses the answer of the first pod creation (the API server carries it out, the
// spawner sees the connection break), then refuses the requests refuse says, as if the API server
// had become unreachable.
type lossyTransport struct {
	next   http.RoundTripper
	lost   atomic.Bool
	refuse func(*http.Request) bool
}

func (l *lossyTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/pods") && l.lost.CompareAndSwap(false, true) {
		resp, err := l.next.RoundTrip(r)
		if err != nil {
			return nil, err
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusCreated {
			return nil, fmt.Errorf("the pod creation to lose got status %d", resp.StatusCode)
		}
		return nil, io.ErrUnexpectedEOF
	}
	if l.lost.Load() && l.refuse != nil && l.refuse(r) {
		return nil, &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}
	}
	return l.next.RoundTrip(r)
}

// TestIntegrationCreateAnswerLost: a pod creation the API server carried out but whose answer never
// came back. The start finds its pod by its unique name and goes on with it; when the API server then
// refuses everything but deletions, the start fails and deletes the pod by name: none is left.
func TestIntegrationCreateAnswerLost(t *testing.T) {
	c := k8stest.Start(t)
	c.CreateNamespace(t, "hub")
	c.StartKubelet(t, "hub")
	ctx := context.Background()
	userPods := func(user string) []corev1.Pod {
		list, err := c.Client.CoreV1().Pods("hub").List(ctx, metav1.ListOptions{LabelSelector: LabelUser + "=" + user})
		if err != nil {
			t.Fatal(err)
		}
		return list.Items
	}

	lt := &lossyTransport{}
	s := realSpawner(t, c, c.URL, func(s *Spawner) {
		s.wrapTransport = func(rt http.RoundTripper) http.RoundTripper { lt.next = rt; return lt }
	})
	srv, err := s.Start(ctx, startReq("erin"), nil)
	if err != nil {
		t.Fatalf("start after a lost create answer: %v", err)
	}
	st, _ := parseState(srv.State)
	if pods := userPods("erin"); len(pods) != 1 || pods[0].UID != st.UID {
		t.Fatalf("pods of erin %d, state %+v", len(pods), st)
	}

	lt2 := &lossyTransport{refuse: func(r *http.Request) bool { return r.Method != http.MethodDelete }}
	s2 := realSpawner(t, c, c.URL, func(s *Spawner) {
		s.wrapTransport = func(rt http.RoundTripper) http.RoundTripper { lt2.next = rt; return lt2 }
	})
	if _, err := s2.Start(ctx, startReq("fred"), nil); err == nil || !strings.Contains(err.Error(), "could not be reached") {
		t.Fatalf("start with the API server gone after a lost create answer: %v", err)
	}
	if pods := userPods("fred"); len(pods) != 0 {
		t.Fatalf("%d pods of fred left behind", len(pods))
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
