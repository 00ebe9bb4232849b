package testport

import "testing"

func TestFreeNeverRepeats(t *testing.T) {
	seen := map[int]bool{}
	for range 200 {
		p := Free(t)
		if p <= 0 || p > 65535 {
			t.Fatalf("port %d out of range", p)
		}
		if seen[p] {
			t.Fatalf("port %d handed out twice", p)
		}
		seen[p] = true
	}
}
