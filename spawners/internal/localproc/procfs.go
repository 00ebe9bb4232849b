//go:build unix

package localproc

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
)

// procStat is the part of /proc/<pid>/stat (proc(5)) that tells a process
// apart from a later one that got the same PID.
type procStat struct {
	State      byte   // field 3: R, S, D, Z, T...
	PGID       int    // field 5
	StartTicks uint64 // field 22: start time after boot, in clock ticks
}

// errNoProcess means no process with that PID exists.
var errNoProcess = errors.New("no such process")

// readStat reads /proc/<pid>/stat. It returns errNoProcess when the process
// does not exist.
func readStat(pid int) (procStat, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		if errors.Is(err, os.ErrNotExist) || errors.Is(err, syscall.ESRCH) {
			return procStat{}, errNoProcess
		}
		return procStat{}, fmt.Errorf("reading process %d status: %w", pid, err)
	}
	return parseStat(b)
}

// parseStat parses the contents of /proc/<pid>/stat. The command name in
// field 2 may hold spaces and parentheses, so fields are counted from the
// last ')'.
func parseStat(b []byte) (procStat, error) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 || i+2 > len(b) {
		return procStat{}, fmt.Errorf("malformed /proc stat line %.40q", b)
	}
	f := strings.Fields(string(b[i+1:]))
	// f[0] is field 3 (state), so field n is f[n-3].
	if len(f) < 20 || len(f[0]) != 1 {
		return procStat{}, fmt.Errorf("malformed /proc stat line %.40q", b)
	}
	pgid, err1 := strconv.Atoi(f[5-3])
	start, err2 := strconv.ParseUint(f[22-3], 10, 64)
	if err1 != nil || err2 != nil {
		return procStat{}, fmt.Errorf("malformed /proc stat line %.40q", b)
	}
	return procStat{State: f[0][0], PGID: pgid, StartTicks: start}, nil
}

var (
	bootIDOnce sync.Once
	bootIDVal  string
)

// bootID returns this boot's random ID (/proc/sys/kernel/random/boot_id), or
// "" when it cannot be read. Start times in ticks are only comparable within
// one boot.
func bootID() string {
	bootIDOnce.Do(func() {
		b, err := os.ReadFile("/proc/sys/kernel/random/boot_id")
		if err == nil {
			bootIDVal = strings.TrimSpace(string(b))
		}
	})
	return bootIDVal
}

// groupMembersAlive reports whether a process other than a zombie is in
// process group pgid and started no earlier than notBefore (clock ticks).
// It scans /proc, so it is for Stop, not Poll.
func groupMembersAlive(pgid int, notBefore uint64) (bool, error) {
	// Fast path: no process at all in the group.
	if err := syscall.Kill(-pgid, 0); errors.Is(err, syscall.ESRCH) {
		return false, nil
	}
	if !haveProcfs() {
		return true, nil // the kill above found some process in the group
	}
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return false, fmt.Errorf("listing processes: %w", err)
	}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		st, err := readStat(pid)
		if err != nil {
			continue // gone meanwhile, or not ours to read
		}
		if st.PGID == pgid && st.State != 'Z' && st.StartTicks >= notBefore {
			return true, nil
		}
	}
	return false, nil
}

var (
	procfsOnce sync.Once
	procfsOK   bool
)

// haveProcfs reports whether /proc is Linux's procfs. Without it (macOS,
// the BSDs) processes are checked by PID alone, as JupyterHub does.
func haveProcfs() bool {
	procfsOnce.Do(func() {
		_, err := os.Stat("/proc/self/stat")
		procfsOK = err == nil
	})
	return procfsOK
}
