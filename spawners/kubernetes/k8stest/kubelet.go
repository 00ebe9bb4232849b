package k8stest

import (
	"context"
	"encoding/json"
	"errors"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/tools/cache"
)

// NodeName is the node the kubelet stand-in runs pods on.
const NodeName = "fake-node-0"

// Kubelet is the kubelet stand-in of one namespace ("" for all).
type Kubelet struct {
	c  *Cluster
	ns string
	// NoServers leaves out the stand-in notebook servers (pods only look running).
	NoServers bool

	nextIP  atomic.Int64
	mu      sync.Mutex
	handled map[string]bool
	servers map[string]*http.Server
	running map[string]time.Time
	hold    func(*corev1.Pod) bool
	stop    chan struct{}
}

// StartKubelet creates the node and starts running the pods of namespace ns.
func (c *Cluster) StartKubelet(t testing.TB, ns string) *Kubelet {
	t.Helper()
	ctx := context.Background()
	node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: NodeName}}
	if _, err := c.Client.CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	k := &Kubelet{c: c, ns: ns, handled: map[string]bool{}, servers: map[string]*http.Server{}, running: map[string]time.Time{}, stop: make(chan struct{})}
	// Test binaries run side by side (go test runs packages in parallel), each with its kubelets:
	// each kubelet starts its pod addresses at a random place in 127.1.0.0/16.
	k.nextIP.Store(rand.Int64N(podAddresses))
	lw := &cache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
			return c.Client.CoreV1().Pods(ns).List(ctx, o)
		},
		WatchFuncWithContext: func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
			return c.Client.CoreV1().Pods(ns).Watch(ctx, o)
		},
	}
	inf := cache.NewSharedIndexInformer(lw, &corev1.Pod{}, 0, cache.Indexers{})
	_, _ = inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { k.seen(obj) },
		UpdateFunc: func(_, obj any) { k.seen(obj) },
		DeleteFunc: func(obj any) {
			if pod, ok := obj.(*corev1.Pod); ok {
				k.stopServer(pod.Namespace + "/" + pod.Name)
			}
		},
	})
	go inf.Run(k.stop)
	t.Cleanup(k.Close)
	if !cache.WaitForCacheSync(k.stop, inf.HasSynced) {
		t.Fatal("kubelet cache did not sync")
	}
	return k
}

// Hold makes the kubelet leave the pods for which f returns true pending (f is called once per pod).
func (k *Kubelet) Hold(f func(*corev1.Pod) bool) {
	k.mu.Lock()
	k.hold = f
	k.mu.Unlock()
}

// Release runs a pod the kubelet held.
func (k *Kubelet) Release(pod *corev1.Pod) { go k.run(pod.DeepCopy()) }

// RunningAt is when the kubelet sent the status that set the pod Running (zero if it has not).
func (k *Kubelet) RunningAt(ns, name string) time.Time {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.running[ns+"/"+name]
}

// Close stops the kubelet and the stand-in servers.
func (k *Kubelet) Close() {
	k.mu.Lock()
	select {
	case <-k.stop:
	default:
		close(k.stop)
	}
	servers := k.servers
	k.servers = map[string]*http.Server{}
	k.mu.Unlock()
	for _, s := range servers {
		_ = s.Close()
	}
}

func (k *Kubelet) seen(obj any) {
	pod, ok := obj.(*corev1.Pod)
	if !ok {
		return
	}
	key := pod.Namespace + "/" + pod.Name
	if pod.DeletionTimestamp != nil {
		// The kubelet's half of a graceful delete: stop the containers, then remove the pod.
		k.stopServer(key)
		go func() {
			zero := int64(0)
			_ = k.c.Client.CoreV1().Pods(pod.Namespace).Delete(context.Background(), pod.Name,
				metav1.DeleteOptions{GracePeriodSeconds: &zero, Preconditions: &metav1.Preconditions{UID: &pod.UID}})
		}()
		return
	}
	if pod.Spec.NodeName != "" || pod.Status.Phase != corev1.PodPending {
		return
	}
	k.mu.Lock()
	if k.handled[key] {
		k.mu.Unlock()
		return
	}
	k.handled[key] = true
	hold := k.hold
	k.mu.Unlock()
	if hold != nil && hold(pod) {
		return
	}
	go k.run(pod.DeepCopy())
}

// run binds the pod, starts its server on a loopback address of its own and sets it Running.
func (k *Kubelet) run(pod *corev1.Pod) {
	ctx := context.Background()
	pods := k.c.Client.CoreV1().Pods(pod.Namespace)
	err := pods.Bind(ctx, &corev1.Binding{ObjectMeta: metav1.ObjectMeta{Name: pod.Name, Namespace: pod.Namespace, UID: pod.UID},
		Target: corev1.ObjectReference{Kind: "Node", Name: NodeName}}, metav1.CreateOptions{})
	if err != nil {
		return
	}
	ip := k.podIP()
	if !k.NoServers {
		// An address another kubelet (of another test binary) holds is skipped, as a real network
		// hands out another pod IP.
		var err error
		for try := 0; ; try++ {
			if err = k.serve(pod, ip); err == nil || !errors.Is(err, syscall.EADDRINUSE) || try == 20 {
				break
			}
			ip = k.podIP()
		}
		if err != nil {
			k.c.note("pod %s/%s left pending: serving it at %s: %v", pod.Namespace, pod.Name, ip, err)
			return
		}
	}
	for range 10 {
		cur, err := pods.Get(ctx, pod.Name, metav1.GetOptions{})
		if err != nil || cur.UID != pod.UID {
			return
		}
		SetRunning(cur, ip)
		// Noted before the write: a watcher may see the pod Running before UpdateStatus returns here.
		key := pod.Namespace + "/" + pod.Name
		k.mu.Lock()
		k.running[key] = time.Now()
		k.mu.Unlock()
		_, err = pods.UpdateStatus(ctx, cur, metav1.UpdateOptions{})
		if err == nil {
			return
		}
		k.mu.Lock()
		delete(k.running, key)
		k.mu.Unlock()
		if !apierrors.IsConflict(err) {
			k.c.note("pod %s/%s left pending: setting it Running: %v", pod.Namespace, pod.Name, err)
			return
		}
	}
	k.c.note("pod %s/%s left pending: setting it Running conflicted 10 times", pod.Namespace, pod.Name)
}

// podAddresses is how many pod addresses 127.1.0.1-127.1.249.250 hold.
const podAddresses = 250 * 250

// podIP is the next pod address of this kubelet, in 127.1.0.0/16.
func (k *Kubelet) podIP() string {
	n := k.nextIP.Add(1) % podAddresses
	return "127.1." + strconv.FormatInt(n/250, 10) + "." + strconv.FormatInt(n%250+1, 10)
}

// SetRunning sets a pod's status to Running and Ready with the given IP.
func SetRunning(pod *corev1.Pod, ip string) {
	now := metav1.Now()
	pod.Status.Phase = corev1.PodRunning
	pod.Status.PodIP, pod.Status.HostIP = ip, "127.0.0.1"
	pod.Status.PodIPs = []corev1.PodIP{{IP: ip}}
	pod.Status.StartTime = &now
	pod.Status.Conditions = []corev1.PodCondition{
		{Type: corev1.PodScheduled, Status: corev1.ConditionTrue, LastTransitionTime: now},
		{Type: corev1.PodInitialized, Status: corev1.ConditionTrue, LastTransitionTime: now},
		{Type: corev1.ContainersReady, Status: corev1.ConditionTrue, LastTransitionTime: now},
		{Type: corev1.PodReady, Status: corev1.ConditionTrue, LastTransitionTime: now},
	}
	pod.Status.ContainerStatuses = nil
	for _, c := range pod.Spec.Containers {
		pod.Status.ContainerStatuses = append(pod.Status.ContainerStatuses, corev1.ContainerStatus{
			Name: c.Name, Image: c.Image, ImageID: c.Image, Ready: true, Started: new(true),
			State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: now}},
		})
	}
}

// serve starts the pod's stand-in notebook server at ip and the port of its JUPYTERHUB_SERVICE_URL.
func (k *Kubelet) serve(pod *corev1.Pod, ip string) error {
	env := map[string]string{}
	if len(pod.Spec.Containers) > 0 {
		for _, e := range pod.Spec.Containers[0].Env {
			env[e.Name] = e.Value
		}
	}
	port := "8888"
	if u, err := url.Parse(env["JUPYTERHUB_SERVICE_URL"]); err == nil && u.Port() != "" {
		port = u.Port()
	}
	l, err := net.Listen("tcp", net.JoinHostPort(ip, port))
	if err != nil {
		return err
	}
	up := websocket.Upgrader{CheckOrigin: func(*http.Request) bool { return true }}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if websocket.IsWebSocketUpgrade(r) {
			conn, err := up.Upgrade(w, r, nil)
			if err != nil {
				return
			}
			defer conn.Close()
			for {
				mt, msg, err := conn.ReadMessage()
				if err != nil {
					return
				}
				if err := conn.WriteMessage(mt, append([]byte(pod.Name+": "), msg...)); err != nil {
					return
				}
			}
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]string{"pod": pod.Name, "user": env["JUPYTERHUB_USER"], "path": r.URL.Path, "ip": ip})
	}), ReadHeaderTimeout: 10 * time.Second}
	key := pod.Namespace + "/" + pod.Name
	k.mu.Lock()
	k.servers[key] = srv
	k.mu.Unlock()
	go func() { _ = srv.Serve(l) }()
	return nil
}

func (k *Kubelet) stopServer(key string) {
	k.mu.Lock()
	srv := k.servers[key]
	delete(k.servers, key)
	k.mu.Unlock()
	if srv != nil {
		_ = srv.Close()
	}
}

// Evict evicts a pod through the Eviction API, as a node drain does.
func (c *Cluster) Evict(ctx context.Context, ns, name string) error {
	return c.Client.PolicyV1().Evictions(ns).Evict(ctx, &policyv1.Eviction{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns}})
}
