// Package spawners defines how the hub starts, polls and stops single-user
// servers, and the options every spawner shares.
//
// In the hub's data flow the hub app (hubapp) owns one Spawner, a guest
// module in the namespace jupyterhub.spawners.<name>: on a spawn request it calls
// Start, adds a route to the returned URL, stores the returned State, and later
// gives that State back to Poll and Stop — also after a hub restart, when the
// server is no longer a child of the hub process. The local spawners live in
// the sub-packages simple and localprocess (blank-import spawners/standard to
// register both); spawnertest builds a tiny single-user server for tests.
package spawners

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sync/atomic"
	"time"
)

// Spawner starts, polls and stops single-user servers. Modules: jupyterhub.spawners.<name>.
type Spawner interface {
	// Start launches the server and returns once it answers HTTP at its URL, or fails. On failure nothing
	// is left running and the error says the cause in words a user understands (command not found; exited
	// early with status N and the last lines of its output; did not answer within http_timeout; ...).
	// progress may be nil; call it with events as the start proceeds.
	Start(ctx context.Context, req *StartRequest, progress func(Event)) (*Server, error)
	// Poll reports whether the server described by state is still running (after a hub restart too:
	// the process may not be our child). It must be cheap: the hub polls thousands at start.
	Poll(ctx context.Context, state json.RawMessage) (running bool, err error)
	// Stop stops the server: SIGTERM to its process group, then SIGKILL after a grace. Idempotent.
	Stop(ctx context.Context, state json.RawMessage) error
	// Common returns the shared options (timeouts the hub needs, e.g. poll_interval).
	Common() *Options
}

// StartRequest is what the hub knows about the server it asks a spawner to start.
type StartRequest struct {
	// User is the normalized hub username.
	User string
	// ServerName is "" for the default server, else the named server's name.
	ServerName string
	// Admin is true when the user is a hub admin.
	Admin bool
	// ServicePrefix is the server's base URL path, base_url included, with
	// leading and trailing slashes, e.g. "/user/alice/".
	ServicePrefix string
	// Env holds the JUPYTERHUB_* variables from the hub (token, API URL, OAuth
	// client, prefix...). The spawner adds JUPYTERHUB_SERVICE_URL itself after
	// picking the port, plus its own: the options' environment, env_keep from
	// the hub's environment, USER/HOME/SHELL, JUPYTERHUB_DEFAULT_URL from
	// default_url, MEM_LIMIT/CPU_LIMIT and JUPYTERHUB_ROOT_DIR from notebook_dir.
	Env map[string]string
	// DataDir is the hub's data_dir (absolute). Server logs go under
	// DataDir/logs/, the simple spawner's homes under DataDir/users/.
	DataDir string
	// UserOptions are the options the user chose on the spawn form or sent
	// in the API request body. The local spawners ignore them.
	UserOptions map[string]any
	// Launched, when not nil, is how the hub learns about a server before it
	// is ready, so that a hub killed while the server is still starting can
	// find it again (JupyterHub stores the spawner's state as soon as
	// spawner.start() returns, before it waits for the server to answer).
	// A spawner calls it through ReportLaunched from Start's goroutine as
	// soon as the process exists and the URL and a State enough for Poll and
	// Stop are known, before it waits for HTTP. A start that launches again
	// (its first process lost a race for the port and exited) reports the
	// new server too; the last report replaces the earlier ones. When
	// Launched returns an error the spawner stops what it launched and Start
	// fails with that error. Spawners that never call it stay correct; the
	// hub then learns the state only when Start returns. Not serialized.
	Launched func(*Server) error `json:"-"`
}

// ReportLaunched calls r.Launched with srv if it is set (see Launched); it
// returns nil when it is not.
func (r *StartRequest) ReportLaunched(srv *Server) error {
	if r == nil || r.Launched == nil {
		return nil
	}
	return r.Launched(srv)
}

// Server is a started server.
type Server struct {
	// URL is scheme://host:port with no path, e.g. "http://127.0.0.1:54321":
	// what the route targets.
	URL string
	// State is opaque to the hub: it stores it and gives it back to Poll and
	// Stop. It survives hub restarts.
	State json.RawMessage
}

// Event is one step of a start, shown to the user while they wait. Start
// calls progress synchronously, from its own goroutine. The local spawners
// report up to 90 and leave 100 ("ready") to the hub, which sends it once
// the route is in place.
type Event struct {
	// Progress is 0..100.
	Progress int
	// Message is a short sentence for the user.
	Message string
}

// Errors a start can fail with, for errors.Is. The error's text is a
// sentence for the user; these classify it (JupyterHub's failure reasons).
var (
	// ErrCommandNotFound: cmd was not found or could not be executed.
	ErrCommandNotFound = errors.New("command not found")
	// ErrNoAccount: the user has no system account to run the server as.
	ErrNoAccount = errors.New("no system account")
	// ErrExitedEarly: the server process exited before it answered HTTP.
	ErrExitedEarly = errors.New("server exited early")
	// ErrHTTPTimeout: the server did not answer HTTP within http_timeout.
	ErrHTTPTimeout = errors.New("server did not answer in time")
	// ErrStartTimeout: the whole start took longer than start_timeout.
	ErrStartTimeout = errors.New("start timed out")
)

// StartError is an error from Start: Error is the message for the user,
// Unwrap gives the class (one of the Err* values) and the cause if any.
type StartError struct {
	// Kind is one of the Err* values above.
	Kind error
	// Msg is the message for the user.
	Msg string
	// Cause is the underlying error, if any (for the log).
	Cause error
}

func (e *StartError) Error() string { return e.Msg }

// Unwrap returns the class and the cause.
func (e *StartError) Unwrap() []error {
	if e.Cause == nil {
		return []error{e.Kind}
	}
	return []error{e.Kind, e.Cause}
}

// WaitHTTP polls url with GET until any HTTP response arrives (JupyterHub's
// wait_for_http_server; redirects are not followed). It returns
// ErrExitedEarly when gone closes first (the process exited: nil never
// closes), ErrHTTPTimeout when the deadline passes, or ctx's error. The
// local spawners wait for their servers with it, and the hub for a server
// it adopted while that server was still starting.
func WaitHTTP(ctx context.Context, url string, gone <-chan struct{}, deadline time.Time) error {
	client := &http.Client{
		Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true},
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
	defer client.CloseIdleConnections()
	readyWaiters.Add(1)
	defer readyWaiters.Add(-1)
	delay := 2 * time.Millisecond
	for {
		select {
		case <-gone:
			return ErrExitedEarly
		default:
		}
		left := time.Until(deadline)
		if left <= 0 {
			return ErrHTTPTimeout
		}
		// Bound each request, and abandon it when the process exits: a
		// stranger holding the port may accept and never answer.
		rctx, cancel := context.WithTimeout(ctx, min(left, 2*time.Second))
		go func() {
			select {
			case <-gone:
				cancel()
			case <-rctx.Done():
			}
		}()
		req, err := http.NewRequestWithContext(rctx, http.MethodGet, url, nil)
		if err != nil {
			cancel()
			return fmt.Errorf("building request to %s: %w", url, err)
		}
		resp, err := client.Do(req)
		cancel()
		if err == nil {
			resp.Body.Close()
			select {
			case <-gone: // someone else answered on the port the process lost
				return ErrExitedEarly
			default:
				return nil
			}
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		t := time.NewTimer(min(delay, max(time.Until(deadline), 0)))
		select {
		case <-gone:
			t.Stop()
			return ErrExitedEarly
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
		// A refused connection on loopback costs microseconds, and every millisecond between the
		// server listening and us noticing is added to the user's wait: keep polling often.
		delay = min(delay*2, readyPollCap(readyWaiters.Load()))
	}
}

// readyWaiters counts the WaitHTTP calls in progress in this process.
var readyWaiters atomic.Int64

// Readiness probes pause at most readyPollCap(waiters) between tries: a lone start is noticed within
// 5 ms of its server listening, while a hundred starting at once (a class logging in) probe every
// 20 ms, so that their refused connections do not take the CPU the servers need to start. bench/hub
// measured a 250 ms cap as most of the hub's login→ready overhead.
const (
	minReadyPollDelay  = 5 * time.Millisecond
	maxReadyPollDelay  = 20 * time.Millisecond
	readyPollPerWaiter = 200 * time.Microsecond
)

// readyPollCap is the longest pause between readiness probes while waiters servers are being waited for.
func readyPollCap(waiters int64) time.Duration {
	return min(maxReadyPollDelay, max(minReadyPollDelay, time.Duration(waiters)*readyPollPerWaiter))
}
