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

// Start launches a server as Spec says and returns once the process runs and its URL is known; it
// does not wait for the server to answer (the hub does, spawners.WaitUp). The Server's Exited closes
// when the process is reaped, and its ExitError explains the exit: status, the last lines of the
// log, and a retry when a randomly picked port was taken. On failure it leaves no process behind.
func Start(ctx context.Context, sp Spec, progress func(spawners.Event)) (*spawners.Server, error) {
	if progress == nil {
		progress = func(spawners.Event) {}
	}
	if sp.Logger == nil {
		sp.Logger = zap.NewNop()
	}
	o, lo, req := sp.Options, sp.Local, sp.Request
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
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("starting server for %s: %w", req.User, err)
	}
	argv := append(append([]string(nil), o.Cmd...), o.Args...)
	progress(spawners.Event{Progress: 10, Message: "Starting " + argv[0]})
	logf, offset, err := openLog(sp.LogPath)
	if err != nil {
		return nil, err
	}
	defer logf.Close() // the process has its own copy of the descriptor

	port := lo.Port
	if port == 0 {
		if port, err = freePort(lo.IP); err != nil {
			return nil, err
		}
	}
	c, state, err := launch(sp, argv, port, prefix, logf)
	if err != nil {
		return nil, err
	}
	url := "http://" + net.JoinHostPort(connectHost(lo.IP), strconv.Itoa(port))
	sp.Logger.Debug("server process started", zap.String("user", req.User), zap.String("server", req.ServerName),
		zap.Int("pid", state.PID), zap.String("url", url))
	raw, err := json.Marshal(state)
	if err != nil {
		kill(c, lo)
		return nil, fmt.Errorf("encoding spawner state: %w", err)
	}
	progress(spawners.Event{Progress: 30, Message: fmt.Sprintf("Server process started (pid %d); waiting for it to answer", state.PID)})
	return &spawners.Server{
		URL:       url,
		State:     raw,
		Exited:    c.done,
		ExitError: func() error { return exitError(sp, c, port, offset) },
	}, nil
}

// launch starts the process for one attempt on port and a goroutine that
// reaps it.
func launch(sp Spec, argv []string, port int, prefix string, logf *os.File) (*child, State, error) {
	serviceURL := "http://" + net.JoinHostPort(sp.Local.IP, strconv.Itoa(port)) + prefix
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
		kill(c, sp.Local)
		return nil, State{}, statErr
	}
	return c, State{PID: cmd.Process.Pid, StartTicks: st.StartTicks, BootID: bootID(), Port: port, Log: sp.LogPath}, nil
}

// exitError explains a server that exited before it answered, and logs it for the operator. A
// server that could not bind a port picked at random may succeed on another: the error says so
// (StartError.Retry) and the hub starts again.
func exitError(sp Spec, c *child, port int, offset int64) error {
	<-c.done
	log := sp.Logger.With(zap.String("user", sp.Request.User),
		zap.String("server", sp.Request.ServerName), zap.String("log", sp.LogPath))
	tail := tailLines(sp.LogPath, offset, tailLineCount)
	inUse := strings.Contains(strings.ToLower(tail), "already in use")
	msg := "the server " + exitText(c.state)
	if sp.Local.Port != 0 && inUse {
		msg += fmt.Sprintf(" (port %d, set by the spawner's port option, is in use)", sp.Local.Port)
	}
	if tail != "" {
		msg += "; last lines of its output:\n" + tail
	}
	err := &spawners.StartError{Kind: spawners.ErrExitedEarly, Msg: msg}
	if sp.Local.Port == 0 && inUse {
		log.Debug("server could not bind its port", zap.Int("port", port))
		err.Retry = fmt.Sprintf("Port %d was taken; trying another", port)
		return err
	}
	log.Warn("server exited early", zap.String("status", c.state.String()))
	return err
}

// kill ends a failed start: SIGKILL to the group, then wait for the
// process to be reaped and the group to empty, each bounded by kill_timeout.
func kill(c *child, o *ProcessOptions) {
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
