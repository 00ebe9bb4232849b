//go:build unix

package localproc

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestParseStat(t *testing.T) {
	line := "1234 (a (weird) name) S 1 1234 1234 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 987654 1000 200 18446744073709551615"
	st, err := parseStat([]byte(line))
	if err != nil {
		t.Fatal(err)
	}
	if st.State != 'S' || st.PGID != 1234 || st.StartTicks != 987654 {
		t.Fatalf("got %+v", st)
	}
	for _, bad := range []string{"", "1234 (x", "1234 (x) S 1 2", "1 (x) S 1 notanumber 1 0 -1 0 0 0 0 0 0 0 0 0 0 0 1 0 5 0 0"} {
		if _, err := parseStat([]byte(bad)); err == nil {
			t.Errorf("parseStat(%q) succeeded", bad)
		}
	}
}

func TestReadStatSelf(t *testing.T) {
	st, err := readStat(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	pgid, _ := syscall.Getpgid(0)
	if st.PGID != pgid || st.StartTicks == 0 || st.State == 'Z' {
		t.Fatalf("got %+v, pgid %d", st, pgid)
	}
	if _, err := readStat(1 << 30); !errors.Is(err, errNoProcess) {
		t.Fatalf("readStat of a missing pid: %v", err)
	}
}

func TestSafeNameAndLogPath(t *testing.T) {
	for in, want := range map[string]string{
		"alice":       "alice",
		"a.b@c+d-e_f": "a.b@c+d-e_f",
		"..":          "%2E.",
		".hidden":     "%2Ehidden",
		"a/b":         "a%2Fb",
		"sp ace":      "sp%20ace",
		"":            "%",
		"ünï":         "%C3%BCn%C3%AF",
		"100%":        "100%25",
	} {
		if got := SafeName(in); got != want {
			t.Errorf("SafeName(%q) = %q, want %q", in, got, want)
		}
	}
	if got := LogPath("/d", "alice", ""); got != "/d/logs/alice/server.log" {
		t.Errorf("default server log: %s", got)
	}
	if got := LogPath("/d", "alice", "gpu"); got != "/d/logs/alice/server-gpu.log" {
		t.Errorf("named server log: %s", got)
	}
}

func TestLookPath(t *testing.T) {
	dir := t.TempDir()
	exe := filepath.Join(dir, "prog")
	noexec := filepath.Join(dir, "data")
	if err := os.WriteFile(exe, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(noexec, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name, path, want string
		err              error
	}{
		{"prog", "/nonexistent:" + dir, exe, nil},
		{"prog", "relative:" + dir, exe, nil},
		{"prog", "/nonexistent", "", os.ErrNotExist},
		{"data", dir, "", os.ErrPermission},
		{exe, "", exe, nil},
		{filepath.Join(dir, "missing"), "", "", os.ErrNotExist},
	} {
		got, err := lookPath(c.name, c.path)
		if got != c.want || (c.err == nil) != (err == nil) || (c.err != nil && !errors.Is(err, c.err)) {
			t.Errorf("lookPath(%q, %q) = %q, %v; want %q, %v", c.name, c.path, got, err, c.want, c.err)
		}
	}
}

func TestOpenLogAndTail(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "logs", "u", "server.log")
	f, off, err := openLog(p)
	if err != nil {
		t.Fatal(err)
	}
	if off != 0 {
		t.Fatalf("offset %d", off)
	}
	f.WriteString("old run\n")
	f.Close()
	f, off, err = openLog(p)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 30; i++ {
		f.WriteString("line " + string(rune('a'+i%26)) + "\n")
	}
	f.Close()
	tail := tailLines(p, off, 3)
	if tail != "line b\nline c\nline d" {
		t.Fatalf("tail = %q", tail)
	}
	if tail := tailLines(p, off, 100); strings.Contains(tail, "old run") {
		t.Fatal("tail reached into an earlier run's output")
	}
	fi, _ := os.Stat(p)
	di, _ := os.Stat(filepath.Dir(p))
	if fi.Mode().Perm() != 0o600 || di.Mode().Perm() != 0o700 {
		t.Fatalf("log mode %v, dir mode %v", fi.Mode(), di.Mode())
	}
	// A big log is moved aside at the next start.
	if err := os.Truncate(p, maxLogSize+1); err != nil {
		t.Fatal(err)
	}
	f, off, err = openLog(p)
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
	if fi, err := os.Stat(p + ".1"); off != 0 || err != nil || fi.Size() != maxLogSize+1 {
		t.Fatalf("big log not moved aside: offset %d, %v", off, err)
	}
	// A symlink planted at the log's place is not followed.
	link := filepath.Join(dir, "logs", "u", "server-x.log")
	target := filepath.Join(dir, "target")
	os.WriteFile(target, []byte("keep"), 0o600)
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
	if _, _, err := openLog(link); err == nil {
		t.Fatal("openLog followed a symlink")
	}
}

func TestParseState(t *testing.T) {
	for _, c := range []struct {
		in      string
		want    State
		wantErr bool
	}{
		{"", State{}, false},
		{"null", State{}, false},
		{`{"pid": 42}`, State{PID: 42}, false}, // JupyterHub's LocalProcessSpawner state
		{`{"pid":1,"start_ticks":5,"boot_id":"b","port":80,"log":"/l"}`, State{PID: 1, StartTicks: 5, BootID: "b", Port: 80, Log: "/l"}, false},
		{`{"pid":-3}`, State{}, true},
		{`[1,2]`, State{}, true},
		{`{"pid":"x"}`, State{}, true},
	} {
		got, err := ParseState(json.RawMessage(c.in))
		if (err != nil) != c.wantErr || (!c.wantErr && got != c.want) {
			t.Errorf("ParseState(%q) = %+v, %v", c.in, got, err)
		}
	}
}

// TestPollAndStopIdentity checks that Poll and Stop recognise a process by
// PID and start time, and leave alone a process whose PID matches but whose
// start time or boot does not.
func TestPollAndStopIdentity(t *testing.T) {
	cmd := exec.Command("sleep", "60")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		t.Skip("no sleep command:", err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() { _ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL); <-done })
	st, err := readStat(cmd.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}
	ours := State{PID: cmd.Process.Pid, StartTicks: st.StartTicks, BootID: bootID()}
	stranger := ours
	stranger.StartTicks++
	otherBoot := ours
	otherBoot.BootID = "another-boot"
	for _, c := range []struct {
		name string
		s    State
		want bool
	}{
		{"ours", ours, true},
		{"pid only", State{PID: ours.PID}, true},
		{"reused pid", stranger, false},
		{"other boot", otherBoot, false},
		{"no pid", State{}, false},
		{"missing pid", State{PID: 1 << 30}, false},
	} {
		raw, _ := json.Marshal(c.s)
		got, err := Poll(raw)
		if err != nil || got != c.want {
			t.Errorf("%s: Poll = %v, %v; want %v", c.name, got, err, c.want)
		}
	}
	for _, s := range []State{stranger, otherBoot} {
		raw, _ := json.Marshal(s)
		if err := Stop(context.Background(), raw, time.Second, time.Second); err != nil {
			t.Fatal(err)
		}
		select {
		case <-done:
			t.Fatalf("Stop of state %+v killed a process that was not the one it describes", s)
		default:
		}
	}
	raw, _ := json.Marshal(ours)
	if err := Stop(context.Background(), raw, 5*time.Second, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Stop returned but the process is still running")
	}
	if running, _ := Poll(raw); running {
		t.Fatal("Poll says running after Stop")
	}
	// Idempotent.
	if err := Stop(context.Background(), raw, time.Second, time.Second); err != nil {
		t.Fatalf("second Stop: %v", err)
	}
}

func TestConnectHost(t *testing.T) {
	for in, want := range map[string]string{"127.0.0.1": "127.0.0.1", "0.0.0.0": "127.0.0.1", "::": "::1", "::1": "::1", "10.1.2.3": "10.1.2.3"} {
		if got := connectHost(in); got != want {
			t.Errorf("connectHost(%q) = %q, want %q", in, got, want)
		}
	}
}

// BenchmarkPoll measures one Poll of a running process: the hub polls every
// server at start, thousands of them.
func BenchmarkPoll(b *testing.B) {
	cmd := exec.Command("sleep", "600")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		b.Skip("no sleep command:", err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	st, err := readStat(cmd.Process.Pid)
	if err != nil {
		b.Fatal(err)
	}
	raw, _ := json.Marshal(State{PID: cmd.Process.Pid, StartTicks: st.StartTicks, BootID: bootID(), Port: 1, Log: "/x"})
	b.ReportAllocs()
	for b.Loop() {
		if ok, err := Poll(raw); !ok || err != nil {
			b.Fatal(ok, err)
		}
	}
}
