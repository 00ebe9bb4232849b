package main

import (
	"cmp"
	"fmt"
	"log"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sync"
	"syscall"
	"time"
)

// spawnResult is scenario 2 for one hub: trivial servers through the REST API.
type spawnResult struct {
	single  []time.Duration // one spawn: POST /server → /user/<name>/ answers through the public port
	each    []time.Duration // the concurrent spawns, each from the common start
	all     time.Duration   // all concurrent spawns ready
	failed  int
	started time.Duration
	rss     int64 // hub (+CHP) with all servers running
	err     string
}

// spawnAndWait starts name's server and polls its route through the public port every poll.
func (h *hub) spawnAndWait(c *http.Client, name string, poll, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		st, body, err := apiCall("POST", h.public+"/hub/api/users/"+name+"/server", adminToken, map[string]any{})
		if err == nil {
			break
		}
		if st == http.StatusTooManyRequests && time.Now().Before(deadline) {
			time.Sleep(500 * time.Millisecond)
			continue
		}
		return fmt.Errorf("starting %s: %w (%.200s)", name, err, body)
	}
	for !serverAnswers(c, h.public, name) {
		if time.Now().After(deadline) {
			return fmt.Errorf("%s: server not answering through the proxy within %s", name, timeout)
		}
		time.Sleep(poll)
	}
	return nil
}

// benchSpawns runs scenario 2 against one hub: rounds single spawns, then n at once.
func benchSpawns(h *hub, rounds, n int) (*spawnResult, error) {
	res := &spawnResult{started: h.started}
	c := rawClient()
	c.Timeout = 10 * time.Second
	var singles []string
	for r := range rounds {
		singles = append(singles, fmt.Sprintf("one%d", r))
	}
	var many []string
	for i := range n {
		many = append(many, fmt.Sprintf("c%03d", i))
	}
	if err := h.createUsers(append(slices.Clone(singles), many...), 1000); err != nil {
		return nil, fmt.Errorf("%s: creating users: %w", h.name, err)
	}
	for _, name := range singles {
		began := time.Now()
		if err := h.spawnAndWait(c, name, 5*time.Millisecond, 120*time.Second); err != nil {
			return nil, fmt.Errorf("%s: %w", h.name, err)
		}
		d := time.Since(began)
		res.single = append(res.single, d)
		log.Printf("spawn: %-15s one trivial server ready through the proxy in %s", h.name, fmtDur(d))
		if err := h.stopUserServer(name); err != nil {
			log.Printf("%s: stopping %s: %v", h.name, name, err)
		}
	}
	var mu sync.Mutex
	var wg sync.WaitGroup
	began := time.Now()
	for _, name := range many {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := h.spawnAndWait(c, name, 50*time.Millisecond, 600*time.Second)
			d := time.Since(began)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				res.failed++
				if res.err == "" {
					res.err = err.Error()
				}
				return
			}
			res.each = append(res.each, d)
		}()
	}
	wg.Wait()
	res.all = time.Since(began)
	slices.Sort(res.each)
	if len(res.each) > 0 {
		res.all = res.each[len(res.each)-1]
	}
	res.rss, _ = h.rss()
	log.Printf("spawn: %-15s %d concurrent: all ready in %s (%d failed)", h.name, n, fmtDur(res.all), res.failed)
	return res, nil
}

// directName labels the no-hub floor in scenario 2's results.
const directName = "no hub (test server started directly)"

// runSpawns starts each hub with the trivial test server as its command and runs scenario 2.
func runSpawns(bin, tmp, testserver string, rounds, n int) (map[string]*spawnResult, error) {
	out := map[string]*spawnResult{}
	single, all, err := directStarts(testserver, rounds, n)
	if err != nil {
		return nil, fmt.Errorf("test servers without a hub: %w", err)
	}
	out[directName] = &spawnResult{single: single, all: all}
	log.Printf("spawn: no hub: one test server answers in %s (median), %d at once all in %s", fmtDur(medianDur(single)), n, fmtDur(all))
	ours, err := startOurs(bin, filepath.Join(tmp, "spawn-ours"), hubOptions{cmd: []string{testserver}, cleanup: true})
	if err != nil {
		return nil, err
	}
	r, err := benchSpawns(ours, rounds, n)
	ours.stop()
	if err != nil {
		return nil, err
	}
	out[ours.name] = r
	if *skipJHSpawnFlag {
		return out, nil
	}
	// JupyterHub passes --port=N to the command; the test server takes no such flag, so a shell
	// execs it and drops the arguments (it listens at JUPYTERHUB_SERVICE_URL, as 3.0 sets it).
	jh, err := startJupyterHub(filepath.Join(tmp, "spawn-jh"),
		hubOptions{cmd: []string{"/bin/sh", "-c", "exec " + testserver}, cleanup: true})
	if err != nil {
		return nil, err
	}
	r, err = benchSpawns(jh, rounds, n)
	jh.stop()
	if err != nil {
		return nil, err
	}
	out[jh.name] = r
	return out, nil
}

// directStarts is the machine's floor for scenario 2: the test server started by the benchmark
// itself (no hub), one at a time (rounds) and n at once, each timed until it answers 200.
func directStarts(testserver string, rounds, n int) (single []time.Duration, all time.Duration, err error) {
	c := rawClient()
	c.Timeout = 10 * time.Second
	startOne := func(i int, poll time.Duration) (time.Duration, error) {
		port := freePort()
		name := fmt.Sprintf("d%03d", i)
		url := fmt.Sprintf("http://127.0.0.1:%d/user/%s/", port, name)
		began := time.Now()
		cmd := exec.Command(testserver)
		cmd.Env = append(os.Environ(), "JUPYTERHUB_SERVICE_URL="+url, "JUPYTERHUB_SERVICE_PREFIX=/user/"+name+"/")
		cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
		if err := cmd.Start(); err != nil {
			return 0, err
		}
		defer func() { _ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL); _ = cmd.Wait() }()
		deadline := began.Add(120 * time.Second)
		for {
			if resp, err := c.Get(url); err == nil {
				resp.Body.Close()
				if resp.StatusCode == 200 {
					return time.Since(began), nil
				}
			}
			if time.Now().After(deadline) {
				return 0, fmt.Errorf("test server %s did not answer within 120s", name)
			}
			time.Sleep(poll)
		}
	}
	for r := range rounds {
		d, err := startOne(r, 5*time.Millisecond)
		if err != nil {
			return nil, 0, err
		}
		single = append(single, d)
	}
	// All at once; each is killed only after all have answered.
	var wg sync.WaitGroup
	var mu sync.Mutex
	release := make(chan struct{})
	ports := freePorts(n)
	began := time.Now()
	var firstErr error
	for i := range n {
		wg.Add(1)
		go func() {
			port := ports[i]
			name := fmt.Sprintf("d%03d", i)
			url := fmt.Sprintf("http://127.0.0.1:%d/user/%s/", port, name)
			cmd := exec.Command(testserver)
			cmd.Env = append(os.Environ(), "JUPYTERHUB_SERVICE_URL="+url, "JUPYTERHUB_SERVICE_PREFIX=/user/"+name+"/")
			cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
			if err := cmd.Start(); err != nil {
				mu.Lock()
				firstErr = cmp.Or(firstErr, err)
				mu.Unlock()
				wg.Done()
				return
			}
			for time.Since(began) < 120*time.Second {
				if resp, err := c.Get(url); err == nil {
					resp.Body.Close()
					if resp.StatusCode == 200 {
						break
					}
				}
				time.Sleep(50 * time.Millisecond)
			}
			mu.Lock()
			all = max(all, time.Since(began))
			mu.Unlock()
			wg.Done()
			<-release
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			_ = cmd.Wait()
		}()
	}
	wg.Wait()
	close(release)
	return single, all, firstErr
}
