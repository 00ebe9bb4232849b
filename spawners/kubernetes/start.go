package kubernetes

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.uber.org/zap"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/caddyhub/caddyhub/spawners"
)

// Start creates the server's pod (after its namespace and claim, when those are configured), waits
// until the pod runs and is ready, from the informer, and returns its URL; the hub then waits for the
// server to answer HTTP there. A start that fails or is canceled deletes the pod it created.
func (s *Spawner) Start(ctx context.Context, req *spawners.StartRequest, progress func(spawners.Event)) (*spawners.Server, error) {
	if progress == nil {
		progress = func(spawners.Event) {}
	}
	if err := req.CheckNames(); err != nil {
		return nil, fmt.Errorf("spawner kubernetes: %w", err)
	}
	c, err := s.choose(req.UserOptions)
	if err != nil {
		return nil, &spawners.StartError{Kind: spawners.ErrExitedEarly, Msg: "Cannot start the server: " + err.Error() + ".", Cause: err}
	}
	deadline := time.Now().Add(time.Duration(s.StartTimeout))
	ctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	s.pods.start()
	s.events.start()

	prev := s.keptState(req)
	st := state{Namespace: s.Namespace, PVC: prev.PVC, Profile: c.profile}
	if s.UserNamespaces {
		st.Namespace = prev.Namespace
		if st.Namespace == "" {
			st.Namespace = newName(s.Namespace, req.User, "")
		}
		if err := s.ensureNamespace(ctx, st.Namespace, req.User); err != nil {
			return nil, s.apiError(err)
		}
	} else if prev.Namespace != "" && prev.Namespace != s.Namespace {
		st.PVC = "" // the claim is in a namespace this configuration no longer uses
	}
	ok := false
	if s.Storage != nil {
		if st.PVC == "" {
			// A claim first named by this start is deleted again if the start fails: the hub keeps
			// no state of a failed start, and a retry would otherwise make another claim each time.
			st.PVC = newName("claim", req.User, req.ServerName)
			defer func(st state) {
				if !ok {
					s.deleteFreshClaim(st)
				}
			}(st)
		}
		claim := s.buildPVC(req.User, st.Namespace, st.PVC)
		err := createOnce(ctx, true, func() error {
			_, err := s.client.CoreV1().PersistentVolumeClaims(st.Namespace).Create(ctx, claim, metav1.CreateOptions{})
			return err
		})
		if err != nil {
			return nil, s.apiError(fmt.Errorf("creating claim %s: %w", st.PVC, err))
		}
	}

	st.Pod = newName("jupyter", req.User, req.ServerName)
	pod, err := s.buildPod(req, st.Namespace, st.Pod, st.PVC, c)
	if err != nil {
		return nil, fmt.Errorf("spawner kubernetes: %w", err)
	}
	key := podKey(st.Namespace, st.Pod)
	wake := make(chan struct{}, 1)
	sink := make(chan spawners.Event, 64)
	s.mu.Lock()
	s.waiters[key] = wake
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.waiters, key)
		delete(s.sinks, st.UID)
		s.mu.Unlock()
	}()

	created, err := s.createPod(ctx, pod)
	if err != nil {
		if maybeCreated(err) {
			s.deleteLeftover(st)
		}
		return nil, s.apiError(fmt.Errorf("creating pod %s: %w", st.Pod, err))
	}
	st.UID = created.UID
	s.mu.Lock()
	s.sinks[st.UID] = sink
	s.mu.Unlock()
	defer func() {
		if !ok {
			s.deleteLeftover(st)
		}
	}()
	progress(spawners.Event{Progress: 10, Message: "Pod " + st.Pod + " created in namespace " + st.Namespace + "."})
	if s.PerUserService {
		svc := s.buildService(created)
		st.Service = svc.Name // deleted with the pod if the start fails, even when its creation's outcome is unknown
		err := createOnce(ctx, true, func() error {
			_, err := s.client.CoreV1().Services(st.Namespace).Create(ctx, svc, metav1.CreateOptions{})
			return err
		})
		if err != nil {
			return nil, s.apiError(fmt.Errorf("creating service %s: %w", svc.Name, err))
		}
	}

	running, err := s.waitRunning(ctx, key, st.UID, wake, sink, progress)
	if err != nil {
		return nil, err
	}
	raw := st.raw()
	srv := &spawners.Server{URL: s.serverURL(running, st.Service), State: raw,
		// The hub polls (from the informer's cache) while it waits for HTTP; a pod that stops meanwhile
		// is reported with its reason (out of memory, evicted, exited with status N...).
		ExitError: func() error {
			return &spawners.StartError{Kind: spawners.ErrExitedEarly, Msg: "The server stopped while starting: " + s.ExitReason(raw) + "."}
		}}
	ok = true
	return srv, nil
}

// keptState is what the hub kept of the server's previous run (KeepState, handed back as
// StartRequest.PrevState): its claim and namespace, never derived from the username again.
func (s *Spawner) keptState(req *spawners.StartRequest) state {
	st, err := parseState(req.PrevState)
	if err != nil {
		s.logger.Warn("ignoring the server's previous state", zap.String("user", req.User), zap.Error(err))
		return state{}
	}
	return state{Namespace: st.Namespace, PVC: st.PVC}
}

// deleteFreshClaim deletes the claim a failed start created (its first), with its own time budget.
func (s *Spawner) deleteFreshClaim(st state) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err := s.client.CoreV1().PersistentVolumeClaims(st.Namespace).Delete(ctx, st.PVC, metav1.DeleteOptions{})
	if err != nil && !apierrors.IsNotFound(err) {
		s.logger.Error("deleting the new claim of a failed start", zap.String("claim", st.PVC), zap.String("namespace", st.Namespace), zap.Error(err))
	}
}

// ensureNamespace creates a user's namespace unless it is known to exist.
func (s *Spawner) ensureNamespace(ctx context.Context, ns, user string) error {
	s.mu.Lock()
	known := s.namespaces[ns]
	s.mu.Unlock()
	if known {
		return nil
	}
	labels := s.baseLabels()
	labels[LabelUser] = labelSafe(user)
	err := createOnce(ctx, true, func() error {
		_, err := s.client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{
			ObjectMeta: metav1.ObjectMeta{Name: ns, Labels: labels, Annotations: map[string]string{AnnotationUsername: user}},
		}, metav1.CreateOptions{})
		return err
	})
	if err != nil {
		return fmt.Errorf("creating namespace %s: %w", ns, err)
	}
	s.mu.Lock()
	s.namespaces[ns] = true
	s.mu.Unlock()
	return nil
}

// waitRunning waits, on the informer, until the pod runs, is ready and has an IP; it passes the pod's
// events on as progress. It fails early when the pod fails, is deleted or cannot pull its image.
func (s *Spawner) waitRunning(ctx context.Context, key string, uid types.UID, wake <-chan struct{}, sink <-chan spawners.Event, progress func(spawners.Event)) (*corev1.Pod, error) {
	seen := false
	last := ""
	for {
		if obj, exists, _ := s.pods.store().GetByKey(key); exists {
			pod, _ := obj.(*corev1.Pod)
			if pod != nil && pod.UID == uid {
				seen = true
				if why := stoppedReason(pod); why != "" {
					return nil, &spawners.StartError{Kind: spawners.ErrExitedEarly, Msg: "The server stopped while starting: " + why + "."}
				}
				if why := fatalWaiting(pod); why != "" {
					return nil, &spawners.StartError{Kind: spawners.ErrExitedEarly, Msg: "The server's pod cannot start: " + why + "."}
				}
				if ready(pod) {
					progress(spawners.Event{Progress: 90, Message: "Pod running at " + pod.Status.PodIP + " on node " + pod.Spec.NodeName + "."})
					return pod, nil
				}
				last = pendingWhy(pod)
			}
		} else if seen {
			return nil, &spawners.StartError{Kind: spawners.ErrExitedEarly, Msg: "The server's pod was deleted while it was starting."}
		}
		select {
		case <-wake:
		case ev := <-sink:
			progress(ev)
		case <-ctx.Done():
			return nil, s.timeoutError(ctx, ctx.Err(), last)
		}
	}
}

func ready(pod *corev1.Pod) bool {
	if pod.Status.Phase != corev1.PodRunning || pod.Status.PodIP == "" || pod.DeletionTimestamp != nil {
		return false
	}
	for _, c := range pod.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// fatalWaiting is why a pending pod will never start by itself ("" when it may still).
func fatalWaiting(pod *corev1.Pod) string {
	for _, list := range [][]corev1.ContainerStatus{pod.Status.InitContainerStatuses, pod.Status.ContainerStatuses} {
		for _, cs := range list {
			if w := cs.State.Waiting; w != nil {
				switch w.Reason {
				case "ErrImagePull", "ImagePullBackOff", "InvalidImageName", "CreateContainerConfigError", "CreateContainerError", "CrashLoopBackOff":
					return "container " + cs.Name + ": " + w.Reason + withMessage(w.Message)
				}
			}
		}
	}
	return ""
}

// pendingWhy says what a pending pod waits for, for a timeout message.
func pendingWhy(pod *corev1.Pod) string {
	for _, c := range pod.Status.Conditions {
		if c.Type == corev1.PodScheduled && c.Status == corev1.ConditionFalse {
			return "it was not scheduled on a node (" + c.Reason + withMessage(c.Message) + ")"
		}
	}
	if pod.Spec.NodeName == "" {
		return "no node took it"
	}
	return "it was " + string(pod.Status.Phase) + " on node " + pod.Spec.NodeName
}

func (s *Spawner) timeoutError(ctx context.Context, err error, last string) error {
	if errors.Is(err, context.DeadlineExceeded) && errors.Is(ctx.Err(), context.DeadlineExceeded) {
		msg := fmt.Sprintf("The server's pod did not become ready within %s", time.Duration(s.StartTimeout))
		if last != "" {
			msg += ": " + last
		}
		return &spawners.StartError{Kind: spawners.ErrStartTimeout, Msg: msg + ".", Cause: err}
	}
	return fmt.Errorf("spawner kubernetes: %w", err)
}

// apiError words a failed API request for the user.
func (s *Spawner) apiError(err error) error {
	msg := "The Kubernetes API server could not be reached or refused the request: " + err.Error()
	switch {
	case apierrors.IsForbidden(err):
		msg = "The hub is not allowed to do this in Kubernetes (check its RBAC role): " + err.Error()
	case apierrors.IsInvalid(err):
		msg = "Kubernetes rejected the server's definition: " + err.Error()
	case apierrors.IsAlreadyExists(err):
		msg = "A Kubernetes object of that name exists already: " + err.Error()
	}
	return &spawners.StartError{Kind: spawners.ErrExitedEarly, Msg: msg, Cause: err}
}
