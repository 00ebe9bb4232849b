// Package spawners defines how the hub starts, polls and stops single-user
// servers, and the options every spawner shares.
//
// In the data flow of DESIGN.md the hub app (hubapp) owns one Spawner, a guest
// module in the namespace jupyterhub.spawners.<name>: on a spawn request it calls
// Start, adds a route to the returned URL, stores the returned State, and later
// gives that State back to Poll and Stop — also after a hub restart, when the
// server is no longer a child of the hub process. The local spawners live in
// the sub-packages simple and localprocess (blank-import spawners/standard to
// register both); spawnertest builds a tiny single-user server for tests.
package spawners

import (
	"context"
	"encoding/json"
	"errors"
)

// Spawner starts, polls and stops single-user servers. Modules: jupyterhub.spawners.<name>.
type Spawner interface {
	// Start launches the server and returns once it answers HTTP at its URL, or fails. On failure nothing
	// is left running and the error says the cause in words a user understands (command not found; exited
	// early with status N and the last lines of its output; did not answer within http_timeout; ...).
	// progress may be nil; call it with events as the start proceeds.
	Start(ctx context.Context, req *StartRequest, progress func(Event)) (*Server, error)
	// Poll reports whether the server described by state is still running (after a hub restart too:
	// the process may not be our child). It must be cheap: the hub polls thousands at start.
	Poll(ctx context.Context, state json.RawMessage) (running bool, err error)
	// Stop stops the server: SIGTERM to its process group, then SIGKILL after a grace. Idempotent.
	Stop(ctx context.Context, state json.RawMessage) error
	// Common returns the shared options (timeouts the hub needs, e.g. poll_interval).
	Common() *Options
}

// StartRequest is what the hub knows about the server it asks a spawner to start.
type StartRequest struct {
	// User is the normalized hub username.
	User string
	// ServerName is "" for the default server, else the named server's name.
	ServerName string
	// Admin is true when the user is a hub admin.
	Admin bool
	// ServicePrefix is the server's base URL path, base_url included, with
	// leading and trailing slashes, e.g. "/user/alice/".
	ServicePrefix string
	// Env holds the JUPYTERHUB_* variables from the hub (token, API URL, OAuth
	// client, prefix...). The spawner adds JUPYTERHUB_SERVICE_URL itself after
	// picking the port, plus its own: the options' environment, env_keep from
	// the hub's environment, USER/HOME/SHELL, JUPYTERHUB_DEFAULT_URL from
	// default_url, MEM_LIMIT/CPU_LIMIT and JUPYTERHUB_ROOT_DIR from notebook_dir.
	Env map[string]string
	// DataDir is the hub's data_dir (absolute). Server logs go under
	// DataDir/logs/, the simple spawner's homes under DataDir/users/.
	DataDir string
	// UserOptions are the options the user chose on the spawn form or sent
	// in the API request body. The local spawners ignore them.
	UserOptions map[string]any
}

// Server is a started server.
type Server struct {
	// URL is scheme://host:port with no path, e.g. "http://127.0.0.1:54321":
	// what the route targets.
	URL string
	// State is opaque to the hub: it stores it and gives it back to Poll and
	// Stop. It survives hub restarts.
	State json.RawMessage
}

// Event is one step of a start, shown to the user while they wait. Start
// calls progress synchronously, from its own goroutine. The local spawners
// report up to 90 and leave 100 ("ready") to the hub, which sends it once
// the route is in place.
type Event struct {
	// Progress is 0..100.
	Progress int
	// Message is a short sentence for the user.
	Message string
}

// Errors a start can fail with, for errors.Is. The error's text is a
// sentence for the user; these classify it (JupyterHub's failure reasons).
var (
	// ErrCommandNotFound: cmd was not found or could not be executed.
	ErrCommandNotFound = errors.New("command not found")
	// ErrNoAccount: the user has no system account to run the server as.
	ErrNoAccount = errors.New("no system account")
	// ErrExitedEarly: the server process exited before it answered HTTP.
	ErrExitedEarly = errors.New("server exited early")
	// ErrHTTPTimeout: the server did not answer HTTP within http_timeout.
	ErrHTTPTimeout = errors.New("server did not answer in time")
	// ErrStartTimeout: the whole start took longer than start_timeout.
	ErrStartTimeout = errors.New("start timed out")
)

// StartError is an error from Start: Error is the message for the user,
// Unwrap gives the class (one of the Err* values) and the cause if any.
type StartError struct {
	// Kind is one of the Err* values above.
	Kind error
	// Msg is the message for the user.
	Msg string
	// Cause is the underlying error, if any (for the log).
	Cause error
}

func (e *StartError) Error() string { return e.Msg }

// Unwrap returns the class and the cause.
func (e *StartError) Unwrap() []error {
	if e.Cause == nil {
		return []error{e.Kind}
	}
	return []error{e.Kind, e.Cause}
}
