// Package dockerbench measures what the hub adds to a container spawn: the engine's own
// create+start of the test server image (until the server answers HTTP) against a spawn through
// the hub's REST API with `spawner docker` (until the hub reports the server ready), on the same
// engine and image, in the same run. It runs only with CADDYHUB_BENCH=1:
//
//	CADDYHUB_BENCH=1 go test -count=1 -v -timeout 30m ./bench/docker/
//
// Figures: docs/benchmarks.md.
package dockerbench

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/client"
	"github.com/docker/go-connections/nat"

	"github.com/caddyhub/caddyhub/spawners"
	"github.com/caddyhub/caddyhub/spawners/docker/dockertest"
	"github.com/caddyhub/caddyhub/tests"
)

func TestMain(m *testing.M) {
	code := m.Run()
	tests.CleanupBuild()
	dockertest.StopAll()
	os.Exit(code)
}

const (
	sequential = 20 // spawn pairs (engine alone, then hub) measured one after the other
	concurrent = 20 // spawns measured at once
)

// rawSpawn is the engine's own create+start of one server, until it answers HTTP: what any
// client of the engine pays, without the hub.
func rawSpawn(cli *client.Client, name string) (time.Duration, string, error) {
	return rawSpawnOnce(cli, name, false)
}

// rawRetries counts the engine-alone spawns that had to create their container again.
var rawRetries atomic.Int64

func rawSpawnOnce(cli *client.Client, name string, retried bool) (time.Duration, string, error) {
	ctx := context.Background()
	began := time.Now()
	prefix := "/user/" + name + "/"
	cport := nat.Port("8888/tcp")
	resp, err := cli.ContainerCreate(ctx, &container.Config{
		Image:        dockertest.TestServerImage,
		Env:          []string{"JUPYTERHUB_SERVICE_URL=http://0.0.0.0:8888" + prefix, "JUPYTERHUB_SERVICE_PREFIX=" + prefix},
		ExposedPorts: nat.PortSet{cport: struct{}{}},
		Labels:       map[string]string{"org.caddyhub.hub": "bench-raw"},
	}, &container.HostConfig{
		PortBindings: nat.PortMap{cport: {{HostIP: "127.0.0.1"}}},
		Resources:    container.Resources{Memory: 64 << 20, NanoCPUs: 5e8},
	}, nil, nil, name)
	if err != nil {
		return 0, "", err
	}
	if err := cli.ContainerStart(ctx, resp.ID, container.StartOptions{}); err != nil {
		if strings.Contains(err.Error(), "address already in use") && !retried {
			// Podman lost the host port it picked to another process before binding it: any client
			// must create the container again (the spawner does the same, counted in its log).
			rawRetries.Add(1)
			_ = cli.ContainerRemove(ctx, resp.ID, container.RemoveOptions{Force: true})
			_, id, err := rawSpawnOnce(cli, name, true)
			return time.Since(began), id, err
		}
		return 0, resp.ID, err
	}
	info, err := cli.ContainerInspect(ctx, resp.ID)
	if err != nil {
		return 0, resp.ID, err
	}
	port := info.NetworkSettings.Ports[cport][0].HostPort
	url := "http://" + net.JoinHostPort("127.0.0.1", port) + prefix
	if err := spawners.WaitHTTP(ctx, url, nil, time.Now().Add(2*time.Minute)); err != nil {
		return 0, resp.ID, err
	}
	return time.Since(began), resp.ID, nil
}

// loadAvg is the machine's load average (1, 5 and 15 minutes), for the report.
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}

func median(d []time.Duration) time.Duration {
	s := append([]time.Duration(nil), d...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[len(s)/2]
}

func removeAll(cli *client.Client, ids []string) {
	var wg sync.WaitGroup
	for _, id := range ids {
		if id == "" {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = cli.ContainerRemove(context.Background(), id, container.RemoveOptions{Force: true})
		}()
	}
	wg.Wait()
}

func TestDockerSpawnOverhead(t *testing.T) {
	if os.Getenv("CADDYHUB_BENCH") != "1" {
		t.Skip("a benchmark: set CADDYHUB_BENCH=1")
	}
	for _, name := range dockertest.Names {
		t.Run(name, func(t *testing.T) {
			e := dockertest.Get(t, name)
			e.TrackHub(t, "bench")
			e.TrackHub(t, "bench-raw")
			e.ImportTestServer(t, dockertest.TestServerImage)
			cli := e.Client(t)
			// Warm up the engine (first container, network setup) and the image.
			if _, id, err := rawSpawn(cli, "bench-warm"); err != nil {
				t.Fatal(err)
			} else {
				removeAll(cli, []string{id})
			}

			h := startHub(t, e)
			load0 := loadAvg()
			var raw, hub []time.Duration
			// The pairs alternate which side goes first, so that neither always runs right after
			// the other's container was removed (Podman's cleanup of a removed container goes on
			// in the background for a while).
			for i := range sequential {
				rawSide := func() {
					d, id, err := rawSpawn(cli, fmt.Sprintf("bench-raw-%d", i))
					removeAll(cli, []string{id})
					if err != nil {
						t.Fatal(err)
					}
					raw = append(raw, d)
				}
				hubSide := func() {
					hub = append(hub, h.spawn(t, fmt.Sprintf("s%02d", i)))
					h.stop(t, fmt.Sprintf("s%02d", i))
				}
				if i%2 == 0 {
					rawSide()
					hubSide()
				} else {
					hubSide()
					rawSide()
				}
			}

			// 20 at once: through the hub, then the engine alone, after a burst that is not measured
			// (an engine's first burst pays for its setup).
			rawBurst := func(tag string) time.Duration {
				ids := make([]string, concurrent)
				var wg sync.WaitGroup
				began := time.Now()
				for i := range concurrent {
					wg.Add(1)
					go func() {
						defer wg.Done()
						var err error
						if _, ids[i], err = rawSpawn(cli, fmt.Sprintf("bench-%s-%d", tag, i)); err != nil {
							t.Error(err)
						}
					}()
				}
				wg.Wait()
				d := time.Since(began)
				removeAll(cli, ids)
				return d
			}
			hubBurst := func(tag string) time.Duration {
				var wg sync.WaitGroup
				began := time.Now()
				for i := range concurrent {
					wg.Add(1)
					go func() { defer wg.Done(); h.spawn(t, fmt.Sprintf("%s%02d", tag, i)) }()
				}
				wg.Wait()
				d := time.Since(began)
				for i := range concurrent {
					wg.Add(1)
					go func() { defer wg.Done(); h.stop(t, fmt.Sprintf("%s%02d", tag, i)) }()
				}
				wg.Wait()
				return d
			}
			rawBurst("warm")
			hubAll := hubBurst("a")
			rawAll := rawBurst("r1")

			// The engine calls the hub's spawner makes that the engine-alone side does not: the
			// image's inspect (pull_policy) and the lookup of an old container by name.
			var extra []time.Duration
			for i := range 20 {
				began := time.Now()
				_, _ = cli.ImageInspect(context.Background(), dockertest.TestServerImage)
				_, _ = cli.ContainerInspect(context.Background(), fmt.Sprintf("bench-none-%d", i))
				extra = append(extra, time.Since(began))
			}
			t.Logf("RESULT %s: the spawner's two extra engine calls (image inspect + old-container lookup): median %s of 20",
				name, median(extra).Round(100*time.Microsecond))
			mr, mh := median(raw), median(hub)
			diffs := make([]time.Duration, len(raw))
			for i := range raw {
				diffs[i] = hub[i] - raw[i]
			}
			t.Logf("RESULT %s: sequential median: engine create+start+answer %s, hub API spawn→ready %s, overhead %s (target ≤ 50ms); median of the %d paired differences %s",
				name, mr.Round(time.Millisecond), mh.Round(time.Millisecond), (mh - mr).Round(time.Millisecond), len(diffs), median(diffs).Round(time.Millisecond))
			t.Logf("RESULT %s: %d concurrent: engine %s, hub %s, ratio %.2f (target ≤ 1.5)",
				name, concurrent, rawAll.Round(time.Millisecond), hubAll.Round(time.Millisecond), float64(hubAll)/float64(rawAll))
			t.Logf("RESULT %s: raw %v", name, raw)
			t.Logf("RESULT %s: hub %v", name, hub)
			t.Logf("RESULT %s: load average at the start %s, at the end %s; engine-alone spawns created again after Podman lost its host port: %d; hub spawns that did (hub log): %d",
				name, load0, loadAvg(), rawRetries.Swap(0), strings.Count(h.inst.Log(), "host port was taken before the container started"))
		})
	}
}

// benchHub is a caddy hub with the docker spawner.
type benchHub struct {
	public int
	token  string
	inst   *tests.Instance
}

func startHub(t *testing.T, e *dockertest.Engine) *benchHub {
	dir := t.TempDir()
	h := &benchHub{public: tests.FreePort(t), token: tests.RandomHex(t, 16)}
	cfg := fmt.Sprintf(`{
	grace_period 2s
	jupyterhub {
		data_dir %[1]s/data
		proxy_api 127.0.0.1:%[2]d
		hub_api 127.0.0.1:%[3]d
		# The containers run on the engine's bridge, where 127.0.0.1 is not the hub; the test
		# server never calls the hub, but the hub refuses a loopback address for such servers.
		hub_connect_url http://host.containers.internal:%[3]d
		cookie_secret_file %[1]s/cookie_secret
		authenticator dummy {
			password s3cret-pass
		}
		spawner docker {
			host %[4]s
			image %[5]s
			pull_policy never
			hub_id bench
			name_template bench-{username}
			mem_limit 64M
			cpu_limit 0.5
			term_timeout 2s
			start_timeout 180s
			http_timeout 120s
		}
		api_token %[6]s admin
		role admin {
			users admin
		}
	}
}

:%[7]d {
	bind 127.0.0.1
	jupyterhub
}
`, dir, tests.FreePort(t), tests.FreePort(t), e.Host, dockertest.TestServerImage, h.token, h.public)
	h.inst = tests.Start(t, dir, cfg)
	return h
}

// spawn creates user and starts their server, returning the time from the start request until the
// hub reports the server ready (the 201 answer, or the ready flag after a 202).
func (h *benchHub) spawn(t *testing.T, user string) time.Duration {
	if code, b := tests.Do(t, "POST", tests.URL(h.public, "/hub/api/users/"+user), h.token, nil); code != http.StatusCreated && code != http.StatusConflict {
		t.Fatalf("creating %s: %d %s", user, code, b)
	}
	began := time.Now()
	code, b := doLong(t, "POST", tests.URL(h.public, "/hub/api/users/"+user+"/server"), h.token)
	switch code {
	case http.StatusCreated:
		return time.Since(began)
	case http.StatusAccepted:
		for time.Since(began) < 3*time.Minute {
			_, b := tests.GetJSON(t, tests.URL(h.public, "/hub/api/users/"+user), h.token)
			if strings.Contains(string(b), `"ready":true`) {
				return time.Since(began)
			}
			time.Sleep(10 * time.Millisecond)
		}
		t.Fatalf("%s's server not ready after 3 minutes", user)
	}
	t.Fatalf("spawn %s: %d %s", user, code, b)
	return 0
}

// doLong sends a bodyless request with a client that waits long enough for the hub's answer to a
// spawn or stop (a 201/204 when done within slow_spawn_timeout or slow_stop_timeout, else 202), even
// on a loaded machine.
func doLong(t *testing.T, method, url, token string) (int, []byte) {
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "token "+token)
	c := &http.Client{Timeout: 3 * time.Minute}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

func (h *benchHub) stop(t *testing.T, user string) {
	code, b := doLong(t, "DELETE", tests.URL(h.public, "/hub/api/users/"+user+"/server"), h.token)
	if code != http.StatusNoContent && code != http.StatusAccepted {
		t.Errorf("stop %s: %d %s", user, code, b)
	}
	for i := 0; i < 600 && code == http.StatusAccepted; i++ {
		_, b := tests.GetJSON(t, tests.URL(h.public, "/hub/api/users/"+user), h.token)
		if !strings.Contains(string(b), `"pending":"stop"`) {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
}
