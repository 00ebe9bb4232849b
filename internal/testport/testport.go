// Package testport hands tests TCP ports on 127.0.0.1 that were free a moment ago and that nothing
// else on the machine will be given in the meantime.
//
// Listening on port 0 and closing the listener is the usual way to find one, but it has two races:
// the kernel may hand the same port to the very next listen-on-0 call (a test that asks for three
// ports can get one twice), and any listener opened on port 0 before the program under test binds
// the port (a DNS server in the test, an httptest server, a spawner picking a port for a notebook
// server) can take it. Both end in "address already in use".
//
// Free therefore never uses port 0. It picks ports below the kernel's ephemeral range
// (net.ipv4.ip_local_port_range, which is where every port-0 listener lands), starting at a random
// offset so that test binaries running side by side do not walk the same sequence, checks each is
// free for TCP and for UDP (HTTP/3 binds the HTTPS port over UDP too), and remembers every port it
// returned in this process so it never returns one twice.
package testport

import (
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
)

// lowest is the first port Free considers: below it live well-known and registered services.
const lowest = 10000

var (
	mu     sync.Mutex
	handed = map[int]bool{}
	next   int // the next candidate; 0 before the first call
	hi     int // the first port of the kernel's ephemeral range, read at the first call
)

// T is the part of testing.TB that Free uses.
type T interface {
	Helper()
	Fatalf(format string, args ...any)
}

// Free returns a port on 127.0.0.1 that was free (TCP and UDP) a moment ago, lies outside the
// kernel's ephemeral range, and that Free has not returned before in this process.
func Free(t T) int {
	t.Helper()
	p, err := Next()
	if err != nil {
		t.Fatalf("finding a free port: %v", err)
	}
	return p
}

// Next is Free for code without a testing.TB (benchmark drivers).
func Next() (int, error) {
	mu.Lock()
	defer mu.Unlock()
	if next == 0 {
		hi = ephemeralLow()
		next = lowest + rand.IntN(hi-lowest)
	}
	span := hi - lowest
	for range span {
		p := next
		next++
		if next >= hi {
			next = lowest
		}
		if handed[p] || !free(p) {
			continue
		}
		handed[p] = true
		return p, nil
	}
	return 0, fmt.Errorf("no free port in %d-%d", lowest, hi-1)
}

// free reports whether p can be bound on 127.0.0.1 for both TCP and UDP right now.
func free(p int) bool {
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(p))
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return false
	}
	defer l.Close()
	pc, err := net.ListenPacket("udp", addr)
	if err != nil {
		return false
	}
	_ = pc.Close()
	return true
}

// ephemeralLow is the first port of the kernel's ephemeral range (32768 when it cannot be read, the
// Linux default), and never less than lowest+1000 so that Free always has ports to give.
func ephemeralLow() int {
	lo := 32768
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
		if f := strings.Fields(string(b)); len(f) == 2 {
			if n, err := strconv.Atoi(f[0]); err == nil {
				lo = n
			}
		}
	}
	return max(lo, lowest+1000)
}
