package auth

import (
	"context"
	"testing"
)

func TestRemoteIP(t *testing.T) {
	if got := RemoteIP(context.Background()); got != "" {
		t.Fatalf("RemoteIP of a bare context = %q; want empty", got)
	}
	if got := RemoteIP(WithRemoteIP(context.Background(), "::1")); got != "::1" {
		t.Fatalf("RemoteIP = %q; want ::1", got)
	}
}
