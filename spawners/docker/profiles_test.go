package docker

import (
	"errors"
	"strings"
	"testing"

	"github.com/caddyhub/caddyhub/spawners"
)

func profileSpawner(t *testing.T) *Spawner {
	t.Helper()
	s := &Spawner{Image: "base:1", AllowedImages: []string{"base:1", "r:1"}, ProfileList: []Profile{
		{ProfileInfo: spawners.ProfileInfo{Slug: "small", Description: "the default"}},
		{ProfileInfo: spawners.ProfileInfo{Slug: "big", DisplayName: "Big one", Default: true}, Image: "scipy:1", MemLimit: "2G", CPULimit: 2},
	}}
	s.MemLimit, s.CPULimit = "512M", 0.5
	if err := s.setup(); err != nil {
		t.Fatal(err)
	}
	return s
}

func TestProfiles(t *testing.T) {
	s := profileSpawner(t)
	got := s.Profiles()
	if len(got) != 2 || got[0] != (spawners.Profile{Name: "small", DisplayName: "small", Description: "the default"}) ||
		got[1] != (spawners.Profile{Name: "big", DisplayName: "Big one", Description: "Image scipy:1", Default: true}) {
		t.Errorf("profiles %+v", got)
	}
	for _, tc := range []struct {
		opts  map[string]any
		image string
		mem   int64
		cpu   float64
		prof  string
	}{
		{nil, "scipy:1", 2 << 30, 2, "big"}, // the one marked default
		{map[string]any{"profile": "small"}, "base:1", 512 << 20, 0.5, "small"},
		{map[string]any{"profile": []any{"small"}, "image": "r:1"}, "r:1", 512 << 20, 0.5, "small"},
		{map[string]any{"profile": "big", "image": []string{"r:1"}}, "r:1", 2 << 30, 2, "big"}, // image wins over the profile's
	} {
		c, err := s.choose(tc.opts)
		if err != nil || c.image != tc.image || c.memLimit != tc.mem || c.cpuLimit != tc.cpu || c.profile != tc.prof {
			t.Errorf("choose(%v) = %+v, %v; want %s %d %v %s", tc.opts, c, err, tc.image, tc.mem, tc.cpu, tc.prof)
		}
	}
	out, err := s.ValidateUserOptions(map[string]any{"profile": []any{"small"}, "image": []any{"r:1"}, "other": 1})
	if err != nil || out["profile"] != "small" || out["image"] != "r:1" || out["other"] != 1 {
		t.Errorf("normalized %v %v", out, err)
	}
	for opts, want := range map[string]map[string]any{
		`no such profile: "huge"; choose one of: small, big`:         {"profile": "huge"},
		`image "scipy:1" is not allowed; choose one of: base:1, r:1`: {"profile": "small", "image": "scipy:1"},
		"the profile option must be the name of one profile":         {"profile": 3},
	} {
		if _, err := s.ValidateUserOptions(want); err == nil || !strings.Contains(err.Error(), opts) {
			t.Errorf("%v: err %v, want %q", want, err, opts)
		}
	}
	// The chosen limits reach the create request and the environment.
	req := &spawners.StartRequest{User: "u", ServicePrefix: "/user/u/"}
	c, _ := s.choose(nil)
	cfg, host, _, err := s.createConfig(req, c, nil, req.ServicePrefix)
	if err != nil {
		t.Fatal(err)
	}
	env := strings.Join(cfg.Env, "\n")
	if host.Memory != 2<<30 || host.NanoCPUs != 2e9 || cfg.Image != "scipy:1" || cfg.Labels[LabelImage] != "scipy:1" ||
		!strings.Contains(env, "MEM_LIMIT=2147483648") || !strings.Contains(env, "CPU_LIMIT=2.0") {
		t.Errorf("create request: memory %d cpus %d image %s labels %v env\n%s", host.Memory, host.NanoCPUs, cfg.Image, cfg.Labels, env)
	}
	// A start with a profile that is gone (the config changed since it was stored) is refused
	// before the engine is contacted (no client here).
	if _, err := s.Start(t.Context(), &spawners.StartRequest{User: "u", UserOptions: map[string]any{"profile": "gone"}}, nil); !errors.Is(err, ErrImageNotAllowed) {
		t.Errorf("start with an unknown profile: %v", err)
	}
}

func TestProfileSetupErrors(t *testing.T) {
	for name, list := range map[string][]Profile{
		"empty slug":  {{ProfileInfo: spawners.ProfileInfo{Slug: ""}}},
		"bad slug":    {{ProfileInfo: spawners.ProfileInfo{Slug: "a b"}}},
		"twice":       {{ProfileInfo: spawners.ProfileInfo{Slug: "a"}}, {ProfileInfo: spawners.ProfileInfo{Slug: "a"}}},
		"two default": {{ProfileInfo: spawners.ProfileInfo{Slug: "a", Default: true}}, {ProfileInfo: spawners.ProfileInfo{Slug: "b", Default: true}}},
		"image":       {{ProfileInfo: spawners.ProfileInfo{Slug: "a"}, Image: "two words"}},
		"mem":         {{ProfileInfo: spawners.ProfileInfo{Slug: "a"}, MemLimit: "lots"}},
		"cpu":         {{ProfileInfo: spawners.ProfileInfo{Slug: "a"}, CPULimit: -1}},
	} {
		s := &Spawner{ProfileList: list}
		if err := s.setup(); err == nil {
			t.Errorf("%s: setup accepted %+v", name, list)
		}
	}
}

func TestRunsElsewhere(t *testing.T) {
	if !(&Spawner{}).RunsElsewhere() || !(&Spawner{Network: "jupyterhub"}).RunsElsewhere() {
		t.Error("a container on an engine network must need a hub address it can reach")
	}
	if (&Spawner{Network: "host"}).RunsElsewhere() {
		t.Error("with network host the container shares the hub's loopback")
	}
}

func TestPortInUse(t *testing.T) {
	// Podman's message when the host port it picked was taken before it bound it.
	err := errors.New("cannot listen on the TCP port: listen tcp4 127.0.0.1:42139: bind: address already in use")
	if !portInUse(err) || portInUse(errors.New("no such image")) || portInUse(nil) {
		t.Error("portInUse")
	}
}
