package spawners

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sync/atomic"
	"time"
)

// MaxStartAttempts bounds the Starts of one spawn when a start fails with a StartError that asks to
// be retried (StartError.Retry).
const MaxStartAttempts = 3

// stopAfterFailure bounds the Stop that cleans up after a failed start.
const stopAfterFailure = 2 * time.Minute

// exitPollInterval is how often WaitUp polls a server that has no Exited channel while it waits.
var exitPollInterval = 250 * time.Millisecond

// StartAndWait is a fresh spawn as the hub runs it (JupyterHub's user.spawn: spawner.start, then
// the hub's _wait_up): it calls sp.Start within start_timeout, reports the launched server through
// req.Launched, and waits until the server answers HTTP at its URL + req.ServicePrefix (WaitUp). A
// start that fails with a StartError asking to be retried is stopped and started again, at most
// MaxStartAttempts times. On any failure the launched server is stopped with sp.Stop, so nothing
// is left running, and the error is the one for the user. progress may be nil. The hub's engine
// runs every fresh spawn through it, and spawner tests run their spawner the same way.
func StartAndWait(ctx context.Context, sp Spawner, req *StartRequest, progress func(Event)) (*Server, error) {
	if progress == nil {
		progress = func(Event) {}
	}
	o := sp.Common()
	began := time.Now()
	ctx, cancel := context.WithDeadline(ctx, began.Add(cmp.Or(time.Duration(o.StartTimeout), defaultStartTimeout)))
	defer cancel()
	for attempt := 1; ; attempt++ {
		srv, err := sp.Start(ctx, req, progress)
		if err == nil && srv == nil {
			err = errors.New("the spawner returned no server")
		}
		if err != nil {
			return nil, startTimeout(ctx, o, began, err)
		}
		if err := req.ReportLaunched(srv); err != nil {
			stopFailed(sp, srv)
			return nil, fmt.Errorf("recording the launched server for %s: %w", req.User, err)
		}
		err = WaitUp(ctx, sp, srv, req.ServicePrefix, began)
		if err == nil {
			progress(Event{Progress: 90, Message: "Server answers at " + srv.URL + req.ServicePrefix})
			return srv, nil
		}
		stopFailed(sp, srv)
		var se *StartError
		if errors.As(err, &se) && se.Retry != "" && attempt < MaxStartAttempts && ctx.Err() == nil {
			progress(Event{Progress: 10, Message: se.Retry})
			continue
		}
		return nil, err
	}
}

// stopFailed stops a server whose start failed; Stop reports nothing the user could act on here.
func stopFailed(sp Spawner, srv *Server) {
	ctx, cancel := context.WithTimeout(context.Background(), stopAfterFailure)
	defer cancel()
	_ = sp.Stop(ctx, srv.State)
}

// startTimeout replaces err by the start_timeout error when ctx's deadline (began+start_timeout)
// is what ended the start, and returns err otherwise.
func startTimeout(ctx context.Context, o *Options, began time.Time, err error) error {
	if errors.Is(ctx.Err(), context.DeadlineExceeded) && time.Since(began) >= time.Duration(o.StartTimeout) {
		return &StartError{Kind: ErrStartTimeout, Cause: err,
			Msg: fmt.Sprintf("the server did not start within start_timeout (%s)", time.Duration(o.StartTimeout))}
	}
	return err
}

// WaitUp waits until srv answers HTTP at srv.URL+prefix, at most http_timeout (JupyterHub's
// _wait_up), and returns the error for the user when it does not: srv.ExitError's (or "the server
// exited before it answered") when the server ends first — noticed through srv.Exited, or by
// polling sp when srv has none —, an ErrHTTPTimeout or ErrStartTimeout StartError, or ctx's error.
// began is when the spawn began (start_timeout counts from it). The hub waits for fresh spawns
// (through StartAndWait) and for spawns it resumes after a restart with it.
func WaitUp(ctx context.Context, sp Spawner, srv *Server, prefix string, began time.Time) error {
	o := sp.Common()
	if prefix == "" {
		prefix = "/"
	}
	url := srv.URL + prefix
	gone := srv.Exited
	if gone == nil {
		pctx, cancel := context.WithCancel(ctx)
		defer cancel()
		ch := make(chan struct{})
		go watchPoll(pctx, sp, srv.State, ch)
		gone = ch
	}
	httpTimeout := cmp.Or(time.Duration(o.HTTPTimeout), defaultHTTPTimeout)
	err := WaitHTTP(ctx, url, gone, time.Now().Add(httpTimeout))
	switch {
	case err == nil:
		return nil
	case errors.Is(err, ErrExitedEarly):
		if srv.ExitError != nil {
			if xerr := srv.ExitError(); xerr != nil {
				return xerr
			}
		}
		return &StartError{Kind: ErrExitedEarly, Msg: "the server exited before it answered"}
	case errors.Is(err, ErrHTTPTimeout):
		return &StartError{Kind: ErrHTTPTimeout,
			Msg: fmt.Sprintf("the server did not answer at %s within http_timeout (%s)", url, httpTimeout)}
	}
	return startTimeout(ctx, o, began, fmt.Errorf("waiting for the server to answer: %w", err))
}

// watchPoll polls a server until ctx ends and closes gone when the spawner says it no longer runs
// (a server that is not our child, or not a process: no exit notification).
func watchPoll(ctx context.Context, sp Spawner, state json.RawMessage, gone chan<- struct{}) {
	t := time.NewTicker(exitPollInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		running, err := sp.Poll(pctx, state)
		cancel()
		if err == nil && !running {
			close(gone)
			return
		}
	}
}

// WaitHTTP polls url with GET until any HTTP response arrives (JupyterHub's
// wait_for_http_server; redirects are not followed). It returns
// ErrExitedEarly when gone closes first (the server ended: nil never
// closes), ErrHTTPTimeout when the deadline passes, or ctx's error.
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
		// Bound each request, and abandon it when the server ends: a
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
			case <-gone: // someone else answered on the port the server lost
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
