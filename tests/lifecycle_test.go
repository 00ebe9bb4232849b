package tests

import (
	"fmt"
	"net/http"
	"os"
	"strings"
	"testing"
)

func TestMain(m *testing.M) {
	code := m.Run()
	CleanupBuild()
	os.Exit(code)
}

// TestHarness checks the harness itself: start, admin injection, reload, stop, kill -9.
func TestHarness(t *testing.T) {
	dir := t.TempDir()
	port := FreePort(t)
	inst := Start(t, dir, fmt.Sprintf(":%d {\n\trespond \"one\"\n}\n", port))
	if got := WaitHTTP(t, URL(port, "/"), http.StatusOK, StartTimeout); got != "one" {
		t.Fatalf("body %q, want one", got)
	}
	inst.Reload(fmt.Sprintf("{\n\tgrace_period 1s\n}\n:%d {\n\trespond \"two\"\n}\n", port))
	if got := WaitHTTP(t, URL(port, "/"), http.StatusOK, StartTimeout); got != "two" {
		t.Fatalf("after reload: body %q, want two", got)
	}
	if err := inst.TryReload(":%d {\n\tbogus_directive\n}\n"); err == nil {
		t.Fatal("reload of a bad Caddyfile succeeded")
	}
	inst.Stop()
	if inst.Running() {
		t.Fatal("still running after Stop")
	}
	inst2 := Start(t, dir, fmt.Sprintf(":%d {\n\trespond \"three\"\n}\n", port))
	WaitHTTP(t, URL(port, "/"), http.StatusOK, StartTimeout)
	inst2.Kill9()
	if err := inst2.Wait(0); err == nil || !strings.Contains(err.Error(), "killed") {
		t.Fatalf("exit after Kill9: %v, want killed", err)
	}
}
