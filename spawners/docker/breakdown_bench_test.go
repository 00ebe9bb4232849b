package docker

import (
	"context"
	"fmt"
	"net"
	"os"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/go-connections/nat"

	"github.com/caddyhub/caddyhub/spawners"
	"github.com/caddyhub/caddyhub/spawners/docker/dockertest"
)

// TestBenchSpawnBreakdown splits a container spawn into the engine's own work and the spawner's
// additions, with the same image on the same engine, the sides interleaved in rotating order so
// that neither always follows the other's cleanup:
//
//   - raw: ContainerCreate + ContainerStart + inspect + spawners.WaitHTTP, the minimal request;
//   - raw-cfg: the same calls with the create request the spawner builds (env, labels, limits);
//   - start+wait: the spawner's Start, then spawners.WaitHTTP (no polls while waiting);
//   - hub-path: spawners.StartAndWait, as the hub runs it (Start, then WaitUp, which polls).
func TestBenchSpawnBreakdown(t *testing.T) {
	if os.Getenv("CADDYHUB_BENCH") != "1" {
		t.Skip("a benchmark: set CADDYHUB_BENCH=1")
	}
	rounds := 12
	for _, ename := range dockertest.Names {
		t.Run(ename, func(t *testing.T) {
			e := dockertest.Get(t, ename)
			s := newSpawner(t, e, func(s *Spawner) {
				s.MemLimit = "64M"
				s.CPULimit = 0.5
			})
			cli := s.cli
			ctx := context.Background()
			req := func(user string) *spawners.StartRequest {
				return &spawners.StartRequest{User: user, ServicePrefix: "/user/" + user + "/",
					Env: map[string]string{"JUPYTERHUB_API_TOKEN": strings.Repeat("a", 64), "JUPYTERHUB_API_URL": "http://host.containers.internal:8081/hub/api",
						"JUPYTERHUB_CLIENT_ID": "jupyterhub-user-" + user, "JUPYTERHUB_USER": user, "JUPYTERHUB_SERVER_NAME": "",
						"JUPYTERHUB_OAUTH_CALLBACK_URL": "/user/" + user + "/oauth_callback", "JUPYTERHUB_BASE_URL": "/", "JUPYTERHUB_HOST": "",
						"JUPYTERHUB_SERVICE_PREFIX": "/user/" + user + "/", "JUPYTERHUB_OAUTH_SCOPES": `["access:servers!server=` + user + `/"]`}}
			}
			raw := func(name string, cfg *container.Config, hc *container.HostConfig, prefix string) (map[string]time.Duration, string) {
				ph := map[string]time.Duration{}
				t0 := time.Now()
				resp, err := cli.ContainerCreate(ctx, cfg, hc, nil, nil, name)
				if err != nil {
					t.Fatal(err)
				}
				t1 := time.Now()
				ph["create"] = t1.Sub(t0)
				if err := cli.ContainerStart(ctx, resp.ID, container.StartOptions{}); err != nil {
					t.Fatal(err)
				}
				t2 := time.Now()
				ph["start"] = t2.Sub(t1)
				info, err := cli.ContainerInspect(ctx, resp.ID)
				if err != nil {
					t.Fatal(err)
				}
				t3 := time.Now()
				ph["inspect"] = t3.Sub(t2)
				port := info.NetworkSettings.Ports[nat.Port("8888/tcp")][0].HostPort
				if err := spawners.WaitHTTP(ctx, "http://"+net.JoinHostPort("127.0.0.1", port)+prefix, nil, time.Now().Add(time.Minute)); err != nil {
					t.Fatal(err)
				}
				ph["wait"] = time.Since(t3)
				ph["total"] = time.Since(t0)
				return ph, resp.ID
			}
			sides := []string{"raw", "raw-cfg", "start+wait", "hub-path"}
			res := map[string]map[string][]time.Duration{}
			add := func(side string, ph map[string]time.Duration) {
				if res[side] == nil {
					res[side] = map[string][]time.Duration{}
				}
				for k, v := range ph {
					res[side][k] = append(res[side][k], v)
				}
			}
			run := func(side string, i int) {
				user := fmt.Sprintf("b%d-%s", i, strings.ReplaceAll(side, "+", ""))
				switch side {
				case "raw":
					prefix := "/user/" + user + "/"
					cport := nat.Port("8888/tcp")
					ph, id := raw(s.containerName(user, ""), &container.Config{Image: dockertest.TestServerImage,
						Env:          []string{"JUPYTERHUB_SERVICE_URL=http://0.0.0.0:8888" + prefix, "JUPYTERHUB_SERVICE_PREFIX=" + prefix},
						ExposedPorts: nat.PortSet{cport: struct{}{}}, Labels: map[string]string{LabelHub: s.HubID}},
						&container.HostConfig{PortBindings: nat.PortMap{cport: {{HostIP: "127.0.0.1"}}},
							Resources: container.Resources{Memory: 64 << 20, NanoCPUs: 5e8}}, prefix)
					add(side, ph)
					_ = cli.ContainerRemove(ctx, id, container.RemoveOptions{Force: true})
				case "raw-cfg":
					r := req(user)
					ch, _ := s.choose(nil)
					cfg, hc, _, err := s.createConfig(r, ch, nil, r.ServicePrefix)
					if err != nil {
						t.Fatal(err)
					}
					ph, id := raw(s.containerName(user, ""), cfg, hc, r.ServicePrefix)
					add(side, ph)
					_ = cli.ContainerRemove(ctx, id, container.RemoveOptions{Force: true})
				case "start+wait":
					r := req(user)
					t0 := time.Now()
					srv, err := s.Start(ctx, r, nil)
					if err != nil {
						t.Fatal(err)
					}
					t1 := time.Now()
					if err := spawners.WaitHTTP(ctx, srv.URL+r.ServicePrefix, nil, time.Now().Add(time.Minute)); err != nil {
						t.Fatal(err)
					}
					add(side, map[string]time.Duration{"Start": t1.Sub(t0), "wait": time.Since(t1), "total": time.Since(t0)})
					st, _ := parseState(srv.State)
					_ = cli.ContainerRemove(ctx, st.ID, container.RemoveOptions{Force: true})
				case "hub-path":
					r := req(user)
					r.Launched = func(*spawners.Server) error { return nil }
					t0 := time.Now()
					srv, err := spawners.StartAndWait(ctx, s, r, nil)
					if err != nil {
						t.Fatal(err)
					}
					add(side, map[string]time.Duration{"total": time.Since(t0)})
					st, _ := parseState(srv.State)
					_ = cli.ContainerRemove(ctx, st.ID, container.RemoveOptions{Force: true})
				}
			}
			run("raw", 999) // warm-up
			run("start+wait", 999)
			for i := range rounds {
				for j := range sides {
					run(sides[(i+j)%len(sides)], i)
				}
			}
			for _, side := range sides {
				var parts []string
				keys := make([]string, 0, len(res[side]))
				for k := range res[side] {
					keys = append(keys, k)
				}
				sort.Strings(keys)
				for _, k := range keys {
					parts = append(parts, fmt.Sprintf("%s %s", k, med(res[side][k]).Round(100*time.Microsecond)))
				}
				t.Logf("RESULT %s %-10s medians of %d: %s", ename, side, rounds, strings.Join(parts, ", "))
			}
		})
	}
}

func med(d []time.Duration) time.Duration {
	s := append([]time.Duration(nil), d...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[len(s)/2]
}
