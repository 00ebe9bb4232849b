package kubernetes

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	k8stesting "k8s.io/client-go/testing"
)

// refused is the error of a request that never reached the API server.
var refused = &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}

func TestAmbiguous(t *testing.T) {
	gr := schema.GroupResource{Resource: "pods"}
	for _, c := range []struct {
		err  error
		want bool
	}{
		{io.ErrUnexpectedEOF, true},
		{context.DeadlineExceeded, true},
		{syscall.ECONNRESET, true},
		{apierrors.NewTimeoutError("etcd", 1), true},
		{apierrors.NewServerTimeout(gr, "create", 1), true},
		{apierrors.NewInternalError(errors.New("x")), true},
		{refused, false},
		{apierrors.NewAlreadyExists(gr, "p"), false},
		{apierrors.NewForbidden(gr, "p", errors.New("no")), false},
		{apierrors.NewTooManyRequests("slow down", 1), false},
	} {
		if got := ambiguous(c.err); got != c.want {
			t.Errorf("ambiguous(%v) = %v, want %v", c.err, got, c.want)
		}
	}
}

// loseFirstPodCreate makes the first pod creation succeed in the cluster while its answer is lost
// (the connection broke after the request was sent); after it, fail answers the later requests
// (nil: they go through).
func loseFirstPodCreate(fc *fakeCluster, fail func(k8stesting.Action) error) {
	var lost atomic.Bool
	fc.hook = func(a k8stesting.Action) (bool, runtime.Object, error) {
		if c, ok := a.(k8stesting.CreateAction); ok && a.GetResource().Resource == "pods" && lost.CompareAndSwap(false, true) {
			pod := c.GetObject().(*corev1.Pod).DeepCopy()
			pod.UID = types.UID("uid-lost-" + pod.Name) // before the reply is lost
			if err := fc.Tracker().Create(a.GetResource(), pod, a.GetNamespace()); err != nil {
				return true, nil, err
			}
			return true, nil, io.ErrUnexpectedEOF
		}
		if lost.Load() && fail != nil {
			if err := fail(a); err != nil {
				return true, nil, err
			}
		}
		return false, nil, nil
	}
}

func TestLostCreateAnswerAdoptsThePod(t *testing.T) {
	fc := newFakeCluster()
	loseFirstPodCreate(fc, nil)
	kubelet(t, fc, "hub", nil)
	s := newTestSpawner(t, fc, nil)
	srv, err := launch(t, s, startReq("erin"), nil)
	if err != nil {
		t.Fatalf("start after a lost create answer: %v", err)
	}
	st, _ := parseState(srv.State)
	pods, _ := fc.CoreV1().Pods("hub").List(context.Background(), metav1.ListOptions{})
	if len(pods.Items) != 1 || pods.Items[0].Name != st.Pod || pods.Items[0].UID != st.UID {
		t.Fatalf("pods %d, state %+v", len(pods.Items), st)
	}
	if st.UID != types.UID("uid-lost-"+st.Pod) {
		t.Errorf("state UID %s is not the pod's", st.UID)
	}
	if n := fc.count("create pods"); n != 2 {
		t.Errorf("%d pod creations, want 2 (the lost one and its repeat)", n)
	}
}

func TestLostCreateAnswerThenUnreachableDeletesByName(t *testing.T) {
	fc := newFakeCluster()
	loseFirstPodCreate(fc, func(a k8stesting.Action) error {
		if a.GetVerb() == "delete" {
			return nil
		}
		return refused
	})
	s := newTestSpawner(t, fc, func(s *Spawner) { s.StartTimeout = spawnersDuration(5 * time.Second) })
	_, err := launch(t, s, startReq("fred"), nil)
	if err == nil || !strings.Contains(err.Error(), "could not be reached") {
		t.Fatalf("err %v", err)
	}
	pods, _ := fc.CoreV1().Pods("hub").List(context.Background(), metav1.ListOptions{})
	if len(pods.Items) != 0 {
		t.Errorf("%d pods left behind by a start whose create answer was lost", len(pods.Items))
	}
	if fc.count("delete pods") != 1 {
		t.Errorf("%d pod deletions, want 1", fc.count("delete pods"))
	}
}

func TestRefusedCreateDeletesNothing(t *testing.T) {
	fc := newFakeCluster()
	fc.hook = func(a k8stesting.Action) (bool, runtime.Object, error) {
		if a.GetVerb() == "create" && a.GetResource().Resource == "pods" {
			return true, nil, apierrors.NewForbidden(schema.GroupResource{Resource: "pods"}, "p", errors.New("no"))
		}
		return false, nil, nil
	}
	s := newTestSpawner(t, fc, nil)
	if _, err := launch(t, s, startReq("gina"), nil); err == nil || !strings.Contains(err.Error(), "RBAC") {
		t.Fatalf("err %v", err)
	}
	if fc.count("create pods") != 1 || fc.count("delete pods") != 0 {
		t.Errorf("creates %d deletes %d, want 1 and 0", fc.count("create pods"), fc.count("delete pods"))
	}
}
