package simple

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"

	"github.com/caddyhub/caddyhub/spawners"
	"github.com/caddyhub/caddyhub/spawners/internal/localproc"
)

// TestProfileApplied: a start with user option "profile" runs the chosen profile's cmd, args,
// environment, default_url and limits, as the started process sees them; the default profile when
// none is named; an unknown one fails the start and leaves nothing running.
func TestProfileApplied(t *testing.T) {
	s := newSpawner(t, func(s *Spawner) {
		s.Environment = map[string]string{"WHICH": "spawner", "KEEP": "kept"}
		s.ProfileList = []localproc.Profile{
			{ProfileInfo: spawners.ProfileInfo{Slug: "plain", Default: true}},
			{ProfileInfo: spawners.ProfileInfo{Slug: "lab", DisplayName: "JupyterLab"}, Args: []string{"-sleep=1ms"}, DefaultURL: "/lab",
				Environment: map[string]string{"WHICH": "lab-{username}"}, MemLimit: "1G", CPULimit: 1.5},
		}
	})
	if got := s.Profiles(); len(got) != 2 || got[1].Name != "lab" || got[1].DisplayName != "JupyterLab" || !got[0].Default {
		t.Fatalf("Profiles() = %+v", got)
	}

	req := newRequest(t, "alice")
	req.UserOptions = map[string]any{"profile": "lab"}
	srv, _ := start(t, s, req)
	st := getStatus(t, srv, req.ServicePrefix)
	for k, v := range map[string]string{"WHICH": "lab-alice", "KEEP": "kept", "JUPYTERHUB_DEFAULT_URL": "/lab",
		"MEM_LIMIT": "1073741824", "CPU_LIMIT": "1.5"} {
		if st.Env[k] != v {
			t.Errorf("profile lab: server env %s = %q, want %q", k, st.Env[k], v)
		}
	}
	if len(st.Args) != 2 || st.Args[1] != "-sleep=1ms" {
		t.Errorf("profile lab: server args %q, want [<cmd> -sleep=1ms]", st.Args)
	}

	req = newRequest(t, "bob")
	srv, _ = start(t, s, req) // no profile named: the default one, plain
	st = getStatus(t, srv, req.ServicePrefix)
	if st.Env["WHICH"] != "spawner" || st.Env["JUPYTERHUB_DEFAULT_URL"] != "" || st.Env["MEM_LIMIT"] != "" {
		t.Errorf("default profile: server env WHICH=%q JUPYTERHUB_DEFAULT_URL=%q MEM_LIMIT=%q, want the spawner's own",
			st.Env["WHICH"], st.Env["JUPYTERHUB_DEFAULT_URL"], st.Env["MEM_LIMIT"])
	}

	req = newRequest(t, "carol")
	req.UserOptions = map[string]any{"profile": "gpu"}
	if srv, err := s.Start(context.Background(), req, nil); err == nil || !strings.Contains(err.Error(), `unknown profile "gpu"`) {
		if srv != nil {
			_ = s.Stop(context.Background(), srv.State)
		}
		t.Fatalf("unknown profile: Start = %v, want an unknown-profile error", err)
	}
}

// TestProfileFailingCmd: a profile whose cmd exits at once fails the start with the early-exit error.
func TestProfileFailingCmd(t *testing.T) {
	s := newSpawner(t, func(s *Spawner) {
		s.ProfileList = []localproc.Profile{{ProfileInfo: spawners.ProfileInfo{Slug: "ok"}}, {ProfileInfo: spawners.ProfileInfo{Slug: "broken"}, Cmd: []string{"/bin/false"}}}
	})
	req := newRequest(t, "alice")
	req.UserOptions = map[string]any{"profile": "broken"}
	_, err := spawners.StartAndWait(context.Background(), s, req, nil)
	if !errors.Is(err, spawners.ErrExitedEarly) {
		t.Fatalf("profile broken: got %v, want ErrExitedEarly", err)
	}
}

func TestProfilesJSON(t *testing.T) {
	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	defer cancel()
	mod, err := ctx.LoadModuleByID("jupyterhub.spawners.simple", json.RawMessage(
		`{"profiles":[{"slug":"a","display_name":"A","environment":{"X":"1"},"cmd":["x"]},{"slug":"b","default":true}]}`))
	if err != nil {
		t.Fatal(err)
	}
	s := mod.(*Spawner)
	if got, err := s.ValidateUserOptions(nil); err != nil || got["profile"] != "b" {
		t.Fatalf("ValidateUserOptions(nil) = %v, %v; want the default profile b", got, err)
	}
	for _, bad := range []string{`{"profiles":[{"slug":"a"},{"slug":"a"}]}`, `{"profiles":[{"slug":"a","mem_limit":"x"}]}`,
		`{"profiles":[{"slug":"a","bogus":1}]}`} {
		if _, err := ctx.LoadModuleByID("jupyterhub.spawners.simple", json.RawMessage(bad)); err == nil {
			t.Errorf("%s was accepted", bad)
		}
	}
}
