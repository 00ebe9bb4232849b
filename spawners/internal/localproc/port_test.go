//go:build unix

package localproc

import (
	"sync"
	"testing"
)

// TestFreePortDistinct: concurrent spawns get distinct ports, although the kernel may offer a port
// it just handed out again (it is free until the server binds it). Before freePort remembered its
// ports, two of a hundred servers spawned at once could share one, and the hub routed one user to
// another user's server.
func TestFreePortDistinct(t *testing.T) {
	const n = 300
	ports := make(chan int, n)
	var wg sync.WaitGroup
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p, err := freePort("127.0.0.1")
			if err != nil {
				t.Error(err)
				return
			}
			ports <- p
		}()
	}
	wg.Wait()
	close(ports)
	seen := map[int]bool{}
	for p := range ports {
		if seen[p] {
			t.Fatalf("port %d handed out twice", p)
		}
		seen[p] = true
	}
}
