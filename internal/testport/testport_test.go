package testport

import (
	"net"
	"strconv"
	"testing"
)

func TestFreeNeverRepeats(t *testing.T) {
	seen := map[int]bool{}
	for range 200 {
		p := Free(t)
		if p < lowest || p >= ephemeralLow() {
			t.Fatalf("port %d outside %d-%d", p, lowest, ephemeralLow()-1)
		}
		if seen[p] {
			t.Fatalf("port %d handed out twice", p)
		}
		seen[p] = true
	}
}

// TestFreeAvoidsPortZeroListeners holds many listen-on-0 listeners open (what an httptest server or
// a spawner picking a port does) and checks Free never returns one of their ports, nor a port that
// a listen-on-0 call returns right after.
func TestFreeAvoidsPortZeroListeners(t *testing.T) {
	held := map[int]bool{}
	for range 50 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		held[l.Addr().(*net.TCPAddr).Port] = true
	}
	for range 50 {
		p := Free(t)
		if held[p] {
			t.Fatalf("Free returned %d, held by a listen-on-0 listener", p)
		}
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		got := l.Addr().(*net.TCPAddr).Port
		l.Close()
		if got == p {
			t.Fatalf("a listen-on-0 call right after Free got the same port %d", p)
		}
	}
}

// TestFreeSkipsBound checks a port something already listens on is never returned.
func TestFreeSkipsBound(t *testing.T) {
	p := Free(t)
	l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p+1)))
	if err != nil {
		t.Skipf("port %d taken meanwhile: %v", p+1, err)
	}
	defer l.Close()
	if q := Free(t); q == p+1 {
		t.Fatalf("Free returned %d, which is bound", q)
	}
}
