package servers

import (
	"errors"

	"github.com/caddyhub/caddyhub/hubapp/store"
)

// Code says why the engine refused a start or stop; the HTTP layer maps it to a status.
type Code int

// Refusal codes.
const (
	// Invalid: the request cannot be done as asked (already running, pending, named servers off or
	// over their limit, invalid user options). HTTP 400.
	Invalid Code = iota + 1
	// Forbidden: the user's login no longer allows a spawn. HTTP 403.
	Forbidden
	// Throttled: concurrent_spawn_limit or active_server_limit; RetryAfter may be set. HTTP 429.
	Throttled
	// Unavailable: something the spawn needs did not answer (the identity provider). HTTP 503.
	Unavailable
	// Failed: the spawn failed while the caller waited for it. HTTP 500.
	Failed
)

// Refusal is a start or stop the engine refused, or a spawn that failed while the caller waited.
// Msg is for the user.
type Refusal struct {
	Code       Code
	Msg        string
	RetryAfter int // seconds, for Throttled; 0: unset
}

func (e *Refusal) Error() string { return e.Msg }

func refuse(code Code, msg string) *Refusal { return &Refusal{Code: code, Msg: msg} }

func isNotFound(err error) bool { return errors.Is(err, store.ErrNotFound) }
