//go:build !cgo || !linux

package pam

import (
	"context"
	"errors"
	"runtime"
)

// unavailable says why this build cannot use PAM.
var unavailable = func() error {
	if runtime.GOOS != "linux" {
		return errors.New("PAM is unavailable in this build: the PAM authenticator supports Linux-PAM only; " +
			"use another authenticator on " + runtime.GOOS)
	}
	return errors.New("PAM is unavailable in this build: it was built with CGO_ENABLED=0; " +
		"rebuild with CGO_ENABLED=1 (and gcc installed), e.g. CGO_ENABLED=1 xcaddy build --with github.com/caddyhub/caddyhub")
}()

func authenticate(context.Context, string, string, string, bool) error { return unavailable }

func session(context.Context, string, string, bool) error { return unavailable }
