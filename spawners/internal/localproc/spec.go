// Package localproc runs single-user servers as local processes: the engine
// shared by the simple and localprocess spawners. Each server leads its own
// session and process group, reads /dev/null and writes to a log file under
// the hub's data_dir — never a pipe to the hub — so it outlives the hub, a
// reload or a kill -9 of the hub. A State (PID, start time, boot ID) finds it
// again afterwards.
package localproc

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"

	"go.uber.org/zap"

	"github.com/caddyhub/caddyhub/spawners"
)

// tailLineCount is how many lines of the log an early-exit error quotes.
const tailLineCount = 20

// Spec is one start, prepared by a spawner module.
type Spec struct {
	// Options are the spawner's provisioned shared options.
	Options *spawners.Options
	// Local are the spawner's provisioned local-process options.
	Local *ProcessOptions
	// Request is the hub's request.
	Request *spawners.StartRequest
	// Env returns the server's complete environment for a service URL.
	Env func(serviceURL string) map[string]string
	// Dir is the working directory; it must exist.
	Dir string
	// Credential, if not nil, is the account the process runs as.
	Credential *Credential
	// Account names that account in messages ("" for the hub's own).
	Account string
	// LogPath is the server's log file.
	LogPath string
	// Logger logs for the operator; nil means no logging.
	Logger *zap.Logger
}

// Credential is a Unix account to run a server as.
type Credential struct {
	// Uid and Gid are the user and primary group IDs.
	Uid, Gid uint32
	// Groups are the supplementary group IDs.
	Groups []uint32
}

// State is what the hub stores for a local server and gives back to Poll and
// Stop, also after a restart when the process is no longer our child. The
// "pid" key is JupyterHub's LocalProcessSpawner state, so a state carried
// over from JupyterHub ({"pid": N}) still works, with PID-only checks.
type State struct {
	// PID is the server process's ID; it leads its own session and
	// process group, so it is the process group ID as well.
	PID int `json:"pid"`
	// StartTicks is the process's start time from /proc/<pid>/stat, so a
	// PID reused by another process is not taken for the server. 0: unknown.
	StartTicks uint64 `json:"start_ticks,omitempty"`
	// BootID is the kernel's boot ID when the process started: after a
	// reboot no process of ours can exist.
	BootID string `json:"boot_id,omitempty"`
	// Port is the port the server listens on.
	Port int `json:"port,omitempty"`
	// Log is the path of the server's log file.
	Log string `json:"log,omitempty"`
}

// ParseState decodes a stored state. Empty input gives a zero State.
func ParseState(raw json.RawMessage) (State, error) {
	var s State
	if len(raw) == 0 || string(raw) == "null" {
		return s, nil
	}
	if err := json.Unmarshal(raw, &s); err != nil {
		return s, fmt.Errorf("decoding spawner state: %w", err)
	}
	if s.PID < 0 {
		return s, fmt.Errorf("decoding spawner state: negative pid %d", s.PID)
	}
	return s, nil
}

// SafeName turns a user or server name into one path element: letters,
// digits and _ @ + - . are kept (a leading dot is escaped), anything else
// becomes %XX. Distinct names give distinct elements.
func SafeName(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		keep := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
			strings.IndexByte("_@+-", c) >= 0 || c == '.' && i > 0
		if keep {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	if b.Len() == 0 {
		return "%"
	}
	return b.String()
}

// LogPath is where a server's output goes: DataDir/logs/<user>/server.log for
// the default server, server-<name>.log for a named one.
func LogPath(dataDir, user, server string) string {
	file := "server.log"
	if server != "" {
		file = "server-" + SafeName(server) + ".log"
	}
	return filepath.Join(dataDir, "logs", SafeName(user), file)
}
