package kubernetes

import (
	"context"
	"errors"
	"fmt"
	"syscall"
	"time"

	"go.uber.org/zap"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// ambiguous reports whether a failed write may nevertheless have been carried out: the connection
// broke after the request was sent (no answer came back), or the API server gave up waiting for
// etcd, or the start was canceled while the request was on its way. A request the server refused
// outright, or one that never left (connection refused), is not.
func ambiguous(err error) bool {
	if err == nil || errors.Is(err, syscall.ECONNREFUSED) {
		return false
	}
	var status apierrors.APIStatus
	if errors.As(err, &status) {
		return apierrors.IsTimeout(err) || apierrors.IsServerTimeout(err) || apierrors.IsInternalError(err) ||
			apierrors.IsUnexpectedServerError(err)
	}
	return true
}

// retryBackoff is the first pause between attempts of a write whose outcome was unknown; it doubles up
// to a second.
const retryBackoff = 50 * time.Millisecond

// pause waits d or until ctx ends.
func pause(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// createOnce runs a create request until its outcome is known. create must be idempotent through
// AlreadyExists: after an ambiguous failure, an AlreadyExists answer means the earlier attempt
// succeeded (true), as it does when exists is true from the start (an object kept on purpose,
// such as a user's claim). It returns the last error when ctx ends first.
func createOnce(ctx context.Context, existsOK bool, create func() error) error {
	delay := retryBackoff
	retried := false
	for {
		err := create()
		switch {
		case err == nil:
			return nil
		case apierrors.IsAlreadyExists(err) && (existsOK || retried):
			return nil
		case !ambiguous(err):
			return err
		}
		if pause(ctx, delay) != nil {
			return err
		}
		retried = true
		delay = min(2*delay, time.Second)
	}
}

// createPod creates a start's pod. Its name is unique to this start (a random suffix), which is what
// makes a create whose answer was lost safe to sort out: the request is sent again, and AlreadyExists
// then means the first one created the pod, which is read back by name (with its UID) and used. When
// the outcome stays unknown (ctx ends, or the API server stops answering), the error says so with
// ambiguous(err) true, and the caller must delete the pod by name.
func (s *Spawner) createPod(ctx context.Context, pod *corev1.Pod) (*corev1.Pod, error) {
	pods := s.client.CoreV1().Pods(pod.Namespace)
	var created *corev1.Pod
	lost := false
	err := createOnce(ctx, false, func() error {
		if lost {
			s.logger.Warn("the answer to a pod creation was lost; asking again by name",
				zap.String("namespace", pod.Namespace), zap.String("pod", pod.Name))
		}
		got, err := pods.Create(ctx, pod, metav1.CreateOptions{})
		if err == nil {
			created = got
		}
		lost = lost || ambiguous(err)
		return err
	})
	if err != nil {
		if lost {
			return nil, &unknownOutcome{err}
		}
		return nil, err
	}
	if created != nil {
		return created, nil
	}
	// AlreadyExists after a lost answer: our own earlier request made it.
	delay := retryBackoff
	for {
		got, err := pods.Get(ctx, pod.Name, metav1.GetOptions{})
		if err == nil {
			if got.Labels[LabelPod] != pod.Name || got.Labels[LabelHub] != s.HubName {
				return nil, fmt.Errorf("pod %s exists but is not this hub's", pod.Name)
			}
			return got, nil
		}
		if !ambiguous(err) {
			return nil, &unknownOutcome{err}
		}
		if pause(ctx, delay) != nil {
			return nil, &unknownOutcome{err}
		}
		delay = min(2*delay, time.Second)
	}
}

// unknownOutcome wraps an error after which a pod may or may not exist.
type unknownOutcome struct{ err error }

func (u *unknownOutcome) Error() string { return u.err.Error() }
func (u *unknownOutcome) Unwrap() error { return u.err }

// maybeCreated reports whether a failed createPod may have left its pod in the cluster.
func maybeCreated(err error) bool {
	var u *unknownOutcome
	return errors.As(err, &u)
}

// deleteLeftover deletes the pod of a failed start — by name alone when the start never learned its
// UID — at once (no grace), with its own time budget (the start's context may be what ended it),
// retrying while the API server cannot be reached. What it cannot delete is logged, and Orphans
// reports it later.
func (s *Spawner) deleteLeftover(st state) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	delay := retryBackoff
	for {
		err := s.deletePod(ctx, st, 0)
		if err == nil {
			return
		}
		if !ambiguous(err) && !errors.Is(err, syscall.ECONNREFUSED) || pause(ctx, delay) != nil {
			s.logger.Error("a failed start may have left its pod behind; it will be listed as an orphan",
				zap.String("pod", st.Pod), zap.String("namespace", st.Namespace), zap.Error(err))
			return
		}
		delay = min(2*delay, time.Second)
	}
}
