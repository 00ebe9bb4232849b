// Command proxy benchmarks CaddyHub's edge side by side with a plain Caddy
// reverse_proxy, configurable-http-proxy (CHP) and the backend itself.
//
// Run it from the repository root:
//
//	go run ./bench/proxy [-caddy ./caddy] [-duration 5s] [-rounds 3] [-out bench/proxy/RESULTS.md]
//
// It starts a trivial Go backend, then (all at once, so that rounds can
// alternate between them): our binary with a plain `reverse_proxy` site, our
// binary with the `jupyterhub` handler in proxy_only mode at 10 and 10,000
// routes, CHP at 10 and 10,000 routes, and a floor: the Go standard
// library's own reverse proxy (net/http server, httputil.ReverseProxy,
// http.Transport) with no Caddy, which Caddy's server and reverse_proxy are
// built on: no proxy made of them can do much better than it on this
// machine. Routes are added through each
// proxy's REST API by 10 concurrent clients, as JupyterHub does; the time of
// those adds is reported (ours are durable: Badger, synced). Each round
// measures every setup at every connection count with wrk (or a Go load
// generator when wrk is absent) and the report gives medians over rounds,
// ratios, and the memory of caddy and CHP at 10,000 routes (VmRSS, RssAnon, PSS).
package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/caddyhub/caddyhub/bench/internal/install"
	"github.com/caddyhub/caddyhub/bench/internal/procmem"
	"github.com/caddyhub/caddyhub/internal/buildflags"

	"github.com/caddyhub/caddyhub/internal/testport"
)

var (
	caddyFlag    = flag.String("caddy", "", "path to our caddy binary (default: go build ./cmd/caddy into a temporary directory)")
	chpFlag      = flag.String("chp", "configurable-http-proxy", "configurable-http-proxy command; skipped with a note if absent")
	wrkFlag      = flag.String("wrk", "wrk", "wrk command; a Go load generator is used if absent")
	durationFlag = flag.Duration("duration", 5*time.Second, "length of one measurement")
	roundsFlag   = flag.Int("rounds", 3, "rounds; each round measures every setup once per connection count")
	connsFlag    = flag.String("conns", "1,50", "comma-separated connection counts")
	routesFlag   = flag.String("routes", "10,10000", "comma-separated route counts for the jupyterhub handler and CHP")
	addersFlag   = flag.Int("adders", 10, "concurrent clients adding routes (JupyterHub's ConfigurableHTTPProxy.concurrency)")
	outFlag      = flag.String("out", "", "also write the Markdown report to this file")

	// The benchmark runs the floor proxy by running itself with these.
	serveFloorFlag  = flag.String("serve-floor", "", "(internal) serve the standard-library floor proxy on this address")
	floorTargetFlag = flag.String("floor-target", "", "(internal) the floor proxy's backend URL")
)

const apiToken = "bench-token"

func main() {
	log.SetFlags(log.Ltime)
	flag.Parse()
	if *serveFloorFlag != "" {
		log.Fatal(serveFloor(*serveFloorFlag, *floorTargetFlag))
	}
	if err := run(); err != nil {
		log.Fatal(err)
	}
}

// proc is a process the benchmark started; it is killed by PID at the end.
type proc struct {
	name string
	cmd  *exec.Cmd
	logs *bytes.Buffer
}

var (
	procsMu sync.Mutex
	procs   []*proc
)

func killAll() {
	procsMu.Lock()
	defer procsMu.Unlock()
	for _, p := range procs {
		if p.cmd.Process != nil {
			_ = p.cmd.Process.Signal(syscall.SIGTERM)
		}
	}
	for _, p := range procs {
		done := make(chan struct{})
		go func() { _ = p.cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			_ = p.cmd.Process.Kill()
		}
	}
	procs = nil
}

func start(name string, env []string, bin string, args ...string) (*proc, error) {
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	logs := new(bytes.Buffer)
	cmd.Stdout = &lockedWriter{w: logs}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s: %w", name, err)
	}
	p := &proc{name: name, cmd: cmd, logs: logs}
	procsMu.Lock()
	procs = append(procs, p)
	procsMu.Unlock()
	return p, nil
}

type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(b)
}

func freePort() (int, error) { return testport.Next() }

// waitHTTP polls url until it answers with want or the deadline passes.
func waitHTTP(url string, want int, p *proc) error {
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get(url)
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == want {
				return nil
			}
		}
		if p != nil && p.cmd.ProcessState != nil {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	logs := ""
	if p != nil {
		logs = p.logs.String()
	}
	return fmt.Errorf("%s did not answer %d in time\n%s", url, want, logs)
}

// setup is one thing to measure.
type setup struct {
	name   string
	kind   string // direct, rp, floor, hub, chp
	routes int
	url    string
	proc   *proc
	addDur time.Duration
}

func run() error {
	conns, err := intList(*connsFlag)
	if err != nil {
		return fmt.Errorf("-conns: %w", err)
	}
	routeCounts, err := intList(*routesFlag)
	if err != nil {
		return fmt.Errorf("-routes: %w", err)
	}
	tmp, err := os.MkdirTemp("", "caddyhub-bench-proxy-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	defer killAll()
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	go func() {
		<-sig
		killAll()
		os.RemoveAll(tmp)
		os.Exit(1)
	}()

	caddyBin := *caddyFlag
	if caddyBin == "" {
		caddyBin = filepath.Join(tmp, "caddy")
		log.Printf("building %s", caddyBin)
		build := exec.Command("go", "build", "-tags", buildflags.Tags, "-o", caddyBin, "./cmd/caddy")
		build.Stdout, build.Stderr = os.Stderr, os.Stderr
		if err := build.Run(); err != nil {
			return fmt.Errorf("building caddy (run from the repository root, or pass -caddy): %w", err)
		}
	}

	// Run an installed copy, as a deployment does (see bench/internal/install).
	if caddyBin, err = install.Copy(caddyBin, filepath.Join(tmp, "installed")); err != nil {
		return err
	}

	backend, err := startBackend()
	if err != nil {
		return err
	}
	setups := []*setup{{name: "direct (Go backend)", kind: "direct", url: backend + "/user/bench/api/status"}}

	rp, err := startCaddyRP(caddyBin, tmp, backend)
	if err != nil {
		return err
	}
	setups = append(setups, rp)
	floor, err := startFloor(backend, routeCounts[0])
	if err != nil {
		return err
	}
	setups = append(setups, floor)
	for _, n := range routeCounts {
		s, err := startCaddyHub(caddyBin, tmp, backend, n)
		if err != nil {
			return err
		}
		setups = append(setups, s)
	}
	chpNote := ""
	if chpPath, err := exec.LookPath(*chpFlag); err != nil {
		chpNote = fmt.Sprintf("configurable-http-proxy not found (%v): CHP rows skipped.", err)
		log.Print(chpNote)
	} else {
		for _, n := range routeCounts {
			s, err := startCHP(chpPath, backend, n)
			if err != nil {
				return err
			}
			setups = append(setups, s)
		}
	}

	loader := "wrk"
	wrkPath, err := exec.LookPath(*wrkFlag)
	if err != nil {
		loader = "Go load generator (wrk not found)"
		wrkPath = ""
	}

	// Memory with the routes in place, before any load: the state the anchor's CHP figure
	// (84.4 MB at 10,000 routes, idle) describes. A few seconds first, for the adds' garbage
	// to be collected and the activity flusher to have run.
	time.Sleep(6 * time.Second)
	idleRSS := map[*setup]procmem.Usage{}
	for _, s := range setups {
		if s.proc != nil {
			idleRSS[s] = procmem.Read(s.proc.cmd.Process.Pid)
		}
	}

	// results[setup][conns] = one measurement per round
	results := map[*setup]map[int][]measurement{}
	for _, s := range setups {
		results[s] = map[int][]measurement{}
	}
	for round := 1; round <= *roundsFlag; round++ {
		for _, c := range conns {
			for _, s := range setups {
				cpu0 := procCPU(s.proc)
				m, err := measure(wrkPath, s.url, c, *durationFlag)
				if err != nil {
					return fmt.Errorf("%s at %d connections: %w", s.name, c, err)
				}
				if cpu := procCPU(s.proc) - cpu0; s.proc != nil && m.rps > 0 {
					m.cpuPerReq = cpu / time.Duration(m.rps*durationFlag.Seconds())
				}
				log.Printf("round %d  %-32s c=%-3d %9.0f req/s  p50 %-9s p99 %-9s CPU/req %s", round, s.name, c, m.rps, fmtDur(m.p50), fmtDur(m.p99), fmtDur(m.cpuPerReq))
				results[s][c] = append(results[s][c], m)
			}
		}
	}

	rss := map[*setup]procmem.Usage{}
	for _, s := range setups {
		if s.proc != nil {
			rss[s] = procmem.Read(s.proc.cmd.Process.Pid)
		}
	}
	report := buildReport(setups, conns, results, idleRSS, rss, loader, chpNote)
	fmt.Print(report)
	if *outFlag != "" {
		if err := os.WriteFile(*outFlag, []byte(report), 0o644); err != nil {
			return err
		}
		log.Printf("wrote %s", *outFlag)
	}
	return nil
}

func intList(s string) ([]int, error) {
	var out []int
	for f := range strings.SplitSeq(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			return nil, fmt.Errorf("bad number %q", f)
		}
		out = append(out, n)
	}
	return out, nil
}

type measurement struct {
	rps      float64
	p50, p99 time.Duration
	// cpuPerReq is the proxy process's CPU time (user+system, all threads)
	// per request: a cost that other load on the machine does not inflate
	// much, unlike req/s.
	cpuPerReq time.Duration
}

// clockTick is the unit of /proc/<pid>/stat times (USER_HZ, 100 on Linux).
const clockTick = 10 * time.Millisecond

// procCPU returns the CPU time p has used so far (0 for none).
func procCPU(p *proc) time.Duration {
	if p == nil {
		return 0
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p.cmd.Process.Pid))
	if err != nil {
		return 0
	}
	// Fields after the ")" that ends the command name; utime and stime are
	// fields 14 and 15 of the whole line.
	_, rest, ok := strings.Cut(string(b), ") ")
	if !ok {
		return 0
	}
	f := strings.Fields(rest)
	if len(f) < 13 {
		return 0
	}
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * clockTick
}

func measure(wrkPath, url string, conns int, d time.Duration) (measurement, error) {
	if wrkPath == "" {
		return goLoad(url, conns, d)
	}
	threads := min(conns, runtime.NumCPU())
	out, err := exec.Command(wrkPath, "-t", strconv.Itoa(threads), "-c", strconv.Itoa(conns),
		"-d", fmt.Sprintf("%ds", max(1, int(d.Seconds()))), "--latency", url).CombinedOutput()
	if err != nil {
		return measurement{}, fmt.Errorf("wrk: %w\n%s", err, out)
	}
	return parseWrk(string(out))
}

var (
	rpsRe  = regexp.MustCompile(`Requests/sec:\s+([0-9.]+)`)
	p50Re  = regexp.MustCompile(`\n\s+50%\s+([0-9.]+)(us|ms|s)`)
	p99Re  = regexp.MustCompile(`\n\s+99%\s+([0-9.]+)(us|ms|s)`)
	errsRe = regexp.MustCompile(`Non-2xx or 3xx responses: (\d+)|Socket errors: .*`)
)

func parseWrk(out string) (measurement, error) {
	if m := errsRe.FindString(out); m != "" {
		return measurement{}, fmt.Errorf("wrk reported errors: %s\n%s", m, out)
	}
	rps := rpsRe.FindStringSubmatch(out)
	p50 := p50Re.FindStringSubmatch(out)
	p99 := p99Re.FindStringSubmatch(out)
	if rps == nil || p50 == nil || p99 == nil {
		return measurement{}, fmt.Errorf("cannot parse wrk output:\n%s", out)
	}
	r, _ := strconv.ParseFloat(rps[1], 64)
	return measurement{rps: r, p50: wrkDur(p50[1], p50[2]), p99: wrkDur(p99[1], p99[2])}, nil
}

func wrkDur(v, unit string) time.Duration {
	f, _ := strconv.ParseFloat(v, 64)
	switch unit {
	case "us":
		return time.Duration(f * float64(time.Microsecond))
	case "ms":
		return time.Duration(f * float64(time.Millisecond))
	default:
		return time.Duration(f * float64(time.Second))
	}
}

// goLoad is a closed-loop load generator: conns keep-alive connections, each
// sending the next request when the previous answer is read.
func goLoad(url string, conns int, d time.Duration) (measurement, error) {
	tr := &http.Transport{MaxIdleConnsPerHost: conns, MaxConnsPerHost: conns}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr}
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	lats := make([][]time.Duration, conns)
	var failed atomic.Int64
	var wg sync.WaitGroup
	for i := range conns {
		wg.Go(func() {
			for ctx.Err() == nil {
				t0 := time.Now()
				resp, err := client.Get(url)
				if err != nil {
					if ctx.Err() == nil {
						failed.Add(1)
					}
					continue
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					failed.Add(1)
				}
				lats[i] = append(lats[i], time.Since(t0))
			}
		})
	}
	wg.Wait()
	if n := failed.Load(); n > 0 {
		return measurement{}, fmt.Errorf("%d failed requests", n)
	}
	all := slices.Concat(lats...)
	if len(all) == 0 {
		return measurement{}, errors.New("no requests completed")
	}
	slices.Sort(all)
	return measurement{
		rps: float64(len(all)) / d.Seconds(),
		p50: all[len(all)*50/100],
		p99: all[len(all)*99/100],
	}, nil
}

func median(ms []measurement) measurement {
	rps := make([]float64, len(ms))
	p50 := make([]time.Duration, len(ms))
	p99 := make([]time.Duration, len(ms))
	cpu := make([]time.Duration, len(ms))
	for i, m := range ms {
		rps[i], p50[i], p99[i], cpu[i] = m.rps, m.p50, m.p99, m.cpuPerReq
	}
	slices.Sort(rps)
	slices.Sort(p50)
	slices.Sort(p99)
	slices.Sort(cpu)
	mid := len(ms) / 2
	return measurement{rps: rps[mid], p50: p50[mid], p99: p99[mid], cpuPerReq: cpu[mid]}
}

func fmtDur(d time.Duration) string {
	switch {
	case d < 10*time.Microsecond:
		return fmt.Sprintf("%.1fµs", float64(d)/float64(time.Microsecond))
	case d < time.Millisecond:
		return fmt.Sprintf("%.0fµs", float64(d)/float64(time.Microsecond))
	case d < time.Second:
		return fmt.Sprintf("%.2fms", float64(d)/float64(time.Millisecond))
	default:
		return fmt.Sprintf("%.2fs", d.Seconds())
	}
}

func ratio(a, b float64) string {
	if b == 0 {
		return "–"
	}
	return fmt.Sprintf("%.2f×", a/b)
}

func buildReport(setups []*setup, conns []int, results map[*setup]map[int][]measurement, idleRSS, rss map[*setup]procmem.Usage, loader, chpNote string) string {
	var b strings.Builder
	host, _ := os.Hostname()
	load, _ := os.ReadFile("/proc/loadavg")
	fmt.Fprintf(&b, "# Proxy benchmark: CaddyHub edge vs Caddy reverse_proxy vs configurable-http-proxy\n\n")
	fmt.Fprintf(&b, "Measured %s on %s (%d CPUs, %s, load average at the end: %s) with %s; %d rounds of %v per setup and connection count, setups alternating within each round; medians over rounds.\n\n",
		time.Now().UTC().Format("2006-01-02 15:04 MST"), host, runtime.NumCPU(), runtime.Version(),
		strings.Join(strings.Fields(string(load))[:3], " "), loader, *roundsFlag, *durationFlag)
	fmt.Fprintf(&b, "Command (from the repository root):\n\n```\ngo run ./bench/proxy %s\n```\n\n", strings.Join(os.Args[1:], " "))
	b.WriteString("The backend is a Go net/http server answering a 28-byte JSON body; every proxy runs on the same host as the load generator and the backend. " +
		"Requests go to `/user/user<n/2>/api/status`, a route in the middle of the table. " +
		"Our `jupyterhub` handler runs in `proxy_only` mode with routes added through its CHP-compatible API. " +
		"The floor is the Go standard library's reverse proxy (net/http server, httputil.ReverseProxy, http.Transport with the same 256 idle connections per host, X-Forwarded-* headers) with no Caddy and no route table, in a process of its own: " +
		"Caddy's server and reverse_proxy are built on these, so it bounds what a proxy made of them reaches here; its CHP ratio is against CHP with the fewest routes. " +
		"Our binary runs from a copy installed in a temporary directory, as a deployment would run it, not from the linker's output file, whose page cache the kernel holds in 2 MiB folios that count as resident memory whole (bench/internal/install). " +
		"Proxy CPU/req is the proxy process's user+system CPU time (all threads, /proc/<pid>/stat) divided by the requests it served: " +
		"on a shared machine req/s moves with everyone else's load, CPU per request much less.\n\n")
	if chpNote != "" {
		b.WriteString(chpNote + "\n\n")
	}

	var rp *setup
	chpBy := map[int]*setup{}
	for _, s := range setups {
		switch s.kind {
		case "rp":
			rp = s
		case "chp":
			chpBy[s.routes] = s
		}
	}
	for _, c := range conns {
		fmt.Fprintf(&b, "## %d connection(s)\n\n", c)
		b.WriteString("| setup | req/s | p50 | p99 | proxy CPU/req | req/s vs direct | req/s vs reverse_proxy | req/s vs CHP (same routes) | CPU/req: CHP ÷ this |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|\n")
		direct := median(results[setups[0]][c])
		var rpM measurement
		if rp != nil {
			rpM = median(results[rp][c])
		}
		for _, s := range setups {
			m := median(results[s][c])
			vsRP, vsCHP, cpuVsCHP, cpu := "–", "–", "–", "–"
			if s.kind == "hub" || s.kind == "chp" || s.kind == "floor" {
				vsRP = ratio(m.rps, rpM.rps)
			}
			if chp := chpBy[s.routes]; (s.kind == "hub" || s.kind == "floor") && chp != nil {
				cm := median(results[chp][c])
				vsCHP = ratio(m.rps, cm.rps)
				cpuVsCHP = ratio(float64(cm.cpuPerReq), float64(m.cpuPerReq))
			}
			if s.proc != nil {
				cpu = fmtDur(m.cpuPerReq)
			}
			fmt.Fprintf(&b, "| %s | %.0f | %s | %s | %s | %s | %s | %s | %s |\n", s.name, m.rps, fmtDur(m.p50), fmtDur(m.p99), cpu, ratio(m.rps, direct.rps), vsRP, vsCHP, cpuVsCHP)
		}
		b.WriteString("\n")
	}

	b.WriteString("## Adding routes and memory\n\n| setup | time to add its routes (10 concurrent clients) | idle, routes added: VmRSS | RssAnon | PSS | after the runs: VmRSS | RssAnon | PSS |\n|---|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, s := range setups {
		if s.kind != "hub" && s.kind != "chp" && s.kind != "rp" {
			continue
		}
		add := "–"
		if s.kind != "rp" {
			add = fmt.Sprintf("%d routes in %v", s.routes, s.addDur.Round(time.Millisecond))
		}
		i, r := idleRSS[s], rss[s]
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s | %s | %s |\n", s.name, add,
			procmem.MB(i.VmRSS), procmem.MB(i.RssAnon), procmem.MB(i.Pss), procmem.MB(r.VmRSS), procmem.MB(r.RssAnon), procmem.MB(r.Pss))
	}
	b.WriteString("\nWhat the process allocated is RssAnon (heap, stacks, runtime; /proc/<pid>/status). PSS (smaps_rollup) is its share of " +
		"everything mapped, shared pages divided among the processes mapping them. VmRSS also counts the executable's pages that are mapped in: " +
		"page cache, shared with other processes running the same file and reclaimable, which on this kernel count in folios of up to 2 MiB " +
		"(hence the installed copy, bench/internal/install). ")
	b.WriteString("Our adds are durable (Badger, synced before the 201); CHP's are in memory.\n")
	b.WriteString("\nTargets (brief): jupyterhub ≥ 0.95× plain reverse_proxy, ≥ 6× CHP; RSS at 10,000 routes ≤ 60 MB; 10,000 durable adds ≤ 3 s.\n")
	return b.String()
}
