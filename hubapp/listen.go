package hubapp

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"

	"github.com/caddyhub/caddyhub/hubapp/web"
)

// listeners holds one socket and http.Server per address for the life of the process, shared by
// every config generation that names it. Reopening the socket on each reload (even through Caddy's
// SO_REUSEPORT listener pool) loses the connections queued on the old one; sharing it and swapping
// the handler loses none.
var listeners = caddy.NewUsagePool()

// sharedListener serves the handler of the newest config generation that still uses it.
type sharedListener struct {
	srv *http.Server
	ln  net.Listener

	mu       sync.Mutex
	handlers []*http.Handler // in registration order; the last one serves
}

func (l *sharedListener) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	l.mu.Lock()
	var h http.Handler
	if n := len(l.handlers); n > 0 {
		h = *l.handlers[n-1]
	}
	l.mu.Unlock()
	if h == nil {
		web.WriteAPIError(w, http.StatusServiceUnavailable, "the hub is restarting")
		return
	}
	h.ServeHTTP(w, r)
}

func (l *sharedListener) push(h *http.Handler) {
	l.mu.Lock()
	l.handlers = append(l.handlers, h)
	l.mu.Unlock()
}

// remove drops a generation's handler; if that generation was the newest (a failed reload), the
// previous one serves again.
func (l *sharedListener) remove(h *http.Handler) {
	l.mu.Lock()
	for i, x := range l.handlers {
		if x == h {
			l.handlers = append(l.handlers[:i], l.handlers[i+1:]...)
			break
		}
	}
	l.mu.Unlock()
}

// Destruct lets in-flight requests finish for a few seconds, then cuts them.
func (l *sharedListener) Destruct() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := l.srv.Shutdown(ctx); err != nil {
		return l.srv.Close()
	}
	return nil
}

// listenerServer is one config generation's use of a shared listener.
type listenerServer struct {
	name    string
	ln      net.Listener
	key     string
	l       *sharedListener
	handler *http.Handler
}

func (a *App) listen(name, addr string, h http.Handler) (*listenerServer, error) {
	na, err := caddy.ParseNetworkAddress(addr)
	if err != nil {
		return nil, fmt.Errorf("jupyterhub: %s address %q: %w", name, addr, err)
	}
	if na.PortRangeSize() != 1 {
		return nil, fmt.Errorf("jupyterhub: %s address %q: want exactly one port", name, addr)
	}
	key := na.String()
	logger := a.logger
	v, _, err := listeners.LoadOrNew(key, func() (caddy.Destructor, error) {
		ln, err := net.Listen(na.Network, na.JoinHostPort(0))
		if err != nil {
			return nil, fmt.Errorf("jupyterhub: %s: listening on %s: %w", name, addr, err)
		}
		l := &sharedListener{ln: ln}
		l.srv = &http.Server{
			Handler:           l,
			ReadHeaderTimeout: 10 * time.Second,
			IdleTimeout:       2 * time.Minute,
			MaxHeaderBytes:    64 << 10,
			ErrorLog:          zap.NewStdLog(logger.Named(name)),
		}
		go func() {
			if err := l.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) && !errors.Is(err, net.ErrClosed) {
				logger.Error("serving", zap.String("listener", name), zap.Error(err))
			}
		}()
		logger.Info("listening", zap.String("listener", name), zap.String("address", ln.Addr().String()))
		return l, nil
	})
	if err != nil {
		return nil, err
	}
	l := v.(*sharedListener)
	s := &listenerServer{name: name, ln: l.ln, key: key, l: l, handler: &h}
	l.push(s.handler)
	return s, nil
}

// close releases this generation's handler and its reference to the listener.
func (s *listenerServer) close() {
	s.l.remove(s.handler)
	_, _ = listeners.Delete(s.key)
}
