// Package kubernetes is the jupyterhub.spawners.kubernetes module: each
// single-user server is a pod in a Kubernetes cluster (KubeSpawner's job),
// reached at its pod IP or through a Service of its own.
//
// The hub learns about its pods from two shared informers, one for the pods
// carrying its labels and one for pod events, each a single list followed by
// a watch; a health check drops a watch that falls silent. Poll answers from
// the informer's cache, so polling thousands of servers costs no API
// request, and a pod that is evicted, killed for memory or loses its node is
// seen at the next poll, with the reason. A spawn costs two or three writes
// (the claim, the pod, the Service when configured) and no reads.
package kubernetes

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"go.uber.org/zap"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/caddyhub/caddyhub/spawners"
)

func init() {
	caddy.RegisterModule(Spawner{})
}

// Spawner runs each server as a pod. Its JSON has the shared spawner
// options and the Kubernetes options (Config) side by side.
type Spawner struct {
	spawners.Options
	Config

	logger *zap.Logger
	client kubernetes.Interface
	// wrapTransport, when set before Provision (tests, benchmarks), wraps the client's transport.
	wrapTransport func(http.RoundTripper) http.RoundTripper

	pods   *watched
	events *watched

	mu         *sync.Mutex
	waiters    map[string]chan struct{}          // pod key → woken on every change of that pod
	sinks      map[types.UID]chan spawners.Event // pod UID → progress of its start
	reasons    map[types.UID]string              // pod UID → why it stopped, kept until Poll reports it
	namespaces map[string]bool                   // namespaces known to exist
	orphans    map[types.UID]bool                // orphan pods already logged
}

// CaddyModule returns the Caddy module information.
func (Spawner) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "jupyterhub.spawners.kubernetes",
		New: func() caddy.Module { return new(Spawner) },
	}
}

// Provision applies defaults, validates the options and builds the API
// client. It sends no request: the informers start at the first Start or
// Poll.
func (s *Spawner) Provision(ctx caddy.Context) error {
	s.logger = ctx.Logger()
	return s.provision()
}

func (s *Spawner) provision() error {
	if s.logger == nil {
		s.logger = zap.NewNop()
	}
	if err := s.Options.Provision(); err != nil {
		return fmt.Errorf("spawner kubernetes: %w", err)
	}
	if err := s.Config.provision(&s.Options); err != nil {
		return fmt.Errorf("spawner kubernetes: %w", err)
	}
	if s.client == nil {
		cfg, ns, err := s.restConfig()
		if err != nil {
			return fmt.Errorf("spawner kubernetes: %w", err)
		}
		if s.Namespace == "" {
			s.Namespace = ns
		}
		if s.wrapTransport != nil {
			cfg.Wrap(s.wrapTransport)
		}
		cs, err := kubernetes.NewForConfig(cfg)
		if err != nil {
			return fmt.Errorf("spawner kubernetes: building client: %w", err)
		}
		s.client = cs
	}
	if s.Namespace == "" {
		s.Namespace = defaultNamespace
	}
	s.mu = new(sync.Mutex)
	s.waiters = map[string]chan struct{}{}
	s.sinks = map[types.UID]chan spawners.Event{}
	s.reasons = map[types.UID]string{}
	s.namespaces = map[string]bool{}
	s.orphans = map[types.UID]bool{}
	watchNS := s.Namespace
	if s.UserNamespaces {
		watchNS = metav1.NamespaceAll
	}
	sel := s.selector()
	podLW := &cache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
			o.LabelSelector = sel
			return s.client.CoreV1().Pods(watchNS).List(ctx, o)
		},
		WatchFuncWithContext: func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
			o.LabelSelector = sel
			return s.client.CoreV1().Pods(watchNS).Watch(ctx, o)
		},
	}
	evSel := fields.OneTermEqualSelector("involvedObject.kind", "Pod").String()
	evLW := &cache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
			o.FieldSelector = evSel
			return s.client.CoreV1().Events(watchNS).List(ctx, o)
		},
		WatchFuncWithContext: func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
			o.FieldSelector = evSel
			return s.client.CoreV1().Events(watchNS).Watch(ctx, o)
		},
	}
	resync, stall := time.Duration(s.Resync), time.Duration(s.WatchStallTimeout)
	s.pods = newWatched("pods", s.client, podLW, &corev1.Pod{}, resync, stall, cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { s.podChanged(obj) },
		UpdateFunc: func(_, obj any) { s.podChanged(obj) },
		DeleteFunc: s.podDeleted,
	}, s.logger)
	s.events = newWatched("events", s.client, evLW, &corev1.Event{}, resync, stall, cache.ResourceEventHandlerFuncs{
		AddFunc:    s.podEvent,
		UpdateFunc: func(_, obj any) { s.podEvent(obj) },
	}, s.logger)
	return nil
}

// restConfig builds the client configuration: explicit server, kubeconfig, or in-cluster; and the
// namespace the configuration implies.
func (s *Spawner) restConfig() (*rest.Config, string, error) {
	var cfg *rest.Config
	ns := ""
	switch {
	case s.Server != "" && s.Kubeconfig == "":
		cfg = &rest.Config{Host: s.Server}
	case s.Kubeconfig == "" && os.Getenv("KUBERNETES_SERVICE_HOST") != "":
		c, err := rest.InClusterConfig()
		if err != nil {
			return nil, "", fmt.Errorf("in-cluster configuration: %w", err)
		}
		cfg = c
		if b, err := os.ReadFile(inClusterNamespaceFile); err == nil {
			ns = strings.TrimSpace(string(b))
		}
	default:
		rules := clientcmd.NewDefaultClientConfigLoadingRules()
		if s.Kubeconfig != "" {
			rules.ExplicitPath = s.Kubeconfig
		}
		over := &clientcmd.ConfigOverrides{CurrentContext: s.Context}
		if s.Server != "" {
			over.ClusterInfo.Server = s.Server
		}
		cc := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, over)
		c, err := cc.ClientConfig()
		if err != nil {
			return nil, "", fmt.Errorf("loading kubeconfig: %w", err)
		}
		cfg = c
		if n, _, err := cc.Namespace(); err == nil {
			ns = n
		}
	}
	if s.Token != "" {
		cfg.BearerToken = s.Token
	}
	if s.TokenFile != "" {
		cfg.BearerToken, cfg.BearerTokenFile = "", s.TokenFile
	}
	if s.CAFile != "" {
		cfg.CAFile, cfg.CAData = s.CAFile, nil
	}
	if s.InsecureSkipTLSVerify {
		cfg.Insecure, cfg.CAFile, cfg.CAData = true, "", nil
	}
	cfg.QPS, cfg.Burst = s.APIQPS, s.APIBurst
	cfg.UserAgent = "caddyhub-spawner"
	return cfg, ns, nil
}

// Cleanup stops the informers (the config is being unloaded).
func (s *Spawner) Cleanup() error {
	if s.pods != nil {
		s.pods.close()
		s.events.close()
	}
	return nil
}

// Common returns the shared options.
func (s *Spawner) Common() *spawners.Options { return &s.Options }

// state is the spawner's state of one server, which the hub stores.
type state struct {
	// Namespace is where the pod and the claim are.
	Namespace string `json:"namespace"`
	// Pod and UID name the pod of the current run.
	Pod string    `json:"pod,omitempty"`
	UID types.UID `json:"uid,omitempty"`
	// Service is the per-server Service, if any.
	Service string `json:"service,omitempty"`
	// PVC is the user's claim: named once, at its creation, and kept (KeepState) across stops and
	// renames.
	PVC string `json:"pvc,omitempty"`
	// Profile is the profile the pod runs.
	Profile string `json:"profile,omitempty"`
}

func parseState(raw json.RawMessage) (state, error) {
	var st state
	if len(raw) == 0 || string(raw) == "null" {
		return st, nil
	}
	if err := json.Unmarshal(raw, &st); err != nil {
		return st, fmt.Errorf("spawner kubernetes: parsing state: %w", err)
	}
	return st, nil
}

func (st state) raw() json.RawMessage {
	b, _ := json.Marshal(st)
	return b
}

// KeepState is what of a stopped server's state the hub keeps for its next start: the namespace and
// the claim, never derived from the username again.
func (s *Spawner) KeepState(raw json.RawMessage) json.RawMessage {
	st, err := parseState(raw)
	if err != nil || (st.PVC == "" && !s.UserNamespaces) {
		return nil
	}
	return state{Namespace: st.Namespace, PVC: st.PVC}.raw()
}

// RunsElsewhere reports that the servers do not run on the hub's machine: the hub does not look for
// them among its processes, and their URLs are not loopback.
func (s *Spawner) RunsElsewhere() bool { return true }

func podKey(ns, name string) string { return ns + "/" + name }

// podChanged wakes the start waiting for the pod and records why a pod stopped.
func (s *Spawner) podChanged(obj any) {
	pod, ok := obj.(*corev1.Pod)
	if !ok {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if why := stoppedReason(pod); why != "" {
		if _, known := s.reasons[pod.UID]; !known {
			s.recordReasonLocked(pod.UID, why)
		}
	}
	if ch := s.waiters[podKey(pod.Namespace, pod.Name)]; ch != nil {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}

func (s *Spawner) podDeleted(obj any) {
	if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = t.Obj
	}
	pod, ok := obj.(*corev1.Pod)
	if !ok {
		return
	}
	s.mu.Lock()
	if _, known := s.reasons[pod.UID]; !known {
		why := stoppedReason(pod)
		if why == "" {
			why = "its pod was deleted"
		}
		s.recordReasonLocked(pod.UID, why)
	}
	ch := s.waiters[podKey(pod.Namespace, pod.Name)]
	s.mu.Unlock()
	if ch != nil {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}

// maxReasons bounds the reasons kept for pods nobody has polled about yet.
const maxReasons = 20000

func (s *Spawner) recordReasonLocked(uid types.UID, why string) {
	if len(s.reasons) >= maxReasons {
		for k := range s.reasons { // drop an arbitrary half; these are hints for the user only
			delete(s.reasons, k)
			if len(s.reasons) < maxReasons/2 {
				break
			}
		}
	}
	s.reasons[uid] = why
}

// podEvent passes an event about a starting pod on as progress.
func (s *Spawner) podEvent(obj any) {
	ev, ok := obj.(*corev1.Event)
	if !ok {
		return
	}
	s.mu.Lock()
	sink := s.sinks[ev.InvolvedObject.UID]
	s.mu.Unlock()
	if sink == nil {
		return
	}
	msg := ev.Reason
	if ev.Message != "" {
		msg += ": " + ev.Message
	}
	select {
	case sink <- spawners.Event{Progress: eventProgress(ev.Reason), Message: msg}:
	default:
	}
}

// eventProgress places a pod event on the progress bar (the hub sends 100 when the route is in place).
func eventProgress(reason string) int {
	switch reason {
	case "Scheduled":
		return 30
	case "Pulling":
		return 40
	case "Pulled":
		return 60
	case "Created":
		return 70
	case "Started":
		return 80
	}
	return 20
}

// stoppedReason says why pod is no longer (or never will be) serving, in words for its user; "" while
// it is pending or running.
func stoppedReason(pod *corev1.Pod) string {
	for _, c := range pod.Status.Conditions {
		if c.Type == corev1.DisruptionTarget && c.Status == corev1.ConditionTrue {
			switch c.Reason {
			case "EvictionByEvictionAPI", "PreemptionByScheduler", "TerminationByKubelet":
				return "its pod was evicted from its node (" + c.Reason + ")" + withMessage(c.Message)
			case "DeletionByTaintManager", "DeletionByPodGC":
				return "its node was lost (" + c.Reason + ")" + withMessage(c.Message)
			}
			return "its pod is being removed (" + c.Reason + ")" + withMessage(c.Message)
		}
	}
	for _, cs := range pod.Status.ContainerStatuses {
		if t := cs.State.Terminated; t != nil && cs.Name == containerName {
			if t.Reason == "OOMKilled" {
				limit := ""
				if len(pod.Spec.Containers) > 0 {
					if q, ok := pod.Spec.Containers[0].Resources.Limits[corev1.ResourceMemory]; ok {
						limit = " (limit " + q.String() + ")"
					}
				}
				return "it ran out of memory" + limit + " and was killed"
			}
			return fmt.Sprintf("it exited with status %d (%s)", t.ExitCode, t.Reason)
		}
	}
	switch pod.Status.Phase {
	case corev1.PodFailed:
		if pod.Status.Reason == "Evicted" {
			return "its pod was evicted from its node" + withMessage(pod.Status.Message)
		}
		if pod.Status.Reason != "" {
			return "its pod failed (" + pod.Status.Reason + ")" + withMessage(pod.Status.Message)
		}
		return "its pod failed"
	case corev1.PodSucceeded:
		return "it exited"
	}
	if pod.DeletionTimestamp != nil {
		return "its pod was deleted"
	}
	if pod.Status.Phase == corev1.PodRunning {
		// The node lifecycle controller marks every pod of a node that stopped reporting not ready,
		// while the containers' last known state stays ready.
		var ready, containersReady *corev1.PodCondition
		for i := range pod.Status.Conditions {
			switch c := &pod.Status.Conditions[i]; c.Type {
			case corev1.PodReady:
				ready = c
			case corev1.ContainersReady:
				containersReady = c
			}
		}
		if ready != nil && containersReady != nil && ready.Status == corev1.ConditionFalse && containersReady.Status == corev1.ConditionTrue {
			return "its node " + pod.Spec.NodeName + " stopped responding"
		}
	}
	return ""
}

func withMessage(m string) string {
	if m == "" {
		return ""
	}
	return ": " + m
}

// Poll reports whether the server's pod is still serving, from the informer's cache: no API request.
func (s *Spawner) Poll(ctx context.Context, raw json.RawMessage) (bool, error) {
	st, err := parseState(raw)
	if err != nil {
		return false, err
	}
	if st.Pod == "" {
		return false, nil
	}
	if err := s.pods.waitSynced(ctx); err != nil {
		return false, fmt.Errorf("spawner kubernetes: %w", err)
	}
	pod := s.cachedPod(st.Namespace, st.Pod)
	if pod == nil || pod.UID != st.UID {
		return false, nil
	}
	return stoppedReason(pod) == "", nil
}

// ExitReason says, in words for the user, why the server described by raw stopped ("" when unknown);
// the hub asks after Poll reported it not running.
func (s *Spawner) ExitReason(raw json.RawMessage) string {
	st, err := parseState(raw)
	if err != nil || st.Pod == "" {
		return ""
	}
	s.mu.Lock()
	why, ok := s.reasons[st.UID]
	delete(s.reasons, st.UID)
	s.mu.Unlock()
	if ok {
		return why
	}
	if pod := s.cachedPod(st.Namespace, st.Pod); pod != nil && pod.UID == st.UID {
		if why := stoppedReason(pod); why != "" {
			return why
		}
	}
	return "its pod no longer exists"
}

func (s *Spawner) cachedPod(ns, name string) *corev1.Pod {
	obj, ok, err := s.pods.store().GetByKey(podKey(ns, name))
	if err != nil || !ok {
		return nil
	}
	pod, _ := obj.(*corev1.Pod)
	return pod
}

// Stop deletes the server's pod (and its Service) with term_timeout as the grace period; it returns once
// Kubernetes has accepted the deletion. The claim stays.
func (s *Spawner) Stop(ctx context.Context, raw json.RawMessage) error {
	st, err := parseState(raw)
	if err != nil {
		return err
	}
	if st.Pod == "" {
		return nil
	}
	grace := int64(time.Duration(s.DeleteGracePeriod).Seconds())
	if err := s.deletePod(ctx, st, grace); err != nil {
		return fmt.Errorf("spawner kubernetes: stopping %s: %w", st.Pod, err)
	}
	return nil
}

func (s *Spawner) deletePod(ctx context.Context, st state, grace int64) error {
	opts := metav1.DeleteOptions{GracePeriodSeconds: &grace}
	if st.UID != "" {
		opts.Preconditions = &metav1.Preconditions{UID: &st.UID}
	}
	err := s.client.CoreV1().Pods(st.Namespace).Delete(ctx, st.Pod, opts)
	if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
		return fmt.Errorf("deleting pod %s/%s: %w", st.Namespace, st.Pod, err)
	}
	if st.Service != "" {
		err := s.client.CoreV1().Services(st.Namespace).Delete(ctx, st.Service, metav1.DeleteOptions{})
		if err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("deleting service %s/%s: %w", st.Namespace, st.Service, err)
		}
	}
	return nil
}

// Orphans lists the pods of this hub that none of the claimed states names (a record lost, or a pod
// created by a hub that died before it stored the state), as "namespace/pod (user …, server …)", and
// logs the ones not reported before. The hub calls it after adopting its servers at start and for
// GET /hub/api/info; it deletes nothing.
func (s *Spawner) Orphans(ctx context.Context, claimed []json.RawMessage) ([]string, error) {
	if err := s.pods.waitSynced(ctx); err != nil {
		return nil, fmt.Errorf("spawner kubernetes: %w", err)
	}
	uids := make(map[types.UID]bool, len(claimed))
	for _, raw := range claimed {
		if st, err := parseState(raw); err == nil && st.UID != "" {
			uids[st.UID] = true
		}
	}
	var out []string
	for _, obj := range s.pods.store().List() {
		pod, ok := obj.(*corev1.Pod)
		if !ok || uids[pod.UID] || pod.DeletionTimestamp != nil || stoppedReason(pod) != "" {
			continue
		}
		user, server := pod.Annotations[AnnotationUsername], pod.Annotations[AnnotationServerName]
		desc := pod.Namespace + "/" + pod.Name + " (user " + strconv.Quote(user)
		if server != "" {
			desc += ", server " + strconv.Quote(server)
		}
		out = append(out, desc+")")
		s.mu.Lock()
		seen := s.orphans[pod.UID]
		s.orphans[pod.UID] = true
		s.mu.Unlock()
		if !seen {
			s.logger.Warn("orphan pod: this hub's labels, but no server record names it",
				zap.String("namespace", pod.Namespace), zap.String("pod", pod.Name), zap.String("user", user), zap.String("server", server))
		}
	}
	sort.Strings(out)
	return out, nil
}

// DeleteUserStorage deletes the claims named in a deleted user's kept states, when storage
// delete_with_user is set; otherwise it does nothing and the claims stay for an admin.
func (s *Spawner) DeleteUserStorage(ctx context.Context, states []json.RawMessage) error {
	if s.Storage == nil || !s.Storage.DeleteWithUser {
		return nil
	}
	var errs []error
	for _, raw := range states {
		st, err := parseState(raw)
		if err != nil || st.PVC == "" {
			continue
		}
		err = s.client.CoreV1().PersistentVolumeClaims(st.Namespace).Delete(ctx, st.PVC, metav1.DeleteOptions{})
		if err != nil && !apierrors.IsNotFound(err) {
			errs = append(errs, fmt.Errorf("deleting claim %s/%s: %w", st.Namespace, st.PVC, err))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("spawner kubernetes: %w", err)
	}
	return nil
}

// Stats are the health check's counters, for tests and metrics.
type Stats struct {
	WatchDrops, InformerRestarts int64
}

// Stats returns the health check's counters of the pod informer.
func (s *Spawner) Stats() Stats {
	return Stats{WatchDrops: s.pods.drops.Load(), InformerRestarts: s.pods.replaces.Load()}
}

// serverURL is what the route targets: the pod IP, or the Service's DNS name.
func (s *Spawner) serverURL(pod *corev1.Pod, svc string) string {
	if svc != "" {
		return "http://" + net.JoinHostPort(svc+"."+pod.Namespace+".svc", strconv.Itoa(s.Port))
	}
	return "http://" + net.JoinHostPort(pod.Status.PodIP, strconv.Itoa(s.Port))
}

// UnmarshalCaddyfile sets up the spawner from Caddyfile tokens, the
// dispenser at the module name. Syntax (shared options as for the other
// spawners; see README for every option):
//
//	kubernetes {
//		kubeconfig <path> [<context>]
//		server <url>
//		token <token> | token_file <path>
//		ca_file <path>
//		insecure_skip_tls_verify
//		namespace <name>
//		user_namespaces
//		hub_name <name>
//		image <image>
//		image_pull_policy Always|IfNotPresent|Never
//		image_pull_secrets <names>...
//		mem_guarantee <size>
//		cpu_guarantee <cores>
//		node_selector <key> <value>
//		toleration <key>[=<value>]:<effect> [<seconds>]
//		affinity <json>
//		service_account <name>
//		uid <uid>
//		fs_gid <gid>
//		label <key> <value>
//		annotation <key> <value>
//		init_container <name> <image> [<command>...]
//		storage {
//			class <name>
//			capacity <size>
//			access_modes <modes>...
//			mount_path <path>
//			delete_with_user
//		}
//		profile <slug> {
//			display_name <text>
//			description <text>
//			default
//			image <image>
//			mem_limit|mem_guarantee <size>
//			cpu_limit|cpu_guarantee <cores>
//			node_selector <key> <value>
//		}
//		port <port>
//		per_user_service
//		delete_grace_period <duration>
//		resync <duration>
//		watch_stall_timeout <duration>
//		api_qps <n>
//		api_burst <n>
//	}
func (s *Spawner) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	return spawners.UnmarshalCaddyfile(d, &s.Options, s.Config.unmarshalOwn)
}

// Interface guards
var (
	_ spawners.Spawner      = (*Spawner)(nil)
	_ caddy.Provisioner     = (*Spawner)(nil)
	_ caddy.CleanerUpper    = (*Spawner)(nil)
	_ caddyfile.Unmarshaler = (*Spawner)(nil)

	_ spawners.RemoteSpawner  = (*Spawner)(nil)
	_ spawners.OptionsSpawner = (*Spawner)(nil)
	_ spawners.StateKeeper    = (*Spawner)(nil)
	_ spawners.ExitReasoner   = (*Spawner)(nil)
	_ spawners.StorageDeleter = (*Spawner)(nil)
)
