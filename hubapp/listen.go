package hubapp

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"
)

// listenerServer is an HTTP server on a listener taken from Caddy's listener pool, so that the new
// config generation can bind the same address while the old one still holds it during a reload.
type listenerServer struct {
	name   string
	srv    *http.Server
	ln     net.Listener
	logger *zap.Logger
}

func (a *App) listen(name, addr string, h http.Handler) (*listenerServer, error) {
	na, err := caddy.ParseNetworkAddress(addr)
	if err != nil {
		return nil, fmt.Errorf("jupyterhub: %s address %q: %w", name, addr, err)
	}
	lnAny, err := na.Listen(a.ctx, 0, net.ListenConfig{})
	if err != nil {
		return nil, fmt.Errorf("jupyterhub: %s: listening on %s: %w", name, addr, err)
	}
	ln, ok := lnAny.(net.Listener)
	if !ok {
		return nil, fmt.Errorf("jupyterhub: %s: %s is not a stream listener", name, addr)
	}
	s := &listenerServer{
		name: name,
		ln:   ln,
		srv: &http.Server{
			Handler:           h,
			ReadHeaderTimeout: 10 * time.Second,
			IdleTimeout:       2 * time.Minute,
			MaxHeaderBytes:    64 << 10,
			ErrorLog:          zap.NewStdLog(a.logger.Named(name)),
		},
		logger: a.logger,
	}
	go func() {
		if err := s.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) && !errors.Is(err, net.ErrClosed) {
			s.logger.Error("serving", zap.String("listener", name), zap.Error(err))
		}
	}()
	a.logger.Info("listening", zap.String("listener", name), zap.String("address", ln.Addr().String()))
	return s, nil
}

// close lets in-flight requests finish for a few seconds, then cuts them.
func (s *listenerServer) close() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.srv.Shutdown(ctx); err != nil {
		_ = s.srv.Close()
	}
}
