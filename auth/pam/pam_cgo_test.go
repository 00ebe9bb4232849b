//go:build cgo && linux

package pam

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/caddyhub/caddyhub/auth"
)

func TestConversation(t *testing.T) {
	tests := []struct {
		name        string
		styles      []int
		texts       []string
		password    string
		wantAnswers []string
		wantRC      int
		wantModMsg  string
	}{
		{name: "password prompt", styles: []int{pamPromptEchoOff}, texts: []string{"Password: "},
			password: "pw", wantAnswers: []string{"pw"}},
		{name: "username prompt", styles: []int{pamPromptEchoOn}, texts: []string{"login: "},
			password: "pw", wantAnswers: []string{"alice"}},
		{name: "info and error messages", styles: []int{pamTextInfo, pamErrorMsg, pamPromptEchoOff},
			texts: []string{"Welcome", "Your account expires soon", "Password: "}, password: "pw",
			wantAnswers: []string{"", "", "pw"}, wantModMsg: "Your account expires soon"},
		{name: "unicode password", styles: []int{pamPromptEchoOff}, texts: []string{"Password: "},
			password: "pässwörd ✓", wantAnswers: []string{"pässwörd ✓"}},
		{name: "binary prompt refused", styles: []int{pamBinaryPrompt}, texts: []string{"x"},
			password: "pw", wantRC: pamConvErr},
		{name: "unknown style refused after a good one", styles: []int{pamPromptEchoOff, 99}, texts: []string{"P", "?"},
			password: "pw", wantRC: pamConvErr},
		{name: "password prompt without password (session)", styles: []int{pamPromptEchoOff}, texts: []string{"Password: "},
			wantRC: pamConvErr},
		{name: "no messages", wantRC: pamConvErr},
		{name: "too many messages", styles: make([]int, 33), texts: make([]string, 33), password: "pw", wantRC: pamConvErr},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for i := range tt.styles {
				if tt.styles[i] == 0 {
					tt.styles[i] = pamTextInfo
				}
			}
			answers, rc, mod := converse(tt.styles, tt.texts, "alice", tt.password)
			if rc != tt.wantRC {
				t.Fatalf("rc = %d; want %d", rc, tt.wantRC)
			}
			if !reflect.DeepEqual(answers, tt.wantAnswers) {
				t.Fatalf("answers = %q; want %q", answers, tt.wantAnswers)
			}
			if mod != tt.wantModMsg {
				t.Fatalf("module message = %q; want %q", mod, tt.wantModMsg)
			}
		})
	}
}

func TestLoadMissingLibrary(t *testing.T) {
	err := loadLibrary("libcaddyhub-no-such-pam.so.0")
	if err == nil || !strings.Contains(err.Error(), "libcaddyhub-no-such-pam.so.0") {
		t.Fatalf("load of a missing library: %v; want an error naming it", err)
	}
	// The real library still loads afterwards (libpam0g is on every Debian).
	if err := loadLibrary(libraryName); err != nil {
		t.Fatalf("loadLibrary(%s): %v", libraryName, err)
	}
}

func TestRunHonoursContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	err := run(ctx, func() error { <-release; return nil })
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("run with a cancelled context = %v; want context.Canceled", err)
	}
}

func TestPAMErrorMapping(t *testing.T) {
	// A nonexistent account: PAM answers "user unknown" or "authentication
	// failure"; either way the form must say invalid credentials. Needs no
	// root: pam_unix refuses unknown users without reading /etc/shadow.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err := authenticate(ctx, "login", "chtest-nosuchuser", "pw", true)
	if !errors.Is(err, auth.ErrInvalidCredentials) {
		t.Fatalf("unknown user: %v; want ErrInvalidCredentials", err)
	}
	var pe *pamError
	if !errors.As(err, &pe) || pe.stage != stageAuth {
		t.Fatalf("unknown user: %v; want a pam_authenticate error", err)
	}
}
