package docker

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/docker/docker/api/types/mount"
	"github.com/docker/go-connections/nat"

	"github.com/caddyhub/caddyhub/spawners"
)

func TestEscapeName(t *testing.T) {
	for in, want := range map[string]string{
		"alice":     "alice",
		"Bob42":     "Bob42",
		"jane-doe":  "jane-2ddoe",
		"a.b@c.org": "a-2eb-40c-2eorg",
		"été":       "-c3-a9t-c3-a9",
		"":          "",
	} {
		if got := escapeName(in); got != want {
			t.Errorf("escapeName(%q) = %q, want %q", in, got, want)
		}
	}
	if escapeName("a-2d") == escapeName("a--2d") {
		t.Error("escaping is not injective")
	}
}

func TestContainerName(t *testing.T) {
	s := &Spawner{}
	if err := s.setup(); err != nil {
		t.Fatal(err)
	}
	if got := s.containerName("jane-doe", ""); got != "jupyter-jane-2ddoe" {
		t.Errorf("default server: %q", got)
	}
	if got := s.containerName("ann", "gpu 1"); got != "jupyter-ann--gpu-201" {
		t.Errorf("named server: %q", got)
	}
	s.NameTemplate = "{servername}-of-{username}"
	if got := s.containerName("ann", "x"); got != "x-of-ann" {
		t.Errorf("template with servername: %q", got)
	}
}

func TestSetupErrors(t *testing.T) {
	for name, s := range map[string]*Spawner{
		"pull policy":         {PullPolicy: "sometimes"},
		"container port":      {ContainerPort: 70000},
		"name template":       {NameTemplate: "/{username}"},
		"volume target":       {Volumes: []Volume{{Source: "v", Target: "rel"}}},
		"volume name":         {Volumes: []Volume{{Source: "bad name", Target: "/x"}}},
		"extra args key":      {ExtraCreateArgs: json.RawMessage(`{"hostconfig": {}}`)},
		"extra args field":    {ExtraCreateArgs: json.RawMessage(`{"host_config": {"ShmSise": 1}}`)},
		"internal ip on host": {Network: "host", UseInternalIP: true},
		"image":               {Image: "two words"},
		"mem_limit":           {Options: spawners.Options{MemLimit: "lots"}},
	} {
		if err := s.setup(); err == nil {
			t.Errorf("%s: setup accepted %+v", name, s)
		}
	}
	s := &Spawner{}
	if err := s.setup(); err != nil {
		t.Fatal(err)
	}
	if s.Image != DefaultImage || s.PullPolicy != PullIfNotPresent || s.ContainerPort != 8888 || !s.removeOnStop() ||
		s.HubID != DefaultHubID || s.Cmd != nil || s.IP != "127.0.0.1" {
		t.Errorf("defaults: %+v", s)
	}
}

func TestImageFor(t *testing.T) {
	s := &Spawner{Image: "base:1"}
	if err := s.setup(); err != nil {
		t.Fatal(err)
	}
	if img, err := s.ImageFor(nil); img != "base:1" || err != nil {
		t.Errorf("no option: %q %v", img, err)
	}
	if _, err := s.ImageFor(map[string]any{"image": "other:1"}); err == nil || !strings.Contains(err.Error(), "this hub runs base:1 for everyone") {
		t.Errorf("no allowed_images: %v", err)
	}
	s.AllowedImages = []string{"base:1", "scipy:1"}
	if img, err := s.ImageFor(map[string]any{"image": []any{"scipy:1"}}); img != "scipy:1" || err != nil {
		t.Errorf("form list: %q %v", img, err)
	}
	if _, err := s.ValidateUserOptions(map[string]any{"image": "evil:1"}); err == nil ||
		err.Error() != `image "evil:1" is not allowed; choose one of: base:1, scipy:1` {
		t.Errorf("disallowed: %v", err)
	}
	if _, err := s.ImageFor(map[string]any{"image": 3}); err == nil {
		t.Error("a number accepted as an image")
	}
}

func TestCreateConfig(t *testing.T) {
	s := &Spawner{
		Volumes: []Volume{
			{Source: "home-{username}", Target: "/home/{username}"},
			{Source: "/srv/{username}/{servername}", Target: "/srv", ReadOnly: true},
		},
		ExtraCreateArgs: json.RawMessage(`{"config": {"User": "1000", "Labels": {"org.caddyhub.hub": "evil", "x": "y"}}, "host_config": {"ShmSize": 1024}}`),
	}
	s.MemLimit, s.CPULimit, s.Args = "1G", 2, []string{"--debug"}
	if err := s.setup(); err != nil {
		t.Fatal(err)
	}
	req := &spawners.StartRequest{User: "a@b", ServerName: "s1", ServicePrefix: "/user/a@b/s1/",
		Env: map[string]string{"JUPYTERHUB_API_TOKEN": "t"}}
	ch, err := s.choose(nil)
	if err != nil {
		t.Fatal(err)
	}
	ch.image = "img:1"
	cfg, host, _, err := s.createConfig(req, ch, []string{"tini", "--", "start.sh"}, req.ServicePrefix)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(cfg.Cmd, " ") != "tini -- start.sh --debug" {
		t.Errorf("cmd %v: want the image's command with args appended", cfg.Cmd)
	}
	env := strings.Join(cfg.Env, "\n")
	for _, want := range []string{"JUPYTERHUB_API_TOKEN=t", "JUPYTERHUB_SERVICE_URL=http://0.0.0.0:8888/user/a@b/s1/", "MEM_LIMIT=1073741824", "CPU_LIMIT=2.0"} {
		if !strings.Contains(env, want) {
			t.Errorf("env lacks %s:\n%s", want, env)
		}
	}
	if cfg.Labels[LabelHub] != DefaultHubID || cfg.Labels[LabelUser] != "a@b" || cfg.Labels[LabelServer] != "s1" || cfg.Labels["x"] != "y" || cfg.User != "1000" {
		t.Errorf("labels/user %v %q", cfg.Labels, cfg.User)
	}
	if host.Memory != 1<<30 || host.NanoCPUs != 2e9 || host.ShmSize != 1024 {
		t.Errorf("limits %d %d %d", host.Memory, host.NanoCPUs, host.ShmSize)
	}
	b := host.PortBindings[nat.Port("8888/tcp")]
	if len(b) != 1 || b[0].HostIP != "127.0.0.1" || b[0].HostPort != "" {
		t.Errorf("port bindings %v", host.PortBindings)
	}
	want := []mount.Mount{
		{Type: mount.TypeVolume, Source: "home-a-40b", Target: "/home/a-40b"},
		{Type: mount.TypeBind, Source: "/srv/a-40b/s1", Target: "/srv", ReadOnly: true},
	}
	if len(host.Mounts) != 2 || host.Mounts[0] != want[0] || host.Mounts[1] != want[1] {
		t.Errorf("mounts %+v", host.Mounts)
	}

	s.UseInternalIP = true
	_, host, _, _ = s.createConfig(req, ch, nil, req.ServicePrefix)
	if len(host.PortBindings) != 0 {
		t.Errorf("use_internal_ip published %v", host.PortBindings)
	}
}

func TestStartRefusesBeforeTouchingTheEngine(t *testing.T) {
	s := &Spawner{AllowedImages: []string{"a:1"}}
	if err := s.setup(); err != nil {
		t.Fatal(err)
	}
	// No client: a start that reached the engine would panic.
	_, err := s.Start(t.Context(), &spawners.StartRequest{User: "u", UserOptions: map[string]any{"image": "b:1"}}, nil)
	if !errors.Is(err, ErrImageNotAllowed) {
		t.Errorf("err %v", err)
	}
	if _, err := s.Start(t.Context(), &spawners.StartRequest{User: "../x"}, nil); err == nil {
		t.Error("bad user name accepted")
	}
}
