package web

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/caddyhub/caddyhub/auth/authstate"
	"github.com/caddyhub/caddyhub/hubapp/servers"
	"github.com/caddyhub/caddyhub/hubapp/store"
	"github.com/caddyhub/caddyhub/spawners"
)

// profileSpawner is a fake spawner with an options form: two profiles, and a "size" option that
// must be "small" or "big".
type profileSpawner struct {
	*fakeSpawner
}

func (profileSpawner) Profiles() []spawners.Profile {
	return []spawners.Profile{
		{Name: "cpu", DisplayName: "CPU only"},
		{Name: "gpu", DisplayName: "One GPU", Description: "an A100", Default: true},
	}
}

func (profileSpawner) ValidateUserOptions(opts map[string]any) (map[string]any, error) {
	out := map[string]any{"profile": opts["profile"]}
	switch size := opts["size"].(type) {
	case nil:
	case string:
		if size != "small" && size != "big" {
			return nil, fmt.Errorf("size %q: want small or big", size)
		}
		out["size"] = size
	default:
		return nil, errors.New("size must be a string")
	}
	return out, nil
}

var _ spawners.OptionsSpawner = profileSpawner{}

func TestUserOptionsProfiles(t *testing.T) {
	for _, c := range []struct {
		name        string
		opts        map[string]any
		wantProfile string
		wantErr     string
	}{
		{name: "default profile", opts: nil, wantProfile: "gpu"},
		{name: "named", opts: map[string]any{"profile": "cpu", "size": "big"}, wantProfile: "cpu"},
		{name: "from the form", opts: map[string]any{"profile": []string{"cpu"}}, wantProfile: "cpu"},
		{name: "unknown profile", opts: map[string]any{"profile": "tpu"}, wantErr: `No such profile: "tpu". Choose one of: cpu, gpu`},
		{name: "profile not a string", opts: map[string]any{"profile": 3.0}, wantErr: "profile must be a string"},
		{name: "refused by the spawner", opts: map[string]any{"size": "huge"}, wantErr: `Invalid user options: size "huge": want small or big`},
	} {
		t.Run(c.name, func(t *testing.T) {
			sp := profileSpawner{newFakeSpawner()}
			h := newTestHub(t, sp, nil)
			alice := mustUser(t, h, "alice", false)
			_, err := h.startServer(alice, "", c.opts)
			if c.wantErr != "" {
				var se *servers.Refusal
				if !errors.As(err, &se) || refusalStatus(se.Code) != http.StatusBadRequest || se.Msg != c.wantErr {
					t.Fatalf("startServer = %#v, want 400 %q", err, c.wantErr)
				}
				if s := getServer(t, h, "alice", ""); s != nil && s.Active() {
					t.Fatalf("a refused start left a record: %+v", s)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			waitIdle(t, h, "alice", "")
			req := sp.lastRequest()
			if req == nil || req.UserOptions["profile"] != c.wantProfile {
				t.Fatalf("Start got user options %v, want profile %q", req.UserOptions, c.wantProfile)
			}
			if s := getServer(t, h, "alice", ""); s.UserOptions["profile"] != c.wantProfile {
				t.Fatalf("stored user options %v", s.UserOptions)
			}
		})
	}
}

// TestStartRequestCarriesAuthState: the user's auth_state reaches the spawner.
func TestStartRequestCarriesAuthState(t *testing.T) {
	sp := newFakeSpawner()
	c, err := authstate.ParseKeys(strings.Repeat("ab", 32))
	if err != nil {
		t.Fatal(err)
	}
	h := newTestHub(t, sp, func(a *testApp) { a.EnableAuthState, a.crypter = true, c })
	alice := mustUser(t, h, "alice", false)
	if err := h.setAuthState(alice, map[string]any{"access_token": "from-the-idp"}); err != nil {
		t.Fatal(err)
	}
	if _, err := h.startServer(alice, "", nil); err != nil {
		t.Fatal(err)
	}
	waitIdle(t, h, "alice", "")
	if req := sp.lastRequest(); req == nil || req.AuthState["access_token"] != "from-the-idp" {
		t.Fatalf("Start got auth_state %v", req.AuthState)
	}
}

// TestSpawnPageProfiles: the spawn page offers the spawner's profiles, the default one selected,
// and a form post with an unknown profile is refused with 400.
func TestSpawnPageProfiles(t *testing.T) {
	wh := newWebHub(t, false, func(a *testApp) {
		a.spawner = profileSpawner{newFakeSpawner()}
		a.DataDir = t.TempDir()
	})
	c := wh.client(t)
	wh.login(t, c, "alice", nil)
	page := wh.do(t, c, "GET", "/hub/spawn", nil)
	radio := regexp.MustCompile(`<input type="radio" id="profile-(\w+)" name="profile" value="(\w+)"( checked)? required>\s*<span><strong>([^<]*)</strong>(?:<span class="muted">([^<]*)</span>)?</span>`)
	got := radio.FindAllStringSubmatch(page.body, -1)
	want := [][]string{{"cpu", "cpu", "", "CPU only", ""}, {"gpu", "gpu", " checked", "One GPU", "an A100"}}
	if len(got) != len(want) || !strings.Contains(page.body, `<legend>Choose a server</legend>`) {
		t.Fatalf("spawn page's profile choice: %q, want the radios %q in a fieldset:\n%s", got, want, page.body)
	}
	for i := range want {
		if !slices.Equal(got[i][1:], want[i]) {
			t.Errorf("profile %d: %q, want %q", i, got[i][1:], want[i])
		}
	}
	// The profile a server last ran with is chosen again.
	wh.setServer(t, &store.Server{User: "alice", Name: "", UserOptions: map[string]any{"profile": "cpu"}})
	again := wh.do(t, c, "GET", "/hub/spawn", nil)
	if !strings.Contains(again.body, `value="cpu" checked`) || strings.Contains(again.body, `value="gpu" checked`) {
		t.Errorf("the spawn page does not choose the server's last profile, cpu:\n%s", again.body)
	}
	r := wh.do(t, c, "POST", "/hub/spawn/alice", url.Values{"_xsrf": {xsrfOf(t, page.body)}, "profile": {"tpu"}})
	if r.status != http.StatusBadRequest || !strings.Contains(r.body, "No such profile: &#34;tpu&#34;") {
		t.Fatalf("unknown profile: %d %s", r.status, r.body)
	}
}
