//go:build !unix

package localproc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"runtime"
	"time"

	"github.com/caddyhub/caddyhub/spawners"
)

// errUnsupported: local servers need Unix sessions, process groups and signals.
var errUnsupported = fmt.Errorf("local process spawners do not run on %s: %w", runtime.GOOS, errors.ErrUnsupported)

// Start fails: see errUnsupported.
func Start(context.Context, Spec, func(spawners.Event)) (*spawners.Server, error) {
	return nil, errUnsupported
}

// Poll fails: see errUnsupported.
func Poll(json.RawMessage) (bool, error) { return false, errUnsupported }

// Stop fails: see errUnsupported.
func Stop(context.Context, json.RawMessage, time.Duration, time.Duration) error {
	return errUnsupported
}
