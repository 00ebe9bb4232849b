//go:build unix

package localproc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"go.uber.org/zap"

	"github.com/caddyhub/caddyhub/spawners"
)

// child is a started process, reaped by a goroutine so that none is left a
// zombie; done closes when it has exited.
type child struct {
	cmd   *exec.Cmd
	done  chan struct{}
	state *os.ProcessState
}

// Start starts a server as Spec says and returns once it answers HTTP.
// On failure it leaves no process behind.
func Start(ctx context.Context, sp Spec, progress func(spawners.Event)) (*spawners.Server, error) {
	if progress == nil {
		progress = func(spawners.Event) {}
	}
	if sp.Logger == nil {
		sp.Logger = zap.NewNop()
	}
	o, req := sp.Options, sp.Request
	prefix := req.ServicePrefix
	if prefix == "" {
		prefix = "/"
	}
	if !strings.HasPrefix(prefix, "/") {
		return nil, fmt.Errorf("service prefix %q does not start with a slash", prefix)
	}
	if !strings.HasSuffix(prefix, "/") {
		prefix += "/"
	}
	start := time.Now()
	ctx, cancel := context.WithDeadline(ctx, start.Add(time.Duration(o.StartTimeout)))
	defer cancel()

	argv := append(append([]string(nil), o.Cmd...), o.Args...)
	progress(spawners.Event{Progress: 10, Message: "Starting " + argv[0]})
	logf, offset, err := openLog(sp.LogPath)
	if err != nil {
		return nil, err
	}
	defer logf.Close() // the process has its own copy of the descriptor

	attempts := 1
	if o.Port == 0 {
		attempts = maxPortAttempts
	}
	for attempt := 1; ; attempt++ {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("starting server for %s: %w", req.User, err)
		}
		port := o.Port
		if port == 0 {
			if port, err = freePort(o.IP); err != nil {
				return nil, err
			}
		}
		c, state, err := launch(sp, argv, port, prefix, logf)
		if err != nil {
			return nil, err
		}
		url := "http://" + net.JoinHostPort(connectHost(o.IP), strconv.Itoa(port))
		sp.Logger.Debug("server process started", zap.String("user", req.User), zap.String("server", req.ServerName),
			zap.Int("pid", state.PID), zap.String("url", url), zap.Int("attempt", attempt))
		raw, err := json.Marshal(state)
		if err != nil {
			kill(c, o)
			return nil, fmt.Errorf("encoding spawner state: %w", err)
		}
		// Tell the hub before waiting, so that a hub killed meanwhile finds the process again.
		if err := req.ReportLaunched(&spawners.Server{URL: url, State: raw}); err != nil {
			kill(c, o)
			return nil, fmt.Errorf("recording the launched server for %s: %w", req.User, err)
		}
		progress(spawners.Event{Progress: 30, Message: fmt.Sprintf("Server process started (pid %d); waiting for it to answer", state.PID)})

		err = spawners.WaitHTTP(ctx, url+prefix, c.done, time.Now().Add(time.Duration(o.HTTPTimeout)))
		if err == nil {
			sp.Logger.Info("server started", zap.String("user", req.User), zap.String("server", req.ServerName),
				zap.Int("pid", state.PID), zap.String("url", url), zap.Duration("took", time.Since(start)))
			progress(spawners.Event{Progress: 90, Message: "Server answers at " + url + prefix})
			return &spawners.Server{URL: url, State: raw}, nil
		}
		kill(c, o)
		if errors.Is(err, spawners.ErrExitedEarly) && attempt < attempts {
			if tail := tailLines(sp.LogPath, offset, tailLineCount); strings.Contains(strings.ToLower(tail), "already in use") {
				sp.Logger.Debug("server could not bind its port, retrying", zap.String("user", req.User), zap.Int("port", port))
				progress(spawners.Event{Progress: 10, Message: fmt.Sprintf("Port %d was taken; trying another", port)})
				if fi, err := os.Stat(sp.LogPath); err == nil {
					offset = fi.Size()
				}
				continue
			}
		}
		return nil, explain(err, sp, c, url+prefix, offset, start)
	}
}

// launch starts the process for one attempt on port and a goroutine that
// reaps it.
func launch(sp Spec, argv []string, port int, prefix string, logf *os.File) (*child, State, error) {
	serviceURL := "http://" + net.JoinHostPort(sp.Options.IP, strconv.Itoa(port)) + prefix
	env := sp.Env(serviceURL)
	path, err := lookPath(argv[0], env["PATH"])
	if err != nil {
		return nil, State{}, commandError(argv[0], env["PATH"], err)
	}
	fmt.Fprintf(logf, "[caddyhub %s] starting %s for user %s on %s\n",
		time.Now().UTC().Format(time.RFC3339), quoteArgs(argv), sp.Request.User, serviceURL)
	cmd := &exec.Cmd{
		Path:   path,
		Args:   argv,
		Env:    spawners.EnvList(env),
		Dir:    sp.Dir,
		Stdout: logf, // an *os.File: handed over as is, no pipe; stdin is /dev/null
		Stderr: logf,
		SysProcAttr: &syscall.SysProcAttr{
			Setsid:     true, // own session and group: no signals from the hub's terminal, killable as a group
			Credential: sp.Credential.sys(),
		},
	}
	if err := cmd.Start(); err != nil {
		return nil, State{}, startFailure(argv[0], path, sp, err)
	}
	c := &child{cmd: cmd, done: make(chan struct{})}
	// Read the start time before anything can reap the process.
	st, statErr := readStat(cmd.Process.Pid)
	go func() {
		_ = cmd.Wait()
		c.state = cmd.ProcessState
		close(c.done)
	}()
	if statErr != nil && !errors.Is(statErr, errNoProcess) {
		kill(c, sp.Options)
		return nil, State{}, statErr
	}
	return c, State{PID: cmd.Process.Pid, StartTicks: st.StartTicks, BootID: bootID(), Port: port, Log: sp.LogPath}, nil
}

// explain turns a failed wait for the server into the error for the user,
// and logs it for the operator.
func explain(err error, sp Spec, c *child, url string, offset int64, start time.Time) error {
	o, log := sp.Options, sp.Logger.With(zap.String("user", sp.Request.User),
		zap.String("server", sp.Request.ServerName), zap.String("log", sp.LogPath))
	switch {
	case errors.Is(err, spawners.ErrExitedEarly):
		tail := tailLines(sp.LogPath, offset, tailLineCount)
		msg := "the server " + exitText(c.state)
		if o.Port != 0 && strings.Contains(strings.ToLower(tail), "already in use") {
			msg += fmt.Sprintf(" (port %d, set by the spawner's port option, is in use)", o.Port)
		}
		if tail != "" {
			msg += "; last lines of its output:\n" + tail
		}
		log.Warn("server exited early", zap.String("status", c.state.String()))
		return &spawners.StartError{Kind: spawners.ErrExitedEarly, Msg: msg}
	case errors.Is(err, spawners.ErrHTTPTimeout):
		log.Warn("server did not answer in time", zap.Duration("http_timeout", time.Duration(o.HTTPTimeout)))
		return &spawners.StartError{Kind: spawners.ErrHTTPTimeout,
			Msg: fmt.Sprintf("the server did not answer at %s within http_timeout (%s)", url, time.Duration(o.HTTPTimeout))}
	case errors.Is(err, context.DeadlineExceeded) && time.Since(start) >= time.Duration(o.StartTimeout):
		log.Warn("server start timed out", zap.Duration("start_timeout", time.Duration(o.StartTimeout)))
		return &spawners.StartError{Kind: spawners.ErrStartTimeout,
			Msg: fmt.Sprintf("the server did not start within start_timeout (%s)", time.Duration(o.StartTimeout))}
	default:
		return fmt.Errorf("starting server for %s: %w", sp.Request.User, err)
	}
}

// kill ends a failed start: SIGKILL to the group, then wait for the
// process to be reaped and the group to empty, each bounded by kill_timeout.
func kill(c *child, o *spawners.Options) {
	pid := c.cmd.Process.Pid
	_ = syscall.Kill(-pid, syscall.SIGKILL)
	t := time.NewTimer(time.Duration(o.KillTimeout))
	defer t.Stop()
	select {
	case <-c.done:
	case <-t.C:
	}
	_, _ = waitGroupGone(context.Background(), pid, 0, time.Duration(o.KillTimeout))
}

// portHold is how long a port freePort returned is not returned again: long enough for the server
// it was meant for to bind it, or to have failed.
const portHold = 2 * time.Minute

// handedOut remembers the ports freePort returned lately. The kernel can offer the same free port
// to two calls in a row (the first server has not bound it yet); two concurrent spawns then share
// it, the second server cannot bind, and the hub's readiness probe reaches the first server and
// routes the second user to it.
var handedOut = struct {
	sync.Mutex
	at map[int]time.Time
}{at: map[int]time.Time{}}

// freePort asks the kernel for a free TCP port on ip that no other spawn of this process was given
// in the last portHold.
func freePort(ip string) (int, error) {
	for range 50 {
		l, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
		if err != nil {
			return 0, fmt.Errorf("finding a free port on %s: %w", ip, err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		l.Close()
		now := time.Now()
		handedOut.Lock()
		for p, at := range handedOut.at {
			if now.Sub(at) > portHold {
				delete(handedOut.at, p)
			}
		}
		_, taken := handedOut.at[port]
		if !taken {
			handedOut.at[port] = now
		}
		handedOut.Unlock()
		if !taken {
			return port, nil
		}
	}
	return 0, fmt.Errorf("finding a free port on %s: the kernel kept offering ports given to servers still starting", ip)
}

// connectHost is the host the hub connects to for a server listening on ip:
// loopback for an unspecified address.
func connectHost(ip string) string {
	p := net.ParseIP(ip)
	switch {
	case p == nil:
		return ip
	case p.IsUnspecified() && p.To4() != nil:
		return "127.0.0.1"
	case p.IsUnspecified():
		return "::1"
	}
	return ip
}

// commandError explains a failed lookup of cmd.
func commandError(name, path string, err error) error {
	msg := "command not found: " + name
	switch {
	case errors.Is(err, os.ErrNotExist) && strings.Contains(name, "/"):
		msg += " (no such file)"
	case errors.Is(err, os.ErrNotExist):
		msg += " (searched PATH " + path + ")"
		if name == "jupyterhub-singleuser" {
			msg += "; install jupyterhub: apt-get install jupyterhub or pip install jupyterhub"
		}
	default:
		msg = fmt.Sprintf("cannot run %s: %v", name, err)
	}
	return &spawners.StartError{Kind: spawners.ErrCommandNotFound, Msg: msg, Cause: err}
}

// startFailure explains a failed exec.
func startFailure(name, path string, sp Spec, err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) && pe.Op == "chdir" {
		return fmt.Errorf("cannot start the server in %s: %w", sp.Dir, pe.Err)
	}
	who := ""
	if sp.Account != "" {
		who = " as user " + sp.Account
	}
	if errors.Is(err, os.ErrPermission) {
		return &spawners.StartError{Kind: spawners.ErrCommandNotFound,
			Msg: fmt.Sprintf("permission denied running %s%s (may the account execute it and enter %s?)", path, who, sp.Dir), Cause: err}
	}
	if errors.Is(err, os.ErrNotExist) {
		return commandError(name, "", err)
	}
	return fmt.Errorf("starting %s%s: %w", path, who, err)
}

// exitText describes how a process ended: "exited early with status 3".
func exitText(ps *os.ProcessState) string {
	if ps == nil {
		return "exited early"
	}
	if ws, ok := ps.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return fmt.Sprintf("was killed by signal %d (%s) before it answered", int(ws.Signal()), ws.Signal())
	}
	return fmt.Sprintf("exited early with status %d", ps.ExitCode())
}

func quoteArgs(argv []string) string {
	q := make([]string, len(argv))
	for i, a := range argv {
		if a == "" || strings.ContainsAny(a, " \t\n\"'\\$") {
			a = strconv.Quote(a)
		}
		q[i] = a
	}
	return strings.Join(q, " ")
}

// sys converts c for os/exec; nil stays nil (the hub's own account).
func (c *Credential) sys() *syscall.Credential {
	if c == nil {
		return nil
	}
	return &syscall.Credential{Uid: c.Uid, Gid: c.Gid, Groups: c.Groups}
}
