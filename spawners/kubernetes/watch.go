package kubernetes

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/tools/cache"
)

// watched is one shared informer of one resource (all the hub's pods, or
// their events) with a health check. The informer lists once, then
// watches; client-go re-watches by itself when a watch ends, but a watch
// whose connection hangs without closing delivers nothing forever (the
// failure of KubeSpawner's reflectors). So every event, bookmark, list and
// new watch counts as activity, and when none comes for stall the open
// watch is dropped (the informer then watches again from where it was, no
// relist); when no watch is even open for twice that long, the whole
// informer is replaced (a fresh list).
type watched struct {
	name    string
	lw      cache.ListerWatcherWithContext
	client  any // the clientset, which says whether it supports streaming lists (fakes do not)
	example runtime.Object
	resync  time.Duration
	stall   time.Duration
	handler cache.ResourceEventHandler
	logger  *zap.Logger

	mu      sync.Mutex
	inf     cache.SharedIndexInformer // the informer whose cache answers
	cancel  context.CancelFunc        // stops inf
	gen     int                       // generation of the newest informer
	open    *trackedWatch             // the watch the newest informer reads now, if any
	started bool
	closed  bool
	synced  chan struct{}   // closed when the first informer has synced
	stopped chan struct{}   // closed by close
	root    context.Context // every informer's context derives from it; canceled by close
	stopAll context.CancelFunc

	last     atomic.Int64 // unix nanoseconds of the last activity
	drops    atomic.Int64 // watches dropped by the health check
	replaces atomic.Int64 // informers replaced by the health check
}

func newWatched(name string, client any, lw cache.ListerWatcherWithContext, example runtime.Object, resync, stall time.Duration, h cache.ResourceEventHandler, logger *zap.Logger) *watched {
	root, stopAll := context.WithCancel(context.Background())
	return &watched{name: name, client: client, lw: lw, example: example, resync: resync, stall: stall, handler: h, logger: logger,
		synced: make(chan struct{}), stopped: make(chan struct{}), root: root, stopAll: stopAll}
}

func (w *watched) touch() { w.last.Store(time.Now().UnixNano()) }

// start runs the informer and its health check; later calls do nothing.
func (w *watched) start() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.started || w.closed {
		return
	}
	w.started = true
	w.touch()
	w.runLocked()
	go w.health()
}

// runLocked starts a new informer. The current one keeps answering until the new one has synced, so
// that a replacement never shows an empty cache (every server would look gone).
func (w *watched) runLocked() {
	w.gen++
	gen := w.gen
	lw := &cache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, opts metav1.ListOptions) (runtime.Object, error) {
			obj, err := w.lw.ListWithContext(ctx, opts)
			if err == nil {
				w.touch()
			}
			return obj, err
		},
		WatchFuncWithContext: func(ctx context.Context, opts metav1.ListOptions) (watch.Interface, error) {
			in, err := w.lw.WatchWithContext(ctx, opts)
			if err != nil {
				return nil, err
			}
			tw := newTrackedWatch(in, w.touch)
			w.mu.Lock()
			if w.gen == gen {
				w.open = tw
			}
			w.mu.Unlock()
			w.touch()
			return tw, nil
		},
	}
	inf := cache.NewSharedIndexInformer(cache.ToListWatcherWithWatchListSemantics(lw, w.client), w.example, w.resync, cache.Indexers{})
	_ = inf.SetTransform(stripManagedFields)
	_ = inf.SetWatchErrorHandlerWithContext(func(_ context.Context, _ *cache.Reflector, err error) {
		w.logger.Warn("kubernetes watch failed; watching again", zap.String("resource", w.name), zap.Error(err))
	})
	if _, err := inf.AddEventHandler(w.handler); err != nil {
		w.logger.Error("adding informer handler", zap.String("resource", w.name), zap.Error(err))
	}
	ctx, cancel := context.WithCancel(w.root)
	w.open = nil
	if w.inf == nil {
		w.inf, w.cancel = inf, cancel
	}
	go inf.RunWithContext(ctx)
	go func() {
		if !cache.WaitForCacheSync(ctx.Done(), inf.HasSynced) {
			return
		}
		w.mu.Lock()
		defer w.mu.Unlock()
		if w.gen != gen || w.closed {
			if w.inf != inf {
				cancel()
			}
			return
		}
		if w.inf != inf {
			w.cancel()
			w.inf, w.cancel = inf, cancel
		}
		select {
		case <-w.synced:
		default:
			close(w.synced)
		}
	}()
}

// health drops a stalled watch, or replaces an informer that has no watch at all.
func (w *watched) health() {
	every := max(w.stall/4, 20*time.Millisecond)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-w.stopped:
			return
		case <-t.C:
		}
		idle := time.Since(time.Unix(0, w.last.Load()))
		if idle < w.stall {
			continue
		}
		w.mu.Lock()
		open := w.open
		switch {
		case open != nil:
			w.open = nil
			w.drops.Add(1)
			w.logger.Warn("kubernetes watch silent; dropping it and watching again", zap.String("resource", w.name), zap.Duration("silent", idle))
			w.touch()
			open.Stop()
		case idle >= 2*w.stall:
			w.replaces.Add(1)
			w.logger.Warn("kubernetes informer has no watch; starting it again", zap.String("resource", w.name), zap.Duration("silent", idle))
			w.touch()
			w.runLocked()
		}
		w.mu.Unlock()
	}
}

// store is the current informer's cache.
func (w *watched) store() cache.Store {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.inf.GetStore()
}

// waitSynced waits until the first list has filled the cache.
func (w *watched) waitSynced(ctx context.Context) error {
	w.start()
	select {
	case <-w.synced:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("waiting for the %s cache: %w", w.name, context.Cause(ctx))
	}
}

func (w *watched) close() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return
	}
	w.closed = true
	close(w.stopped)
	w.stopAll()
}

// stripManagedFields drops what the spawner never reads from cached objects. It changes a shallow
// copy, never the object it is handed: that one may still be shared with whoever decoded it (the fake
// clientset's tracker keeps and reads the very object its watch delivers).
func stripManagedFields(obj any) (any, error) {
	switch o := obj.(type) {
	case *corev1.Pod:
		if o.ManagedFields != nil {
			c := *o
			c.ManagedFields = nil
			return &c, nil
		}
	case *corev1.Event:
		if o.ManagedFields != nil {
			c := *o
			c.ManagedFields = nil
			return &c, nil
		}
	}
	return obj, nil
}

// trackedWatch passes a watch's events on, counting each as activity, and can be stopped by the health
// check while the informer reads it.
type trackedWatch struct {
	in   watch.Interface
	out  chan watch.Event
	done chan struct{}
	once sync.Once
}

func newTrackedWatch(in watch.Interface, touch func()) *trackedWatch {
	tw := &trackedWatch{in: in, out: make(chan watch.Event), done: make(chan struct{})}
	go func() {
		defer close(tw.out)
		for {
			select {
			case ev, ok := <-in.ResultChan():
				if !ok {
					return
				}
				touch()
				select {
				case tw.out <- ev:
				case <-tw.done:
					return
				}
			case <-tw.done:
				return
			}
		}
	}()
	return tw
}

func (tw *trackedWatch) ResultChan() <-chan watch.Event { return tw.out }

func (tw *trackedWatch) Stop() {
	tw.once.Do(func() {
		close(tw.done)
		tw.in.Stop()
	})
}
