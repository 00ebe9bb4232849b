package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// readyResult is scenario 1: login → ready with the real jupyterhub-singleuser.
type readyResult struct {
	solo    []time.Duration          // the single-user server's own start, alone
	runs    map[string][]loginTiming // per hub name, one per round
	started map[string]time.Duration // hub start → /hub/health 200
	logins  map[string][]float64     // scenario 4, per hub: logins/s per round
	errs    []string
}

// stubHubAPI answers every request like a hub API that is happy with the server: the single-user
// server started alone checks the hub's version and posts activity there.
func stubHubAPI() (string, func(), error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-JupyterHub-Version", "3.0.0")
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]string{"version": "3.0.0"})
	})}
	go func() { _ = srv.Serve(ln) }()
	return "http://" + ln.Addr().String() + "/hub/api", func() { _ = srv.Close() }, nil
}

// soloStart starts jupyterhub-singleuser directly with the environment a hub gives it and returns
// the time until it answers HTTP at its prefix (what a spawner waits for).
func soloStart(dir, apiURL string, n int) (time.Duration, error) {
	home := filepath.Join(dir, "solo-home-"+strconv.Itoa(n))
	if err := os.MkdirAll(home, 0o755); err != nil {
		return 0, err
	}
	port := freePort()
	prefix := "/user/solo/"
	env := []string{
		"HOME=" + home,
		"JUPYTERHUB_API_TOKEN=0123456789abcdef",
		"JPY_API_TOKEN=0123456789abcdef",
		"JUPYTERHUB_CLIENT_ID=jupyterhub-user-solo",
		"JUPYTERHUB_HOST=",
		"JUPYTERHUB_OAUTH_CALLBACK_URL=" + prefix + "oauth_callback",
		`JUPYTERHUB_OAUTH_SCOPES=["access:servers!server=solo/", "access:servers!user=solo"]`,
		`JUPYTERHUB_OAUTH_ACCESS_SCOPES=["access:servers!server=solo/", "access:servers!user=solo"]`,
		"JUPYTERHUB_USER=solo",
		"JUPYTERHUB_SERVER_NAME=",
		"JUPYTERHUB_API_URL=" + apiURL,
		"JUPYTERHUB_ACTIVITY_URL=" + apiURL + "/users/solo/activity",
		"JUPYTERHUB_BASE_URL=/",
		"JUPYTERHUB_SERVICE_PREFIX=" + prefix,
		fmt.Sprintf("JUPYTERHUB_SERVICE_URL=http://127.0.0.1:%d%s", port, prefix),
	}
	began := time.Now()
	p, err := startProc("singleuser-"+strconv.Itoa(n), home, env, *singleuserFlag, "--allow-root")
	if err != nil {
		return 0, err
	}
	defer p.stop(10 * time.Second)
	c := rawClient()
	c.Timeout = 5 * time.Second
	url := fmt.Sprintf("http://127.0.0.1:%d%sapi", port, prefix)
	for time.Since(began) < 120*time.Second {
		resp, err := c.Get(url)
		if err == nil {
			resp.Body.Close()
			return time.Since(began), nil
		}
		if !p.running() {
			return 0, fmt.Errorf("jupyterhub-singleuser exited:\n%s", p.tail(2000))
		}
		time.Sleep(5 * time.Millisecond)
	}
	return 0, fmt.Errorf("jupyterhub-singleuser did not answer within 120s:\n%s", p.tail(2000))
}

// stopUserServer stops a user's default server through the API and waits until the hub says it
// is stopped.
func (h *hub) stopUserServer(name string) error {
	_, _, err := apiCall("DELETE", h.public+"/hub/api/users/"+name+"/server", adminToken, nil)
	if err != nil {
		return err
	}
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		_, b, err := apiCall("GET", h.public+"/hub/api/users/"+name, adminToken, nil)
		if err != nil {
			return err
		}
		var u struct {
			Server  *string `json:"server"`
			Pending *string `json:"pending"`
		}
		if json.Unmarshal(b, &u) == nil && (u.Server == nil || *u.Server == "") && (u.Pending == nil || *u.Pending == "") {
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("server of %s not stopped within 60s", name)
}

// benchReady runs scenario 1 (login → ready, alternating hubs and the server alone each round)
// and then scenario 4 (logins/s) on the same hubs.
func benchReady(bin, tmp string, rounds int, res *readyResult) error {
	opts := hubOptions{cmd: []string{*singleuserFlag}, args: []string{"--allow-root"}, cleanup: true}
	ours, err := startOurs(bin, filepath.Join(tmp, "ready-ours"), opts)
	if err != nil {
		return err
	}
	defer ours.stop()
	jh, err := startJupyterHub(filepath.Join(tmp, "ready-jh"), opts)
	if err != nil {
		return err
	}
	defer jh.stop()
	res.started = map[string]time.Duration{ours.name: ours.started, jh.name: jh.started}
	res.runs = map[string][]loginTiming{}
	apiURL, closeStub, err := stubHubAPI()
	if err != nil {
		return err
	}
	defer closeStub()

	for r := 1; r <= rounds; r++ {
		order := []*hub{ours, jh}
		if r%2 == 0 {
			order = []*hub{jh, ours}
		}
		d, err := soloStart(tmp, apiURL, r)
		if err != nil {
			return fmt.Errorf("server alone: %w", err)
		}
		res.solo = append(res.solo, d)
		log.Printf("ready round %d: jupyterhub-singleuser alone answers after %s", r, fmtDur(d))
		for _, h := range order {
			name := fmt.Sprintf("ready%d", r)
			stopWatch := make(chan struct{})
			watched := make(chan time.Duration, 1)
			go func() {
				d, err := serverWatch(h.proc.pid(), name, stopWatch)
				if err != nil {
					log.Printf("%s: %v", h.name, err)
				}
				watched <- d
			}()
			t, err := newBrowser(h.public).loginAndSpawn(name, 180*time.Second)
			close(stopWatch)
			t.server = <-watched
			if err != nil {
				msg := fmt.Sprintf("%s round %d: %v", h.name, r, err)
				log.Print(msg)
				res.errs = append(res.errs, msg)
				continue
			}
			log.Printf("ready round %d: %-15s login %s, wait %s, open %s, total %s (its server's own start %s)", r, h.name,
				fmtDur(t.login), fmtDur(t.wait), fmtDur(t.open), fmtDur(t.total), fmtDur(t.server))
			res.runs[h.name] = append(res.runs[h.name], t)
			if err := h.stopUserServer(name); err != nil {
				log.Printf("%s: stopping %s: %v", h.name, name, err)
			}
		}
	}
	if *loginClientsFlag > 0 {
		return benchLogins(ours, jh, rounds, res)
	}
	return nil
}

// serverWatch finds the single-user server a hub starts for user (a descendant of the hub's
// process whose environment says JUPYTERHUB_USER=<user>) and times, from the process's start
// (/proc, 10 ms ticks), until it answers HTTP at its own port: the server's start inside that very
// run, so the hub's overhead is measured under the same load.
func serverWatch(hubPID int, user string, stop <-chan struct{}) (time.Duration, error) {
	for {
		select {
		case <-stop:
			return 0, fmt.Errorf("server process of %s not found", user)
		default:
		}
		for _, pid := range descendants(hubPID) {
			env, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/environ")
			if err != nil || !bytes.Contains(env, []byte("\x00JUPYTERHUB_USER="+user+"\x00")) && !bytes.HasPrefix(env, []byte("JUPYTERHUB_USER="+user+"\x00")) {
				continue
			}
			serviceURL := ""
			for kv := range bytes.SplitSeq(env, []byte{0}) {
				if v, ok := bytes.CutPrefix(kv, []byte("JUPYTERHUB_SERVICE_URL=")); ok {
					serviceURL = string(v)
				}
			}
			ticks, err := startTicks(pid)
			if err != nil || serviceURL == "" {
				continue
			}
			up, err := os.ReadFile("/proc/uptime")
			if err != nil {
				return 0, err
			}
			f := strings.Fields(string(up))
			upSec, _ := strconv.ParseFloat(f[0], 64)
			started := time.Now().Add(-time.Duration((upSec - float64(ticks)/100) * float64(time.Second)))
			c := rawClient()
			c.Timeout = 2 * time.Second
			for {
				resp, err := c.Get(strings.TrimRight(serviceURL, "/") + "/api")
				if err == nil {
					resp.Body.Close()
					return time.Since(started), nil
				}
				select {
				case <-stop:
					return 0, fmt.Errorf("server of %s did not answer", user)
				default:
				}
				time.Sleep(5 * time.Millisecond)
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
}
