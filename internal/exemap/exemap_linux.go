package exemap

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// release marks the executable's read-only mappings MADV_NOHUGEPAGE and
// drops their page table entries, so that they fault back from the page
// cache as the code and data in them are used, never as 2 MiB entries. Only mappings without private
// (copy-on-write) pages are touched: dropping those would lose data.
func release() (Stats, error) {
	var st Stats
	exe, err := os.Readlink("/proc/self/exe")
	if err != nil {
		return st, fmt.Errorf("finding the executable: %w", err)
	}
	smaps, err := os.ReadFile("/proc/self/smaps")
	if err != nil {
		return st, fmt.Errorf("reading memory mappings: %w", err)
	}
	for _, m := range parseSmaps(smaps, exe) {
		if m.writable || m.anonymous != 0 {
			continue
		}
		// A kernel without transparent huge pages refuses the advice
		// (EINVAL); it maps no 2 MiB pages either, so go on.
		if err := madvise(m, unix.MADV_NOHUGEPAGE, "MADV_NOHUGEPAGE"); err != nil && !errors.Is(err, unix.EINVAL) {
			return st, err
		}
		if err := madvise(m, unix.MADV_DONTNEED, "MADV_DONTNEED"); err != nil {
			return st, err
		}
		st.Mappings++
		st.Bytes += int64(m.end - m.start)
		st.ResidentBefore += m.rss
		st.HugeBefore += m.pmdMapped
	}
	return st, nil
}

// madvise applies advice to the whole of m. The range is the process's own
// executable mapping, passed by address: nothing reads or writes through it.
func madvise(m mapping, advice int, name string) error {
	_, _, errno := unix.Syscall(unix.SYS_MADVISE, uintptr(m.start), uintptr(m.end-m.start), uintptr(advice))
	if errno != 0 {
		return fmt.Errorf("madvise(%s) %#x-%#x: %w", name, m.start, m.end, errno)
	}
	return nil
}

type mapping struct {
	start, end uint64
	writable   bool
	rss        int64 // bytes
	pmdMapped  int64 // bytes
	anonymous  int64 // bytes
}

// parseSmaps returns the mappings of path in a /proc/<pid>/smaps listing.
func parseSmaps(data []byte, path string) []mapping {
	var out []mapping
	var cur *mapping
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		line := sc.Text()
		fields := strings.Fields(line)
		if len(fields) == 0 {
			continue
		}
		if !strings.HasSuffix(fields[0], ":") { // a mapping's header line
			cur = nil
			if len(fields) < 6 || strings.Join(fields[5:], " ") != path {
				continue
			}
			lo, hi, ok := strings.Cut(fields[0], "-")
			if !ok {
				continue
			}
			start, err1 := strconv.ParseUint(lo, 16, 64)
			end, err2 := strconv.ParseUint(hi, 16, 64)
			if err1 != nil || err2 != nil || end <= start {
				continue
			}
			out = append(out, mapping{start: start, end: end, writable: strings.Contains(fields[1], "w")})
			cur = &out[len(out)-1]
			continue
		}
		if cur == nil || len(fields) < 2 {
			continue
		}
		kb, err := strconv.ParseInt(fields[1], 10, 64)
		if err != nil {
			continue
		}
		switch fields[0] {
		case "Rss:":
			cur.rss = kb << 10
		case "FilePmdMapped:":
			cur.pmdMapped = kb << 10
		case "Anonymous:":
			cur.anonymous = kb << 10
		}
	}
	return out
}
