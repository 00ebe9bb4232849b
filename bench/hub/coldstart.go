package main

import (
	"encoding/json"
	"fmt"
	"log"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/caddyhub/caddyhub/hubapp/store"
)

// coldResult is scenario 3: `caddy run` with a big data_dir until the first routed request.
type coldResult struct {
	users, running, real int
	populate             time.Duration
	firstRouted          []time.Duration // exec → GET /user/<live>/ answered 200 by its server
	health               []time.Duration // exec → /hub/health 200
	routesAfter          []int           // routes in the table once started (proxy API)
	activeAfter          []int           // servers still recorded active (hub API)
	adoptLog             []string        // the hub's "adopted running servers" line
	phases               []map[string]time.Duration
	versionExec          time.Duration // exec → exit of `caddy version`: the binary's own start
}

// phaseMsgs are the log lines whose timestamps split a start, in order.
var phaseMsgs = []string{"", "hub store opened", "adopted running servers", "jupyterhub started"}

// startPhases reads caddy's JSON log and returns, for each phase message, the time from exec to
// that line ("" = the first line).
func startPhases(logText string, began time.Time) map[string]time.Duration {
	out := map[string]time.Duration{}
	for line := range strings.SplitSeq(logText, "\n") {
		var ev struct {
			TS  float64 `json:"ts"`
			Msg string  `json:"msg"`
		}
		if json.Unmarshal([]byte(line), &ev) != nil || ev.TS == 0 {
			continue
		}
		at := time.Unix(0, int64(ev.TS*1e9)).Sub(began)
		if _, ok := out[""]; !ok {
			out[""] = at
		}
		for _, m := range phaseMsgs[1:] {
			if ev.Msg == m {
				if _, ok := out[m]; !ok {
					out[m] = at
				}
			}
		}
	}
	return out
}

// versionExec times `caddy version` (median of 5): what starting the binary costs before any app.
func versionExec(bin string) time.Duration {
	var ds []time.Duration
	for range 5 {
		began := time.Now()
		if err := exec.Command(bin, "version").Run(); err != nil {
			return 0
		}
		ds = append(ds, time.Since(began))
	}
	return medianDur(ds)
}

// localState is the simple spawner's state for a server (spawners/internal/localproc.State).
type localState struct {
	PID        int    `json:"pid"`
	StartTicks uint64 `json:"start_ticks,omitempty"`
	BootID     string `json:"boot_id,omitempty"`
	Port       int    `json:"port,omitempty"`
}

// saveRouteEach is the mean time of one store.SaveRoute while 32 goroutines write routes at once.
var saveRouteEach time.Duration

func userName(i int) string { return fmt.Sprintf("u%05d", i) }

// populate writes users, servers and routes straight into a store in dir, and starts real test
// servers for the first `real` users (in their own sessions, like the simple spawner's).
func populate(dir, testserver string, users, running, real int) ([]*exec.Cmd, error) {
	st, err := store.Open(dir, nil)
	if err != nil {
		return nil, err
	}
	defer st.Close()
	now := time.Now().UTC()
	for i := 0; i < users; i += 500 {
		err := st.Update(func(tx *store.Txn) error {
			for j := i; j < min(i+500, users); j++ {
				if err := tx.PutUser(&store.User{Name: userName(j), Roles: []string{"user"}, Created: now}); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("writing users: %w", err)
		}
	}
	bootID := ""
	if b, err := os.ReadFile("/proc/sys/kernel/random/boot_id"); err == nil {
		bootID = strings.TrimSpace(string(b))
	}
	// A process that has exited stands for the servers that died while the hub was down.
	gone := exec.Command("/bin/true")
	if err := gone.Start(); err != nil {
		return nil, err
	}
	goneTicks, _ := startTicks(gone.Process.Pid)
	_ = gone.Wait()
	var cmds []*exec.Cmd
	servers := make([]*store.Server, running)
	ports := freePorts(running)
	for i := range running {
		name := userName(i)
		port := ports[i]
		state := localState{PID: gone.Process.Pid, StartTicks: goneTicks, BootID: bootID, Port: port}
		if i < real {
			cmd, p, err := startLive(testserver, name, port)
			if err != nil {
				return cmds, err
			}
			cmds = append(cmds, cmd)
			ticks, err := startTicks(cmd.Process.Pid)
			if err != nil {
				return cmds, err
			}
			port = p
			state = localState{PID: cmd.Process.Pid, StartTicks: ticks, BootID: bootID, Port: port}
		}
		raw, _ := json.Marshal(state)
		servers[i] = &store.Server{User: name, Ready: true, Target: fmt.Sprintf("http://127.0.0.1:%d", port),
			Started: now, LastActivity: now, State: raw}
	}
	for i := 0; i < running; i += 500 {
		err := st.Update(func(tx *store.Txn) error {
			for _, s := range servers[i:min(i+500, running)] {
				if err := tx.PutServer(s); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return cmds, fmt.Errorf("writing servers: %w", err)
		}
	}
	routesBegan := time.Now()
	var next atomic.Int64
	var wg sync.WaitGroup
	var firstErr atomic.Value
	for range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := int(next.Add(1) - 1); i < running; i = int(next.Add(1) - 1) {
				s := servers[i]
				err := st.SaveRoute(store.Route{Key: "/user/" + s.User, Target: s.Target, LastActivity: now,
					Data: map[string]any{"jupyterhub": true, "user": s.User, "server_name": ""}})
				if err != nil {
					firstErr.CompareAndSwap(nil, err)
				}
			}
		}()
	}
	wg.Wait()
	if e := firstErr.Load(); e != nil {
		return cmds, fmt.Errorf("writing routes: %w", e.(error))
	}
	routesTook := time.Since(routesBegan)
	log.Printf("cold: %d store.SaveRoute calls from 32 goroutines took %s (%s each)",
		running, fmtDur(routesTook), fmtDur(routesTook/time.Duration(max(running, 1))))
	saveRouteEach = routesTook / time.Duration(max(running, 1))
	return cmds, nil
}

// startLive starts one real test server for name (in its own session, as the simple spawner does)
// and waits until it answers. A port taken meanwhile by another process makes the server exit: it
// is started again on another port.
func startLive(testserver, name string, port int) (*exec.Cmd, int, error) {
	var lastErr error
	for range 5 {
		cmd := exec.Command(testserver)
		cmd.Env = append(os.Environ(),
			fmt.Sprintf("JUPYTERHUB_SERVICE_URL=http://127.0.0.1:%d/user/%s/", port, name),
			"JUPYTERHUB_SERVICE_PREFIX=/user/"+name+"/")
		cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
		if err := cmd.Start(); err != nil {
			return nil, 0, err
		}
		exited := make(chan struct{})
		go func() { _ = cmd.Wait(); close(exited) }()
		url := fmt.Sprintf("http://127.0.0.1:%d/user/%s/", port, name)
		deadline := time.Now().Add(30 * time.Second)
		for time.Now().Before(deadline) {
			if resp, err := http.Get(url); err == nil {
				resp.Body.Close()
				if resp.StatusCode == 200 {
					return cmd, port, nil
				}
			}
			select {
			case <-exited:
				deadline = time.Time{}
			case <-time.After(10 * time.Millisecond):
			}
		}
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		lastErr = fmt.Errorf("test server for %s did not answer on port %d", name, port)
		port = freePort()
	}
	return nil, 0, lastErr
}

// copyDir copies a closed Badger directory (flat: no subdirectories).
func copyDir(src, dst string) error {
	if err := os.MkdirAll(dst, 0o700); err != nil {
		return err
	}
	ents, err := os.ReadDir(src)
	if err != nil {
		return err
	}
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(dst, e.Name()), b, 0o600); err != nil {
			return err
		}
	}
	return nil
}

// benchCold runs scenario 3 rounds times, each on a fresh copy of the populated data_dir.
func benchCold(bin, tmp, testserver string, rounds, users, running, real int) (*coldResult, error) {
	res := &coldResult{users: users, running: running, real: real}
	pristine := filepath.Join(tmp, "cold-pristine")
	began := time.Now()
	cmds, err := populate(pristine, testserver, users, running, real)
	defer func() {
		for _, c := range cmds {
			_ = syscall.Kill(-c.Process.Pid, syscall.SIGKILL)
		}
	}()
	if err != nil {
		return nil, fmt.Errorf("populating: %w", err)
	}
	res.populate = time.Since(began)
	log.Printf("cold: populated %d users, %d running servers (%d real) in %s", users, running, real, fmtDur(res.populate))
	c := rawClient()
	c.Timeout = 2 * time.Second
	res.versionExec = versionExec(bin)
	for r := 1; r <= rounds; r++ {
		dir := filepath.Join(tmp, fmt.Sprintf("cold-%d", r))
		data := filepath.Join(dir, "data")
		if err := copyDir(pristine, data); err != nil {
			return nil, err
		}
		d, began, h, err := coldOnce(bin, dir, data, testserver, c)
		if err != nil {
			return nil, err
		}
		res.phases = append(res.phases, startPhases(h.proc.tail(1<<22), began))
		res.firstRouted = append(res.firstRouted, d)
		res.health = append(res.health, h.started)
		// What the hub did about the dead servers.
		_, b, err := apiCall("GET", h.proxyAPI+"/api/routes", proxyToken, nil)
		if err == nil {
			var routes map[string]any
			_ = json.Unmarshal(b, &routes)
			res.routesAfter = append(res.routesAfter, len(routes))
		}
		active := 0
		_, b, err = apiCall("GET", h.public+"/hub/api/users?state=active&limit=10000", adminToken, nil)
		if err == nil {
			var list []json.RawMessage
			if json.Unmarshal(b, &list) == nil {
				active = len(list)
			} else {
				var pg struct{ Items []json.RawMessage }
				_ = json.Unmarshal(b, &pg)
				active = len(pg.Items)
			}
		} else {
			log.Printf("cold: listing active users: %v", err)
		}
		res.activeAfter = append(res.activeAfter, active)
		line := ""
		for l := range strings.SplitSeq(h.proc.tail(1<<22), "\n") {
			if strings.Contains(l, "adopted running servers") {
				line = l
			}
		}
		res.adoptLog = append(res.adoptLog, line)
		log.Printf("cold round %d: first routed request after %s (health %s); routes now %v, active %d", r,
			fmtDur(d), fmtDur(h.started), res.routesAfter, active)
		// SIGTERM: cleanup_servers is off, so the real servers outlive the hub for the next round.
		h.stop()
	}
	return res, nil
}

// coldOnce starts caddy on data and polls the first live user's route until its server answers.
func coldOnce(bin, dir, data, testserver string, c *http.Client) (time.Duration, time.Time, *hub, error) {
	type out struct {
		h   *hub
		err error
	}
	ch := make(chan out, 1)
	began := time.Now()
	var first time.Duration
	var pub atomic.Value
	go func() {
		h, err := startOurs(bin, dir, hubOptions{cmd: []string{testserver}, dataDir: data, onPort: func(p string) { pub.Store(p) }})
		ch <- out{h, err}
	}()
	for {
		if p, ok := pub.Load().(string); ok && serverAnswers(c, p, userName(0)) {
			first = time.Since(began)
			break
		}
		select {
		case o := <-ch:
			if o.err != nil {
				return 0, began, nil, o.err
			}
			ch <- o
		default:
		}
		if time.Since(began) > 120*time.Second {
			return 0, began, nil, fmt.Errorf("cold start: no routed answer within 120s")
		}
		time.Sleep(2 * time.Millisecond)
	}
	o := <-ch
	if o.err != nil {
		return 0, began, nil, o.err
	}
	return first, began, o.h, nil
}
