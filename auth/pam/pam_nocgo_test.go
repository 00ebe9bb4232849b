//go:build !cgo || !linux

package pam

import (
	"context"
	"strings"
	"testing"
)

func TestUnavailableBuild(t *testing.T) {
	p, err := load(t, `{"authenticator":"pam","allow_all":true}`)
	if err != nil {
		t.Fatalf("the module must load in a build without PAM: %v", err)
	}
	_, err = p.Authenticate(context.Background(), "alice", "pw")
	if err == nil || !strings.Contains(err.Error(), "PAM is unavailable in this build") {
		t.Fatalf("Authenticate = %v; want the unavailable-build error", err)
	}
}
