// Package spawners defines how the hub starts, polls and stops single-user
// servers, and the options every spawner shares.
//
// The hub's spawn engine owns one Spawner, a guest module in the namespace
// jupyterhub.spawners.<name> (docs/architecture.md walks the spawn path). On a
// spawn request the engine calls Start, which returns as soon as the server is
// launched and its URL is known; the engine stores the returned State, waits
// until the server answers HTTP (WaitUp, also for a spawn it resumes after a
// restart), adds a route to the URL and marks the server ready. Later it gives
// the State back to Poll and Stop — also after a hub restart, when the server
// is no longer a child of the hub process. Spawners never wait for HTTP
// themselves.
//
// The local spawners live in the sub-packages simple and localprocess
// (blank-import spawners/standard to register both); spawnertest builds a
// tiny single-user server for tests.
package spawners

import (
	"context"
	"encoding/json"
	"errors"
)

// Spawner starts, polls and stops single-user servers. Modules: jupyterhub.spawners.<name>.
//
// Optional capabilities, checked by the hub with a type assertion: RemoteSpawner (servers run on
// another host or network namespace) and OptionsSpawner (an options form / profile list).
type Spawner interface {
	// Start launches the server and returns as soon as it is launched and its URL is known; it does
	// not wait for the server to answer HTTP (the hub does, within http_timeout, polling the URL).
	// The returned Server's Exited and ExitError, when set, let the hub notice a server that ends
	// during that wait and tell the user why. On failure nothing is left running and the error says
	// the cause in words a user understands (a *StartError: command not found, no account, ...).
	// ctx carries the start_timeout deadline. progress may be nil; call it with events as the start
	// proceeds (up to 90: the hub sends "ready" itself).
	Start(ctx context.Context, req *StartRequest, progress func(Event)) (*Server, error)
	// Poll reports whether the server described by state is still running (after a hub restart too:
	// the server may not be our child). It must be cheap: the hub polls thousands at start and every
	// poll_interval. It may be answered from a watch cache (a container or pod informer) rather than
	// a call to the engine each time; a cache that has not synced yet should say so with an error
	// rather than report the server gone. An error means "unknown": the hub keeps the server.
	Poll(ctx context.Context, state json.RawMessage) (running bool, err error)
	// Stop stops the server described by state and everything it started: for local processes
	// SIGTERM, a grace period, then SIGKILL; for containers and pods the engine's own stop (with its
	// grace period), and removal when the spawner's configuration says so. Stopping a server that is
	// not running is not an error: Stop is idempotent, and the hub also calls it to clean up after a
	// failed start. When ctx ends first, Stop ends the server at once if it can and returns ctx's
	// error.
	Stop(ctx context.Context, state json.RawMessage) error
	// Common returns the shared options (the timeouts the hub applies, poll_interval, ...).
	Common() *Options
}

// RemoteSpawner is implemented by spawners whose servers run somewhere the hub's loopback address
// does not reach (a container on a bridge network, a pod). RunsElsewhere true makes the hub refuse to
// start when the address its servers use to reach the hub API (hub_connect_url, or the hub_api
// listener) is loopback, naming the fix.
type RemoteSpawner interface {
	RunsElsewhere() bool
}

// Profile is one choice of an options form, JupyterHub's (KubeSpawner's) profile_list entry.
type Profile struct {
	// Name identifies the profile in user options ({"profile": "<name>"}); unique, not empty.
	Name string `json:"name"`
	// DisplayName is the label on the spawn page. Default: Name.
	DisplayName string `json:"display_name,omitempty"`
	// Description is a sentence under the label.
	Description string `json:"description,omitempty"`
	// Default marks the profile used when the user names none (at most one); when none is marked,
	// the first one is.
	Default bool `json:"default,omitempty"`
}

// OptionsSpawner is implemented by spawners that offer an options form: a list of profiles the
// spawn page shows as a choice, and validation of the user options of every start request (the API
// body, or the spawn form's fields). The hub checks the "profile" option itself: it takes the
// default profile when none is named, refuses an unknown one with 400, and puts the profile's name
// in user_options["profile"] as a string before it calls ValidateUserOptions. A spawner with no
// profiles returns none.
type OptionsSpawner interface {
	Profiles() []Profile
	// ValidateUserOptions checks the user's options and returns the ones to store and pass to Start
	// (StartRequest.UserOptions), normalized. Its error is shown to the user, with status 400.
	ValidateUserOptions(options map[string]any) (map[string]any, error)
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
	// leading and trailing slashes, e.g. "/user/alice/". The hub waits for
	// the server to answer at URL+ServicePrefix.
	ServicePrefix string
	// Env holds the JUPYTERHUB_* variables from the hub (token, API URL, OAuth
	// client, prefix...). The spawner adds JUPYTERHUB_SERVICE_URL itself
	// (Options.Env), plus its own variables.
	Env map[string]string
	// DataDir is the hub's data_dir (absolute). The local spawners keep
	// server logs under DataDir/logs/ and the simple spawner's homes under
	// DataDir/users/.
	DataDir string
	// UserOptions are the options the user chose on the spawn form or sent
	// in the API request body, as the spawner's ValidateUserOptions returned
	// them when it is an OptionsSpawner (raw otherwise). May be nil. The
	// local spawners read only "profile" (the profile whose overrides the
	// start runs with).
	UserOptions map[string]any
	// AuthState is what the authenticator kept about the user's login
	// (tokens, groups from an identity provider...), decrypted; nil when the
	// authenticator keeps none. A spawner may put parts of it in the
	// server's environment; it must never log it.
	AuthState map[string]any
	// PrevState is what the hub kept of this server's state when it last
	// stopped (StateKeeper.KeepState), nil when it kept nothing: e.g. the
	// name of the user's storage claim, which must not be derived from the
	// username again.
	PrevState json.RawMessage
	// Launched, when not nil, is how the hub learns about a server before
	// Start returns, for a spawner whose Start takes long after the server
	// exists (pulling an image, scheduling a pod): call it through
	// ReportLaunched as soon as a URL and a State enough for Poll and Stop
	// are known, so that a hub killed meanwhile finds the server again. The
	// hub records the Server that Start returns in the same way, before it
	// waits for HTTP, so spawners whose Start is quick need not call it.
	// The last report replaces earlier ones. When Launched returns an error
	// the spawner stops what it launched and Start fails with that error.
	// Not serialized.
	Launched func(*Server) error `json:"-"`
}

// ReportLaunched calls r.Launched with srv if it is set (see Launched); it
// returns nil when it is not.
func (r *StartRequest) ReportLaunched(srv *Server) error {
	if r == nil || r.Launched == nil {
		return nil
	}
	return r.Launched(srv)
}

// Server is a launched server.
type Server struct {
	// URL is scheme://host:port with no path, e.g. "http://127.0.0.1:54321":
	// what the route targets, and where the hub waits for an answer.
	URL string
	// State is opaque to the hub: it stores it and gives it back to Poll and
	// Stop. It survives hub restarts.
	State json.RawMessage
	// Exited, when not nil, is closed once the server has ended (a local
	// child process was reaped): the hub stops waiting for HTTP at once.
	// When nil, the hub calls Poll every quarter second while it waits. Not
	// stored: a server the hub finds after a restart has no Exited.
	Exited <-chan struct{} `json:"-"`
	// ExitError, when not nil, is called once Exited is closed (or Poll
	// reported the server gone) before the server answered. It returns the
	// error for the user, normally a *StartError of kind ErrExitedEarly
	// ("the server exited early with status 3; last lines of its output:
	// ..."). When nil, the hub says "the server exited before it answered".
	ExitError func() error `json:"-"`
}

// Event is one step of a start, shown to the user while they wait. Start
// calls progress synchronously, from its own goroutine. Spawners report up
// to 90 and leave 100 ("ready") to the hub, which sends it once the route
// is in place.
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
	// ErrExitedEarly: the server ended before it answered HTTP.
	ErrExitedEarly = errors.New("server exited early")
	// ErrHTTPTimeout: the server did not answer HTTP within http_timeout.
	ErrHTTPTimeout = errors.New("server did not answer in time")
	// ErrStartTimeout: the whole start took longer than start_timeout.
	ErrStartTimeout = errors.New("start timed out")
)

// StartError is an error from a start: Error is the message for the user,
// Unwrap gives the class (one of the Err* values) and the cause if any.
type StartError struct {
	// Kind is one of the Err* values above.
	Kind error
	// Msg is the message for the user.
	Msg string
	// Cause is the underlying error, if any (for the log).
	Cause error
	// Retry, when not empty, says that a new Start may well succeed (a
	// local server lost the race for its randomly picked port) and is the
	// progress message the user sees meanwhile ("Port 41234 was taken;
	// trying another"). The hub stops the server and calls Start again, at
	// most MaxStartAttempts times in all, within start_timeout.
	Retry string
}

func (e *StartError) Error() string { return e.Msg }

// Unwrap returns the class and the cause.
func (e *StartError) Unwrap() []error {
	if e.Cause == nil {
		return []error{e.Kind}
	}
	return []error{e.Kind, e.Cause}
}
