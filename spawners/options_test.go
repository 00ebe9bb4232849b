package spawners

import (
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
)

func TestProvisionDefaults(t *testing.T) {
	var o Options
	if err := o.Provision(); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name      string
		got, want any
	}{
		{"cmd", o.Cmd, []string{"jupyterhub-singleuser"}},
		{"env_keep", o.EnvKeep, DefaultEnvKeep},
		{"start_timeout", time.Duration(o.StartTimeout), 60 * time.Second},
		{"http_timeout", time.Duration(o.HTTPTimeout), 30 * time.Second},
		{"poll_interval", time.Duration(o.PollInterval), 30 * time.Second},
		{"term_timeout", time.Duration(o.TermTimeout), 5 * time.Second},
		{"kill_timeout", time.Duration(o.KillTimeout), 5 * time.Second},
		{"ip", o.IP, "127.0.0.1"},
		{"port", o.Port, 0},
	} {
		if !reflect.DeepEqual(c.got, c.want) {
			t.Errorf("%s: got %v, want %v", c.name, c.got, c.want)
		}
	}
	// Provision must not alias the package defaults.
	o.Cmd[0] = "changed"
	if DefaultCmd[0] != "jupyterhub-singleuser" {
		t.Fatal("Provision aliased DefaultCmd")
	}
}

func TestProvisionErrors(t *testing.T) {
	for _, c := range []struct {
		name    string
		o       Options
		wantErr string
	}{
		{"ok", Options{Port: 8888, MemLimit: "1G", CPULimit: 1.5, IP: "::1"}, ""},
		{"negative port", Options{Port: -1}, "port: -1"},
		{"big port", Options{Port: 70000}, "port: 70000"},
		{"negative timeout", Options{HTTPTimeout: caddy.Duration(-time.Second)}, "http_timeout: must not be negative"},
		{"bad ip", Options{IP: "localhost"}, `ip: "localhost" is not an IP address`},
		{"bad mem", Options{MemLimit: "lots"}, "mem_limit:"},
		{"negative cpu", Options{CPULimit: -1}, "cpu_limit:"},
		{"empty cmd arg", Options{Cmd: []string{"a", ""}}, "cmd: argument 1 is empty"},
		{"bad env name", Options{Environment: map[string]string{"A=B": "x"}}, "environment:"},
		{"bad env_keep", Options{EnvKeep: []string{""}}, "env_keep:"},
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

func TestParseByteSize(t *testing.T) {
	for _, c := range []struct {
		in   string
		want int64
		ok   bool
	}{
		{"1G", 1 << 30, true},
		{"1g", 1 << 30, true},
		{"512M", 512 << 20, true},
		{"1.5K", 1536, true},
		{"2T", 2 << 40, true},
		{"1073741824", 1073741824, true},
		{"", 0, false},
		{"G", 0, false},
		{"1X", 0, false},
		{"-1G", 0, false},
		{"1e30T", 0, false},
	} {
		got, err := ParseByteSize(c.in)
		if (err == nil) != c.ok || got != c.want {
			t.Errorf("ParseByteSize(%q) = %d, %v; want %d, ok=%v", c.in, got, err, c.want, c.ok)
		}
	}
}

func TestUnmarshalCaddyfile(t *testing.T) {
	for _, c := range []struct {
		name    string
		input   string
		want    Options
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
			want: Options{
				Cmd: []string{"jupyterhub-singleuser"}, Args: []string{"--debug"},
				StartTimeout: caddy.Duration(time.Minute), HTTPTimeout: caddy.Duration(30 * time.Second),
				Environment: map[string]string{"FOO": "bar"}, EnvKeep: []string{"PATH", "LANG"},
			},
		},
		{name: "empty", input: `simple`, want: Options{}},
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
			want: Options{
				Cmd:          []string{"/usr/bin/python3", "-m", "jupyterhub.singleuser"},
				Args:         []string{"--a", "--b", "c"},
				NotebookDir:  "~/notebooks",
				DefaultURL:   "/lab",
				Environment:  map[string]string{"A": "1", "B": "two words", "C": "3"},
				PollInterval: caddy.Duration(time.Minute),
				TermTimeout:  caddy.Duration(2 * time.Second),
				KillTimeout:  caddy.Duration(24 * time.Hour),
				IP:           "0.0.0.0", Port: 9999, MemLimit: "2G", CPULimit: 0.5,
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
			var o Options
			err := UnmarshalCaddyfile(caddyfile.NewTestDispenser(c.input), &o, nil)
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
		})
	}
}

func TestUnmarshalCaddyfileOwnOption(t *testing.T) {
	var o Options
	var seen string
	own := func(d *caddyfile.Dispenser) (bool, error) {
		if d.Val() != "image" {
			return false, nil
		}
		if !d.AllArgs(&seen) {
			return true, d.ArgErr()
		}
		return true, nil
	}
	err := UnmarshalCaddyfile(caddyfile.NewTestDispenser("docker {\n\timage jupyter/base\n\tport 1\n}"), &o, own)
	if err != nil || seen != "jupyter/base" || o.Port != 1 {
		t.Fatalf("err=%v seen=%q port=%d", err, seen, o.Port)
	}
	err = UnmarshalCaddyfile(caddyfile.NewTestDispenser("docker {\n\tvolume x\n}"), &o, own)
	if err == nil || !strings.Contains(err.Error(), `unrecognized option "volume"`) {
		t.Fatalf("got %v, want an unrecognized option error", err)
	}
}

func TestEnv(t *testing.T) {
	t.Setenv("LANG", "C.UTF-8")
	t.Setenv("SECRET_OF_HUB", "x")
	o := Options{
		NotebookDir: "~/work/{username}",
		DefaultURL:  "/lab/tree/{servername}",
		Environment: map[string]string{"JUPYTERHUB_API_URL": "http://override/hub/api", "WHO": "{username}", "H": "{env.LANG}"},
		MemLimit:    "1G",
		CPULimit:    2,
	}
	if err := o.Provision(); err != nil {
		t.Fatal(err)
	}
	req := &StartRequest{
		User: "alice", ServerName: "gpu", ServicePrefix: "/user/alice/gpu/",
		Env: map[string]string{"JUPYTERHUB_API_TOKEN": "tok", "JUPYTERHUB_API_URL": "http://127.0.0.1:8081/hub/api", "USER": "hub-sent"},
	}
	env := o.Env(req, "http://127.0.0.1:5000/user/alice/gpu/", "/home/alice", map[string]string{"USER": "alice", "HOME": "/home/alice"})
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
	if len(env) != len(want)+countKept(o.EnvKeep, "LANG") {
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

func TestExpandAndRootDir(t *testing.T) {
	req := &StartRequest{User: "bob", ServerName: ""}
	for _, c := range []struct {
		notebookDir, want string
	}{
		{"", ""},
		{"~", "/home/bob"},
		{"~/nb", "/home/bob/nb"},
		{"/srv/{username}/", "/srv/bob"},
		{"relative", "/home/bob/relative"},
		{"/x/{unknown}", "/x/{unknown}"},
		{"~bob/x", "/home/bob/~bob/x"},
	} {
		o := Options{NotebookDir: c.notebookDir}
		if got := o.RootDir(req, "/home/bob"); got != c.want {
			t.Errorf("RootDir(%q) = %q, want %q", c.notebookDir, got, c.want)
		}
	}
}

func TestPythonFloat(t *testing.T) {
	for in, want := range map[float64]string{2: "2.0", 0.5: "0.5", 1.25: "1.25", 16: "16.0"} {
		if got := pythonFloat(in); got != want {
			t.Errorf("pythonFloat(%v) = %q, want %q", in, got, want)
		}
	}
}

func TestEnvList(t *testing.T) {
	got := EnvList(map[string]string{"B": "2", "A": "1=x"})
	if !reflect.DeepEqual(got, []string{"A=1=x", "B=2"}) {
		t.Fatalf("got %v", got)
	}
}

func TestCheckNames(t *testing.T) {
	for _, c := range []struct {
		user, server string
		ok           bool
	}{
		{"alice", "", true},
		{"alice", "gpu", true},
		{"a.b", "x..y", true},
		{"", "", false},
		{"..", "", false},
		{".", "", false},
		{"a/b", "", false},
		{"alice", "..", false},
		{"alice", "a/b", false},
		{"al\x00ice", "", false},
	} {
		err := (&StartRequest{User: c.user, ServerName: c.server}).CheckNames()
		if (err == nil) != c.ok {
			t.Errorf("CheckNames(%q, %q) = %v", c.user, c.server, err)
		}
	}
}
