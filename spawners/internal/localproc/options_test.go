package localproc

import (
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/caddyhub/caddyhub/spawners"
)

func TestProcessOptionsDefaults(t *testing.T) {
	var o ProcessOptions
	if err := o.Provision(); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name      string
		got, want any
	}{
		{"env_keep", o.EnvKeep, DefaultEnvKeep},
		{"term_timeout", time.Duration(o.TermTimeout), 5 * time.Second},
		{"kill_timeout", time.Duration(o.KillTimeout), 5 * time.Second},
		{"ip", o.IP, "127.0.0.1"},
		{"port", o.Port, 0},
	} {
		if !reflect.DeepEqual(c.got, c.want) {
			t.Errorf("%s: got %v, want %v", c.name, c.got, c.want)
		}
	}
	o.EnvKeep[0] = "changed"
	if DefaultEnvKeep[0] != "PATH" {
		t.Fatal("Provision aliased DefaultEnvKeep")
	}
}

func TestProcessOptionsErrors(t *testing.T) {
	for _, c := range []struct {
		name    string
		o       ProcessOptions
		wantErr string
	}{
		{"ok", ProcessOptions{Port: 8888, IP: "::1"}, ""},
		{"negative port", ProcessOptions{Port: -1}, "port: -1"},
		{"big port", ProcessOptions{Port: 70000}, "port: 70000"},
		{"negative timeout", ProcessOptions{TermTimeout: caddy.Duration(-time.Second)}, "term_timeout: must not be negative"},
		{"bad ip", ProcessOptions{IP: "localhost"}, `ip: "localhost" is not an IP address`},
		{"bad env_keep", ProcessOptions{EnvKeep: []string{""}}, "env_keep:"},
	} {
		t.Run(c.name, func(t *testing.T) {
			err := c.o.Provision()
			if c.wantErr == "" {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), c.wantErr) {
				t.Fatalf("got error %v, want one containing %q", err, c.wantErr)
			}
		})
	}
}

func TestUnmarshalCaddyfile(t *testing.T) {
	for _, c := range []struct {
		name    string
		input   string
		want    spawners.Options
		wantLo  ProcessOptions
		wantErr string
	}{
		{
			name: "brief example",
			input: `simple {
				cmd jupyterhub-singleuser
				args --debug
				start_timeout 60s
				http_timeout 30s
				environment FOO bar
				env_keep PATH LANG
			}`,
			want: spawners.Options{
				Cmd: []string{"jupyterhub-singleuser"}, Args: []string{"--debug"},
				StartTimeout: caddy.Duration(time.Minute), HTTPTimeout: caddy.Duration(30 * time.Second),
				Environment: map[string]string{"FOO": "bar"},
			},
			wantLo: ProcessOptions{EnvKeep: []string{"PATH", "LANG"}},
		},
		{name: "empty", input: `simple`},
		{
			name: "everything",
			input: `simple {
				cmd /usr/bin/python3 -m jupyterhub.singleuser
				args --a
				args --b c
				notebook_dir ~/notebooks
				default_url /lab
				environment {
					A 1
					B "two words"
				}
				environment C 3
				poll_interval 1m
				term_timeout 2s
				kill_timeout 1d
				ip 0.0.0.0
				port 9999
				mem_limit 2G
				cpu_limit 0.5
			}`,
			want: spawners.Options{
				Cmd:          []string{"/usr/bin/python3", "-m", "jupyterhub.singleuser"},
				Args:         []string{"--a", "--b", "c"},
				NotebookDir:  "~/notebooks",
				DefaultURL:   "/lab",
				Environment:  map[string]string{"A": "1", "B": "two words", "C": "3"},
				PollInterval: caddy.Duration(time.Minute),
				MemLimit:     "2G", CPULimit: 0.5,
			},
			wantLo: ProcessOptions{
				TermTimeout: caddy.Duration(2 * time.Second),
				KillTimeout: caddy.Duration(24 * time.Hour),
				IP:          "0.0.0.0", Port: 9999,
			},
		},
		{name: "unknown option", input: "simple {\n\tbogus 1\n}", wantErr: `unrecognized option "bogus"`},
		{name: "argument after name", input: `simple extra`, wantErr: "takes no arguments"},
		{name: "bad duration", input: "simple {\n\thttp_timeout soon\n}", wantErr: "http_timeout"},
		{name: "negative duration", input: "simple {\n\tstart_timeout -5s\n}", wantErr: "must not be negative"},
		{name: "negative port", input: "simple {\n\tport -1\n}", wantErr: "port"},
		{name: "port too big", input: "simple {\n\tport 65536\n}", wantErr: "port"},
		{name: "port not a number", input: "simple {\n\tport http\n}", wantErr: "port"},
		{name: "cmd without value", input: "simple {\n\tcmd\n}", wantErr: "wrong argument count"},
		{name: "two notebook dirs", input: "simple {\n\tnotebook_dir a b\n}", wantErr: "wrong argument count"},
		{name: "environment one arg", input: "simple {\n\tenvironment FOO\n}", wantErr: "environment"},
		{name: "env_keep empty", input: "simple {\n\tenv_keep\n}", wantErr: "env_keep needs"},
		{name: "bad ip", input: "simple {\n\tip example.org\n}", wantErr: "not an IP"},
		{name: "bad mem", input: "simple {\n\tmem_limit 1Q\n}", wantErr: "mem_limit"},
		{name: "bad cpu", input: "simple {\n\tcpu_limit -2\n}", wantErr: "cpu_limit"},
	} {
		t.Run(c.name, func(t *testing.T) {
			var o spawners.Options
			var lo ProcessOptions
			err := spawners.UnmarshalCaddyfile(caddyfile.NewTestDispenser(c.input), &o, lo.UnmarshalOption)
			if c.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), c.wantErr) {
					t.Fatalf("got error %v, want one containing %q", err, c.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(o, c.want) {
				t.Fatalf("got  %+v\nwant %+v", o, c.want)
			}
			if !reflect.DeepEqual(lo, c.wantLo) {
				t.Fatalf("got  %+v\nwant %+v", lo, c.wantLo)
			}
		})
	}
}

func TestEnv(t *testing.T) {
	t.Setenv("LANG", "C.UTF-8")
	t.Setenv("SECRET_OF_HUB", "x")
	lo := ProcessOptions{}
	if err := lo.Provision(); err != nil {
		t.Fatal(err)
	}
	o := spawners.Options{
		NotebookDir: "~/work/{username}",
		DefaultURL:  "/lab/tree/{servername}",
		Environment: map[string]string{"JUPYTERHUB_API_URL": "http://override/hub/api", "WHO": "{username}", "H": "{env.LANG}"},
		MemLimit:    "1G",
		CPULimit:    2,
	}
	if err := o.Provision(); err != nil {
		t.Fatal(err)
	}
	req := &spawners.StartRequest{
		User: "alice", ServerName: "gpu", ServicePrefix: "/user/alice/gpu/",
		Env: map[string]string{"JUPYTERHUB_API_TOKEN": "tok", "JUPYTERHUB_API_URL": "http://127.0.0.1:8081/hub/api", "USER": "hub-sent"},
	}
	env := lo.Env(&o, req, "http://127.0.0.1:5000/user/alice/gpu/", "/home/alice", map[string]string{"USER": "alice", "HOME": "/home/alice"})
	want := map[string]string{
		"LANG":                      "C.UTF-8",
		"JUPYTERHUB_API_TOKEN":      "tok",
		"JUPYTERHUB_API_URL":        "http://override/hub/api", // environment wins over the hub's
		"JUPYTERHUB_USER":           "alice",
		"JUPYTERHUB_SERVER_NAME":    "gpu",
		"JUPYTERHUB_SERVICE_PREFIX": "/user/alice/gpu/",
		"JUPYTERHUB_SERVICE_URL":    "http://127.0.0.1:5000/user/alice/gpu/",
		"JUPYTERHUB_ROOT_DIR":       "/home/alice/work/alice",
		"JUPYTERHUB_DEFAULT_URL":    "/lab/tree/gpu",
		"MEM_LIMIT":                 "1073741824",
		"CPU_LIMIT":                 "2.0",
		"WHO":                       "alice",
		"H":                         "C.UTF-8",
		"USER":                      "alice", // the account wins over everything
		"HOME":                      "/home/alice",
	}
	for k, v := range want {
		if env[k] != v {
			t.Errorf("%s = %q, want %q", k, env[k], v)
		}
	}
	if _, ok := env["SECRET_OF_HUB"]; ok {
		t.Error("a hub variable outside env_keep leaked into the server's environment")
	}
	if len(env) != len(want)+countKept(lo.EnvKeep, "LANG") {
		t.Errorf("unexpected extra variables: %v", env)
	}
}

// countKept counts env_keep variables other than skip that are set in the
// test's own environment (PATH, usually).
func countKept(keep []string, skip string) int {
	n := 0
	for _, k := range keep {
		if k != skip {
			if _, ok := os.LookupEnv(k); ok {
				n++
			}
		}
	}
	return n
}
