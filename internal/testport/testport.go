// Package testport hands tests TCP ports on 127.0.0.1 that were free a moment ago.
//
// Listening on port 0 and closing the listener is the usual way to find one, but the kernel may hand
// the same port out again to the very next such call: a test that asks for three ports (public, hub
// API, proxy API) can get one of them twice, and the program under test then fails with "address
// already in use". Free remembers every port it returned in this process and never returns one twice.
package testport

import (
	"fmt"
	"net"
	"sync"
)

var (
	mu     sync.Mutex
	handed = map[int]bool{}
)

// T is the part of testing.TB that Free uses.
type T interface {
	Helper()
	Fatalf(format string, args ...any)
}

// Free returns a port on 127.0.0.1 that was free a moment ago and that Free has not returned before
// in this process.
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
	for range 1000 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return 0, fmt.Errorf("listening on 127.0.0.1:0: %w", err)
		}
		p := l.Addr().(*net.TCPAddr).Port
		_ = l.Close()
		if !handed[p] {
			handed[p] = true
			return p, nil
		}
	}
	return 0, fmt.Errorf("no port not already handed out after 1000 tries")
}
