// Command hub benchmarks CaddyHub's hub side by side with JupyterHub 3.0 (its own
// configurable-http-proxy), both with the dummy authenticator and the simple local-process
// spawner (issue #3).
//
// Run it from the repository root:
//
//	go run ./bench/hub [-caddy /tmp/bench-caddy] [-rounds 3] [-only ready,spawn,cold,memory] [-out bench/hub/RESULTS.md]
//
// Scenarios (each hub started fresh for each; in ready and its logins/s the rounds alternate the hubs
// ABAB/BABA, the other scenarios run one hub after the other):
//   - ready: browser-like login → spawn → /user/<name>/api/status 200 with the real
//     /usr/bin/jupyterhub-singleuser, and that server started alone with the environment a hub
//     gives it; each hub's overhead is total − the server's own start. Then logins/s: concurrent
//     clients doing GET + POST /hub/login.
//   - spawn: trivial servers (spawners/internal/testserver) through the REST API: one at a time,
//     then -spawns at once, until each answers through the public port.
//   - cold: ours only: a data_dir with -users users, -running running servers of which -real are
//     live test-server processes (the rest died while the hub was down), written with
//     hubapp/store; time from exec of `caddy run` to the first routed request answered.
//   - memory: VmRSS, RssAnon and PSS of caddy idle and with -memusers users (REST API) and routes (proxy API);
//     JupyterHub's jupyterhub + CHP idle.
//
// The report (Markdown) goes to stdout and to -out.
package main

import (
	"flag"
	"fmt"
	"log"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/caddyhub/caddyhub/bench/internal/install"
	"github.com/caddyhub/caddyhub/internal/buildflags"
)

var (
	caddyFlag         = flag.String("caddy", "", "our caddy binary (default: go build ./cmd/caddy into a temporary directory)")
	jupyterhubFlag    = flag.String("jupyterhub", "/usr/bin/jupyterhub", "JupyterHub 3.0 command")
	singleuserFlag    = flag.String("singleuser", "/usr/bin/jupyterhub-singleuser", "single-user server command")
	roundsFlag        = flag.Int("rounds", 3, "rounds of each repeated measurement (median reported)")
	onlyFlag          = flag.String("only", "ready,spawn,cold,memory", "comma-separated scenarios to run")
	spawnsFlag        = flag.Int("spawns", 100, "concurrent spawns")
	skipJHSpawnFlag   = flag.Bool("skip-jh-spawn", false, "skip JupyterHub in the concurrent-spawn scenario")
	usersFlag         = flag.Int("users", 50000, "cold start: users in the data_dir")
	runningFlag       = flag.Int("running", 5000, "cold start: servers recorded as running")
	realFlag          = flag.Int("real", 200, "cold start: of those, live test-server processes")
	memUsersFlag      = flag.Int("memusers", 10000, "memory: users and routes")
	loginClientsFlag  = flag.Int("login-clients", 20, "logins/s: concurrent clients (0 skips it)")
	loginDurationFlag = flag.Duration("login-duration", 10*time.Second, "logins/s: length of one measurement")
	keepFlag          = flag.Bool("keep", false, "keep the temporary directory (logs, data_dirs) and print its path")
	outFlag           = flag.String("out", "bench/hub/RESULTS.md", "also write the report here (empty: stdout only)")
)

func main() {
	log.SetFlags(log.Ltime)
	flag.Parse()
	if err := run(); err != nil {
		stopAll()
		log.Fatal(err)
	}
}

func run() error {
	only := map[string]bool{}
	for s := range strings.SplitSeq(*onlyFlag, ",") {
		only[strings.TrimSpace(s)] = true
	}
	tmp, err := os.MkdirTemp("", "caddyhub-bench-hub-")
	if err != nil {
		return err
	}
	if *keepFlag {
		log.Printf("keeping %s", tmp)
	} else {
		defer os.RemoveAll(tmp)
	}
	defer stopAll()
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	go func() {
		<-sig
		stopAll()
		os.RemoveAll(tmp)
		os.Exit(1)
	}()

	rep := &report{began: time.Now(), facts: machineFacts(), command: "go run ./bench/hub " + strings.Join(os.Args[1:], " ")}
	bin := *caddyFlag
	if bin == "" {
		bin = filepath.Join(tmp, "caddy")
		if err := goBuild(bin, "./cmd/caddy"); err != nil {
			return err
		}
	}
	// Run an installed copy, as a deployment does (see bench/internal/install).
	if bin, err = install.Copy(bin, filepath.Join(tmp, "installed")); err != nil {
		return err
	}
	rep.caddyVersion = commandLine(bin, "version")
	rep.jhVersion = commandLine(*jupyterhubFlag, "--version")
	testserver := ""
	if only["spawn"] || only["cold"] {
		testserver = filepath.Join(tmp, "testserver")
		if err := goBuild(testserver, "./spawners/internal/testserver"); err != nil {
			return err
		}
	}
	if only["ready"] {
		rep.ready = &readyResult{}
		if err := benchReady(bin, tmp, *roundsFlag, rep.ready); err != nil {
			return fmt.Errorf("login → ready: %w", err)
		}
	}
	if only["spawn"] {
		if rep.spawn, err = runSpawns(bin, tmp, testserver, *roundsFlag, *spawnsFlag); err != nil {
			return fmt.Errorf("spawns: %w", err)
		}
	}
	if only["cold"] {
		if rep.cold, err = benchCold(bin, tmp, testserver, *roundsFlag, *usersFlag, *runningFlag, *realFlag); err != nil {
			return fmt.Errorf("cold start: %w", err)
		}
	}
	if only["memory"] {
		if rep.mem, err = benchMemory(bin, tmp, *memUsersFlag); err != nil {
			return fmt.Errorf("memory: %w", err)
		}
	}
	rep.ended = time.Now()
	rep.loadEnd = loadavg()
	text := rep.markdown()
	fmt.Print(text)
	if *outFlag != "" {
		if err := os.WriteFile(*outFlag, []byte(text), 0o644); err != nil {
			return err
		}
		log.Printf("wrote %s", *outFlag)
	}
	return nil
}

func goBuild(out, pkg string) error {
	log.Printf("building %s", pkg)
	cmd := exec.Command("go", "build", "-tags", buildflags.Tags, "-o", out, pkg)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("go build %s (run from the repository root, or pass -caddy): %w", pkg, err)
	}
	return nil
}

// commandLine runs a command and returns its first output line.
func commandLine(bin string, args ...string) string {
	out, err := exec.Command(bin, args...).CombinedOutput()
	if err != nil {
		return "unknown (" + err.Error() + ")"
	}
	line, _, _ := strings.Cut(strings.TrimSpace(string(out)), "\n")
	return line
}

func loadavg() string {
	b, _ := os.ReadFile("/proc/loadavg")
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

func machineFacts() []string {
	var facts []string
	cpu := "?"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		n := 0
		for line := range strings.SplitSeq(string(b), "\n") {
			if strings.HasPrefix(line, "processor") {
				n++
			}
			if v, ok := strings.CutPrefix(line, "model name"); ok && cpu == "?" {
				cpu = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(v), ":"))
			}
		}
		cpu = fmt.Sprintf("%d × %s", n, cpu)
	}
	facts = append(facts, "CPU: "+cpu)
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		line, _, _ := strings.Cut(string(b), "\n")
		facts = append(facts, "Memory: "+strings.Join(strings.Fields(line)[1:], " "))
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		facts = append(facts, "Kernel: "+strings.TrimSpace(string(b)))
	}
	facts = append(facts, "Go: "+commandLine("go", "version"))
	if d, err := fsyncLatency(); err == nil {
		facts = append(facts, "Disk: one 4 KiB write + fsync in the temporary directory takes "+fmtDur(d)+" (median of 50)")
	}
	facts = append(facts, "Load average at start (1/5/15 min): "+loadavg())
	return facts
}

// fsyncLatency times small synced writes: the floor under every durable store transaction.
func fsyncLatency() (time.Duration, error) {
	f, err := os.CreateTemp("", "caddyhub-bench-fsync-")
	if err != nil {
		return 0, err
	}
	defer os.Remove(f.Name())
	defer f.Close()
	buf := make([]byte, 4096)
	var ds []time.Duration
	for range 50 {
		began := time.Now()
		if _, err := f.Write(buf); err != nil {
			return 0, err
		}
		if err := f.Sync(); err != nil {
			return 0, err
		}
		ds = append(ds, time.Since(began))
	}
	return medianDur(ds), nil
}
