// Package procmem reads how much memory a process uses, as Linux reports it, for the benchmarks'
// tables. Three figures, because they answer different questions:
//
//   - VmRSS (/proc/<pid>/status): every page mapped in and resident, the executable's pages
//     included. Those are page cache, shared with every process running the same file and dropped by
//     the kernel under pressure; on kernels with large page-cache folios a whole 2 MiB folio counts
//     as soon as one byte of it is touched (bench/internal/install).
//   - RssAnon (/proc/<pid>/status): what the process allocated itself — heap, stacks, the runtime.
//     Nothing else can reclaim or share it.
//   - Pss (/proc/<pid>/smaps_rollup): the proportional set size, each resident page divided by the
//     number of processes that map it; the sum over processes is what they cost together.
package procmem

import (
	"os"
	"strconv"
	"strings"
)

// Usage is a process's (or a set of processes') memory in bytes.
type Usage struct {
	VmRSS   int64
	RssAnon int64
	Pss     int64
}

// Read returns pid's memory; fields it cannot read (the process is gone, smaps_rollup is not
// readable) are 0.
func Read(pid int) Usage {
	dir := "/proc/" + strconv.Itoa(pid) + "/"
	var u Usage
	if b, err := os.ReadFile(dir + "status"); err == nil {
		u.VmRSS = field(string(b), "VmRSS")
		u.RssAnon = field(string(b), "RssAnon")
	}
	if b, err := os.ReadFile(dir + "smaps_rollup"); err == nil {
		u.Pss = field(string(b), "Pss")
	}
	return u
}

// Sum returns the memory of several processes added up.
func Sum(pids []int) Usage {
	var total Usage
	for _, pid := range pids {
		total = total.Add(Read(pid))
	}
	return total
}

// Add returns u and v added field by field.
func (u Usage) Add(v Usage) Usage {
	return Usage{VmRSS: u.VmRSS + v.VmRSS, RssAnon: u.RssAnon + v.RssAnon, Pss: u.Pss + v.Pss}
}

// MB formats bytes in MiB with one decimal, as "MB" (the unit of the earlier figures), "–" for 0
// (not measured).
func MB(n int64) string {
	if n == 0 {
		return "–"
	}
	return strconv.FormatFloat(float64(n)/(1<<20), 'f', 1, 64) + " MB"
}

// field returns a "<name>: <n> kB" line's value in bytes.
func field(text, name string) int64 {
	for line := range strings.SplitSeq(text, "\n") {
		if rest, ok := strings.CutPrefix(line, name+":"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return kb << 10
		}
	}
	return 0
}
