package main

import (
	"encoding/json"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/caddyhub/caddyhub/bench/internal/procmem"
)

// memResult is scenario 5: resident memory of the hub idle and with many users and routes.
type memResult struct {
	oursIdle, jhIdle procmem.Usage
	plainIdle        procmem.Usage // the same binary serving only `respond "ok"`: Caddy's own floor
	oursBig          procmem.Usage // after users + routes
	oursBigListed    procmem.Usage // after walking the full user list too
	jhProcs          int
	users, routes    int
	createUsers      time.Duration
	addRoutes        time.Duration
	listUsers        time.Duration
	listedUsers      int
	jhErr            string
}

// fmtMem is a log line's memory: VmRSS, RssAnon, PSS.
func fmtMem(u procmem.Usage) string {
	return fmt.Sprintf("VmRSS %s, RssAnon %s, PSS %s", procmem.MB(u.VmRSS), procmem.MB(u.RssAnon), procmem.MB(u.Pss))
}

// settle lets a freshly started hub finish its start-up work, then touches the login page once.
func settle(h *hub) {
	time.Sleep(2 * time.Second)
	c := rawClient()
	if resp, err := c.Get(h.public + "/hub/login"); err == nil {
		resp.Body.Close()
	}
	time.Sleep(1 * time.Second)
}

// benchMemory measures both hubs idle, then ours with n users (REST API) and n routes (proxy API).
func benchMemory(bin, tmp string, n int) (*memResult, error) {
	res := &memResult{users: n, routes: n}
	opts := hubOptions{cmd: []string{*singleuserFlag}, args: []string{"--allow-root"}, cleanup: true}
	jh, err := startJupyterHub(filepath.Join(tmp, "mem-jh"), opts)
	if err != nil {
		res.jhErr = err.Error()
	} else {
		settle(jh)
		res.jhIdle, res.jhProcs = jh.mem()
		jh.stop()
		log.Printf("memory: JupyterHub 3.0 + CHP idle %s (%d processes)", fmtMem(res.jhIdle), res.jhProcs)
	}
	if p, err := startPlain(bin, filepath.Join(tmp, "mem-plain")); err != nil {
		log.Printf("memory: plain caddy: %v", err)
	} else {
		time.Sleep(3 * time.Second)
		res.plainIdle = procmem.Read(p.pid())
		p.stop(10 * time.Second)
		log.Printf("memory: the same binary with only a respond site %s", fmtMem(res.plainIdle))
	}
	ours, err := startOurs(bin, filepath.Join(tmp, "mem-ours"), opts)
	if err != nil {
		return nil, err
	}
	defer ours.stop()
	settle(ours)
	res.oursIdle, _ = ours.mem()
	log.Printf("memory: CaddyHub idle %s", fmtMem(res.oursIdle))

	names := make([]string, n)
	for i := range names {
		names[i] = fmt.Sprintf("m%05d", i)
	}
	began := time.Now()
	if err := ours.createUsers(names, 1000); err != nil {
		return nil, fmt.Errorf("creating users: %w", err)
	}
	res.createUsers = time.Since(began)
	log.Printf("memory: created %d users through POST /hub/api/users in %s", n, fmtDur(res.createUsers))

	// Routes as JupyterHub's proxy client adds them: 10 concurrent POST /api/routes/<prefix>.
	began = time.Now()
	var next atomic.Int64
	var wg sync.WaitGroup
	var firstErr atomic.Value
	for range 10 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := int(next.Add(1) - 1); i < n; i = int(next.Add(1) - 1) {
				_, _, err := apiCall("POST", ours.proxyAPI+"/api/routes/user/"+names[i], proxyToken, map[string]any{
					"target": fmt.Sprintf("http://127.0.0.1:%d", 20000+i%40000), "user": names[i], "server_name": "",
				})
				if err != nil {
					firstErr.CompareAndSwap(nil, err)
				}
			}
		}()
	}
	wg.Wait()
	if e := firstErr.Load(); e != nil {
		return nil, fmt.Errorf("adding routes: %w", e.(error))
	}
	res.addRoutes = time.Since(began)
	log.Printf("memory: added %d routes through the proxy API in %s", n, fmtDur(res.addRoutes))
	time.Sleep(2 * time.Second)
	res.oursBig, _ = ours.mem()

	// Walk the whole user list, as an admin page or a culler does.
	began = time.Now()
	for off := 0; ; off += 200 {
		_, b, err := apiCall("GET", fmt.Sprintf("%s/hub/api/users?offset=%d&limit=200", ours.public, off), adminToken, nil)
		if err != nil {
			return nil, fmt.Errorf("listing users: %w", err)
		}
		var list []json.RawMessage
		if err := json.Unmarshal(b, &list); err != nil {
			return nil, fmt.Errorf("listing users: %w", err)
		}
		res.listedUsers += len(list)
		if len(list) < 200 {
			break
		}
	}
	res.listUsers = time.Since(began)
	res.oursBigListed, _ = ours.mem()
	log.Printf("memory: CaddyHub with %d users and routes %s; after listing %d users (%s) %s", n,
		fmtMem(res.oursBig), res.listedUsers, fmtDur(res.listUsers), fmtMem(res.oursBigListed))
	return res, nil
}

// startPlain runs our binary with a site that only answers "ok": no jupyterhub app.
func startPlain(bin, dir string) (*proc, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	port, admin := freePort(), freePort()
	cf := fmt.Sprintf("{\n\tadmin 127.0.0.1:%d\n\tpersist_config off\n}\nhttp://127.0.0.1:%d {\n\trespond \"ok\"\n}\n", admin, port)
	cfPath := filepath.Join(dir, "Caddyfile")
	if err := os.WriteFile(cfPath, []byte(cf), 0o600); err != nil {
		return nil, err
	}
	p, err := startProc("caddy-plain", dir, []string{"HOME=" + dir}, bin, "run", "--config", cfPath, "--adapter", "caddyfile")
	if err != nil {
		return nil, err
	}
	if err := waitStatus(fmt.Sprintf("http://127.0.0.1:%d/", port), 200, p, 60*time.Second); err != nil {
		p.stop(5 * time.Second)
		return nil, err
	}
	return p, nil
}
