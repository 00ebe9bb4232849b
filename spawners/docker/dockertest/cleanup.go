package dockertest

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/client"
)

// Why this file exists: rootful Podman publishes a container port through the CNI portmap
// plugin, which adds an iptables DNAT rule "-d 127.0.0.1 --dport P -j DNAT --to <container>:8888"
// to the OUTPUT chain of the host. The rule applies to every process on the machine, not only to
// the container's clients. Killing the engine with containers still running skips the CNI teardown,
// so the rule outlives the container. From then on any program that later listens on 127.0.0.1:P
// (a test's httptest server, another test's Caddy, Pebble) gets "connection refused": its clients'
// packets are rewritten to a dead container address. The engine therefore removes its containers
// before it stops, and sweeps rules that no live container owns when it starts and after it stops.

// removeAll force-removes every container of the engine (each removal runs the CNI teardown that
// deletes the container's DNAT rules). It returns the IDs it saw.
func (e *Engine) removeAll(limit time.Duration) []string {
	cli, err := client.NewClientWithOpts(client.WithHost(e.Host), client.WithAPIVersionNegotiation())
	if err != nil {
		return nil
	}
	defer cli.Close()
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	list, err := cli.ContainerList(ctx, container.ListOptions{All: true})
	if err != nil {
		return nil
	}
	ids := make([]string, 0, len(list))
	var wg sync.WaitGroup
	sem := make(chan struct{}, 4)
	for _, c := range list {
		ids = append(ids, c.ID)
		wg.Add(1)
		go func(id string) {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			_ = cli.ContainerRemove(ctx, id, container.RemoveOptions{Force: true, RemoveVolumes: true})
		}(c.ID)
	}
	wg.Wait()
	return ids
}

// cniDNAT matches a CNI portmap jump rule in the nat table's CNI-HOSTPORT-DNAT chain, capturing
// the container ID in its comment, the published ports and the per-container chain.
var cniDNAT = regexp.MustCompile(`^-A CNI-HOSTPORT-DNAT .*id: \\"([0-9a-f]{12,})\\".* --dports (\S+) -j (CNI-DN-\S+)$`)

// cniOwned matches any nat rule carrying a CNI container ID comment (masquerade rules) and the
// chain it jumps to.
var cniOwned = regexp.MustCompile(`^-A (\S+) .*id: \\"([0-9a-f]{12,})\\".* -j (CNI-\S+)$`)

// sweepStaleCNI deletes the CNI port-forwarding rules of containers that no longer exist: those
// of the given container IDs, and those whose published loopback port nothing listens on (a live
// Podman container always has its port held open by conmon). It only runs as root with iptables
// present; it reports what it removed.
func sweepStaleCNI(gone []string) []string {
	if os.Geteuid() != 0 {
		return nil
	}
	if _, err := exec.LookPath("iptables"); err != nil {
		return nil
	}
	out, err := exec.Command("iptables", "-w", "5", "-t", "nat", "-S").Output()
	if err != nil {
		return nil
	}
	dead := map[string]bool{}
	for _, id := range gone {
		dead[id] = true
	}
	var rules []string
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		rules = append(rules, sc.Text())
	}
	for _, r := range rules {
		m := cniDNAT.FindStringSubmatch(r)
		if m == nil || dead[m[1]] {
			continue
		}
		if !anyListening(strings.Split(m[2], ",")) {
			dead[m[1]] = true
		}
	}
	if len(dead) == 0 {
		return nil
	}
	var removed []string
	chains := map[string]bool{}
	for _, r := range rules {
		m := cniOwned.FindStringSubmatch(r)
		if m == nil || !dead[m[2]] {
			continue
		}
		args := append([]string{"-w", "5", "-t", "nat", "-D"}, strings.Fields(strings.TrimPrefix(r, "-A "))...)
		// The comment's quotes are escaped in -S output; unquote it for exec (no shell runs here).
		args = unquoteComment(args)
		if err := exec.Command("iptables", args...).Run(); err == nil {
			removed = append(removed, fmt.Sprintf("%s (container %.12s)", m[1], m[2]))
			chains[m[3]] = true
		}
	}
	for ch := range chains {
		_ = exec.Command("iptables", "-w", "5", "-t", "nat", "-F", ch).Run()
		_ = exec.Command("iptables", "-w", "5", "-t", "nat", "-X", ch).Run()
	}
	return removed
}

// unquoteComment turns the -S form `--comment "dnat name: \"podman\" id: \"x\""`, split on spaces,
// back into the single argument iptables expects.
func unquoteComment(args []string) []string {
	var outArgs []string
	for i := 0; i < len(args); i++ {
		if args[i] != "--comment" || i+1 >= len(args) || !strings.HasPrefix(args[i+1], `"`) {
			outArgs = append(outArgs, args[i])
			continue
		}
		outArgs = append(outArgs, "--comment")
		var parts []string
		j := i + 1
		for ; j < len(args); j++ {
			parts = append(parts, args[j])
			if strings.HasSuffix(args[j], `"`) && !strings.HasSuffix(args[j], `\"`) {
				break
			}
		}
		c := strings.Join(parts, " ")
		c = strings.TrimSuffix(strings.TrimPrefix(c, `"`), `"`)
		outArgs = append(outArgs, strings.ReplaceAll(c, `\"`, `"`))
		i = j
	}
	return outArgs
}

// anyListening reports whether something accepts connections on 127.0.0.1 at one of ports
// ("8080" or a range "8080:8090" as iptables prints it; only the first port of a range is tried).
func anyListening(ports []string) bool {
	for _, p := range ports {
		p, _, _ = strings.Cut(p, ":")
		// A listener shows in /proc/net/tcp; a dial would itself be rewritten by the rule under test.
		if listeningOn(p) {
			return true
		}
	}
	return false
}

// listeningOn reports whether /proc/net/tcp holds a LISTEN socket on port (any local address).
func listeningOn(port string) bool {
	var n int
	if _, err := fmt.Sscanf(port, "%d", &n); err != nil {
		return true // unknown form: leave the rule alone
	}
	hexPort := fmt.Sprintf(":%04X", n)
	for _, f := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n")[1:] {
			fs := strings.Fields(line)
			// fields: sl local_address rem_address st ...; st 0A is LISTEN.
			if len(fs) > 3 && strings.HasSuffix(fs[1], hexPort) && fs[3] == "0A" {
				return true
			}
		}
	}
	return false
}
