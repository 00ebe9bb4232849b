package dockertest

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// The rule forms are copied from `iptables -t nat -S` on a machine running rootful Podman 4.3 with CNI.
const (
	jumpRule = `-A CNI-HOSTPORT-DNAT -p tcp -m comment --comment "dnat name: \"podman\" id: \"b250d531532840bf1c5da323c634459048794697805936664cd414ce4776bf9d\"" -m multiport --dports 36459 -j CNI-DN-01bf716205c4d7710e5a3`
	masqRule = `-A POSTROUTING -s 10.88.0.131/32 -m comment --comment "name: \"podman\" id: \"b250d531532840bf1c5da323c634459048794697805936664cd414ce4776bf9d\"" -j CNI-49f4b0bf3b3771ec86a8ebde`
)

func TestCNIRuleParsing(t *testing.T) {
	m := cniDNAT.FindStringSubmatch(jumpRule)
	if m == nil || !strings.HasPrefix(m[1], "b250d5315328") || m[2] != "36459" || m[3] != "CNI-DN-01bf716205c4d7710e5a3" {
		t.Fatalf("jump rule: %q", m)
	}
	m = cniOwned.FindStringSubmatch(masqRule)
	if m == nil || m[1] != "POSTROUTING" || !strings.HasPrefix(m[2], "b250d5315328") || m[3] != "CNI-49f4b0bf3b3771ec86a8ebde" {
		t.Fatalf("masquerade rule: %q", m)
	}
	if cniDNAT.FindStringSubmatch(`-A OUTPUT -m addrtype --dst-type LOCAL -j CNI-HOSTPORT-DNAT`) != nil {
		t.Fatal("the hook rule into CNI-HOSTPORT-DNAT must never be taken for a container's rule")
	}
}

func TestUnquoteComment(t *testing.T) {
	args := strings.Fields(strings.TrimPrefix(masqRule, "-A "))
	got := unquoteComment(args)
	want := []string{"POSTROUTING", "-s", "10.88.0.131/32", "-m", "comment", "--comment",
		`name: "podman" id: "b250d531532840bf1c5da323c634459048794697805936664cd414ce4776bf9d"`,
		"-j", "CNI-49f4b0bf3b3771ec86a8ebde"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %q\nwant %q", got, want)
	}
}

func TestListeningOn(t *testing.T) {
	if !listeningOn("notaport") {
		t.Fatal("an unreadable port must count as in use (the rule is left alone)")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
	if !listeningOn(port) {
		t.Fatalf("port %s: a listener is open", port)
	}
	ln.Close()
	if listeningOn(port) {
		t.Fatalf("port %s: closed, still seen listening", port)
	}
}

// TestSweepStaleCNI puts a stale portmap rule pair (as CNI leaves it when its container is killed) into
// the real nat table and checks the sweep removes it, chain included, while a rule whose port has a
// listener stays.
func TestSweepStaleCNI(t *testing.T) {
	if os.Geteuid() != 0 {
		skipOrFail(t, fmt.Errorf("iptables needs root"))
	}
	if _, err := exec.LookPath("iptables"); err != nil {
		skipOrFail(t, err)
	}
	ipt := func(args ...string) error {
		out, err := exec.Command("iptables", append([]string{"-w", "5", "-t", "nat"}, args...)...).CombinedOutput()
		if err != nil {
			return fmt.Errorf("iptables %v: %v: %s", args, err, out)
		}
		return nil
	}
	_ = ipt("-N", "CNI-HOSTPORT-DNAT") // exists already wherever Podman ran
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	live := ln.Addr().(*net.TCPAddr).Port
	dead := live + 1
	for dead == live || listeningOn(strconv.Itoa(dead)) {
		dead++
	}
	add := func(id string, port int) string {
		chain := "CNI-DN-cht" + id[:10]
		if err := ipt("-N", chain); err != nil {
			t.Fatal(err)
		}
		if err := ipt("-A", chain, "-d", "127.0.0.1/32", "-p", "tcp", "-m", "tcp", "--dport", strconv.Itoa(port), "-j", "DNAT", "--to-destination", "10.88.255.254:8888"); err != nil {
			t.Fatal(err)
		}
		if err := ipt("-A", "CNI-HOSTPORT-DNAT", "-p", "tcp", "-m", "comment", "--comment", `dnat name: "podman" id: "`+id+`"`, "-m", "multiport", "--dports", strconv.Itoa(port), "-j", chain); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			_ = ipt("-D", "CNI-HOSTPORT-DNAT", "-p", "tcp", "-m", "comment", "--comment", `dnat name: "podman" id: "`+id+`"`, "-m", "multiport", "--dports", strconv.Itoa(port), "-j", chain)
			_ = ipt("-F", chain)
			_ = ipt("-X", chain)
		})
		return chain
	}
	staleID, liveID := "c0ffee"+strings.Repeat("1", 58), "c0ffee"+strings.Repeat("2", 58)
	staleChain, liveChain := add(staleID, dead), add(liveID, live)
	removed := sweepStaleCNI(nil)
	if !slices.ContainsFunc(removed, func(s string) bool { return strings.Contains(s, staleID[:12]) }) {
		t.Errorf("sweep removed %q, want the rule of %s", removed, staleID[:12])
	}
	if ipt("-S", staleChain) == nil {
		t.Errorf("chain %s of the stale rule is still there", staleChain)
	}
	if err := ipt("-S", liveChain); err != nil {
		t.Errorf("the rule of a port with a listener was removed: %v", err)
	}
}
