package spawners

import (
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
		{"start_timeout", time.Duration(o.StartTimeout), 60 * time.Second},
		{"http_timeout", time.Duration(o.HTTPTimeout), 30 * time.Second},
		{"poll_interval", time.Duration(o.PollInterval), 30 * time.Second},
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
		{"ok", Options{MemLimit: "1G", CPULimit: 1.5}, ""},
		{"negative timeout", Options{HTTPTimeout: caddy.Duration(-time.Second)}, "http_timeout: must not be negative"},
		{"bad mem", Options{MemLimit: "lots"}, "mem_limit:"},
		{"negative cpu", Options{CPULimit: -1}, "cpu_limit:"},
		{"empty cmd arg", Options{Cmd: []string{"a", ""}}, "cmd: argument 1 is empty"},
		{"bad env name", Options{Environment: map[string]string{"A=B": "x"}}, "environment:"},
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

// TestUnmarshalCaddyfileShared: the local-process options are not shared ones (the local spawners
// parse them, spawners/internal/localproc); the full syntax is tested there.
func TestUnmarshalCaddyfileShared(t *testing.T) {
	var o Options
	err := UnmarshalCaddyfile(caddyfile.NewTestDispenser("docker {\n\tcmd a\n\tmem_limit 1G\n}"), &o, nil)
	if err != nil || o.Cmd[0] != "a" || o.MemLimit != "1G" {
		t.Fatalf("err=%v options=%+v", err, o)
	}
	for _, name := range []string{"env_keep PATH", "ip 127.0.0.1", "port 1", "term_timeout 1s", "kill_timeout 1s"} {
		err := UnmarshalCaddyfile(caddyfile.NewTestDispenser("docker {\n\t"+name+"\n}"), &o, nil)
		if err == nil || !strings.Contains(err.Error(), "unrecognized option") {
			t.Errorf("%s: got %v, want an unrecognized option error", name, err)
		}
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
	err := UnmarshalCaddyfile(caddyfile.NewTestDispenser("docker {\n\timage jupyter/base\n\tcpu_limit 1\n}"), &o, own)
	if err != nil || seen != "jupyter/base" || o.CPULimit != 1 {
		t.Fatalf("err=%v seen=%q cpu_limit=%v", err, seen, o.CPULimit)
	}
	err = UnmarshalCaddyfile(caddyfile.NewTestDispenser("docker {\n\tvolume x\n}"), &o, own)
	if err == nil || !strings.Contains(err.Error(), `unrecognized option "volume"`) {
		t.Fatalf("got %v, want an unrecognized option error", err)
	}
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
