package hubapp

// `caddy jupyterhub token <username>`: print a new API token for a user, like `jupyterhub token`.
// Badger lets one process open the database, so the command asks the running Caddy through its
// admin API (the `admin.api.jupyterhub` module, POST /jupyterhub/token) and opens the store itself
// only when no Caddy answers. The backup and restore subcommands live in backupcmd.go.

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	caddycmd "github.com/caddyserver/caddy/v2/cmd"
	"go.uber.org/zap"

	"github.com/caddyhub/caddyhub/hubapp/store"
)

func init() {
	caddy.RegisterModule(AdminAPI{})
	fs := flag.NewFlagSet("jupyterhub", flag.ExitOnError)
	fs.String("note", "", "Note stored with the token")
	fs.Duration("expires-in", 0, "Lifetime of the token (0: no expiry)")
	fs.String("config", "", "Configuration file, to find the admin API address and the data_dir")
	fs.String("adapter", "", "Name of the config adapter to apply")
	fs.String("address", "", "Address of the administration endpoint of the running Caddy")
	fs.String("data-dir", "", "The hub's data_dir, used when no Caddy is running (default: from the config, else caddyhub-data)")
	caddycmd.RegisterCommand(caddycmd.Command{
		Name:  "jupyterhub",
		Usage: "token <username> [--note <text>] [--expires-in <duration>] | backup <file> | restore <file>  [--config <path> [--adapter <name>]] [--address <interface>] [--data-dir <dir>]",
		Short: "Manages the JupyterHub app (token, backup, restore)",
		Long: `
token <username> prints a new API token for an existing user, like JupyterHub's
"jupyterhub token". It asks the running Caddy through its admin API; when none
runs, it opens the hub's database (data_dir) directly.

backup <file> writes a consistent snapshot of the hub's database to <file>
while the hub runs (through the admin API), or from data_dir when no Caddy runs.
Keep the cookie secret and crypt_key with it: the snapshot holds no secret.

restore <file> loads such a snapshot into data_dir, which must be empty or
absent; the hub must be stopped.`,
		Flags: fs,
		Func:  cmdJupyterHub,
	})
}

// tokenRequest is the body of POST /jupyterhub/token on the admin API.
type tokenRequest struct {
	User      string `json:"user"`
	Note      string `json:"note,omitempty"`
	ExpiresIn int64  `json:"expires_in,omitempty"` // seconds
}

type tokenResponse struct {
	Token string `json:"token"`
	ID    string `json:"id"`
	User  string `json:"user"`
}

// errNoSuchUser is returned when the token command names an unknown user.
var errNoSuchUser = errors.New("no such user")

// createCommandToken creates an API token (the token role: everything the user may do) for an
// existing user and returns the secret.
func createCommandToken(st *store.Store, req tokenRequest) (*tokenResponse, error) {
	note := req.Note
	if note == "" {
		note = "Requested via caddy jupyterhub token"
	}
	var expires time.Time
	if req.ExpiresIn > 0 {
		expires = time.Now().Add(time.Duration(req.ExpiresIn) * time.Second).UTC()
	}
	secret := store.NewToken()
	t := &store.Token{User: req.User, Kind: "api_token", Note: note, Scopes: []string{"inherit"}, ExpiresAt: expires, OAuthClient: "jupyterhub"}
	err := st.Update(func(tx *store.Txn) error {
		if _, err := tx.User(req.User); errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("%s: %w", req.User, errNoSuchUser)
		} else if err != nil {
			return err
		}
		t.ID, t.Hash = "", ""
		return tx.CreateToken(t, secret)
	})
	if err != nil {
		return nil, err
	}
	return &tokenResponse{Token: secret, ID: t.ID, User: req.User}, nil
}

func cmdJupyterHub(fl caddycmd.Flags) (int, error) {
	args := fl.Args()
	if len(args) != 2 {
		return caddy.ExitCodeFailedStartup, fmt.Errorf("usage: caddy jupyterhub token <username> | backup <file> | restore <file>")
	}
	switch args[0] {
	case "token":
		return cmdToken(fl, args[1])
	case "backup":
		return cmdBackup(fl, args[1])
	case "restore":
		return cmdRestore(fl, args[1])
	}
	return caddy.ExitCodeFailedStartup, fmt.Errorf("unknown subcommand %q: want token, backup or restore", args[0])
}

// commandTarget returns the config named by --config (nil without one) and the admin API address
// of the Caddy the command talks to.
func commandTarget(fl caddycmd.Flags) (cfg []byte, addr string, err error) {
	if fl.String("config") != "" {
		if cfg, _, _, err = caddycmd.LoadConfig(fl.String("config"), fl.String("adapter")); err != nil {
			return nil, "", err
		}
	}
	// The file name matters: DetermineAdminAPIAddress reads the admin address only when it has one.
	addr, err = caddycmd.DetermineAdminAPIAddress(fl.String("address"), cfg, fl.String("config"), fl.String("adapter"))
	if err != nil {
		return nil, "", fmt.Errorf("finding the admin API: %w", err)
	}
	return cfg, addr, nil
}

// commandDataDir is the data_dir a command opens itself: --data-dir, else the config's, else the
// default.
func commandDataDir(fl caddycmd.Flags, cfg []byte) string {
	if dir := fl.String("data-dir"); dir != "" {
		return dir
	}
	return dataDirFromConfig(cfg)
}

func cmdToken(fl caddycmd.Flags, user string) (int, error) {
	req := tokenRequest{User: user, Note: fl.String("note"), ExpiresIn: int64(fl.Duration("expires-in") / time.Second)}
	cfg, addr, err := commandTarget(fl)
	if err != nil {
		return caddy.ExitCodeFailedStartup, err
	}
	body, _ := json.Marshal(req)
	resp, err := caddycmd.AdminAPIRequest(addr, http.MethodPost, "/jupyterhub/token", nil, bytes.NewReader(body))
	if err != nil && strings.Contains(err.Error(), "responded with error") {
		// A Caddy runs and answered: its answer stands (unknown user, no jupyterhub app, …).
		return caddy.ExitCodeFailedStartup, fmt.Errorf("the running Caddy at %s refused: %w", addr, err)
	}
	if err == nil {
		defer resp.Body.Close()
		var out tokenResponse
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		if json.Unmarshal(b, &out) != nil || out.Token == "" {
			return caddy.ExitCodeFailedStartup, fmt.Errorf("the running Caddy at %s answered without a token: %.200s", addr, b)
		}
		fmt.Println(out.Token)
		return caddy.ExitCodeSuccess, nil
	}
	// No Caddy answers: open the database directly.
	dir := commandDataDir(fl, cfg)
	st, err := store.Open(dir, zap.NewNop())
	if err != nil {
		return caddy.ExitCodeFailedStartup, fmt.Errorf("no running Caddy at %s, and opening %s failed: %w", addr, dir, err)
	}
	defer st.Close()
	out, err := createCommandToken(st, req)
	if err != nil {
		return caddy.ExitCodeFailedStartup, err
	}
	fmt.Println(out.Token)
	return caddy.ExitCodeSuccess, nil
}

// dataDirFromConfig returns the jupyterhub app's data_dir in a JSON config, or the default.
func dataDirFromConfig(cfg []byte) string {
	var c struct {
		Apps struct {
			JupyterHub struct {
				DataDir string `json:"data_dir"`
			} `json:"jupyterhub"`
		} `json:"apps"`
	}
	dir := "caddyhub-data"
	if json.Unmarshal(cfg, &c) == nil && c.Apps.JupyterHub.DataDir != "" {
		dir = caddy.NewReplacer().ReplaceKnown(c.Apps.JupyterHub.DataDir, "")
	}
	if abs, err := filepath.Abs(dir); err == nil {
		dir = abs
	}
	return dir
}

// AdminAPI is the `admin.api.jupyterhub` module: endpoints of Caddy's admin API for the hub's
// command-line tools. It has no configuration; Caddy loads every admin.api module.
type AdminAPI struct{}

// CaddyModule returns the Caddy module information.
func (AdminAPI) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{ID: "admin.api.jupyterhub", New: func() caddy.Module { return new(AdminAPI) }}
}

// Routes implements caddy.AdminRouter.
func (AdminAPI) Routes() []caddy.AdminRoute {
	return []caddy.AdminRoute{
		{Pattern: "/jupyterhub/token", Handler: caddy.AdminHandlerFunc(serveAdminToken)},
		{Pattern: "/jupyterhub/backup", Handler: caddy.AdminHandlerFunc(serveAdminBackup)},
	}
}

// activeApp returns the running jupyterhub app, or the admin API error to answer.
func activeApp() (*App, error) {
	appAny, err := caddy.ActiveContext().AppIfConfigured("jupyterhub")
	if err != nil {
		return nil, caddy.APIError{HTTPStatus: http.StatusNotFound, Err: fmt.Errorf("no jupyterhub app is configured")}
	}
	app, ok := appAny.(*App)
	if !ok || app.shared == nil {
		return nil, caddy.APIError{HTTPStatus: http.StatusServiceUnavailable, Err: fmt.Errorf("the jupyterhub app has not started")}
	}
	return app, nil
}

func serveAdminToken(w http.ResponseWriter, r *http.Request) error {
	if r.Method != http.MethodPost {
		return caddy.APIError{HTTPStatus: http.StatusMethodNotAllowed, Err: fmt.Errorf("method not allowed")}
	}
	var req tokenRequest
	if err := json.NewDecoder(io.LimitReader(r.Body, 1<<16)).Decode(&req); err != nil || req.User == "" {
		return caddy.APIError{HTTPStatus: http.StatusBadRequest, Err: fmt.Errorf("want {\"user\": …}")}
	}
	app, err := activeApp()
	if err != nil {
		return err
	}
	out, err := createCommandToken(app.shared.store, req)
	if errors.Is(err, errNoSuchUser) {
		return caddy.APIError{HTTPStatus: http.StatusNotFound, Err: fmt.Errorf("jupyterhub: no such user: %s", req.User)}
	} else if err != nil {
		return caddy.APIError{HTTPStatus: http.StatusInternalServerError, Err: err}
	}
	if app.logger != nil {
		app.logger.Info("api token created by the token command", zap.String("user", req.User), zap.String("token_id", out.ID))
	}
	w.Header().Set("Content-Type", "application/json")
	return json.NewEncoder(w).Encode(out)
}

// Interface guards.
var (
	_ caddy.Module      = AdminAPI{}
	_ caddy.AdminRouter = AdminAPI{}
)
