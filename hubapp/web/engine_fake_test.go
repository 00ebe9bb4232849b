package web

import (
	"context"
	"net/http"
	"testing"

	"github.com/caddyhub/caddyhub/hubapp/servers"
	"github.com/caddyhub/caddyhub/hubapp/store"
)

// refusingEngine is a fake spawn engine whose starts and stops are refused with err; everything
// else is the real engine's.
type refusingEngine struct {
	serverEngine
	err error
}

func (f *refusingEngine) Start(*store.User, string, map[string]any) (*servers.Op, bool, error) {
	return nil, false, f.err
}

func (f *refusingEngine) BeginStop(string, string, bool) (*servers.Op, error) { return nil, f.err }

func (f *refusingEngine) Stop(context.Context, string, string) error { return f.err }

// TestEngineRefusalsToHTTP: the HTTP layer talks to the engine through serverEngine only, and maps
// each refusal code to its status, with Retry-After for a throttled start and the refusal's message
// in the JSON error body.
func TestEngineRefusalsToHTTP(t *testing.T) {
	for _, c := range []struct {
		refusal *servers.Refusal
		status  int
	}{
		{&servers.Refusal{Code: servers.Invalid, Msg: "not like that"}, http.StatusBadRequest},
		{&servers.Refusal{Code: servers.Forbidden, Msg: "sign in again"}, http.StatusForbidden},
		{&servers.Refusal{Code: servers.Throttled, Msg: "slow down", RetryAfter: 42}, http.StatusTooManyRequests},
		{&servers.Refusal{Code: servers.Unavailable, Msg: "idp away"}, http.StatusServiceUnavailable},
		{&servers.Refusal{Code: servers.Failed, Msg: "it broke"}, http.StatusInternalServerError},
	} {
		a := newAPIHub(t, nil)
		a.user("alice", false)
		tok := a.token("alice")
		a.eng = &refusingEngine{serverEngine: a.eng, err: c.refusal}
		for _, method := range []string{"POST", "DELETE"} {
			rec := a.do(apiCall{method: method, path: "/hub/api/users/alice/server", token: tok})
			if rec.Code != c.status {
				t.Errorf("%s refused with %d: %d %s, want %d", method, c.refusal.Code, rec.Code, rec.Body, c.status)
				continue
			}
			if msg := errorBody(t, rec); msg != c.refusal.Msg {
				t.Errorf("%s refused with %d: message %q", method, c.refusal.Code, msg)
			}
			if got, want := rec.Header().Get("Retry-After"), map[bool]string{true: "42"}[c.refusal.RetryAfter > 0]; got != want {
				t.Errorf("%s refused with %d: Retry-After %q, want %q", method, c.refusal.Code, got, want)
			}
		}
	}
}
