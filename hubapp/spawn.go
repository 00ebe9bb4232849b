package hubapp

// The spawn flow (docs/protocols.md, "Spawn lifecycle"; docs/design-notes.md, "State and restarts"):
// start and stop users' servers, adopt running servers when the hub starts (also after kill -9), and
// poll them while it runs.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/caddyhub/caddyhub/caddymodule/routetable"
	"github.com/caddyhub/caddyhub/hubapp/rbac"
	"github.com/caddyhub/caddyhub/hubapp/store"
	"github.com/caddyhub/caddyhub/spawners"
)

// slowSpawnTimeout is how long a spawn request waits for the server before answering "pending"
// (JupyterHub's tornado setting slow_spawn_timeout, 10 s); slowStopTimeout likewise for stops.
var (
	slowSpawnTimeout = 10 * time.Second
	slowStopTimeout  = 10 * time.Second
	// pageSpawnWait is how long the spawn page waits before showing the progress page (JupyterHub's
	// page handler waits 1 s): a browser should see progress, not a 10-second blank.
	pageSpawnWait = time.Second
)

// adoptConcurrency bounds the spawner polls in flight at start and in the poll loop.
const adoptConcurrency = 64

// serverError is a refusal of a start or stop with the HTTP status JupyterHub answers: 400 (already
// running, pending, named servers off or over the limit), 404, 429 (limits, with RetryAfter seconds
// when set) or 500 (the spawn failed before slow_spawn_timeout). Msg is for the user.
type serverError struct {
	Status     int
	Msg        string
	RetryAfter int
}

func (e *serverError) Error() string { return e.Msg }

// HTTPStatus is the status to answer with (pages.go's httpStatuser).
func (e *serverError) HTTPStatus() int { return e.Status }

// serverOp is a start or stop in flight for one server.
type serverOp struct {
	kind     string // "spawn" or "stop"
	progress *progressLog
	done     chan struct{}
	err      error // set before done is closed
}

// runtimeState is what must outlive a config reload about servers in flight: the operation pending on
// each server (the per-server lock: one start or stop at a time), progress logs, the set of active
// servers (for active_server_limit) and the poll loops of the running generations.
type runtimeState struct {
	mu       sync.Mutex
	ops      map[string]*serverOp        // server key "user/server" → op in flight
	progress map[string]*progressLog     // last spawn's progress, kept after it ends until the next start/stop
	active   map[string]struct{}         // servers ready or pending
	loops    map[*Hub]context.CancelFunc // poll loop per generation
}

func newRuntimeState() *runtimeState {
	return &runtimeState{
		ops:      map[string]*serverOp{},
		progress: map[string]*progressLog{},
		active:   map[string]struct{}{},
		loops:    map[*Hub]context.CancelFunc{},
	}
}

// spawnsPending counts starts in flight (JupyterHub counts spawn and proxy pending together).
func (rt *runtimeState) spawnsPendingLocked() int {
	n := 0
	for _, op := range rt.ops {
		if op.kind == "spawn" {
			n++
		}
	}
	return n
}

// op returns the operation in flight on a server, or nil.
func (rt *runtimeState) op(key string) *serverOp {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	return rt.ops[key]
}

// serverKey is the server's full name, as in a !server= filter: "alice/" for the default server.
func serverKey(user, server string) string { return user + "/" + server }

// pyQuote is Python's urllib.parse.quote(s, safe): every byte but letters, digits, "_.-~" and safe
// is %XX-escaped (upper-case hex).
func pyQuote(s, safe string) string {
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("_.-~", c) >= 0 ||
			strings.IndexByte(safe, c) >= 0 {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hex[c>>4])
		b.WriteByte(hex[c&15])
	}
	return b.String()
}

// escapePath is JupyterHub's url_escape_path: quote(value, safe='@~').
func escapePath(s string) string { return pyQuote(s, "@~") }

// serverPrefix is the server's base URL path: <base>user/<name>/[<server>/] (JUPYTERHUB_SERVICE_PREFIX).
func (h *Hub) serverPrefix(user, server string) string {
	p := h.base + "user/" + escapePath(user) + "/"
	if server != "" {
		p += escapePath(server) + "/"
	}
	return p
}

// routeKey is the route of a user's server in the table: "<base>user/<name>[/<server>]" (hubmap.md),
// host-routed under subdomain_host (subdomain.go).
func (h *Hub) routeKey(user, server string) string { return h.subdomainRouteKey(user, server) }

// oauthClientID is the server's OAuth client id, also the cookie name the server uses
// (user.py _new_spawner: quote() with its default safe "/").
func oauthClientID(user, server string) string {
	id := "jupyterhub-user-" + pyQuote(user, "/")
	if server != "" {
		id += "-" + pyQuote(server, "/")
	}
	return id
}

// accessScopes are the scopes a visitor of the server must hold (spawner.py _default_access_scopes).
func accessScopes(user, server string) []string {
	return []string{"access:servers!server=" + serverKey(user, server), "access:servers!user=" + user}
}

// pyJSONList renders a list of strings as Python's json.dumps does (", " separators).
func pyJSONList(list []string) string {
	parts := make([]string, len(list))
	for i, s := range list {
		b, _ := json.Marshal(s)
		parts[i] = string(b)
	}
	return "[" + strings.Join(parts, ", ") + "]"
}

// serverAPIURL is JUPYTERHUB_API_URL: hub_connect_url's origin, or http://<hub_api listener>, then
// <base>hub/api. The hub API listener's real address is used, so port 0 works.
func (h *Hub) serverAPIURL() string {
	path := h.prefix + "api"
	if c := h.app.HubConnectURL; c != "" {
		if u, err := url.Parse(c); err == nil && u.Host != "" {
			return u.Scheme + "://" + u.Host + path
		}
		return strings.TrimRight(c, "/") + path
	}
	addr := h.app.HubAPI
	for _, s := range h.app.servers {
		if s.name == "hub API" && s.ln != nil {
			addr = s.ln.Addr().String()
		}
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "http://" + addr + path
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
	}
	return "http://" + net.JoinHostPort(host, port) + path
}

// publicHost is JUPYTERHUB_HOST: the hub's origin under subdomain_host, "" on one origin.
func (h *Hub) publicHost() string { return h.hubOrigin() }

// serverEnv builds the JUPYTERHUB_* variables (JupyterHub's Spawner.get_env; docs/protocols.md,
// "Environment of a spawned server") for one server; the spawner adds JUPYTERHUB_SERVICE_URL, env_keep,
// the options' environment and the account.
func (h *Hub) serverEnv(user, server, apiToken string) map[string]string {
	apiURL := h.serverAPIURL()
	prefix := h.serverPrefix(user, server)
	access := pyJSONList(accessScopes(user, server))
	env := map[string]string{
		"JUPYTERHUB_API_TOKEN":                   apiToken,
		"JPY_API_TOKEN":                          apiToken,
		"JUPYTERHUB_CLIENT_ID":                   oauthClientID(user, server),
		"JUPYTERHUB_HOST":                        h.publicHost(),
		"JUPYTERHUB_OAUTH_CALLBACK_URL":          h.oauthCallbackURL(user, server),
		"JUPYTERHUB_OAUTH_SCOPES":                access,
		"JUPYTERHUB_OAUTH_ACCESS_SCOPES":         access,
		"JUPYTERHUB_OAUTH_CLIENT_ALLOWED_SCOPES": "[]",
		"JUPYTERHUB_USER":                        user,
		"JUPYTERHUB_SERVER_NAME":                 server,
		"JUPYTERHUB_API_URL":                     apiURL,
		"JUPYTERHUB_ACTIVITY_URL":                apiURL + "/users/" + escapePath(user) + "/activity",
		"JUPYTERHUB_BASE_URL":                    h.base,
		"JUPYTERHUB_SERVICE_PREFIX":              prefix,
	}
	return env
}

// oauthCallbackURL is the server's registered redirect_uri: its prefix + "oauth_callback", with the
// user's origin in front when subdomain_host is set (user.url).
func (h *Hub) oauthCallbackURL(user, server string) string {
	return h.userOrigin(user) + h.serverPrefix(user, server) + "oauth_callback"
}

// serverDescription is the OAuth client's description, "Server at /user/alice/".
func (h *Hub) serverDescription(user, server string) string {
	return "Server at " + h.serverPrefix(user, server)
}

// startServer starts user's server (serverName "" is the default). It returns once the server is
// ready, or with pending=true when the start takes longer than slow_spawn_timeout (API: 201 or 202).
// A refusal or a fast failure is a *serverError. userOptions nil reuses the last stored options.
func (h *Hub) startServer(user *store.User, serverName string, userOptions map[string]any) (pending bool, err error) {
	return h.startServerWait(user, serverName, userOptions, slowSpawnTimeout)
}

// startServerWait is startServer answering "pending" after wait.
func (h *Hub) startServerWait(user *store.User, serverName string, userOptions map[string]any, wait time.Duration) (pending bool, err error) {
	name := user.Name
	key := serverKey(name, serverName)
	if serverName != "" {
		if !h.app.AllowNamedServers {
			return false, &serverError{Status: http.StatusBadRequest, Msg: "Named servers are not enabled."}
		}
		if strings.Contains(serverName, "/") {
			return false, &serverError{Status: http.StatusBadRequest, Msg: fmt.Sprintf("Invalid server_name (may not contain '/'): %s", serverName)}
		}
	}
	var rec *store.Server
	var named int
	err = h.store.View(func(tx *store.Txn) error {
		servers, err := tx.Servers(name)
		if err != nil {
			return err
		}
		for _, s := range servers {
			if s.Name == serverName {
				rec = s
			} else if s.Name != "" {
				named++
			}
		}
		return nil
	})
	if err != nil {
		return false, fmt.Errorf("reading servers of %s: %w", name, err)
	}
	if serverName != "" && rec == nil && h.app.NamedServerLimitPerUser > 0 && named >= h.app.NamedServerLimitPerUser {
		return false, &serverError{Status: http.StatusBadRequest, Msg: fmt.Sprintf(
			"User %s already has the maximum of %d named servers.  One must be deleted before a new server can be created",
			name, h.app.NamedServerLimitPerUser)}
	}
	if op := h.rt.op(key); op != nil {
		if op.kind == "spawn" {
			return true, nil
		}
		return false, &serverError{Status: http.StatusBadRequest, Msg: fmt.Sprintf("%s is pending %s", logName(name, serverName), op.kind)}
	}
	if rec != nil && rec.Ready {
		// Notice a server that died since the last poll (poll_and_notify).
		pctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		alive, perr := h.spawner.Poll(pctx, rec.State)
		cancel()
		if perr == nil && alive {
			return false, &serverError{Status: http.StatusBadRequest, Msg: logName(name, serverName) + " is already running"}
		}
		h.serverGone(name, serverName, "its process is gone")
	}
	if userOptions == nil && rec != nil {
		userOptions = rec.UserOptions
	}
	if userOptions, err = h.validateUserOptions(userOptions); err != nil {
		return false, err
	}

	authState, authEnv, err := h.spawnAuth(user)
	if err != nil {
		return false, err
	}

	// Take the server: limits are checked and the op recorded under one lock.
	op := &serverOp{kind: "spawn", progress: newProgressLog(), done: make(chan struct{})}
	h.rt.mu.Lock()
	if cur := h.rt.ops[key]; cur != nil {
		h.rt.mu.Unlock()
		if cur.kind == "spawn" {
			return true, nil
		}
		return false, &serverError{Status: http.StatusBadRequest, Msg: fmt.Sprintf("%s is pending %s", logName(name, serverName), cur.kind)}
	}
	if lim := h.app.ConcurrentSpawnLimit; lim > 0 && h.rt.spawnsPendingLocked() >= lim {
		h.rt.mu.Unlock()
		retry := 30 + rand.IntN(31) // spawn_throttle_retry_range (30, 60)
		h.logger.Warn("too many pending spawns, throttling", zap.Int("concurrent_spawn_limit", lim), zap.Int("retry_after", retry))
		return false, &serverError{Status: http.StatusTooManyRequests, RetryAfter: retry, Msg: fmt.Sprintf(
			"Too many users trying to log in right now. Try again in %d0 seconds.", (retry+9)/10)}
	}
	if lim := h.app.ActiveServerLimit; lim > 0 && len(h.rt.active) >= lim {
		h.rt.mu.Unlock()
		h.logger.Info("active server limit reached", zap.Int("active_server_limit", lim))
		return false, &serverError{Status: http.StatusTooManyRequests, Msg: "Active user limit exceeded. Try again in a few minutes."}
	}
	h.rt.ops[key] = op
	h.rt.progress[key] = op.progress
	h.rt.active[key] = struct{}{}
	h.rt.mu.Unlock()
	op.progress.add(map[string]any{"progress": 0, "message": "Server requested"})

	secret := store.NewToken()
	clientID := oauthClientID(name, serverName)
	now := time.Now().UTC()
	err = h.store.Update(func(tx *store.Txn) error {
		// Whatever an earlier run of this server left (its token, client, OAuth tokens) goes first.
		if err := h.revokeServerCredentials(tx, name, serverName); err != nil {
			return err
		}
		tok := &store.Token{
			User:       name,
			Kind:       "server",
			ServerName: serverName,
			Note:       h.serverDescription(name, serverName),
			Roles:      []string{rbac.RoleServer},
			Scopes:     rbac.ServerTokenScopes(nil, name, serverName),
		}
		if err := tx.CreateToken(tok, secret); err != nil {
			return err
		}
		if err := tx.PutOAuthClient(&store.OAuthClient{
			ID:          clientID,
			SecretHash:  store.Hash(secret),
			RedirectURI: h.oauthCallbackURL(name, serverName),
			Description: h.serverDescription(name, serverName),
			Scopes:      []string{}, // Spawner.oauth_client_allowed_scopes: none beyond identify and access
			User:        name,
			ServerName:  serverName,
		}); err != nil {
			return err
		}
		s := &store.Server{User: name, Name: serverName, Pending: "spawn", Started: now, LastActivity: now, UserOptions: userOptions}
		if rec != nil {
			s.LastActivity = rec.LastActivity
		}
		return tx.PutServer(s)
	})
	if err != nil {
		op.progress.finish(map[string]any{"progress": 100, "failed": true, "message": "Spawn failed: could not record the spawn"})
		h.finishOp(key, op, err)
		return false, fmt.Errorf("recording spawn of %s: %w", logName(name, serverName), err)
	}

	req := &spawners.StartRequest{
		User:          name,
		ServerName:    serverName,
		Admin:         user.Admin,
		ServicePrefix: h.serverPrefix(name, serverName),
		Env:           mergeEnv(h.serverEnv(name, serverName, secret), authEnv),
		DataDir:       h.app.DataDir,
		UserOptions:   userOptions,
		AuthState:     authState,
	}
	req.Launched = func(srv *spawners.Server) error { return h.recordLaunched(name, serverName, srv) }
	h.logger.Info("spawning server", zap.String("user", name), zap.String("server", serverName))
	go h.runSpawn(key, op, req)

	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-op.done:
		if op.err != nil {
			return false, &serverError{Status: http.StatusInternalServerError, Msg: op.err.Error()}
		}
		return false, nil
	case <-t.C:
		return true, nil
	}
}

func logName(user, server string) string {
	if server == "" {
		return user + "'s server"
	}
	return user + "'s server " + server
}

// runSpawn runs the spawner (spawnerStart → spawners.StartAndWait: start, record the launched
// server, wait until it answers) and records the outcome: route and ready, or a failure that leaves nothing behind.
func (h *Hub) runSpawn(key string, op *serverOp, req *spawners.StartRequest) {
	o := h.spawner.Common()
	ctx, cancel := context.WithTimeout(context.Background(), time.Duration(o.StartTimeout)+30*time.Second)
	defer cancel()
	began := time.Now()
	srv, err := h.spawnerStart(ctx, req, func(ev spawners.Event) {
		op.progress.add(map[string]any{"progress": ev.Progress, "message": ev.Message})
	})
	if err == nil {
		err = h.recordStarted(req.User, req.ServerName, srv)
		if err != nil {
			// The server runs but cannot be routed or recorded: stop it, leave nothing behind.
			h.stopQuietly(req.User, req.ServerName, srv.State, "stopping server that could not be recorded")
		}
	}
	if err != nil {
		h.observeSpawn("failure", time.Since(began))
	} else {
		h.observeSpawn("success", time.Since(began))
	}
	h.endSpawn(key, op, req.User, req.ServerName, srv, err, began)
}

// stopTimeout bounds one spawner Stop. Spawners bound their own grace periods (term_timeout and
// kill_timeout for local processes); this only keeps a stuck engine from holding a server forever.
const stopTimeout = 2 * time.Minute

// stopQuietly stops a server through the spawner after a failure, logging (not returning) an error.
func (h *Hub) stopQuietly(user, server string, state json.RawMessage, what string) {
	ctx, cancel := context.WithTimeout(context.Background(), stopTimeout)
	defer cancel()
	if err := h.spawnerStop(ctx, user, state); err != nil {
		h.logger.Error(what, zap.String("user", user), zap.String("server", server), zap.Error(err))
	}
}

// endSpawn records how a spawn ended (a failure cleans up with recordFailed; a success was recorded
// by recordStarted), finishes its progress log and ends its op.
func (h *Hub) endSpawn(key string, op *serverOp, user, server string, srv *spawners.Server, err error, began time.Time) {
	if err != nil {
		h.recordFailed(user, server, err)
		h.logger.Warn("spawn failed", zap.String("user", user), zap.String("server", server),
			zap.Duration("after", time.Since(began)), zap.String("reason", err.Error()))
		op.progress.finish(map[string]any{"progress": 100, "failed": true, "message": "Spawn failed: " + err.Error()})
	} else {
		url := h.userOrigin(user) + h.serverPrefix(user, server)
		h.logger.Info("server ready", zap.String("user", user), zap.String("server", server),
			zap.String("target", srv.URL), zap.Duration("took", time.Since(began)))
		op.progress.finish(map[string]any{
			"progress": 100, "ready": true, "url": url,
			"message":      "Server ready at " + url,
			"html_message": fmt.Sprintf(`Server ready at <a href="%s">%s</a>`, url, url),
		})
	}
	h.finishOp(key, op, err)
}

// finishOp ends an op; a failed spawn and a successful stop leave the server inactive (a failed
// stop leaves it running).
func (h *Hub) finishOp(key string, op *serverOp, err error) {
	h.rt.mu.Lock()
	if h.rt.ops[key] == op {
		delete(h.rt.ops, key)
	}
	if (op.kind == "spawn") == (err != nil) {
		delete(h.rt.active, key)
	}
	h.rt.mu.Unlock()
	op.err = err
	close(op.done)
}

// recordLaunched stores the state and target of a server the spawner has launched but that does not
// answer yet (StartRequest.Launched), in one synced transaction, leaving it pending "spawn" and not
// ready, without a route: a hub killed before the server answers finds the process at its next start
// (adoptLaunchedSpawn) instead of leaking it. JupyterHub likewise commits spawner.get_state() as soon
// as spawner.start() returns, before _wait_up (user.py spawn). recordFailed clears both again.
func (h *Hub) recordLaunched(user, server string, srv *spawners.Server) error {
	if srv == nil || srv.URL == "" || len(srv.State) == 0 {
		return errors.New("the spawner reported a launched server without a URL or state")
	}
	err := h.store.Update(func(tx *store.Txn) error {
		s, err := tx.Server(user, server)
		if err != nil {
			return err
		}
		if s.Pending != "spawn" {
			return fmt.Errorf("the server is no longer pending spawn (pending %q)", s.Pending)
		}
		s.Target, s.State = srv.URL, srv.State
		return tx.PutServer(s)
	})
	if err != nil {
		return fmt.Errorf("storing the server's state: %w", err)
	}
	return nil
}

// recordStarted stores the spawner's state first (so that a hub killed now can find the process),
// then adds the route, then marks the server ready.
func (h *Hub) recordStarted(user, server string, srv *spawners.Server) error {
	update := func(ready bool) error {
		return h.store.Update(func(tx *store.Txn) error {
			s, err := tx.Server(user, server)
			if err != nil {
				return err
			}
			s.Target, s.State, s.Failure = srv.URL, srv.State, ""
			if ready {
				s.Ready, s.Pending = true, ""
			}
			return tx.PutServer(s)
		})
	}
	if err := update(false); err != nil {
		return fmt.Errorf("recording server state: %w", err)
	}
	addStart := time.Now()
	if _, err := h.table.Add(h.routeKey(user, server), srv.URL, h.routeData(user, server)); err != nil {
		return fmt.Errorf("adding route: %w", err)
	}
	h.observeRouteAdd(time.Since(addStart))
	if err := update(true); err != nil {
		_, _ = h.table.Delete(h.routeKey(user, server))
		return fmt.Errorf("recording server ready: %w", err)
	}
	return nil
}

func (h *Hub) routeData(user, server string) map[string]any {
	return map[string]any{"jupyterhub": true, "user": user, "server_name": server}
}

// recordFailed cleans up after a failed start: no route, no token, no OAuth client; the reason is
// kept on the record for the user.
func (h *Hub) recordFailed(user, server string, cause error) {
	if _, err := h.table.Delete(h.routeKey(user, server)); err != nil {
		h.logger.Error("deleting route of failed server", zap.String("user", user), zap.Error(err))
	}
	err := h.store.Update(func(tx *store.Txn) error {
		if err := h.revokeServerCredentials(tx, user, server); err != nil {
			return err
		}
		s, err := tx.Server(user, server)
		if errors.Is(err, store.ErrNotFound) {
			s = &store.Server{User: user, Name: server}
		} else if err != nil {
			return err
		}
		s.Ready, s.Pending, s.Target, s.State, s.Started = false, "", "", nil, time.Time{}
		s.Failure = cause.Error()
		return tx.PutServer(s)
	})
	if err != nil {
		h.logger.Error("recording failed spawn", zap.String("user", user), zap.Error(err))
	}
}

// revokeServerCredentials deletes the server's own tokens, its OAuth client and the OAuth tokens the
// client issued (JupyterHub deletes the client, and its tokens go with it), in one scan of the
// user's tokens.
func (h *Hub) revokeServerCredentials(tx *store.Txn, user, server string) error {
	toks, err := serverCredentials(tx, user, server)
	if err != nil {
		return err
	}
	return deleteServerCredentials(tx, user, server, toks)
}

// serverCredentials lists the tokens revokeServerCredentials deletes, in one scan of the user's.
func serverCredentials(tx *store.Txn, user, server string) ([]*store.Token, error) {
	clientID := oauthClientID(user, server)
	toks, err := tx.OwnerTokens(store.OwnerUser(user), time.Now())
	if err != nil {
		return nil, err
	}
	var out []*store.Token
	for _, t := range toks {
		if (t.Kind == "server" && t.ServerName == server) || t.OAuthClient == clientID {
			out = append(out, t)
		}
	}
	return out, nil
}

func deleteServerCredentials(tx *store.Txn, user, server string, toks []*store.Token) error {
	for _, t := range toks {
		if err := tx.DeleteToken(t); err != nil {
			return err
		}
	}
	return tx.DeleteOAuthClient(oauthClientID(user, server))
}

// stopServer stops user's server and waits for it (or for ctx). Stopping a server that is not
// running is not an error. A named server's record stays; beginStop with remove deletes it.
func (h *Hub) stopServer(ctx context.Context, user *store.User, serverName string) error {
	op, err := h.beginStop(user.Name, serverName, false)
	if err != nil || op == nil {
		return err
	}
	select {
	case <-op.done:
		return op.err
	case <-ctx.Done():
		return fmt.Errorf("stopping %s: %w", logName(user.Name, serverName), ctx.Err())
	}
}

// beginStop starts stopping a server in the background and returns its op (nil when nothing was
// running and nothing was left to do). remove deletes the server's record once stopped.
func (h *Hub) beginStop(user, server string, remove bool) (*serverOp, error) {
	key := serverKey(user, server)
	h.rt.mu.Lock()
	if cur := h.rt.ops[key]; cur != nil {
		h.rt.mu.Unlock()
		if cur.kind == "stop" {
			if remove {
				go func() {
					if <-cur.done; cur.err == nil {
						h.removeServerRecord(user, server)
					}
				}()
			}
			return cur, nil
		}
		return nil, &serverError{Status: http.StatusBadRequest, Msg: fmt.Sprintf("%s is pending %s, please wait", logName(user, server), cur.kind)}
	}
	var rec *store.Server
	err := h.store.View(func(tx *store.Txn) error {
		var err error
		rec, err = tx.Server(user, server)
		return err
	})
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		h.rt.mu.Unlock()
		return nil, fmt.Errorf("reading server of %s: %w", user, err)
	}
	if rec == nil || !rec.Active() {
		h.rt.mu.Unlock()
		if remove && rec != nil {
			h.removeServerRecord(user, server)
		}
		return nil, nil
	}
	op := &serverOp{kind: "stop", done: make(chan struct{})}
	h.rt.ops[key] = op
	delete(h.rt.progress, key)
	h.rt.mu.Unlock()
	go func() {
		err := h.runStop(rec)
		h.finishOp(key, op, err)
		if remove && err == nil {
			h.removeServerRecord(user, server)
		}
	}()
	return op, nil
}

func (h *Hub) removeServerRecord(user, server string) {
	if err := h.store.Update(func(tx *store.Txn) error { return tx.DeleteServer(user, server) }); err != nil {
		h.logger.Error("deleting server record", zap.String("user", user), zap.String("server", server), zap.Error(err))
	}
}

// runStop: pending "stop", route removed, spawner stop, credentials revoked, record stopped.
func (h *Hub) runStop(rec *store.Server) error {
	user, server := rec.User, rec.Name
	rec.Pending = "stop"
	if err := h.store.Update(func(tx *store.Txn) error { return tx.PutServer(rec) }); err != nil {
		return fmt.Errorf("recording stop of %s: %w", logName(user, server), err)
	}
	if _, err := h.table.Delete(h.routeKey(user, server)); err != nil {
		h.logger.Error("deleting route", zap.String("user", user), zap.Error(err))
	}
	ctx, cancel := context.WithTimeout(context.Background(), stopTimeout)
	defer cancel()
	stopStart := time.Now()
	stopErr := h.spawnerStop(ctx, user, rec.State)
	if stopErr != nil {
		h.observeStop("failure", time.Since(stopStart))
	} else {
		h.observeStop("success", time.Since(stopStart))
	}
	err := h.store.Update(func(tx *store.Txn) error {
		if stopErr == nil {
			if err := h.revokeServerCredentials(tx, user, server); err != nil {
				return err
			}
		}
		s, err := tx.Server(user, server)
		if err != nil {
			return err
		}
		if stopErr != nil {
			// Keep the state so that a later stop can try again (the route comes back below if the
			// server still runs).
			s.Pending = ""
			return tx.PutServer(s)
		}
		s.Ready, s.Pending, s.Target, s.State, s.Started = false, "", "", nil, time.Time{}
		s.LastActivity = time.Now().UTC()
		return tx.PutServer(s)
	})
	if stopErr != nil {
		h.logger.Error("stopping server failed", zap.String("user", user), zap.String("server", server), zap.Error(stopErr))
		// Still running: keep it reachable rather than orphaned without a route.
		pctx, pcancel := context.WithTimeout(context.Background(), 10*time.Second)
		alive, perr := h.spawner.Poll(pctx, rec.State)
		pcancel()
		if perr == nil && alive && rec.Target != "" {
			if _, err := h.table.Add(h.routeKey(user, server), rec.Target, h.routeData(user, server)); err != nil {
				h.logger.Error("restoring route after a failed stop", zap.String("user", user), zap.Error(err))
			}
		}
		return fmt.Errorf("stopping %s: %w", logName(user, server), stopErr)
	}
	if err != nil {
		return fmt.Errorf("recording stopped %s: %w", logName(user, server), err)
	}
	h.logger.Info("server stopped", zap.String("user", user), zap.String("server", server))
	return nil
}

// serverGone records that a server found dead is stopped: route, credentials and state removed.
// It does nothing while a start or stop of the server is in flight.
func (h *Hub) serverGone(user, server, why string) {
	key := serverKey(user, server)
	if h.rt.op(key) != nil {
		return
	}
	if _, err := h.table.Delete(h.routeKey(user, server)); err != nil {
		h.logger.Error("deleting route of dead server", zap.String("user", user), zap.Error(err))
	}
	err := h.store.Update(func(tx *store.Txn) error { return h.markStoppedTx(tx, user, server) })
	if err != nil {
		h.logger.Error("recording dead server", zap.String("user", user), zap.Error(err))
		return
	}
	h.rt.mu.Lock()
	if h.rt.ops[key] == nil {
		delete(h.rt.active, key)
	}
	h.rt.mu.Unlock()
	h.logger.Warn("server is no longer running", zap.String("user", user), zap.String("server", server), zap.String("why", why))
	h.postSpawnStop(user)
}

func (h *Hub) markStoppedTx(tx *store.Txn, user, server string) error {
	toks, err := serverCredentials(tx, user, server)
	if err != nil {
		return err
	}
	return h.markStoppedTxWith(tx, user, server, toks)
}

// markStoppedTxWith records a server stopped, deleting the credentials listed beforehand.
func (h *Hub) markStoppedTxWith(tx *store.Txn, user, server string, toks []*store.Token) error {
	if err := deleteServerCredentials(tx, user, server, toks); err != nil {
		return err
	}
	s, err := tx.Server(user, server)
	if errors.Is(err, store.ErrNotFound) {
		return nil
	} else if err != nil {
		return err
	}
	s.Ready, s.Pending, s.Target, s.State, s.Started = false, "", "", nil, time.Time{}
	return tx.PutServer(s)
}

// registerSpawn registers the endpoints of the spawn flow, whoami, activity and the OAuth provider.
func (h *Hub) registerSpawn(mux *http.ServeMux) {
	p := h.prefix + "api"
	mux.HandleFunc("GET "+p+"", h.serveAPIVersion)
	mux.HandleFunc("GET "+p+"/{$}", h.serveAPIVersion)
	mux.HandleFunc("GET "+p+"/user", h.serveWhoami)
	mux.HandleFunc("POST "+p+"/users/{name}/activity", h.serveActivity)
	mux.HandleFunc("POST "+p+"/users/{name}/server", h.serveStartServer)
	mux.HandleFunc("DELETE "+p+"/users/{name}/server", h.serveStopServer)
	mux.HandleFunc("POST "+p+"/users/{name}/servers/{server}", h.serveStartServer)
	mux.HandleFunc("DELETE "+p+"/users/{name}/servers/{server}", h.serveStopServer)
	mux.HandleFunc("GET "+p+"/users/{name}/server/progress", h.serveProgress)
	mux.HandleFunc("GET "+p+"/users/{name}/servers/{server}/progress", h.serveProgress)
	mux.HandleFunc("GET "+p+"/oauth2/authorize", h.serveAuthorize)
	mux.HandleFunc("POST "+p+"/oauth2/authorize", h.serveAuthorize)
	mux.HandleFunc("POST "+p+"/oauth2/token", h.serveToken)
}

// startSpawn adopts the servers recorded as active (from the store's index, never a scan of users):
// alive ones keep (or get back) their route, dead ones and spawns a dead hub left pending are marked
// stopped. Then it starts this generation's poll loop.
func (h *Hub) startSpawn() error {
	began := time.Now()
	var servers []*store.Server
	if err := h.store.View(func(tx *store.Txn) error {
		var err error
		servers, err = tx.ActiveServers()
		return err
	}); err != nil {
		return fmt.Errorf("listing active servers: %w", err)
	}
	alive, dead := h.adopt(servers)
	h.logger.Info("adopted running servers", zap.Int("running", alive), zap.Int("stopped", dead),
		zap.Duration("took", time.Since(began)))
	go h.logOrphans()

	ctx, cancel := context.WithCancel(context.Background())
	h.rt.mu.Lock()
	h.rt.loops[h] = cancel
	h.rt.mu.Unlock()
	go h.pollLoop(ctx)
	return nil
}

// adoptResult is what adoption found out about one server.
type adoptResult struct {
	s     *store.Server
	alive bool
	op    *serverOp // the resumed spawn of a launched server (adoptLaunchedSpawn), or nil
}

// errSpawnGoneAtStart ends the resumed spawn of a launched server that was no longer running when the
// hub started.
var errSpawnGoneAtStart = errors.New("the server stopped while the hub was down; start it again")

// adopt polls servers concurrently and reconciles records, routes and the active set.
func (h *Hub) adopt(servers []*store.Server) (alive, dead int) {
	results := make([]adoptResult, len(servers))
	sem := make(chan struct{}, adoptConcurrency)
	var wg sync.WaitGroup
	for i, s := range servers {
		results[i].s = s
		key := serverKey(s.User, s.Name)
		if h.rt.op(key) != nil {
			results[i].alive = true // in flight in this process (a reload): not ours to judge
			continue
		}
		if launchedSpawn(s) {
			// Hold the server before polling it, so that no start request launches a second process.
			if results[i].op = h.claimResumedSpawn(key); results[i].op == nil {
				results[i].alive = true // someone took it meanwhile
				continue
			}
		}
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			if op := results[i].op; op != nil {
				results[i].alive = h.adoptLaunchedSpawn(key, op, s)
			} else {
				results[i].alive = h.adoptOne(s)
			}
		}()
	}
	wg.Wait()

	// Record the dead in batched transactions: one fsync per batch, not per server.
	var gone []*store.Server
	active := make(map[string]struct{}, len(servers))
	for _, r := range results {
		if r.alive {
			active[serverKey(r.s.User, r.s.Name)] = struct{}{}
			alive++
		} else {
			gone = append(gone, r.s)
		}
	}
	dead = len(gone)
	deadList := gone
	// Their route records go in the same commits; the table then forgets them without writing again.
	deleted := make(map[string]bool, len(gone))
	size := 500
	for len(gone) > 0 {
		batch := gone[:min(len(gone), size)]
		// Scans run in a read transaction: an iterator in a write transaction sorts its pending
		// writes each time, which would make a big batch quadratic.
		creds := make([][]*store.Token, len(batch))
		err := h.store.View(func(tx *store.Txn) error {
			for i, s := range batch {
				var err error
				if creds[i], err = serverCredentials(tx, s.User, s.Name); err != nil {
					return err
				}
			}
			return nil
		})
		if err == nil {
			err = h.store.Update(func(tx *store.Txn) error {
				for i, s := range batch {
					if err := h.markStoppedTxWith(tx, s.User, s.Name, creds[i]); err != nil {
						return err
					}
					if k, err := routetable.NormalizeKey(h.routeKey(s.User, s.Name)); err == nil {
						if err := tx.DeleteRouteRecord(k); err != nil {
							return err
						}
					}
				}
				return nil
			})
		}
		if errors.Is(err, store.ErrTooBig) && len(batch) > 1 {
			// Servers with many OAuth tokens: nothing was written; retry in smaller batches.
			size = len(batch) / 2
			continue
		}
		gone = gone[len(batch):]
		if err != nil {
			h.logger.Error("recording stopped servers", zap.Int("servers", len(batch)), zap.Error(err))
			continue
		}
		for _, s := range batch {
			if k, err := routetable.NormalizeKey(h.routeKey(s.User, s.Name)); err == nil {
				deleted[k] = true
			}
			h.logger.Info("server not running at hub start", zap.String("user", s.User), zap.String("server", s.Name))
		}
	}
	if len(deleted) > 0 {
		h.table.SetPersister(skipDeletes{routePersister{h.store}, deleted})
		for k := range deleted {
			if _, err := h.table.Delete(k); err != nil {
				h.logger.Error("deleting route of dead server", zap.String("route", k), zap.Error(err))
			}
		}
		h.table.SetPersister(routePersister{h.store})
	}
	// Drop user routes whose server is not active (a hub killed between a stop and its route delete).
	for _, rt := range h.table.All() {
		d := rt.Data()
		if d["jupyterhub"] != true {
			continue
		}
		user, _ := d["user"].(string)
		server, _ := d["server_name"].(string)
		if user == "" {
			continue
		}
		if _, ok := active[serverKey(user, server)]; !ok && h.rt.op(serverKey(user, server)) == nil {
			// Look again: the server may have been started since the listing (during a reload).
			if rec, err := h.spawnServerRecord(user, server); err != nil || (rec != nil && rec.Active()) {
				continue
			}
			if _, err := h.table.Delete(rt.Key()); err != nil {
				h.logger.Error("deleting stale route", zap.String("route", rt.Key()), zap.Error(err))
			}
		}
	}
	// Merge rather than replace: a spawn of the running generation may have finished meanwhile.
	h.rt.mu.Lock()
	for k := range active {
		h.rt.active[k] = struct{}{}
	}
	for _, s := range deadList {
		if k := serverKey(s.User, s.Name); h.rt.ops[k] == nil {
			delete(h.rt.active, k)
		}
	}
	h.rt.mu.Unlock()
	// Resumed spawns whose process was gone end now that their records say stopped.
	for _, r := range results {
		if r.op != nil && !r.alive {
			r.op.progress.finish(map[string]any{"progress": 100, "failed": true, "message": "Spawn failed: " + errSpawnGoneAtStart.Error()})
			h.finishOp(serverKey(r.s.User, r.s.Name), r.op, errSpawnGoneAtStart)
		}
	}
	return alive, dead
}

// launchedSpawn reports whether s is a spawn a dead hub left in flight after its spawner had reported
// the process (recordLaunched): pending "spawn" with a state and a target.
func launchedSpawn(s *store.Server) bool {
	return s.Pending == "spawn" && len(s.State) > 0 && s.Target != ""
}

// claimResumedSpawn takes the server for a resumed spawn, as startServerWait does for a new one: an op
// "spawn" (a second start request answers "pending" instead of launching again; stops are refused
// until it ends), its progress log, and a place in the active set. It returns nil when an op holds the
// server already.
func (h *Hub) claimResumedSpawn(key string) *serverOp {
	op := &serverOp{kind: "spawn", progress: newProgressLog(), done: make(chan struct{})}
	h.rt.mu.Lock()
	defer h.rt.mu.Unlock()
	if h.rt.ops[key] != nil {
		return nil
	}
	h.rt.ops[key] = op
	h.rt.progress[key] = op.progress
	h.rt.active[key] = struct{}{}
	op.progress.add(map[string]any{"progress": 0, "message": "Server requested"})
	return op
}

// adoptLaunchedSpawn polls a launched server a dead hub left pending (JupyterHub's check_spawner).
// Not running: false, and adopt records it stopped and ends op. Running: the spawn resumes in the
// background (finishResumedSpawn) and it counts as alive; it stays pending "spawn" until it answers.
func (h *Hub) adoptLaunchedSpawn(key string, op *serverOp, s *store.Server) bool {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	running, err := h.spawner.Poll(ctx, s.State)
	cancel()
	if err != nil {
		h.logger.Warn("polling server at start", zap.String("user", s.User), zap.String("server", s.Name), zap.Error(err))
		return false
	}
	if !running {
		return false
	}
	h.logger.Info("resuming a spawn the hub was killed during", zap.String("user", s.User), zap.String("server", s.Name),
		zap.String("target", s.Target))
	op.progress.add(map[string]any{"progress": 50, "message": "Server process found running after a hub restart; waiting for it to answer"})
	go h.finishResumedSpawn(key, op, s)
	return true
}

// finishResumedSpawn waits, as a fresh spawn does (spawners.WaitUp, within http_timeout), until a
// resumed spawn's server answers HTTP on its prefix, then finishes the spawn as runSpawn does (route,
// ready, progress 100). The server is not the hub's child: WaitUp polls the spawner to notice that
// it exited. A server that exits or never answers is stopped through the spawner and recorded as a
// failed spawn (credentials revoked), so nothing is left running.
func (h *Hub) finishResumedSpawn(key string, op *serverOp, s *store.Server) {
	user, server := s.User, s.Name
	o := h.spawner.Common()
	began := time.Now()
	srv := &spawners.Server{URL: s.Target, State: s.State}
	ctx, cancel := context.WithTimeout(context.Background(), time.Duration(o.HTTPTimeout)+10*time.Second)
	err := spawners.WaitUp(ctx, h.spawner, srv, h.serverPrefix(user, server), began)
	cancel()
	if err == nil {
		err = h.recordStarted(user, server, srv)
	}
	if err != nil {
		h.stopQuietly(user, server, s.State, "stopping server whose resumed spawn failed")
	}
	h.endSpawn(key, op, user, server, srv, err, began)
}

// adoptOne polls one recorded ready server; alive servers get their route back if it is missing.
// Dead ones lose their route here; their records are updated in a batch by the caller. It finishes a
// stop the previous hub left pending; a spawn left pending is dead unless its spawner had reported
// the process (launchedSpawn, handled by adoptLaunchedSpawn).
func (h *Hub) adoptOne(s *store.Server) bool {
	key := h.routeKey(s.User, s.Name)
	ok := false
	if len(s.State) > 0 && s.Target != "" && s.Pending == "" {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		running, err := h.spawner.Poll(ctx, s.State)
		cancel()
		if err != nil {
			h.logger.Warn("polling server at start", zap.String("user", s.User), zap.String("server", s.Name), zap.Error(err))
		}
		ok = err == nil && running
	} else if s.Pending == "stop" && len(s.State) > 0 {
		// A stop the previous hub did not finish: finish it.
		h.stopQuietly(s.User, s.Name, s.State, "finishing interrupted stop")
	}
	if !ok {
		return false // the caller drops the route with the record, in a batch
	}
	if r := h.table.Get(key); r == nil || r.Target() != s.Target {
		if _, err := h.table.Add(key, s.Target, h.routeData(s.User, s.Name)); err != nil {
			h.logger.Error("restoring route", zap.String("user", s.User), zap.Error(err))
			return false
		}
	}
	return true
}

// skipDeletes is the route table's persister while adoption drops routes whose records it has
// already deleted in its batched commits: those deletes are not written again; everything else
// (another writer, e.g. the proxy API) goes through.
type skipDeletes struct {
	routetable.Persister
	done map[string]bool // read-only while installed
}

func (p skipDeletes) DeleteRoute(key string) error {
	if p.done[key] {
		return nil
	}
	return p.Persister.DeleteRoute(key)
}

// pollLoop checks every poll_interval that active servers still run.
func (h *Hub) pollLoop(ctx context.Context) {
	interval := time.Duration(h.spawner.Common().PollInterval)
	if interval <= 0 {
		interval = 30 * time.Second
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			h.pollOnce(ctx)
		}
	}
}

// pollOnce polls every ready server not in flight, concurrently (bounded).
func (h *Hub) pollOnce(ctx context.Context) {
	h.rt.mu.Lock()
	keys := make([]string, 0, len(h.rt.active))
	for k := range h.rt.active {
		if h.rt.ops[k] == nil {
			keys = append(keys, k)
		}
	}
	h.rt.mu.Unlock()
	sem := make(chan struct{}, adoptConcurrency)
	var wg sync.WaitGroup
	for _, k := range keys {
		if ctx.Err() != nil {
			break
		}
		user, server, _ := strings.Cut(k, "/")
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			var s *store.Server
			if err := h.store.View(func(tx *store.Txn) error {
				var err error
				s, err = tx.Server(user, server)
				return err
			}); err != nil || !s.Ready || s.Pending != "" {
				return
			}
			pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			running, err := h.spawner.Poll(pctx, s.State)
			cancel()
			if err != nil {
				h.logger.Warn("polling server", zap.String("user", user), zap.String("server", server), zap.Error(err))
				return
			}
			if !running {
				h.serverGone(user, server, "poll found it stopped")
			}
		}()
	}
	wg.Wait()
}

// stopSpawn ends this generation's poll loop. Only when cleanup is set (Caddy exiting with
// cleanup_servers) are users' servers stopped.
func (h *Hub) stopSpawn(cleanup bool) {
	h.rt.mu.Lock()
	if cancel := h.rt.loops[h]; cancel != nil {
		cancel()
		delete(h.rt.loops, h)
	}
	h.rt.mu.Unlock()
	if !cleanup {
		return
	}
	var servers []*store.Server
	if err := h.store.View(func(tx *store.Txn) error {
		var err error
		servers, err = tx.ActiveServers()
		return err
	}); err != nil {
		h.logger.Error("listing servers to stop", zap.Error(err))
		return
	}
	var wg sync.WaitGroup
	sem := make(chan struct{}, adoptConcurrency)
	for _, s := range servers {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			op, err := h.beginStop(s.User, s.Name, false)
			if err != nil {
				h.logger.Error("stopping server at exit", zap.String("user", s.User), zap.Error(err))
				return
			}
			if op != nil {
				<-op.done
			}
		}()
	}
	wg.Wait()
}
