package k8stest

import (
	"net"
	"strings"
	"testing"
)

// TestPodIPWraps checks the stand-in's pod addresses stay in 127.1.0.1-127.1.249.250 from any
// starting place (here: across the wrap), and that one kubelet hands out podAddresses distinct ones
// before repeating.
func TestPodIPWraps(t *testing.T) {
	k := &Kubelet{}
	k.nextIP.Store(podAddresses - 3)
	seen := map[string]bool{}
	for range podAddresses {
		ip := k.podIP()
		p := net.ParseIP(ip).To4()
		if p == nil || !strings.HasPrefix(ip, "127.1.") || p[2] > 249 || p[3] < 1 || p[3] > 250 {
			t.Fatalf("pod address %s outside 127.1.0.1-127.1.249.250", ip)
		}
		if seen[ip] {
			t.Fatalf("pod address %s handed out twice", ip)
		}
		seen[ip] = true
	}
}
