//go:build unix

// Command testserver is a stand-in single-user server for the spawners'
// tests and the benchmarks: it listens where JUPYTERHUB_SERVICE_URL says and
// answers every path under JUPYTERHUB_SERVICE_PREFIX with 200 and a JSON
// report of itself (pid, process group, uid, gid, groups, cwd, args,
// environment), or, for a websocket upgrade, echoes every message back.
// Flags make it misbehave: exit early, never listen, listen late (after a
// pause or once a file exists), ignore SIGTERM, leave a child in its process
// group, write a file.
// Build it with spawnertest.Build.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// Status is the JSON the server answers with.
type Status struct {
	PID      int               `json:"pid"`
	PPID     int               `json:"ppid"`
	PGID     int               `json:"pgid"`
	SID      int               `json:"sid"`
	UID      int               `json:"uid"`
	GID      int               `json:"gid"`
	Groups   []int             `json:"groups"`
	Cwd      string            `json:"cwd"`
	Args     []string          `json:"args"`
	Env      map[string]string `json:"env"`
	ChildPID int               `json:"child_pid,omitempty"`
	Path     string            `json:"path"`
}

func main() {
	exitCode := flag.Int("exit", -1, "print some lines and exit with this status before listening")
	neverListen := flag.Bool("never-listen", false, "run without ever listening")
	sleep := flag.Duration("sleep", 0, "wait this long before listening")
	waitFile := flag.String("wait-file", "", "wait until this file exists before listening (a start a test holds back)")
	ignoreTerm := flag.Bool("ignore-term", false, "ignore SIGTERM")
	withChild := flag.Bool("child", false, "start a child that stays in the process group and ignores SIGTERM")
	write := flag.String("write", "", "create this file (relative to JUPYTERHUB_ROOT_DIR, else the working directory) before listening")
	inUseOnce := flag.String("addr-in-use-once", "", "if this file does not exist, create it and fail as if the port were taken")
	inUse := flag.Bool("addr-in-use", false, "always fail as if the port were taken")
	flag.Parse()

	fmt.Println("testserver: starting, args", os.Args[1:])
	if *ignoreTerm {
		signal.Ignore(syscall.SIGTERM)
	} else {
		ch := make(chan os.Signal, 1)
		signal.Notify(ch, syscall.SIGTERM)
		go func() {
			<-ch
			fmt.Println("testserver: got SIGTERM, exiting")
			os.Exit(0)
		}()
	}
	if *exitCode >= 0 {
		for i := 1; i <= 30; i++ {
			fmt.Printf("testserver: output line %d\n", i)
		}
		fmt.Fprintln(os.Stderr, "testserver: fatal: told to exit")
		os.Exit(*exitCode)
	}
	if *inUse {
		fmt.Fprintln(os.Stderr, "testserver: listen tcp: bind: address already in use")
		os.Exit(1)
	}
	if *inUseOnce != "" {
		if _, err := os.Stat(*inUseOnce); os.IsNotExist(err) {
			_ = os.WriteFile(*inUseOnce, nil, 0o600)
			fmt.Fprintln(os.Stderr, "testserver: listen tcp: bind: address already in use")
			os.Exit(1)
		}
	}
	var childPID int
	if *withChild {
		self, _ := os.Executable()
		c := exec.Command(self, "-never-listen", "-ignore-term")
		c.Stdout, c.Stderr = os.Stdout, os.Stderr
		if err := c.Start(); err != nil {
			fmt.Fprintln(os.Stderr, "testserver: starting child:", err)
			os.Exit(2)
		}
		childPID = c.Process.Pid
		go func() { _ = c.Wait() }()
	}
	if *write != "" {
		p := *write
		if !filepath.IsAbs(p) {
			if root := os.Getenv("JUPYTERHUB_ROOT_DIR"); root != "" {
				p = filepath.Join(root, p)
			}
		}
		if err := os.WriteFile(p, []byte("written by testserver\n"), 0o644); err != nil {
			fmt.Fprintln(os.Stderr, "testserver:", err)
			os.Exit(3)
		}
	}
	if *neverListen {
		select {}
	}
	time.Sleep(*sleep)
	if *waitFile != "" {
		fmt.Println("testserver: waiting for", *waitFile)
		for {
			if _, err := os.Stat(*waitFile); err == nil {
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
	}

	addr, prefix := "127.0.0.1:8888", "/"
	if s := os.Getenv("JUPYTERHUB_SERVICE_URL"); s != "" {
		u, err := url.Parse(s)
		if err != nil {
			fmt.Fprintln(os.Stderr, "testserver: bad JUPYTERHUB_SERVICE_URL:", err)
			os.Exit(4)
		}
		addr, prefix = u.Host, u.Path
	}
	if p := os.Getenv("JUPYTERHUB_SERVICE_PREFIX"); p != "" {
		prefix = p
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "testserver:", err)
		os.Exit(1)
	}
	fmt.Println("testserver: listening on", l.Addr(), "prefix", prefix)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.HasPrefix(r.URL.Path, prefix) {
			http.NotFound(w, r)
			return
		}
		if strings.EqualFold(r.Header.Get("Upgrade"), "websocket") {
			echoWebsocket(w, r)
			return
		}
		cwd, _ := os.Getwd()
		groups, _ := os.Getgroups()
		pgid, _ := syscall.Getpgid(0)
		sid, _, _ := syscall.RawSyscall(syscall.SYS_GETSID, 0, 0, 0)
		env := make(map[string]string)
		for _, kv := range os.Environ() {
			k, v, _ := strings.Cut(kv, "=")
			env[k] = v
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(Status{
			PID: os.Getpid(), PPID: os.Getppid(), PGID: pgid, SID: int(sid),
			UID: os.Getuid(), GID: os.Getgid(), Groups: groups, Cwd: cwd,
			Args: os.Args, Env: env, ChildPID: childPID, Path: r.URL.Path,
		})
	})
	err = http.Serve(l, h)
	fmt.Fprintln(os.Stderr, "testserver:", err)
	os.Exit(1)
}
