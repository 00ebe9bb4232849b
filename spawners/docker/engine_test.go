package docker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/image"
	"github.com/gorilla/websocket"
	"go.uber.org/zap/zaptest"

	"github.com/caddyhub/caddyhub/spawners"
	"github.com/caddyhub/caddyhub/spawners/docker/dockertest"
)

func TestMain(m *testing.M) {
	code := m.Run()
	dockertest.StopAll()
	os.Exit(code)
}

var testSeq atomic.Int64

// forEngines runs f against each real engine, as subtests.
// Under the race detector only the concurrent test runs (see raceEnabled).
func forEngines(t *testing.T, f func(t *testing.T, e *dockertest.Engine)) {
	if raceEnabled && t.Name() != "TestEngineConcurrentSpawns" {
		t.Skip("engine behaviour is tested without -race; under -race only the concurrent spawns run")
	}
	for _, name := range dockertest.Names {
		t.Run(name, func(t *testing.T) {
			e := dockertest.Get(t, name)
			f(t, e)
		})
	}
}

var imported sync.Map // engine host → true

// newSpawner makes a provisioned spawner on e running the test server image,
// with its own hub ID and name prefix; edit adjusts the options first.
func newSpawner(t *testing.T, e *dockertest.Engine, edit func(s *Spawner)) *Spawner {
	t.Helper()
	if _, ok := imported.Load(e.Host); !ok {
		e.ImportTestServer(t, dockertest.TestServerImage)
		imported.Store(e.Host, true)
	}
	n := testSeq.Add(1)
	s := &Spawner{
		Host:         e.Host,
		Image:        dockertest.TestServerImage,
		PullPolicy:   PullNever,
		HubID:        fmt.Sprintf("test-%d-%d", os.Getpid(), n),
		NameTemplate: fmt.Sprintf("cht%d-%d-{username}", os.Getpid(), n),
	}
	s.StartTimeout = caddy.Duration(60 * time.Second)
	s.HTTPTimeout = caddy.Duration(20 * time.Second)
	s.TermTimeout = caddy.Duration(2 * time.Second)
	if edit != nil {
		edit(s)
	}
	s.logger = zaptest.NewLogger(t)
	if err := s.setup(); err != nil {
		t.Fatal(err)
	}
	if err := s.connect(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.cli.Close() })
	e.TrackHub(t, s.HubID)
	return s
}

func (s *Spawner) containers(t *testing.T, ctx context.Context) []container.Summary {
	t.Helper()
	list, err := s.cli.ContainerList(ctx, container.ListOptions{All: true,
		Filters: filters.NewArgs(filters.Arg("label", LabelHub+"="+s.HubID))})
	if err != nil {
		t.Fatalf("listing containers: %v", err)
	}
	return list
}

func request(user string) *spawners.StartRequest {
	return &spawners.StartRequest{
		User:          user,
		ServicePrefix: "/user/" + user + "/",
		Env: map[string]string{
			"JUPYTERHUB_API_TOKEN": "secret-" + user,
			"JUPYTERHUB_API_URL":   "http://127.0.0.1:1/hub/api",
		},
		DataDir: "/nonexistent",
	}
}

type status struct {
	Env  map[string]string `json:"env"`
	Args []string          `json:"args"`
	Cwd  string            `json:"cwd"`
	Path string            `json:"path"`
}

func getStatus(t *testing.T, url string) status {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s", url, resp.Status)
	}
	var st status
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		t.Fatalf("GET %s: decoding: %v", url, err)
	}
	return st
}

func stateOf(t *testing.T, srv *spawners.Server) state {
	t.Helper()
	st, err := parseState(srv.State)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// cgroupValue reads a v1 cgroup file of the container's main process.
func cgroupValue(t *testing.T, pid int, controller, file string) string {
	t.Helper()
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cgroup")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 {
			continue
		}
		for _, c := range strings.Split(parts[1], ",") {
			if c == controller {
				v, err := os.ReadFile(filepath.Join("/sys/fs/cgroup", parts[1], parts[2], file))
				if err != nil {
					t.Fatalf("reading %s of pid %d: %v", file, pid, err)
				}
				return strings.TrimSpace(string(v))
			}
		}
	}
	t.Fatalf("pid %d has no %s cgroup:\n%s", pid, controller, b)
	return ""
}

func TestEngineSpawnLimitsStop(t *testing.T) {
	forEngines(t, func(t *testing.T, e *dockertest.Engine) {
		s := newSpawner(t, e, func(s *Spawner) {
			s.MemLimit = "64M"
			s.CPULimit = 0.5
			s.Environment = map[string]string{"GREETING": "hello {username}"}
		})
		ctx := context.Background()
		var events []spawners.Event
		srv, err := startAndWait(t, ctx, s, request("alice"), func(ev spawners.Event) { events = append(events, ev) })
		if err != nil {
			t.Fatalf("start: %v\n%s", err, e.Log())
		}
		if !strings.HasPrefix(srv.URL, "http://127.0.0.1:") {
			t.Errorf("URL %s, want a port published on 127.0.0.1", srv.URL)
		}
		st := getStatus(t, srv.URL+"/user/alice/lab")
		for k, want := range map[string]string{
			"JUPYTERHUB_API_TOKEN":      "secret-alice",
			"JUPYTERHUB_SERVICE_URL":    "http://0.0.0.0:8888/user/alice/",
			"JUPYTERHUB_SERVICE_PREFIX": "/user/alice/",
			"JUPYTERHUB_USER":           "alice",
			"MEM_LIMIT":                 "67108864",
			"CPU_LIMIT":                 "0.5",
			"GREETING":                  "hello alice",
		} {
			if st.Env[k] != want {
				t.Errorf("env %s = %q, want %q", k, st.Env[k], want)
			}
		}
		if _, ok := st.Env["PYTHONPATH"]; ok {
			t.Errorf("env_keep leaked the hub's environment into the container")
		}
		if len(events) < 3 || events[len(events)-1].Progress != 90 {
			t.Errorf("progress events %v, want several ending at 90", events)
		}

		info, err := s.cli.ContainerInspect(ctx, stateOf(t, srv).ID)
		if err != nil {
			t.Fatal(err)
		}
		if info.Config.Labels[LabelUser] != "alice" || info.Config.Labels[LabelHub] != s.HubID {
			t.Errorf("labels %v", info.Config.Labels)
		}
		for _, b := range info.HostConfig.PortBindings["8888/tcp"] {
			if b.HostIP != "127.0.0.1" {
				t.Errorf("port binding %+v, want host IP 127.0.0.1", b)
			}
		}
		if got := cgroupValue(t, info.State.Pid, "memory", "memory.limit_in_bytes"); got != "67108864" {
			t.Errorf("memory.limit_in_bytes %s, want 67108864", got)
		}
		quota := cgroupValue(t, info.State.Pid, "cpu", "cpu.cfs_quota_us")
		period := cgroupValue(t, info.State.Pid, "cpu", "cpu.cfs_period_us")
		if q, _ := strconv.Atoi(quota); q <= 0 || strconv.Itoa(q*2) != period {
			t.Errorf("cpu.cfs_quota_us %s with period %s, want half the period", quota, period)
		}

		// A websocket to the container, echoed back.
		wsURL := "ws" + strings.TrimPrefix(srv.URL, "http") + "/user/alice/api/kernels/k/channels"
		c, _, err := websocket.DefaultDialer.Dial(wsURL, nil)
		if err != nil {
			t.Fatalf("websocket: %v", err)
		}
		if err := c.WriteMessage(websocket.TextMessage, []byte("ping over ws")); err != nil {
			t.Fatal(err)
		}
		_, msg, err := c.ReadMessage()
		c.Close()
		if err != nil || string(msg) != "ping over ws" {
			t.Errorf("websocket echo %q, %v", msg, err)
		}

		if ok, err := s.Poll(ctx, srv.State); !ok || err != nil {
			t.Fatalf("poll: %v %v", ok, err)
		}
		began := time.Now()
		if err := s.Stop(ctx, srv.State); err != nil {
			t.Fatal(err)
		}
		t.Logf("stop took %s", time.Since(began))
		if ok, err := s.Poll(ctx, srv.State); ok || err != nil {
			t.Fatalf("poll after stop: %v %v", ok, err)
		}
		if _, err := s.cli.ContainerInspect(ctx, stateOf(t, srv).ID); !cerrdefs.IsNotFound(err) {
			t.Errorf("container still there after stop with remove: %v", err)
		}
		if err := s.Stop(ctx, srv.State); err != nil {
			t.Errorf("second stop: %v", err)
		}
	})
}

func TestEngineHostNetwork(t *testing.T) {
	forEngines(t, func(t *testing.T, e *dockertest.Engine) {
		s := newSpawner(t, e, func(s *Spawner) { s.Network = "host" })
		ctx := context.Background()
		srv, err := startAndWait(t, ctx, s, request("hana"), nil)
		if err != nil {
			t.Fatalf("start: %v", err)
		}
		st := getStatus(t, srv.URL+"/user/hana/")
		if want := srv.URL + "/user/hana/"; st.Env["JUPYTERHUB_SERVICE_URL"] != want {
			t.Errorf("service URL %q, want %q", st.Env["JUPYTERHUB_SERVICE_URL"], want)
		}
		if err := s.Stop(ctx, srv.State); err != nil {
			t.Fatal(err)
		}
	})
}

func TestEngineNamedVolumeKept(t *testing.T) {
	forEngines(t, func(t *testing.T, e *dockertest.Engine) {
		var vol string
		s := newSpawner(t, e, func(s *Spawner) {
			vol = fmt.Sprintf("chv%d-%d-{username}", os.Getpid(), testSeq.Load())
			s.Volumes = []Volume{{Source: vol, Target: "/data"}}
			s.NotebookDir = "/data"
			s.Args = []string{"-write", "kept.txt"}
		})
		ctx := context.Background()
		name := expandTemplate(vol, escapeName("vic.tor"), "")
		t.Cleanup(func() { _ = s.cli.VolumeRemove(context.Background(), name, true) })
		srv, err := startAndWait(t, ctx, s, request("vic.tor"), nil)
		if err != nil {
			t.Fatalf("start: %v", err)
		}
		if st := getStatus(t, srv.URL+"/user/vic.tor/"); st.Cwd != "/data" {
			t.Errorf("cwd %q, want notebook_dir /data", st.Cwd)
		}
		if err := s.Stop(ctx, srv.State); err != nil {
			t.Fatal(err)
		}
		v, err := s.cli.VolumeInspect(ctx, name)
		if err != nil {
			t.Fatalf("volume %s gone with its container: %v", name, err)
		}
		if v.Labels[LabelUser] != "vic.tor" || v.Labels[LabelHub] != s.HubID {
			t.Errorf("volume labels %v", v.Labels)
		}
		// The next server answers only once the file the first one wrote exists.
		s.Args = []string{"-wait-file", "/data/kept.txt"}
		s.HTTPTimeout = caddy.Duration(8 * time.Second)
		srv, err = startAndWait(t, ctx, s, request("vic.tor"), nil)
		if err != nil {
			t.Fatalf("second start (does the volume keep kept.txt?): %v", err)
		}
		if err := s.Stop(ctx, srv.State); err != nil {
			t.Fatal(err)
		}
	})
}

func TestEngineAdoptAndOrphans(t *testing.T) {
	forEngines(t, func(t *testing.T, e *dockertest.Engine) {
		s := newSpawner(t, e, nil)
		ctx := context.Background()
		srv, err := startAndWait(t, ctx, s, request("ada"), nil)
		if err != nil {
			t.Fatalf("start: %v", err)
		}
		// A foreign container: no labels. It must never be listed or touched.
		foreign := fmt.Sprintf("chf%d-%d", os.Getpid(), testSeq.Add(1))
		fc, err := s.cli.ContainerCreate(ctx, &container.Config{Image: dockertest.TestServerImage}, nil, nil, nil, foreign)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			_ = s.cli.ContainerRemove(context.Background(), fc.ID, container.RemoveOptions{Force: true})
		})

		// A new spawner, as after a hub restart, with the same options.
		s2 := newSpawner(t, e, func(n *Spawner) { n.HubID, n.NameTemplate = s.HubID, s.NameTemplate })
		if ok, err := s2.Poll(ctx, srv.State); !ok || err != nil {
			t.Fatalf("poll from a restarted hub: %v %v", ok, err)
		}
		if o, err := s2.Orphans(ctx, []json.RawMessage{srv.State}); err != nil || len(o) != 0 {
			t.Errorf("orphans with the container claimed: %v %v", o, err)
		}
		o, err := s2.Orphans(ctx, nil)
		if err != nil || len(o) != 1 || !strings.Contains(o[0], "user ada") || !strings.Contains(o[0], stateOf(t, srv).Name) {
			t.Errorf("orphans with no record: %v %v", o, err)
		}
		if err := s2.Stop(ctx, srv.State); err != nil {
			t.Fatal(err)
		}
		if _, err := s.cli.ContainerInspect(ctx, fc.ID); err != nil {
			t.Errorf("the foreign container was touched: %v", err)
		}

		// A container named like the server but not ours: the start fails, the container stays.
		s3 := newSpawner(t, e, nil)
		other := s3.containerName("eve", "")
		oc, err := s.cli.ContainerCreate(ctx, &container.Config{Image: dockertest.TestServerImage}, nil, nil, nil, other)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			_ = s.cli.ContainerRemove(context.Background(), oc.ID, container.RemoveOptions{Force: true})
		})
		if _, err := spawners.StartAndWait(ctx, s3, request("eve"), nil); err == nil || !strings.Contains(err.Error(), "not started by this hub") {
			t.Errorf("start over a foreign container: %v", err)
		}
		if _, err := s.cli.ContainerInspect(ctx, oc.ID); err != nil {
			t.Errorf("the foreign container was touched: %v", err)
		}
	})
}

// noContainer fails when the spawner's hub has any container left.
func noContainer(t *testing.T, s *Spawner) {
	t.Helper()
	if list := s.containers(t, context.Background()); len(list) != 0 {
		t.Errorf("%d containers left behind: %v", len(list), list[0].Names)
	}
}

func TestEngineFailures(t *testing.T) {
	forEngines(t, func(t *testing.T, e *dockertest.Engine) {
		ctx := context.Background()
		t.Run("disallowed image", func(t *testing.T) {
			s := newSpawner(t, e, func(s *Spawner) { s.AllowedImages = []string{dockertest.TestServerImage} })
			req := request("mal")
			req.UserOptions = map[string]any{"image": "docker.io/library/evil:latest"}
			_, err := startAndWait(t, ctx, s, req, nil)
			if !errors.Is(err, ErrImageNotAllowed) || !strings.Contains(err.Error(), `image "docker.io/library/evil:latest" is not allowed; choose one of: `+dockertest.TestServerImage) {
				t.Errorf("err %v", err)
			}
			noContainer(t, s)
			req.UserOptions = map[string]any{"image": []any{dockertest.TestServerImage}}
			srv, err := startAndWait(t, ctx, s, req, nil)
			if err != nil {
				t.Fatalf("allowed image: %v", err)
			}
			_ = s.Stop(ctx, srv.State)
		})
		t.Run("image missing, pull never", func(t *testing.T) {
			s := newSpawner(t, e, func(s *Spawner) { s.Image = "localhost/caddyhub-missing:1" })
			_, err := startAndWait(t, ctx, s, request("mia"), nil)
			if !errors.Is(err, ErrImageMissing) || !strings.Contains(err.Error(), "not on the container engine") {
				t.Errorf("err %v", err)
			}
			noContainer(t, s)
		})
		t.Run("image missing, pull fails", func(t *testing.T) {
			s := newSpawner(t, e, func(s *Spawner) {
				s.Image = "127.0.0.1:1/caddyhub-missing:1"
				s.PullPolicy = PullIfNotPresent
			})
			_, err := startAndWait(t, ctx, s, request("mia"), nil)
			if !errors.Is(err, ErrImageMissing) || !strings.Contains(err.Error(), "could not be pulled") {
				t.Errorf("err %v", err)
			}
			noContainer(t, s)
		})
		t.Run("exits early", func(t *testing.T) {
			s := newSpawner(t, e, func(s *Spawner) { s.Args = []string{"-exit", "3"} })
			_, err := startAndWait(t, ctx, s, request("ed"), nil)
			if !errors.Is(err, spawners.ErrExitedEarly) || !strings.Contains(err.Error(), "status 3") ||
				!strings.Contains(err.Error(), "output line 30") {
				t.Errorf("err %v", err)
			}
			noContainer(t, s)
		})
		t.Run("never answers", func(t *testing.T) {
			s := newSpawner(t, e, func(s *Spawner) {
				s.Args = []string{"-never-listen"}
				s.HTTPTimeout = caddy.Duration(time.Second)
			})
			_, err := startAndWait(t, ctx, s, request("ned"), nil)
			if !errors.Is(err, spawners.ErrHTTPTimeout) {
				t.Errorf("err %v", err)
			}
			noContainer(t, s)
		})
	})
}

func TestEngineUnreachable(t *testing.T) {
	s := &Spawner{Host: "unix://" + filepath.Join(t.TempDir(), "none.sock"), Image: "x"}
	s.logger = zaptest.NewLogger(t)
	if err := s.setup(); err != nil {
		t.Fatal(err)
	}
	if err := s.connect(); err != nil {
		t.Fatal(err)
	}
	_, err := s.Start(context.Background(), request("una"), nil)
	if !errors.Is(err, ErrEngineUnreachable) || !strings.Contains(err.Error(), "cannot reach the container engine at unix://") {
		t.Errorf("err %v", err)
	}
}

func TestEngineConcurrentSpawns(t *testing.T) {
	const n = 20
	forEngines(t, func(t *testing.T, e *dockertest.Engine) {
		// Twenty containers at once take Podman minutes on a loaded two-core machine; the
		// test asserts that every one starts and answers, not how fast (bench/docker does).
		s := newSpawner(t, e, func(s *Spawner) {
			s.StartTimeout = caddy.Duration(5 * time.Minute)
			s.HTTPTimeout = caddy.Duration(3 * time.Minute)
		})
		ctx := context.Background()
		var wg sync.WaitGroup
		srvs := make([]*spawners.Server, n)
		errs := make([]error, n)
		began := time.Now()
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				srvs[i], errs[i] = startAndWait(t, ctx, s, request(fmt.Sprintf("user%02d", i)), nil)
			}()
		}
		wg.Wait()
		t.Logf("%d concurrent starts on %s: %s", n, e.Name, time.Since(began))
		for i, err := range errs {
			if err != nil {
				t.Errorf("start %d: %v", i, err)
				continue
			}
			getStatus(t, srvs[i].URL+fmt.Sprintf("/user/user%02d/", i))
		}
		for _, srv := range srvs {
			if srv != nil {
				wg.Add(1)
				go func() { defer wg.Done(); _ = s.Stop(ctx, srv.State) }()
			}
		}
		wg.Wait()
		noContainer(t, s)
	})
}

func TestEnginePollExited(t *testing.T) {
	forEngines(t, func(t *testing.T, e *dockertest.Engine) {
		s := newSpawner(t, e, nil)
		ctx := context.Background()
		srv, err := startAndWait(t, ctx, s, request("kurt"), nil)
		if err != nil {
			t.Fatalf("start: %v", err)
		}
		id := stateOf(t, srv).ID
		if err := s.cli.ContainerKill(ctx, id, "KILL"); err != nil {
			t.Fatal(err)
		}
		waitGone := time.Now().Add(time.Minute)
		for {
			ok, err := s.Poll(ctx, srv.State)
			if err != nil {
				t.Fatal(err)
			}
			if !ok {
				break
			}
			if time.Now().After(waitGone) {
				t.Fatal("poll still says running a minute after the kill")
			}
			time.Sleep(50 * time.Millisecond) // polling the engine, not synchronising goroutines
		}
		// Just exited: kept, so that its output can still be read.
		if _, err := s.cli.ContainerInspect(ctx, id); err != nil {
			t.Fatalf("container removed at once: %v", err)
		}
		old := removeExitedAfter
		removeExitedAfter = 0
		defer func() { removeExitedAfter = old }()
		if ok, err := s.Poll(ctx, srv.State); ok || err != nil {
			t.Fatalf("poll: %v %v", ok, err)
		}
		if _, err := s.cli.ContainerInspect(ctx, id); !cerrdefs.IsNotFound(err) {
			t.Errorf("exited container not removed by poll: %v", err)
		}
	})
}

// TestEngineRemoveFalseKeepsFiles: with remove false a stopped container stays, and the server's
// next container starts from its files (DockerSpawner's remove=False), with a fresh environment
// (the new API token); with another image it starts afresh.
func TestEngineRemoveFalseKeepsFiles(t *testing.T) {
	forEngines(t, func(t *testing.T, e *dockertest.Engine) {
		f := false
		s := newSpawner(t, e, func(s *Spawner) {
			s.Remove = &f
			s.NotebookDir = "/home"
			s.Args = []string{"-write", "kept.txt"}
		})
		ctx := context.Background()
		name := s.containerName("kim", "")
		t.Cleanup(func() {
			_, _ = s.cli.ImageRemove(context.Background(), keptImage(name), image.RemoveOptions{Force: true})
		})
		srv, err := startAndWait(t, ctx, s, request("kim"), nil)
		if err != nil {
			t.Fatalf("start: %v", err)
		}
		if err := s.Stop(ctx, srv.State); err != nil {
			t.Fatal(err)
		}
		if _, err := s.cli.ContainerInspect(ctx, stateOf(t, srv).ID); err != nil {
			t.Fatalf("remove false: the stopped container is gone: %v", err)
		}
		if o, err := s.Orphans(ctx, nil); err != nil || len(o) != 0 {
			t.Errorf("a container kept on purpose listed as an orphan: %v %v", o, err)
		}
		// The next server answers only once the file the first one wrote in its container exists.
		s.Args = []string{"-wait-file", "/home/kept.txt"}
		s.HTTPTimeout = caddy.Duration(8 * time.Second)
		req := request("kim")
		req.Env["JUPYTERHUB_API_TOKEN"] = "second-token"
		srv2, err := startAndWait(t, ctx, s, req, nil)
		if err != nil {
			t.Fatalf("second start (are the first container's files kept?): %v", err)
		}
		if st := getStatus(t, srv2.URL+"/user/kim/"); st.Env["JUPYTERHUB_API_TOKEN"] != "second-token" {
			t.Errorf("token in the second container %q, want the new one", st.Env["JUPYTERHUB_API_TOKEN"])
		}
		list := s.containers(t, ctx)
		if len(list) != 1 || list[0].ID != stateOf(t, srv2).ID {
			t.Errorf("containers after the second start: %v, want only the new one", list)
		}
		info, err := s.cli.ContainerInspect(ctx, stateOf(t, srv2).ID)
		if err != nil {
			t.Fatal(err)
		}
		if info.Config.Image != keptImage(name) || info.Config.Labels[LabelImage] != dockertest.TestServerImage {
			t.Errorf("second container runs %s (label %s), want %s for %s", info.Config.Image, info.Config.Labels[LabelImage],
				keptImage(name), dockertest.TestServerImage)
		}
		if err := s.Stop(ctx, srv2.State); err != nil {
			t.Fatal(err)
		}

		// Another image (the same file system under a second name): the files are not carried over.
		const other = "localhost/caddyhub-testserver:other"
		if err := s.cli.ImageTag(ctx, dockertest.TestServerImage, other); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _, _ = s.cli.ImageRemove(context.Background(), other, image.RemoveOptions{}) })
		s.Image = other
		s.Args = nil
		srv3, err := startAndWait(t, ctx, s, request("kim"), nil)
		if err != nil {
			t.Fatalf("third start: %v", err)
		}
		if info, err := s.cli.ContainerInspect(ctx, stateOf(t, srv3).ID); err != nil || info.Config.Image != other {
			t.Errorf("with another image the container runs %v (%v), want %s", info.Config, err, other)
		}
		if err := s.Stop(ctx, srv3.State); err != nil {
			t.Fatal(err)
		}
	})
}

// TestEngineHostNetworkPortTaken: on host networking the hub picks the port; a server that finds
// it taken exits, and the start is tried again with another port (spawners.StartAndWait).
func TestEngineHostNetworkPortTaken(t *testing.T) {
	forEngines(t, func(t *testing.T, e *dockertest.Engine) {
		dir := t.TempDir()
		s := newSpawner(t, e, func(s *Spawner) {
			s.Network = "host"
			s.Volumes = []Volume{{Source: dir, Target: "/state"}}
			s.Args = []string{"-addr-in-use-once", "/state/once"}
		})
		ctx := context.Background()
		var events []spawners.Event
		srv, err := startAndWait(t, ctx, s, request("pat"), func(ev spawners.Event) { events = append(events, ev) })
		if err != nil {
			t.Fatalf("start: %v", err)
		}
		retried := false
		for _, ev := range events {
			retried = retried || strings.Contains(ev.Message, "was taken; trying another")
		}
		if !retried {
			t.Errorf("no retry event in %v", events)
		}
		getStatus(t, srv.URL+"/user/pat/")
		if err := s.Stop(ctx, srv.State); err != nil {
			t.Fatal(err)
		}
		noContainer(t, s)
	})
}

// reportingSpawner is the spawner as StartAndWait sees it in these tests: before it stops the
// container of a failed start, it logs the container's state and last output, which the stop
// removes (a start that fails for a reason of the engine's otherwise leaves nothing to read).
type reportingSpawner struct {
	*Spawner
	t *testing.T
}

func (r reportingSpawner) Stop(ctx context.Context, raw json.RawMessage) error {
	if st, err := parseState(raw); err == nil {
		state := "unknown"
		if info, err := r.cli.ContainerInspect(ctx, st.ID); err == nil && info.State != nil {
			state = fmt.Sprintf("%s (running %v, exit %d, error %q)", info.State.Status, info.State.Running, info.State.ExitCode, info.State.Error)
		}
		out, err := r.lastOutput(ctx, st.ID)
		if err != nil {
			out = "(" + err.Error() + ")"
		}
		r.t.Logf("stopping container %s after a failed start: state %s; last output:\n%s", st.Name, state, out)
	}
	return r.Spawner.Stop(ctx, raw)
}

// startAndWait is spawners.StartAndWait with the container's state and output in the test log
// when the start fails.
func startAndWait(t *testing.T, ctx context.Context, s *Spawner, req *spawners.StartRequest, progress func(spawners.Event)) (*spawners.Server, error) {
	return spawners.StartAndWait(ctx, reportingSpawner{Spawner: s, t: t}, req, progress)
}
