package main

// The setups the benchmark compares: the backend, plain Caddy, the floor proxy, CaddyHub, CHP; and
// how routes are added to them.

import (
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// startBackend serves a small fixed response, like a user server's API.
func startBackend() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	body := []byte(`{"status":"ok","kernels":1}` + "\n")
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		_, _ = w.Write(body)
	})}
	go func() { _ = srv.Serve(ln) }()
	return "http://" + ln.Addr().String(), nil
}

func writeCaddyfile(dir, name, content string) (string, error) {
	path := filepath.Join(dir, name)
	return path, os.WriteFile(path, []byte(content), 0o644)
}

func caddyEnv(dir string) []string {
	return []string{"XDG_DATA_HOME=" + filepath.Join(dir, "data"), "XDG_CONFIG_HOME=" + filepath.Join(dir, "config"), "HOME=" + dir}
}

func startCaddyRP(bin, tmp, backend string) (*setup, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	dir := filepath.Join(tmp, "rp")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	cf, err := writeCaddyfile(dir, "Caddyfile", fmt.Sprintf(`{
	admin off
	auto_https off
	persist_config off
}
:%d {
	bind 127.0.0.1
	reverse_proxy %s
}
`, port, strings.TrimPrefix(backend, "http://")))
	if err != nil {
		return nil, err
	}
	p, err := start("caddy reverse_proxy", caddyEnv(dir), bin, "run", "--config", cf, "--adapter", "caddyfile")
	if err != nil {
		return nil, err
	}
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	if err := waitHTTP(base+"/", 200, p); err != nil {
		return nil, err
	}
	return &setup{name: "caddy reverse_proxy", kind: "rp", url: base + "/user/bench/api/status", proc: p}, nil
}

// serveFloor is the floor proxy: the standard library's reverse proxy with
// the same keep-alive pool as our handler and X-Forwarded-* headers, and
// nothing else (no route table, no logging, no Caddy).
func serveFloor(addr, target string) error {
	u, err := url.Parse(target)
	if err != nil {
		return err
	}
	rp := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(u)
			pr.SetXForwarded()
		},
		Transport: &http.Transport{MaxIdleConnsPerHost: 256},
	}
	return http.ListenAndServe(addr, rp)
}

// startFloor runs the floor proxy in a process of its own (this program,
// with -serve-floor), so that its CPU time is measured like the others'.
// routes is the CHP setup it is compared with; it holds no routes itself.
func startFloor(backend string, routes int) (*setup, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	p, err := start("floor", nil, self, "-serve-floor", addr, "-floor-target", backend)
	if err != nil {
		return nil, err
	}
	base := "http://" + addr
	if err := waitHTTP(base+"/user/bench/api/status", 200, p); err != nil {
		return nil, err
	}
	return &setup{name: "floor: Go net/http + httputil, no Caddy", kind: "floor", routes: routes, url: base + "/user/bench/api/status", proc: p}, nil
}

func startCaddyHub(bin, tmp, backend string, routes int) (*setup, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	apiPort, err := freePort()
	if err != nil {
		return nil, err
	}
	dir := filepath.Join(tmp, fmt.Sprintf("hub-%d", routes))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	cf, err := writeCaddyfile(dir, "Caddyfile", fmt.Sprintf(`{
	admin off
	auto_https off
	persist_config off
	jupyterhub {
		proxy_only
		data_dir %s
		proxy_api 127.0.0.1:%d
		proxy_auth_token %s
	}
}
:%d {
	bind 127.0.0.1
	jupyterhub
}
`, filepath.Join(dir, "hubdata"), apiPort, apiToken, port))
	if err != nil {
		return nil, err
	}
	name := fmt.Sprintf("caddy jupyterhub, %d routes", routes)
	p, err := start(name, caddyEnv(dir), bin, "run", "--config", cf, "--adapter", "caddyfile")
	if err != nil {
		return nil, err
	}
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	if err := waitHTTP(base+"/_chp_healthz", 200, p); err != nil {
		return nil, err
	}
	api := fmt.Sprintf("http://127.0.0.1:%d", apiPort)
	if err := waitHTTP(api+"/api/routes", 403, p); err != nil {
		return nil, err
	}
	took, err := addRoutes(api, backend, routes)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	log.Printf("%s: added %d routes in %v", name, routes, took.Round(time.Millisecond))
	return &setup{name: name, kind: "hub", routes: routes, url: base + routeURL(routes), proc: p, addDur: took}, nil
}

func startCHP(bin, backend string, routes int) (*setup, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	apiPort, err := freePort()
	if err != nil {
		return nil, err
	}
	nodePath := "/usr/share/nodejs"
	if np := os.Getenv("NODE_PATH"); np != "" {
		nodePath = np + ":" + nodePath
	}
	name := fmt.Sprintf("CHP, %d routes", routes)
	p, err := start(name, []string{"CONFIGPROXY_AUTH_TOKEN=" + apiToken, "NODE_PATH=" + nodePath}, bin,
		"--ip", "127.0.0.1", "--port", strconv.Itoa(port),
		"--api-ip", "127.0.0.1", "--api-port", strconv.Itoa(apiPort), "--log-level", "warn")
	if err != nil {
		return nil, err
	}
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	if err := waitHTTP(base+"/_chp_healthz", 200, p); err != nil {
		return nil, err
	}
	api := fmt.Sprintf("http://127.0.0.1:%d", apiPort)
	took, err := addRoutes(api, backend, routes)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	log.Printf("%s: added %d routes in %v", name, routes, took.Round(time.Millisecond))
	return &setup{name: name, kind: "chp", routes: routes, url: base + routeURL(routes), proc: p, addDur: took}, nil
}

// routeURL is the request path used for a table of n routes: a route in the
// middle of the table, a few segments deep.
func routeURL(n int) string { return fmt.Sprintf("/user/user%d/api/status", n/2) }

// addRoutes POSTs n user routes with -adders concurrent clients, the way
// JupyterHub's ConfigurableHTTPProxy does, and returns how long it took.
func addRoutes(api, backend string, n int) (time.Duration, error) {
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: *addersFlag}, Timeout: 30 * time.Second}
	var next atomic.Int64
	var firstErr atomic.Pointer[error]
	var wg sync.WaitGroup
	t0 := time.Now()
	for range *addersFlag {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= n || firstErr.Load() != nil {
					return
				}
				body := fmt.Sprintf(`{"target":%q,"jupyterhub":true,"user":"user%d","server_name":""}`, backend, i)
				req, _ := http.NewRequest(http.MethodPost, fmt.Sprintf("%s/api/routes/user/user%d", api, i), strings.NewReader(body))
				req.Header.Set("Authorization", "token "+apiToken)
				resp, err := client.Do(req)
				if err == nil {
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode != http.StatusCreated {
						err = fmt.Errorf("POST route %d: status %d", i, resp.StatusCode)
					}
				}
				if err != nil {
					firstErr.CompareAndSwap(nil, &err)
					return
				}
			}
		})
	}
	wg.Wait()
	took := time.Since(t0)
	if e := firstErr.Load(); e != nil {
		return 0, *e
	}
	return took, nil
}
