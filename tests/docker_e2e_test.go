package tests

// End to end: the real caddy binary with `spawner docker` against real engines (Podman's
// Docker-compatible service and a dockerd, both started by spawners/docker/dockertest). A user's
// server runs in a container of the static test server image; the test reaches it through the edge
// (HTTP and a websocket), kills the hub with SIGKILL and checks that the restarted hub adopts the
// container, finds an orphan, refuses an image that is not allowed, and removes the container on stop.

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/gorilla/websocket"

	"github.com/caddyhub/caddyhub/spawners/docker/dockertest"
)

// dockerHub is a running hub with the docker spawner on one engine.
type dockerHub struct {
	e               *dockertest.Engine
	dir, cfg, token string
	hubID           string
	public          int
	inst            *Instance
}

func startDockerHub(t *testing.T, e *dockertest.Engine, spawnerExtra string) *dockerHub {
	t.Helper()
	e.ImportTestServer(t, dockertest.TestServerImage)
	h := &dockerHub{e: e, dir: t.TempDir(), token: RandomHex(t, 16), public: FreePort(t),
		hubID: fmt.Sprintf("e2e-%d-%s", os.Getpid(), RandomHex(t, 3))}
	h.cfg = fmt.Sprintf(`{
	grace_period 2s
	jupyterhub {
		data_dir %[1]s/data
		proxy_api 127.0.0.1:%[2]d
		hub_api 127.0.0.1:%[3]d
		# The containers run on the engine's bridge, where 127.0.0.1 is not the hub (the hub
		# refuses a loopback address for them); the test server never calls the hub back.
		hub_connect_url http://host.containers.internal:%[3]d
		cookie_secret_file %[1]s/cookie_secret
		authenticator dummy {
			password s3cret-pass
		}
		spawner docker {
			host %[4]s
			image %[5]s
			pull_policy never
			hub_id %[6]s
			name_template %[6]s-{username}
			mem_limit 64M
			cpu_limit 0.5
			term_timeout 2s
			start_timeout 120s
			http_timeout 60s
			%[8]s
		}
		api_token %[7]s admin
		role admin {
			users admin
		}
	}
}

:%[9]d {
	bind 127.0.0.1
	jupyterhub
}
`, h.dir, FreePort(t), FreePort(t), e.Host, dockertest.TestServerImage, h.hubID, h.token, spawnerExtra, h.public)
	e.TrackHub(t, h.hubID)
	h.inst = Start(t, h.dir, h.cfg)
	return h
}

// containers lists the hub's containers (by its label).
func (h *dockerHub) containers(t *testing.T) []container.Summary {
	t.Helper()
	list, err := h.e.Client(t).ContainerList(context.Background(), container.ListOptions{All: true,
		Filters: filters.NewArgs(filters.Arg("label", "org.caddyhub.hub="+h.hubID))})
	if err != nil {
		t.Fatal(err)
	}
	return list
}

// spawn starts user's default server through the API and waits until it is ready.
func (h *dockerHub) spawn(t *testing.T, user string, body []byte) (int, []byte) {
	t.Helper()
	if code, b := Do(t, "POST", URL(h.public, "/hub/api/users/"+user), h.token, nil); code != http.StatusCreated && code != http.StatusConflict {
		t.Fatalf("creating %s: %d %s", user, code, b)
	}
	code, b := Do(t, "POST", URL(h.public, "/hub/api/users/"+user+"/server"), h.token, body)
	if code == http.StatusAccepted {
		waitFor(t, user+"'s server to be ready", 2*time.Minute, func() bool { return h.ready(t, user) })
		code = http.StatusCreated
	}
	return code, b
}

func (h *dockerHub) ready(t *testing.T, user string) bool {
	_, b := GetJSON(t, URL(h.public, "/hub/api/users/"+user), h.token)
	var u struct {
		Servers map[string]struct {
			Ready bool `json:"ready"`
		} `json:"servers"`
	}
	_ = json.Unmarshal(b, &u)
	s, ok := u.Servers[""]
	return ok && s.Ready
}

// echo sends msg over a websocket through the edge to user's server and returns the answer.
func (h *dockerHub) echo(t *testing.T, user, msg string) string {
	t.Helper()
	d := websocket.Dialer{HandshakeTimeout: 30 * time.Second}
	c, resp, err := d.Dial(fmt.Sprintf("ws://127.0.0.1:%d/user/%s/api/kernels/k/channels", h.public, user), nil)
	if err != nil {
		status := ""
		if resp != nil {
			status = resp.Status
		}
		t.Fatalf("websocket through the edge: %v %s", err, status)
	}
	defer c.Close()
	if err := c.WriteMessage(websocket.TextMessage, []byte(msg)); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(30 * time.Second))
	_, got, err := c.ReadMessage()
	if err != nil {
		t.Fatalf("websocket read: %v", err)
	}
	return string(got)
}

func TestDockerSpawnerE2E(t *testing.T) {
	for _, name := range dockertest.Names {
		t.Run(name, func(t *testing.T) {
			e := dockertest.Get(t, name)
			h := startDockerHub(t, e, "allowed_images "+dockertest.TestServerImage+`
			profile standard {
				default
			}
			profile small {
				display_name "Small"
				mem_limit 32M
			}`)

			if code, b := h.spawn(t, "alice", nil); code != http.StatusCreated {
				t.Fatalf("spawn: %d %s\n%s", code, b, h.inst.Log())
			}
			list := h.containers(t)
			if len(list) != 1 || list[0].State != "running" || list[0].Labels["org.caddyhub.user"] != "alice" {
				t.Fatalf("containers after the spawn: %+v", list)
			}
			id := list[0].ID
			for _, p := range list[0].Ports {
				if p.PublicPort != 0 && p.IP != "127.0.0.1" {
					t.Errorf("port published on %q, want 127.0.0.1 only", p.IP)
				}
			}
			// Through the edge: HTTP, then a websocket.
			body := WaitHTTP(t, URL(h.public, "/user/alice/lab"), http.StatusOK, 30*time.Second)
			if !strings.Contains(body, `"JUPYTERHUB_USER":"alice"`) || !strings.Contains(body, `"MEM_LIMIT":"67108864"`) {
				t.Errorf("server's answer through the edge lacks alice's environment: %.400s", body)
			}
			if got := h.echo(t, "alice", "hello through the edge"); got != "hello through the edge" {
				t.Errorf("websocket echo %q", got)
			}

			// A user may not pick an image outside allowed_images, nor a profile that does not exist:
			// the hub refuses before the engine is asked.
			code, b := h.spawn(t, "mallory", []byte(`{"image": "docker.io/library/evil:latest"}`))
			if code != http.StatusBadRequest || !strings.Contains(string(b), "is not allowed") {
				t.Errorf("spawn with a disallowed image: %d %s", code, b)
			}
			code, b = h.spawn(t, "mallory", []byte(`{"profile": "huge"}`))
			if code != http.StatusBadRequest || !strings.Contains(string(b), `No such profile: \"huge\"`) {
				t.Errorf("spawn with an unknown profile: %d %s", code, b)
			}
			if n := len(h.containers(t)); n != 1 {
				t.Errorf("%d containers after the refused spawns, want 1", n)
			}
			// A profile's limits replace the spawner's: enforced by the engine and announced.
			if code, b := h.spawn(t, "bob", []byte(`{"profile": "small"}`)); code != http.StatusCreated {
				t.Fatalf("spawn with profile small: %d %s\n%s", code, b, h.inst.Log())
			}
			body = WaitHTTP(t, URL(h.public, "/user/bob/"), http.StatusOK, 30*time.Second)
			if !strings.Contains(body, `"MEM_LIMIT":"33554432"`) {
				t.Errorf("bob's server (profile small) lacks MEM_LIMIT=32M: %.400s", body)
			}
			for _, c := range h.containers(t) {
				if c.Labels["org.caddyhub.user"] != "bob" {
					continue
				}
				if info, err := e.Client(t).ContainerInspect(context.Background(), c.ID); err != nil || info.HostConfig.Memory != 32<<20 {
					t.Errorf("bob's container memory limit: %v %v, want 32M", info.HostConfig, err)
				}
			}
			if code, b := Do(t, "DELETE", URL(h.public, "/hub/api/users/bob/server"), h.token, nil); code != http.StatusNoContent && code != http.StatusAccepted {
				t.Fatalf("stop bob: %d %s", code, b)
			}
			waitFor(t, "bob's container to be removed", time.Minute, func() bool { return len(h.containers(t)) == 1 })

			// An orphan: a container with the hub's labels that no record claims.
			cli := e.Client(t)
			orphan := h.hubID + "-orphan"
			oc, err := cli.ContainerCreate(context.Background(), &container.Config{Image: dockertest.TestServerImage,
				Labels: map[string]string{"org.caddyhub.hub": h.hubID, "org.caddyhub.user": "ghost"}}, nil, nil, nil, orphan)
			if err != nil {
				t.Fatal(err)
			}
			if err := cli.ContainerStart(context.Background(), oc.ID, container.StartOptions{}); err != nil {
				t.Fatal(err)
			}

			// kill -9 the hub; the container keeps running; the restarted hub adopts it.
			h.inst.Kill9()
			h.inst = Start(t, h.dir, h.cfg)
			if !h.ready(t, "alice") {
				t.Fatalf("alice's server is not ready after the restart\n%s", h.inst.Log())
			}
			if list := h.containers(t); len(list) != 2 {
				t.Errorf("containers after the restart: %d, want alice's and the orphan", len(list))
			}
			WaitHTTP(t, URL(h.public, "/user/alice/"), http.StatusOK, 30*time.Second)
			if got := h.echo(t, "alice", "after restart"); got != "after restart" {
				t.Errorf("websocket echo after the restart %q", got)
			}
			code, b = GetJSON(t, URL(h.public, "/hub/api/info"), h.token)
			if code != http.StatusOK || !strings.Contains(string(b), orphan) || strings.Contains(string(b), id[:12]) {
				t.Errorf("GET /hub/api/info: %d %s, want the orphan %s listed and alice's container not", code, b, orphan)
			}
			waitFor(t, "the orphan in the log", 10*time.Second, func() bool { return strings.Contains(h.inst.Log(), orphan) })

			// Stop: the container goes (remove defaults to true); the orphan is left alone.
			if code, b := Do(t, "DELETE", URL(h.public, "/hub/api/users/alice/server"), h.token, nil); code != http.StatusNoContent && code != http.StatusAccepted {
				t.Fatalf("stop: %d %s", code, b)
			}
			waitFor(t, "alice's container to be removed", time.Minute, func() bool {
				_, err := cli.ContainerInspect(context.Background(), id)
				return err != nil
			})
			if list := h.containers(t); len(list) != 1 || list[0].ID != oc.ID {
				t.Errorf("containers after the stop: %+v, want only the orphan", list)
			}
		})
	}
}

// TestDockerSingleuserE2E runs the real jupyterhub-singleuser (Debian's jupyterhub package) in a
// container: the image is a skeleton root file system (merged-/usr symlinks, empty /usr and /etc)
// imported from a tarball, and the host's /usr and /etc are bind-mounted read-only into it, so the
// container runs exactly the host's Python and Jupyter without a registry. It uses host networking,
// so the server reaches the hub API on 127.0.0.1 (OAuth and activity), and is reached through the
// edge.
func TestDockerSingleuserE2E(t *testing.T) {
	Require(t, "jupyterhub-singleuser")
	e := dockertest.Get(t, "dockerd")
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, l := range [][2]string{{"bin", "usr/bin"}, {"lib", "usr/lib"}, {"lib64", "usr/lib64"}, {"sbin", "usr/sbin"}} {
		if err := tw.WriteHeader(&tar.Header{Name: l[0], Typeflag: tar.TypeSymlink, Linkname: l[1], Mode: 0o777}); err != nil {
			t.Fatal(err)
		}
	}
	for _, d := range []string{"usr/", "etc/", "tmp/", "home/", "var/", "var/tmp/", "run/"} {
		if err := tw.WriteHeader(&tar.Header{Name: d, Typeflag: tar.TypeDir, Mode: 0o1777}); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	const img = "localhost/caddyhub-hostroot:latest"
	if err := e.ImportTar(img, &buf, `CMD ["jupyterhub-singleuser"]`); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	public, hubAPI := FreePort(t), FreePort(t)
	token := RandomHex(t, 16)
	hubID := fmt.Sprintf("e2e-su-%d", os.Getpid())
	cfg := fmt.Sprintf(`{
	grace_period 2s
	jupyterhub {
		data_dir %[1]s/data
		proxy_api 127.0.0.1:%[2]d
		hub_api 127.0.0.1:%[3]d
		cookie_secret_file %[1]s/cookie_secret
		authenticator dummy {
			password s3cret-pass
		}
		spawner docker {
			host %[4]s
			image %[5]s
			pull_policy never
			network host
			hub_id %[6]s
			name_template %[6]s-{username}
			volume /usr /usr ro
			volume /etc /etc ro
			args --allow-root
			environment HOME /tmp
			mem_limit 512M
			start_timeout 120s
			http_timeout 90s
			term_timeout 5s
		}
		api_token %[7]s admin
		role admin {
			users admin
		}
	}
}

:%[8]d {
	bind 127.0.0.1
	jupyterhub
}
`, dir, FreePort(t), hubAPI, e.Host, img, hubID, token, public)
	e.TrackHub(t, hubID)
	inst := Start(t, dir, cfg)
	h := &dockerHub{e: e, dir: dir, cfg: cfg, token: token, hubID: hubID, public: public, inst: inst}
	if code, b := h.spawn(t, "alice", nil); code != http.StatusCreated {
		t.Fatalf("spawn: %d %s\n%s", code, b, inst.Log())
	}
	// The single-user server's own API, through the edge (no login needed for /api).
	body := WaitHTTP(t, URL(public, "/user/alice/api"), http.StatusOK, 60*time.Second)
	if !strings.Contains(body, `"version"`) {
		t.Errorf("/user/alice/api through the edge: %.300s", body)
	}
	// The server called the hub back (OAuth client check and activity) with its token.
	waitFor(t, "the server's activity report", 60*time.Second, func() bool {
		_, b := GetJSON(t, URL(public, "/hub/api/users/alice"), token)
		var u struct {
			Servers map[string]struct {
				LastActivity string `json:"last_activity"`
				Started      string `json:"started"`
			} `json:"servers"`
		}
		_ = json.Unmarshal(b, &u)
		s := u.Servers[""]
		return s.LastActivity != "" && s.Started != "" && s.LastActivity > s.Started
	})
	if code, b := Do(t, "DELETE", URL(public, "/hub/api/users/alice/server"), token, nil); code != http.StatusNoContent && code != http.StatusAccepted {
		t.Fatalf("stop: %d %s", code, b)
	}
	waitFor(t, "the container to be removed", time.Minute, func() bool { return len(h.containers(t)) == 0 })
}
