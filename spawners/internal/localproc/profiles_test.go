package localproc

import (
	"reflect"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/caddyhub/caddyhub/spawners"
)

const profilesCaddyfile = `simple {
	cmd jupyterhub-singleuser
	environment SHARED base
	environment KEEP kept
	profile small {
		display_name "Small (1 GB)"
		description "The usual notebook"
		mem_limit 1G
	}
	profile lab {
		display_name "JupyterLab"
		default
		default_url /lab
		environment SHARED lab
		environment LAB_ONLY yes
		cpu_limit 2
	}
	profile debug {
		cmd /usr/bin/python3 -m jupyterhub.singleuser
		args --debug
		args --log-level DEBUG
	}
}`

// provisioned parses input the way the spawner modules do and provisions the result.
func provisioned(t *testing.T, input string) (*spawners.Options, *ProcessOptions) {
	t.Helper()
	var o spawners.Options
	var lo ProcessOptions
	if err := spawners.UnmarshalCaddyfile(caddyfile.NewTestDispenser(input), &o, lo.UnmarshalOption); err != nil {
		t.Fatal(err)
	}
	if err := o.Provision(); err != nil {
		t.Fatal(err)
	}
	if err := lo.Provision(); err != nil {
		t.Fatal(err)
	}
	if err := lo.ProvisionProfiles(&o); err != nil {
		t.Fatal(err)
	}
	return &o, &lo
}

func TestProfilesCaddyfile(t *testing.T) {
	var o spawners.Options
	var lo ProcessOptions
	if err := spawners.UnmarshalCaddyfile(caddyfile.NewTestDispenser(profilesCaddyfile), &o, lo.UnmarshalOption); err != nil {
		t.Fatal(err)
	}
	want := []Profile{
		{ProfileInfo: spawners.ProfileInfo{Slug: "small", DisplayName: "Small (1 GB)", Description: "The usual notebook"}, MemLimit: "1G"},
		{ProfileInfo: spawners.ProfileInfo{Slug: "lab", DisplayName: "JupyterLab", Default: true}, DefaultURL: "/lab",
			Environment: map[string]string{"SHARED": "lab", "LAB_ONLY": "yes"}, CPULimit: 2},
		{ProfileInfo: spawners.ProfileInfo{Slug: "debug"}, Cmd: []string{"/usr/bin/python3", "-m", "jupyterhub.singleuser"},
			Args: []string{"--debug", "--log-level", "DEBUG"}},
	}
	if !reflect.DeepEqual(lo.ProfileList, want) {
		t.Fatalf("profiles\n got %+v\nwant %+v", lo.ProfileList, want)
	}
	for _, c := range []struct{ name, input, wantErr string }{
		{"no slug", "simple {\n\tprofile {\n\t}\n}", "profile: want <slug>"},
		{"unknown option", "simple {\n\tprofile a {\n\t\timage x\n\t}\n}", `profile a: unrecognized option "image"`},
		{"default with argument", "simple {\n\tprofile a {\n\t\tdefault yes\n\t}\n}", "default takes no argument"},
		{"bad mem", "simple {\n\tprofile a {\n\t\tmem_limit lots\n\t}\n}", "profile a: mem_limit"},
		{"bad cpu", "simple {\n\tprofile a {\n\t\tcpu_limit -1\n\t}\n}", "profile a: cpu_limit"},
		{"env one arg", "simple {\n\tprofile a {\n\t\tenvironment X\n\t}\n}", "environment wants <name> <value>"},
		{"env bad name", "simple {\n\tprofile a {\n\t\tenvironment A=B c\n\t}\n}", "not a valid variable name"},
		{"cmd empty", "simple {\n\tprofile a {\n\t\tcmd\n\t}\n}", "cmd needs at least one value"},
	} {
		t.Run(c.name, func(t *testing.T) {
			var o spawners.Options
			var lo ProcessOptions
			err := spawners.UnmarshalCaddyfile(caddyfile.NewTestDispenser(c.input), &o, lo.UnmarshalOption)
			if err == nil || !strings.Contains(err.Error(), c.wantErr) {
				t.Fatalf("got error %v, want one containing %q", err, c.wantErr)
			}
		})
	}
}

func TestProvisionProfilesErrors(t *testing.T) {
	for _, c := range []struct {
		name    string
		list    []Profile
		wantErr string
	}{
		{"empty slug", []Profile{{}}, `profile 0: slug ""`},
		{"bad slug", []Profile{{ProfileInfo: spawners.ProfileInfo{Slug: "a b"}}}, `slug "a b"`},
		{"twice", []Profile{{ProfileInfo: spawners.ProfileInfo{Slug: "a"}}, {ProfileInfo: spawners.ProfileInfo{Slug: "a"}}}, `profile "a" is defined twice`},
		{"two defaults", []Profile{{ProfileInfo: spawners.ProfileInfo{Slug: "a", Default: true}}, {ProfileInfo: spawners.ProfileInfo{Slug: "b", Default: true}}}, "2 are marked default"},
		{"bad mem (JSON)", []Profile{{ProfileInfo: spawners.ProfileInfo{Slug: "a"}, MemLimit: "1Q"}}, `profile "a": mem_limit`},
		{"bad env (JSON)", []Profile{{ProfileInfo: spawners.ProfileInfo{Slug: "a"}, Environment: map[string]string{"": "x"}}}, `profile "a": environment`},
		{"empty cmd arg (JSON)", []Profile{{ProfileInfo: spawners.ProfileInfo{Slug: "a"}, Cmd: []string{""}}}, `profile "a": cmd: argument 0 is empty`},
	} {
		t.Run(c.name, func(t *testing.T) {
			o := &spawners.Options{}
			if err := o.Provision(); err != nil {
				t.Fatal(err)
			}
			lo := ProcessOptions{ProfileList: c.list}
			err := lo.ProvisionProfiles(o)
			if err == nil || !strings.Contains(err.Error(), c.wantErr) {
				t.Fatalf("got error %v, want one containing %q", err, c.wantErr)
			}
		})
	}
}

func TestProfilesAndValidation(t *testing.T) {
	_, lo := provisioned(t, profilesCaddyfile)
	want := []spawners.Profile{
		{Name: "small", DisplayName: "Small (1 GB)", Description: "The usual notebook"},
		{Name: "lab", DisplayName: "JupyterLab", Default: true},
		{Name: "debug", DisplayName: "debug"},
	}
	if got := lo.Profiles(); !reflect.DeepEqual(got, want) {
		t.Fatalf("Profiles() = %+v, want %+v", got, want)
	}
	for _, c := range []struct {
		name    string
		opts    map[string]any
		want    map[string]any
		wantErr string
	}{
		{"none: the default", nil, map[string]any{"profile": "lab"}, ""},
		{"named", map[string]any{"profile": "small"}, map[string]any{"profile": "small"}, ""},
		{"from a form", map[string]any{"profile": []string{"debug"}}, map[string]any{"profile": "debug"}, ""},
		{"from JSON list", map[string]any{"profile": []any{"debug"}}, map[string]any{"profile": "debug"}, ""},
		{"unknown", map[string]any{"profile": "gpu"}, nil, `unknown profile "gpu"; choose one of: small, lab, debug`},
		{"not a string", map[string]any{"profile": 3.0}, nil, "must be the name of one profile"},
		{"two in a list", map[string]any{"profile": []string{"lab", "small"}}, nil, "must be the name of one profile"},
		// Values no profile offers never get through, whatever their name.
		{"smuggled cmd", map[string]any{"profile": "lab", "cmd": "/bin/sh"}, nil, `unknown option "cmd"`},
		{"smuggled environment", map[string]any{"environment": map[string]any{"LD_PRELOAD": "/tmp/x"}}, nil, `unknown option "environment"`},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := lo.ValidateUserOptions(c.opts)
			if c.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), c.wantErr) {
					t.Fatalf("got %v, %v; want an error containing %q", got, err, c.wantErr)
				}
				return
			}
			if err != nil || !reflect.DeepEqual(got, c.want) {
				t.Fatalf("got %v, %v; want %v", got, err, c.want)
			}
		})
	}
}

func TestOptionsForAppliesOverrides(t *testing.T) {
	common, lo := provisioned(t, profilesCaddyfile)
	req := &spawners.StartRequest{User: "alice", ServicePrefix: "/user/alice/"}
	envOf := func(profile string) (*spawners.Options, map[string]string) {
		t.Helper()
		o, err := lo.OptionsFor(common, map[string]any{"profile": profile})
		if err != nil {
			t.Fatal(err)
		}
		return o, o.Env(req, "http://127.0.0.1:1/user/alice/", "/home/alice")
	}
	o, env := envOf("lab")
	if env["SHARED"] != "lab" || env["LAB_ONLY"] != "yes" || env["KEEP"] != "kept" ||
		env["JUPYTERHUB_DEFAULT_URL"] != "/lab" || env["CPU_LIMIT"] != "2.0" || env["MEM_LIMIT"] != "" {
		t.Errorf("profile lab: environment %v", env)
	}
	if !reflect.DeepEqual(o.Cmd, []string{"jupyterhub-singleuser"}) || o.Args != nil {
		t.Errorf("profile lab: cmd %q args %q, want the spawner's", o.Cmd, o.Args)
	}
	_, env = envOf("small")
	if env["SHARED"] != "base" || env["LAB_ONLY"] != "" || env["MEM_LIMIT"] != "1073741824" || env["JUPYTERHUB_DEFAULT_URL"] != "" {
		t.Errorf("profile small: environment %v", env)
	}
	o, _ = envOf("debug")
	if got := append(append([]string(nil), o.Cmd...), o.Args...); !reflect.DeepEqual(got,
		[]string{"/usr/bin/python3", "-m", "jupyterhub.singleuser", "--debug", "--log-level", "DEBUG"}) {
		t.Errorf("profile debug: argv %q", got)
	}
	// The spawner's own options are untouched by the profiles.
	if common.Environment["SHARED"] != "base" || len(common.Environment) != 2 || common.DefaultURL != "" {
		t.Errorf("the spawner's options changed: %+v", common)
	}
	// No profile named: the default one.
	if o, err := lo.OptionsFor(common, nil); err != nil || o.DefaultURL != "/lab" {
		t.Errorf("no profile: default_url %q, %v; want the default profile's /lab", o.DefaultURL, err)
	}
	// A stored profile the configuration no longer offers fails the start, in words.
	if _, err := lo.OptionsFor(common, map[string]any{"profile": "gone"}); err == nil || !strings.Contains(err.Error(), `unknown profile "gone"`) {
		t.Errorf("removed profile: %v", err)
	}
}

func TestNoProfiles(t *testing.T) {
	common, lo := provisioned(t, "simple")
	if got := lo.Profiles(); len(got) != 0 {
		t.Fatalf("Profiles() = %v, want none", got)
	}
	opts := map[string]any{"anything": "goes"}
	if got, err := lo.ValidateUserOptions(opts); err != nil || !reflect.DeepEqual(got, opts) {
		t.Errorf("no profiles: got %v, %v; want the options as they came", got, err)
	}
	if _, err := lo.ValidateUserOptions(map[string]any{"profile": "x"}); err == nil || !strings.Contains(err.Error(), "no profiles to choose from") {
		t.Errorf("a profile with none configured: %v", err)
	}
	if o, err := lo.OptionsFor(common, nil); err != nil || o != common {
		t.Errorf("no profiles: OptionsFor = %p, %v; want the spawner's own options", o, err)
	}
}
