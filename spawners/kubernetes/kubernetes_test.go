package kubernetes

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap/zaptest"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"

	"github.com/caddyhub/caddyhub/spawners"
)

// fakeCluster is a fake clientset that gives created objects a UID (as the API server does) and
// counts requests by verb.
type fakeCluster struct {
	*fake.Clientset
	mu     sync.Mutex
	verbs  map[string]int
	nextID atomic.Int64
	// hook, when set before use, may answer a request itself (after it is counted).
	hook k8stesting.ReactionFunc
}

func newFakeCluster() *fakeCluster {
	fc := &fakeCluster{Clientset: fake.NewClientset(), verbs: map[string]int{}}
	fc.PrependReactor("*", "*", func(a k8stesting.Action) (bool, runtime.Object, error) {
		fc.mu.Lock()
		fc.verbs[a.GetVerb()+" "+a.GetResource().Resource]++
		fc.mu.Unlock()
		if c, ok := a.(k8stesting.CreateAction); ok {
			if m, ok := c.GetObject().(metav1.Object); ok && m.GetUID() == "" {
				m.SetUID(types.UID("uid-" + string(rune('a'+fc.nextID.Add(1)%26)) + time.Now().Format("150405.000000000")))
			}
		}
		if fc.hook != nil {
			return fc.hook(a)
		}
		return false, nil, nil
	})
	return fc
}

func (fc *fakeCluster) count(verbResource string) int {
	fc.mu.Lock()
	defer fc.mu.Unlock()
	return fc.verbs[verbResource]
}

func newTestSpawner(t *testing.T, fc *fakeCluster, edit func(*Spawner)) *Spawner {
	t.Helper()
	s := &Spawner{logger: zaptest.NewLogger(t), client: fc}
	s.Namespace = "hub"
	s.StartTimeout = 0
	if edit != nil {
		edit(s)
	}
	if err := s.provision(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Cleanup() })
	return s
}

// kubelet plays the node: it sets every new pod of the namespace running with the given IP, or lets
// run decide what to do with it.
func kubelet(t *testing.T, fc *fakeCluster, ns string, run func(*corev1.Pod) bool) {
	t.Helper()
	w, err := fc.CoreV1().Pods(ns).Watch(context.Background(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Stop)
	go func() {
		for ev := range w.ResultChan() {
			pod, ok := ev.Object.(*corev1.Pod)
			if !ok || ev.Type != watch.Added {
				continue
			}
			pod = pod.DeepCopy()
			if run != nil && !run(pod) {
				continue
			}
			setRunning(pod, "10.1.2.3")
			_, _ = fc.CoreV1().Pods(ns).UpdateStatus(context.Background(), pod, metav1.UpdateOptions{})
		}
	}()
}

func setRunning(pod *corev1.Pod, ip string) {
	pod.Spec.NodeName = "node-1"
	pod.Status.Phase = corev1.PodRunning
	pod.Status.PodIP = ip
	pod.Status.Conditions = []corev1.PodCondition{
		{Type: corev1.PodReady, Status: corev1.ConditionTrue},
		{Type: corev1.ContainersReady, Status: corev1.ConditionTrue},
	}
	pod.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: containerName, Ready: true,
		State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{}}}}
}

func startReq(user string) *spawners.StartRequest {
	return &spawners.StartRequest{User: user, ServicePrefix: "/user/" + user + "/", DataDir: "/tmp",
		Env: map[string]string{"JUPYTERHUB_API_TOKEN": "secret-token"}}
}

// launch runs Start, which returns once the pod runs (the HTTP wait is the hub's).
func launch(t *testing.T, s *Spawner, req *spawners.StartRequest, progress func(spawners.Event)) (*spawners.Server, error) {
	t.Helper()
	return s.Start(context.Background(), req, progress)
}

func spawnersDuration(d time.Duration) caddy.Duration { return caddy.Duration(d) }

func TestStartPodFromTemplate(t *testing.T) {
	fc := newFakeCluster()
	kubelet(t, fc, "hub", nil)
	s := newTestSpawner(t, fc, func(s *Spawner) {
		s.Image = "example/notebook:1"
		s.MemLimit, s.MemGuarantee, s.CPULimit, s.CPUGuarantee = "2G", "1G", 2, 0.5
		s.NodeSelector = map[string]string{"pool": "users"}
		s.Tolerations = []corev1.Toleration{{Key: "gpu", Operator: corev1.TolerationOpExists}}
		s.ServiceAccount = "notebook"
		s.ExtraLabels = map[string]string{"team": "a"}
		s.ExtraAnnotations = map[string]string{"note": "x"}
		s.InitContainers = []corev1.Container{{Name: "init", Image: "busybox"}}
		s.Args = []string{"--debug"}
		s.Storage = &Storage{Class: "fast"}
	})
	var mu sync.Mutex
	var events []spawners.Event
	srv, err := launch(t, s, startReq("Alice.Smith"), func(e spawners.Event) { mu.Lock(); events = append(events, e); mu.Unlock() })
	if err != nil {
		t.Fatal(err)
	}
	spawnerGets := fc.count("get pods")
	if srv.URL != "http://10.1.2.3:8888" {
		t.Errorf("URL %q", srv.URL)
	}
	st, _ := parseState(srv.State)
	if st.Namespace != "hub" || !strings.HasPrefix(st.Pod, "jupyter-alice-smith-") || st.UID == "" || !strings.HasPrefix(st.PVC, "claim-alice-smith-") {
		t.Fatalf("state %+v", st)
	}
	pod, err := fc.CoreV1().Pods("hub").Get(context.Background(), st.Pod, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	c := pod.Spec.Containers[0]
	if c.Image != "example/notebook:1" || strings.Join(c.Args, " ") != "jupyterhub-singleuser --debug" {
		t.Errorf("container image %q args %q", c.Image, c.Args)
	}
	if c.Resources.Limits.Memory().Value() != 2<<30 || c.Resources.Requests.Memory().Value() != 1<<30 ||
		c.Resources.Limits.Cpu().MilliValue() != 2000 || c.Resources.Requests.Cpu().MilliValue() != 500 {
		t.Errorf("resources %+v", c.Resources)
	}
	if sc := pod.Spec.SecurityContext; sc == nil || *sc.RunAsUser != 1000 || !*sc.RunAsNonRoot || *sc.FSGroup != 100 {
		t.Errorf("security context %+v", sc)
	}
	if pod.Spec.NodeSelector["pool"] != "users" || len(pod.Spec.Tolerations) != 1 || pod.Spec.ServiceAccountName != "notebook" ||
		!*pod.Spec.AutomountServiceAccountToken || len(pod.Spec.InitContainers) != 1 || pod.Spec.RestartPolicy != corev1.RestartPolicyNever {
		t.Errorf("pod spec %+v", pod.Spec)
	}
	if pod.Labels["team"] != "a" || pod.Labels[LabelHub] != "caddyhub" || pod.Annotations["note"] != "x" ||
		pod.Annotations[AnnotationUsername] != "Alice.Smith" || pod.Labels[LabelUser] != "Alice.Smith" {
		t.Errorf("labels %v annotations %v", pod.Labels, pod.Annotations)
	}
	env := map[string]string{}
	for _, e := range c.Env {
		env[e.Name] = e.Value
	}
	if env["JUPYTERHUB_SERVICE_URL"] != "http://0.0.0.0:8888/user/Alice.Smith/" || env["JUPYTERHUB_API_TOKEN"] != "secret-token" ||
		env["MEM_LIMIT"] != "2147483648" || env["CPU_LIMIT"] != "2.0" || env["PATH"] != "" {
		t.Errorf("env %v", env)
	}
	if v := pod.Spec.Volumes; len(v) != 1 || v[0].PersistentVolumeClaim.ClaimName != st.PVC || c.VolumeMounts[0].MountPath != "/home/jovyan" {
		t.Errorf("volumes %+v mounts %+v", v, c.VolumeMounts)
	}
	pvc, err := fc.CoreV1().PersistentVolumeClaims("hub").Get(context.Background(), st.PVC, metav1.GetOptions{})
	if err != nil || *pvc.Spec.StorageClassName != "fast" || pvc.Spec.Resources.Requests.Storage().String() != "10Gi" {
		t.Fatalf("claim %+v: %v", pvc, err)
	}
	// Writes: the claim and the pod; no reads but the informers' list and watch.
	if n := fc.count("create pods") + fc.count("create persistentvolumeclaims"); n != 2 {
		t.Errorf("%d creates, want 2", n)
	}
	if spawnerGets != 0 {
		t.Errorf("%d pod reads by the spawner", spawnerGets)
	}
	mu.Lock()
	if len(events) == 0 || events[len(events)-1].Progress != 90 {
		t.Errorf("progress %+v", events)
	}
	mu.Unlock()

	// Poll is answered from the cache.
	before := fc.count("get pods") + fc.count("list pods")
	for range 100 {
		if ok, err := s.Poll(context.Background(), srv.State); !ok || err != nil {
			t.Fatalf("poll: %v %v", ok, err)
		}
	}
	if after := fc.count("get pods") + fc.count("list pods"); after != before {
		t.Errorf("100 polls made %d API reads", after-before)
	}

	// Stop deletes the pod and keeps the claim, whose name the hub keeps for the next start.
	if err := s.Stop(context.Background(), srv.State); err != nil {
		t.Fatal(err)
	}
	if _, err := fc.CoreV1().Pods("hub").Get(context.Background(), st.Pod, metav1.GetOptions{}); err == nil {
		t.Error("pod still there after Stop")
	}
	kept, _ := parseState(s.KeepState(srv.State))
	if kept.PVC != st.PVC || kept.Pod != "" {
		t.Errorf("kept %+v", kept)
	}
	if err := s.Stop(context.Background(), srv.State); err != nil {
		t.Errorf("second stop: %v", err)
	}
}

func TestProfiles(t *testing.T) {
	fc := newFakeCluster()
	kubelet(t, fc, "hub", nil)
	s := newTestSpawner(t, fc, func(s *Spawner) {
		s.MemLimit = "1G"
		s.Config.Profiles = []Profile{
			{ProfileInfo: spawners.ProfileInfo{Slug: "small"}},
			{ProfileInfo: spawners.ProfileInfo{Slug: "gpu", Default: true}, Image: "example/gpu", MemLimit: "8G", CPULimit: 4, NodeSelector: map[string]string{"gpu": "yes"}},
		}
	})
	for _, tc := range []struct {
		opts              map[string]any
		image, mem, label string
	}{
		{nil, "example/gpu", "8Gi", "yes"},
		{map[string]any{"profile": "small"}, DefaultImage, "1Gi", ""},
		{map[string]any{"profile": []any{"gpu"}}, "example/gpu", "8Gi", "yes"},
	} {
		req := startReq("bob")
		req.UserOptions = tc.opts
		srv, err := launch(t, s, req, nil)
		if err != nil {
			t.Fatal(err)
		}
		st, _ := parseState(srv.State)
		pod, _ := fc.CoreV1().Pods("hub").Get(context.Background(), st.Pod, metav1.GetOptions{})
		c := pod.Spec.Containers[0]
		if c.Image != tc.image || c.Resources.Limits.Memory().String() != tc.mem || pod.Spec.NodeSelector["gpu"] != tc.label {
			t.Errorf("%v: image %s mem %s selector %v", tc.opts, c.Image, c.Resources.Limits.Memory(), pod.Spec.NodeSelector)
		}
	}
	req := startReq("bob")
	req.UserOptions = map[string]any{"profile": "huge"}
	creates := fc.count("create pods")
	if _, err := launch(t, s, req, nil); err == nil || !strings.Contains(err.Error(), `unknown profile "huge"`) {
		t.Errorf("unknown profile: %v", err)
	}
	if fc.count("create pods") != creates {
		t.Error("a pod was created for an unknown profile")
	}
}

func TestFailedStartLeavesNoPod(t *testing.T) {
	fc := newFakeCluster()
	kubelet(t, fc, "hub", func(pod *corev1.Pod) bool {
		pod.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: containerName,
			State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "ErrImagePull", Message: "no such image"}}}}
		_, _ = fc.CoreV1().Pods("hub").UpdateStatus(context.Background(), pod, metav1.UpdateOptions{})
		return false
	})
	s := newTestSpawner(t, fc, nil)
	_, err := launch(t, s, startReq("carol"), nil)
	if err == nil || !strings.Contains(err.Error(), "ErrImagePull") || !errors.Is(err, spawners.ErrExitedEarly) {
		t.Fatalf("err %v", err)
	}
	pods, _ := fc.CoreV1().Pods("hub").List(context.Background(), metav1.ListOptions{})
	if len(pods.Items) != 0 {
		t.Errorf("%d pods left after a failed start", len(pods.Items))
	}

	// A pod that never runs: start_timeout, and the pod is deleted too.
	fc2 := newFakeCluster()
	s2 := newTestSpawner(t, fc2, func(s *Spawner) { s.StartTimeout = spawnersDuration(2 * time.Second) })
	_, err = launch(t, s2, startReq("dave"), nil)
	if !errors.Is(err, spawners.ErrStartTimeout) || !strings.Contains(err.Error(), "did not become ready within 2s") {
		t.Fatalf("timeout err %v", err)
	}
	pods, _ = fc2.CoreV1().Pods("hub").List(context.Background(), metav1.ListOptions{})
	if len(pods.Items) != 0 {
		t.Errorf("%d pods left after a timed-out start", len(pods.Items))
	}
}

func TestGoneReasons(t *testing.T) {
	fc := newFakeCluster()
	kubelet(t, fc, "hub", nil)
	s := newTestSpawner(t, fc, func(s *Spawner) { s.MemLimit = "512M" })
	ctx := context.Background()
	for _, tc := range []struct {
		name  string
		kill  func(*corev1.Pod)
		want  string
		erase bool
	}{
		{"oom", func(p *corev1.Pod) {
			p.Status.Phase = corev1.PodFailed
			p.Status.ContainerStatuses[0].State = corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{Reason: "OOMKilled", ExitCode: 137}}
		}, "ran out of memory (limit 512Mi)", false},
		{"evicted", func(p *corev1.Pod) {
			p.Status.Conditions = append(p.Status.Conditions, corev1.PodCondition{Type: corev1.DisruptionTarget, Status: corev1.ConditionTrue, Reason: "EvictionByEvictionAPI"})
		}, "evicted", true},
		{"kubelet-evicted", func(p *corev1.Pod) {
			p.Status.Phase, p.Status.Reason, p.Status.Message = corev1.PodFailed, "Evicted", "The node was low on resource: memory."
		}, "low on resource", false},
		{"node-lost", func(p *corev1.Pod) {
			p.Status.Conditions[0].Status = corev1.ConditionFalse
		}, "stopped responding", false},
		{"deleted", nil, "deleted", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv, err := launch(t, s, startReq("erin"), nil)
			if err != nil {
				t.Fatal(err)
			}
			st, _ := parseState(srv.State)
			pod, _ := fc.CoreV1().Pods("hub").Get(ctx, st.Pod, metav1.GetOptions{})
			if tc.kill != nil {
				tc.kill(pod)
				if _, err := fc.CoreV1().Pods("hub").UpdateStatus(ctx, pod, metav1.UpdateOptions{}); err != nil {
					t.Fatal(err)
				}
			}
			if tc.erase {
				if err := fc.CoreV1().Pods("hub").Delete(ctx, st.Pod, metav1.DeleteOptions{}); err != nil {
					t.Fatal(err)
				}
			}
			waitFor(t, func() bool { ok, _ := s.Poll(ctx, srv.State); return !ok })
			if why := s.ExitReason(srv.State); !strings.Contains(why, tc.want) {
				t.Errorf("reason %q, want %q", why, tc.want)
			}
		})
	}
}

func TestOrphansAndAdoption(t *testing.T) {
	fc := newFakeCluster()
	kubelet(t, fc, "hub", nil)
	s := newTestSpawner(t, fc, nil)
	a, err := launch(t, s, startReq("frank"), nil)
	if err != nil {
		t.Fatal(err)
	}
	b, err := launch(t, s, startReq("grace"), nil)
	if err != nil {
		t.Fatal(err)
	}
	_ = s.Cleanup()
	// A new hub process: a fresh spawner adopts from the same cluster.
	s2 := newTestSpawner(t, fc, nil)
	ctx := context.Background()
	if ok, err := s2.Poll(ctx, a.State); !ok || err != nil {
		t.Fatalf("adoption poll: %v %v", ok, err)
	}
	orphans, err := s2.Orphans(ctx, []json.RawMessage{a.State})
	if err != nil {
		t.Fatal(err)
	}
	bst, _ := parseState(b.State)
	if len(orphans) != 1 || !strings.HasPrefix(orphans[0], "hub/"+bst.Pod+` (user "grace"`) {
		t.Errorf("orphans %+v", orphans)
	}
}

func TestAPIUnreachable(t *testing.T) {
	s := &Spawner{logger: zaptest.NewLogger(t)}
	s.Server, s.Token, s.Namespace = "https://127.0.0.1:1", "x", "hub"
	s.StartTimeout = spawnersDuration(2 * time.Second)
	if err := s.provision(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Cleanup() })
	_, err := s.Start(context.Background(), startReq("hank"), nil)
	if err == nil || !strings.Contains(err.Error(), "API server could not be reached") || !strings.Contains(err.Error(), "connection refused") {
		t.Fatalf("err %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if _, err := s.Poll(ctx, state{Namespace: "hub", Pod: "p", UID: "u"}.raw()); err == nil {
		t.Error("poll without a synced cache reported no error")
	}
}

func TestStallDropsWatch(t *testing.T) {
	fc := newFakeCluster()
	// Every watch the informer opens delivers nothing (a hung connection).
	var watches atomic.Int64
	fc.PrependWatchReactor("pods", func(k8stesting.Action) (bool, watch.Interface, error) {
		watches.Add(1)
		return true, watch.NewFake(), nil
	})
	s := newTestSpawner(t, fc, func(s *Spawner) { s.WatchStallTimeout = spawnersDuration(100 * time.Millisecond) })
	if err := s.pods.waitSynced(context.Background()); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return s.Stats().WatchDrops >= 2 && watches.Load() >= 3 })
}

func TestUserNamespacesAndStorage(t *testing.T) {
	fc := newFakeCluster()
	var runPods atomic.Bool
	kubelet(t, fc, "", func(pod *corev1.Pod) bool {
		if runPods.Load() {
			setRunning(pod, "10.1.2.3")
			_, _ = fc.CoreV1().Pods(pod.Namespace).UpdateStatus(context.Background(), pod, metav1.UpdateOptions{})
		}
		return false
	})
	s := newTestSpawner(t, fc, func(s *Spawner) {
		s.UserNamespaces = true
		s.Storage = &Storage{}
		s.StartTimeout = spawnersDuration(time.Second)
	})
	ctx := context.Background()
	claims := func(ns string) []string {
		list, _ := fc.CoreV1().PersistentVolumeClaims(ns).List(ctx, metav1.ListOptions{})
		var out []string
		for _, c := range list.Items {
			out = append(out, c.Name)
		}
		return out
	}

	// A first start that fails (no pod runs) deletes the claim it named: a retry would make another.
	if _, err := launch(t, s, startReq("ivy"), nil); !errors.Is(err, spawners.ErrStartTimeout) {
		t.Fatalf("err %v", err)
	}
	nss, _ := fc.CoreV1().Namespaces().List(ctx, metav1.ListOptions{})
	if len(nss.Items) != 1 || !strings.HasPrefix(nss.Items[0].Name, "hub-ivy-") {
		t.Fatalf("namespaces %+v", nss.Items)
	}
	if c := claims(""); len(c) != 0 {
		t.Fatalf("claims left by a failed first start: %v", c)
	}

	// A start that works names the claim; the hub keeps it (KeepState) and hands it back to the next
	// start (PrevState), which mounts the same claim, in the same namespace, even for a renamed user.
	runPods.Store(true)
	srv, err := launch(t, s, startReq("ivy"), nil)
	if err != nil {
		t.Fatal(err)
	}
	st, _ := parseState(srv.State)
	if c := claims(st.Namespace); len(c) != 1 || c[0] != st.PVC {
		t.Fatalf("claims %v, state %+v", c, st)
	}
	if err := s.Stop(ctx, srv.State); err != nil {
		t.Fatal(err)
	}
	kept := s.KeepState(srv.State)
	req := startReq("ivy-renamed")
	req.PrevState = kept
	srv2, err := launch(t, s, req, nil)
	if err != nil {
		t.Fatal(err)
	}
	st2, _ := parseState(srv2.State)
	if st2.PVC != st.PVC || st2.Namespace != st.Namespace || st2.Pod == st.Pod {
		t.Fatalf("second start %+v, first %+v", st2, st)
	}
	pod, _ := fc.CoreV1().Pods(st2.Namespace).Get(ctx, st2.Pod, metav1.GetOptions{})
	if v := pod.Spec.Volumes; len(v) != 1 || v[0].PersistentVolumeClaim.ClaimName != st.PVC {
		t.Fatalf("volumes %+v", v)
	}

	// A failed start with a kept claim leaves that claim alone.
	runPods.Store(false)
	req = startReq("ivy-renamed")
	req.PrevState = s.KeepState(srv2.State)
	if _, err := launch(t, s, req, nil); err == nil {
		t.Fatal("start without a kubelet worked")
	}
	if c := claims(st.Namespace); len(c) != 1 {
		t.Fatalf("kept claim deleted by a failed start: %v", c)
	}

	if err := s.DeleteUserStorage(ctx, []json.RawMessage{kept}); err != nil {
		t.Fatal(err)
	}
	if c := claims(st.Namespace); len(c) != 1 {
		t.Error("claim deleted although delete_with_user is off")
	}
	s.Storage.DeleteWithUser = true
	if err := s.DeleteUserStorage(ctx, []json.RawMessage{kept}); err != nil {
		t.Fatal(err)
	}
	if c := claims(st.Namespace); len(c) != 0 {
		t.Error("claim kept although delete_with_user is on")
	}
}

func TestOptionsSpawnerAndPort(t *testing.T) {
	fc := newFakeCluster()
	kubelet(t, fc, "hub", nil)
	s := newTestSpawner(t, fc, func(s *Spawner) {
		s.Port = 9999
		s.PerUserService = true
		s.Config.Profiles = []Profile{{ProfileInfo: spawners.ProfileInfo{Slug: "small", DisplayName: "Small", Description: "1 CPU"}}, {ProfileInfo: spawners.ProfileInfo{Slug: "big", Default: true}}}
	})
	got := s.Profiles()
	if len(got) != 2 || got[0].Name != "small" || got[0].DisplayName != "Small" || got[0].Description != "1 CPU" ||
		got[1].DisplayName != "big" || !got[1].Default {
		t.Fatalf("profiles %+v", got)
	}
	for _, c := range []struct {
		in   map[string]any
		want string
		err  string
	}{
		{nil, "big", ""},
		{map[string]any{"profile": "small"}, "small", ""},
		{map[string]any{"profile": "gpu"}, "", "unknown profile"},
		{map[string]any{"profile": 3}, "", "must be a string"},
		{map[string]any{"profile": "small", "image": "evil"}, "", `unknown option "image"`},
	} {
		out, err := s.ValidateUserOptions(c.in)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("%v: err %v, want %q", c.in, err, c.err)
			}
			continue
		}
		if err != nil || out["profile"] != c.want || len(out) != 1 {
			t.Errorf("%v: %v %v", c.in, out, err)
		}
	}

	srv, err := launch(t, s, startReq("pat"), nil)
	if err != nil {
		t.Fatal(err)
	}
	st, _ := parseState(srv.State)
	if srv.URL != "http://"+st.Service+".hub.svc:9999" {
		t.Errorf("URL %s", srv.URL)
	}
	pod, _ := fc.CoreV1().Pods("hub").Get(context.Background(), st.Pod, metav1.GetOptions{})
	env := map[string]string{}
	for _, e := range pod.Spec.Containers[0].Env {
		env[e.Name] = e.Value
	}
	if pod.Spec.Containers[0].Ports[0].ContainerPort != 9999 || env["JUPYTERHUB_SERVICE_URL"] != "http://0.0.0.0:9999/user/pat/" {
		t.Errorf("port %d, service URL %s", pod.Spec.Containers[0].Ports[0].ContainerPort, env["JUPYTERHUB_SERVICE_URL"])
	}
	svc, err := fc.CoreV1().Services("hub").Get(context.Background(), st.Service, metav1.GetOptions{})
	if err != nil || svc.Spec.Ports[0].Port != 9999 || svc.Spec.Ports[0].TargetPort.IntValue() != 9999 {
		t.Errorf("service %v %+v", err, svc)
	}

	// The reason of a pod that stops while the hub waits for HTTP reaches the user (ExitError).
	pod.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: containerName,
		State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{Reason: "OOMKilled", ExitCode: 137}}}}
	pod.Status.Phase = corev1.PodFailed
	if _, err := fc.CoreV1().Pods("hub").UpdateStatus(context.Background(), pod, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { ok, _ := s.Poll(context.Background(), srv.State); return !ok })
	if err := srv.ExitError(); err == nil || !strings.Contains(err.Error(), "ran out of memory") || !errors.Is(err, spawners.ErrExitedEarly) {
		t.Errorf("exit error %v", err)
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 10s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}
