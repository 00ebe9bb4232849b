package exemap

import (
	"os"
	"runtime"
	"strings"
	"testing"
)

const smapsFixture = `00400000-00402000 r--p 00000000 fe:00 42                               /opt/hub/caddy
Rss:                   8 kB
Anonymous:             0 kB
FilePmdMapped:         0 kB
00402000-017cf000 r-xp 00002000 fe:00 42                               /opt/hub/caddy
Rss:               20276 kB
Anonymous:             0 kB
FilePmdMapped:     16384 kB
VmFlags: rd ex mr mw me sd
02e57000-02e58000 r--p 02a56000 fe:00 42                               /opt/hub/caddy
Rss:                   4 kB
Anonymous:             4 kB
02e58000-02f86000 rw-p 02a57000 fe:00 42                               /opt/hub/caddy
Rss:                1192 kB
Anonymous:           244 kB
7f5fae50f000-7f5fae665000 r-xp 00028000 fe:00 7                        /usr/lib/x86_64-linux-gnu/libc.so.6
Rss:                 900 kB
Anonymous:             0 kB
7ffd1c5d9000-7ffd1c5fa000 rw-p 00000000 00:00 0                          [stack]
Rss:                  20 kB
`

func TestParseSmaps(t *testing.T) {
	got := parseSmaps([]byte(smapsFixture), "/opt/hub/caddy")
	want := []mapping{
		{start: 0x400000, end: 0x402000, rss: 8 << 10},
		{start: 0x402000, end: 0x17cf000, rss: 20276 << 10, pmdMapped: 16384 << 10},
		{start: 0x2e57000, end: 0x2e58000, rss: 4 << 10, anonymous: 4 << 10},
		{start: 0x2e58000, end: 0x2f86000, writable: true, rss: 1192 << 10, anonymous: 244 << 10},
	}
	if len(got) != len(want) {
		t.Fatalf("parsed %d mappings, want %d: %+v", len(got), len(want), got)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("mapping %d = %+v, want %+v", i, got[i], want[i])
		}
	}
	if m := parseSmaps([]byte(smapsFixture), "/opt/hub/cad"); len(m) != 0 {
		t.Errorf("a path prefix matched: %+v", m)
	}
}

// TestRelease releases this test binary's own mappings and checks that the
// read-only ones are marked no-huge-page and hold no huge page, that the
// writable and copied ones were left alone, and that the process still runs
// code and reads constant data afterwards.
func TestRelease(t *testing.T) {
	exe, err := os.Readlink("/proc/self/exe")
	if err != nil {
		t.Fatal(err)
	}
	st, err := Release()
	if err != nil {
		t.Fatalf("Release: %v", err)
	}
	if st.Mappings == 0 || st.Bytes == 0 {
		t.Fatalf("Release released nothing: %+v", st)
	}
	runtime.GC() // runs code and reads type data from all over the binary
	data, err := os.ReadFile("/proc/self/smaps")
	if err != nil {
		t.Fatal(err)
	}
	_, err = os.Stat("/sys/kernel/mm/transparent_hugepage")
	thp := err == nil // without it the kernel refuses MADV_NOHUGEPAGE, and maps no huge pages
	released, kept := 0, 0
	for _, block := range splitSmaps(string(data), exe) {
		m := parseSmaps([]byte(block), exe)[0]
		noHuge := strings.Contains(block, " nh")
		switch {
		case m.writable || m.anonymous != 0:
			kept++
			if noHuge {
				t.Errorf("a writable or copied mapping was released:\n%s", block)
			}
		default:
			released++
			if thp && !noHuge {
				t.Errorf("a read-only mapping is not marked nh:\n%s", block)
			}
			if m.pmdMapped != 0 {
				t.Errorf("a released mapping is mapped with huge pages again:\n%s", block)
			}
		}
	}
	if released != st.Mappings {
		t.Errorf("%d read-only mappings now, Release reported %d", released, st.Mappings)
	}
	if kept == 0 {
		t.Error("no writable mapping of the executable found; the test checks nothing")
	}
}

// splitSmaps returns the smaps blocks (header line and fields) of path's mappings.
func splitSmaps(data, path string) []string {
	var out []string
	var cur strings.Builder
	in := false
	flush := func() {
		if in {
			out = append(out, cur.String())
		}
		cur.Reset()
	}
	for _, line := range strings.Split(data, "\n") {
		fields := strings.Fields(line)
		if len(fields) > 0 && !strings.HasSuffix(fields[0], ":") {
			flush()
			in = len(fields) >= 6 && strings.Join(fields[5:], " ") == path
		}
		if in {
			cur.WriteString(line + "\n")
		}
	}
	flush()
	return out
}
