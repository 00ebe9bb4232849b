package spawners

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
)

// scriptSpawner launches "servers" that are an httptest server (answering) or a closed port, and
// records what the sequence did with them.
type scriptSpawner struct {
	opts    Options
	mu      sync.Mutex
	starts  int
	stops   int
	alive   bool
	launch  func(attempt int) *Server // the Server of each Start
	running bool
}

func (s *scriptSpawner) Start(context.Context, *StartRequest, func(Event)) (*Server, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.starts++
	s.alive = true
	return s.launch(s.starts), nil
}

func (s *scriptSpawner) Poll(context.Context, json.RawMessage) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.alive && s.running, nil
}

func (s *scriptSpawner) Stop(context.Context, json.RawMessage) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stops++
	s.alive = false
	return nil
}

func (s *scriptSpawner) Common() *Options { return &s.opts }

func TestStartAndWait(t *testing.T) {
	answering := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	t.Cleanup(answering.Close)
	dead := "http://127.0.0.1:1" // connections refused
	exited := func() <-chan struct{} { c := make(chan struct{}); close(c); return c }
	for _, c := range []struct {
		name              string
		running           bool // what Poll says while the server does not answer
		launch            func(attempt int) *Server
		wantErr           string
		kind              error
		wantStarts, stops int
	}{
		{name: "answers", running: true, launch: func(int) *Server { return &Server{URL: answering.URL} }, wantStarts: 1},
		{name: "exits, no Exited: Poll notices", running: false, launch: func(int) *Server { return &Server{URL: dead} },
			kind: ErrExitedEarly, wantErr: "the server exited before it answered", wantStarts: 1, stops: 1},
		{name: "exits with its own words", launch: func(int) *Server {
			return &Server{URL: dead, Exited: exited(), ExitError: func() error {
				return &StartError{Kind: ErrExitedEarly, Msg: "the server exited early with status 3"}
			}}
		}, kind: ErrExitedEarly, wantErr: "status 3", wantStarts: 1, stops: 1},
		{name: "retried, then answers", launch: func(attempt int) *Server {
			if attempt < 3 {
				return &Server{URL: dead, Exited: exited(), ExitError: func() error {
					return &StartError{Kind: ErrExitedEarly, Msg: "port taken", Retry: "Port was taken; trying another"}
				}}
			}
			return &Server{URL: answering.URL}
		}, running: true, wantStarts: 3, stops: 2},
		{name: "retries give up", launch: func(int) *Server {
			return &Server{URL: dead, Exited: exited(), ExitError: func() error {
				return &StartError{Kind: ErrExitedEarly, Msg: "port taken", Retry: "Port was taken; trying another"}
			}}
		}, kind: ErrExitedEarly, wantErr: "port taken", wantStarts: MaxStartAttempts, stops: MaxStartAttempts},
		{name: "never answers", running: true, launch: func(int) *Server { return &Server{URL: dead} },
			kind: ErrHTTPTimeout, wantErr: "within http_timeout (300ms)", wantStarts: 1, stops: 1},
	} {
		t.Run(c.name, func(t *testing.T) {
			sp := &scriptSpawner{launch: c.launch, running: c.running}
			sp.opts.StartTimeout = caddy.Duration(10 * time.Second)
			sp.opts.HTTPTimeout = caddy.Duration(300 * time.Millisecond)
			var launched int
			req := &StartRequest{User: "alice", ServicePrefix: "/user/alice/", Launched: func(*Server) error { launched++; return nil }}
			var retries int
			srv, err := StartAndWait(context.Background(), sp, req, func(e Event) {
				if strings.Contains(e.Message, "was taken") {
					retries++
				}
			})
			if c.wantErr == "" && (err != nil || srv == nil) {
				t.Fatalf("StartAndWait = %v, %v", srv, err)
			}
			if c.wantErr != "" && (err == nil || !errors.Is(err, c.kind) || !strings.Contains(err.Error(), c.wantErr)) {
				t.Fatalf("StartAndWait error = %v, want %v containing %q", err, c.kind, c.wantErr)
			}
			if sp.starts != c.wantStarts || sp.stops != c.stops || launched != c.wantStarts {
				t.Fatalf("starts %d stops %d launch reports %d, want %d %d %d", sp.starts, sp.stops, launched, c.wantStarts, c.stops, c.wantStarts)
			}
			if want := min(c.wantStarts, MaxStartAttempts-1); strings.Contains(c.name, "retr") && retries != want {
				t.Fatalf("%d retry events, want %d", retries, want)
			}
		})
	}
}

func TestStartAndWaitStartTimeout(t *testing.T) {
	sp := &scriptSpawner{running: true, launch: func(int) *Server { return &Server{URL: "http://127.0.0.1:1"} }}
	sp.opts.StartTimeout = caddy.Duration(200 * time.Millisecond)
	sp.opts.HTTPTimeout = caddy.Duration(10 * time.Second)
	_, err := StartAndWait(context.Background(), sp, &StartRequest{User: "bob"}, nil)
	if !errors.Is(err, ErrStartTimeout) || !strings.Contains(err.Error(), "start_timeout (200ms)") || sp.stops != 1 {
		t.Fatalf("got %v (stops %d), want the start_timeout error and one stop", err, sp.stops)
	}
}
