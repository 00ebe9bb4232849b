package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/caddyhub/caddyhub/internal/testport"
)

// proc is a process the benchmark started. At the end it and every process it left behind
// (descendants seen while it ran) are stopped by PID.
type proc struct {
	name    string
	cmd     *exec.Cmd
	logPath string
	done    chan struct{}
	seen    map[int]uint64 // descendant pid → start ticks, collected by trackDescendants
}

var (
	procsMu sync.Mutex
	procs   []*proc
)

// startProc runs bin with args in dir, output to <dir>/<name>.log, environment ours + env.
func startProc(name, dir string, env []string, bin string, args ...string) (*proc, error) {
	logPath := filepath.Join(dir, name+".log")
	f, err := os.Create(logPath)
	if err != nil {
		return nil, fmt.Errorf("creating %s log: %w", name, err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		f.Close()
		return nil, fmt.Errorf("starting %s: %w", name, err)
	}
	p := &proc{name: name, cmd: cmd, logPath: logPath, done: make(chan struct{}), seen: map[int]uint64{}}
	go func() { _ = cmd.Wait(); f.Close(); close(p.done) }()
	procsMu.Lock()
	procs = append(procs, p)
	procsMu.Unlock()
	return p, nil
}

func (p *proc) pid() int { return p.cmd.Process.Pid }

func (p *proc) running() bool {
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// tail returns the last n bytes of the process's log.
func (p *proc) tail(n int) string {
	b, _ := os.ReadFile(p.logPath)
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}

// trackDescendants remembers the process's current descendants so stop can clean up after it.
func (p *proc) trackDescendants() {
	for _, pid := range descendants(p.pid()) {
		if st, err := startTicks(pid); err == nil {
			p.seen[pid] = st
		}
	}
}

// stop sends SIGTERM, waits up to grace, then SIGKILL; then kills any descendant it left behind
// (same PID and start time as when seen).
func (p *proc) stop(grace time.Duration) time.Duration {
	if p.running() {
		p.trackDescendants()
	}
	began := time.Now()
	if p.running() {
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(grace):
			_ = p.cmd.Process.Kill()
			<-p.done
		}
	}
	took := time.Since(began)
	for pid, st := range p.seen {
		if cur, err := startTicks(pid); err == nil && cur == st {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
	return took
}

func stopAll() {
	procsMu.Lock()
	ps := procs
	procs = nil
	procsMu.Unlock()
	for i := len(ps) - 1; i >= 0; i-- {
		ps[i].stop(10 * time.Second)
	}
}

// procStat reads fields of /proc/<pid>/stat after the command name: state is f[0], ppid f[1],
// start ticks f[19].
func procStat(pid int) ([]string, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return nil, err
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return nil, errors.New("malformed stat")
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 20 {
		return nil, errors.New("malformed stat")
	}
	return f, nil
}

func startTicks(pid int) (uint64, error) {
	f, err := procStat(pid)
	if err != nil {
		return 0, err
	}
	return strconv.ParseUint(f[19], 10, 64)
}

// descendants lists every live process below pid (children, grandchildren, …).
func descendants(pid int) []int {
	ents, _ := os.ReadDir("/proc")
	children := map[int][]int{}
	for _, e := range ents {
		n, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		f, err := procStat(n)
		if err != nil || f[0] == "Z" {
			continue
		}
		pp, _ := strconv.Atoi(f[1])
		children[pp] = append(children[pp], n)
	}
	var out []int
	queue := []int{pid}
	for len(queue) > 0 {
		c := children[queue[0]]
		queue = queue[1:]
		out = append(out, c...)
		queue = append(queue, c...)
	}
	return out
}

func freePort() int {
	p, err := testport.Next()
	if err != nil {
		panic(fmt.Sprintf("no free port: %v", err)) // loopback is broken; nothing here can run
	}
	return p
}

// freePorts returns n distinct ports that were free a moment ago (see internal/testport).
func freePorts(n int) []int {
	ports := make([]int, n)
	for i := range ports {
		ports[i] = freePort()
	}
	return ports
}

// rawClient does not follow redirects and keeps connections alive.
func rawClient() *http.Client {
	return &http.Client{
		Transport: &http.Transport{Proxy: nil, MaxIdleConnsPerHost: 200},
		Timeout:   60 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
}

// waitStatus polls url until it answers want, p exits, or timeout passes.
func waitStatus(url string, want int, p *proc, timeout time.Duration) error {
	c := rawClient()
	c.Timeout = 5 * time.Second
	deadline := time.Now().Add(timeout)
	last := ""
	for time.Now().Before(deadline) {
		resp, err := c.Get(url)
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == want {
				return nil
			}
			last = resp.Status
		} else {
			last = err.Error()
		}
		if p != nil && !p.running() {
			return fmt.Errorf("%s exited while waiting for %s:\n%s", p.name, url, p.tail(3000))
		}
		time.Sleep(20 * time.Millisecond)
	}
	tail := ""
	if p != nil {
		tail = p.tail(3000)
	}
	return fmt.Errorf("%s: no %d within %s (last: %s)\n%s", url, want, timeout, last, tail)
}
