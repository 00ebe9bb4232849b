package localprocess

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/caddyhub/caddyhub/spawners"
	"github.com/caddyhub/caddyhub/spawners/internal/localproc"
)

// TestProfileApplied: a server started as the user's account with user option "profile" runs with
// that profile's environment, default_url, args and limits; an unknown profile fails the start
// before anything runs.
func TestProfileApplied(t *testing.T) {
	requireRoot(t)
	u, _ := throwawayUser(t, true)
	s := newSpawner(t, func(s *Spawner) {
		s.Environment = map[string]string{"WHICH": "spawner"}
		s.ProfileList = []localproc.Profile{
			{ProfileInfo: spawners.ProfileInfo{Slug: "plain", Default: true}},
			{ProfileInfo: spawners.ProfileInfo{Slug: "lab"}, Args: []string{"-sleep=1ms"}, DefaultURL: "/lab", Environment: map[string]string{"WHICH": "lab-{username}"},
				CPULimit: 2},
		}
	})
	if _, ok := any(s).(spawners.OptionsSpawner); !ok || len(s.Profiles()) != 2 {
		t.Fatalf("the localprocess spawner offers %v", s.Profiles())
	}
	req := newRequest(t, u.Username)
	req.UserOptions = map[string]any{"profile": "lab"}
	srv, err := spawners.StartAndWait(context.Background(), s, req, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Stop(context.Background(), srv.State) })
	resp, err := http.Get(srv.URL + req.ServicePrefix + "api/status")
	if err != nil {
		t.Fatal(err)
	}
	var st status
	err = json.NewDecoder(resp.Body).Decode(&st)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range map[string]string{"WHICH": "lab-" + u.Username, "JUPYTERHUB_DEFAULT_URL": "/lab", "CPU_LIMIT": "2.0", "USER": u.Username} {
		if st.Env[k] != v {
			t.Errorf("profile lab: server env %s = %q, want %q", k, st.Env[k], v)
		}
	}

	req = newRequest(t, u.Username)
	req.UserOptions = map[string]any{"profile": "gpu"}
	if srv, err := s.Start(context.Background(), req, nil); err == nil || !strings.Contains(err.Error(), `unknown profile "gpu"`) {
		if srv != nil {
			_ = s.Stop(context.Background(), srv.State)
		}
		t.Fatalf("unknown profile: Start = %v, want an unknown-profile error", err)
	}
}
