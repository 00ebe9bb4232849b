package web

import (
	"cmp"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/caddyhub/caddyhub/auth"
	"github.com/caddyhub/caddyhub/caddymodule/routetable"
	"github.com/caddyhub/caddyhub/hubapp/rbac"
	"github.com/caddyhub/caddyhub/hubapp/servers"
	"github.com/caddyhub/caddyhub/hubapp/store"
	"github.com/caddyhub/caddyhub/spawners"
)

// userRedirectLimit is how often /hub/user/… sends a browser back to a server that the store
// says is ready before it gives up (JupyterHub's user_redirect_limit, 4).
const userRedirectLimit = 4

// serveRoot is GET /hub/: logged in → nextURL (the server, /hub/spawn or /hub/home); else login.
func (h *Hub) serveRoot(w http.ResponseWriter, r *http.Request, pr *pageRequest) {
	if pr.user == nil {
		http.Redirect(w, r, h.prefix+"login?"+url.Values{"next": {h.prefix}}.Encode(), http.StatusFound)
		return
	}
	http.Redirect(w, r, h.nextURL(r, pr.user), http.StatusFound)
}

func (h *Hub) serveNotFound(w http.ResponseWriter, r *http.Request, pr *pageRequest) {
	h.renderErrorLink(w, r, pr, http.StatusNotFound, "There is no page at this address.", h.prefix+"home", "Go to the hub's home page")
}

// webServer returns a server's record, or nil when there is none (or the store failed: logged).
func (h *Hub) webServer(user, name string) *store.Server {
	var srv *store.Server
	err := h.store.View(func(tx *store.Txn) error {
		var err error
		srv, err = tx.Server(user, name)
		return err
	})
	if err != nil {
		if !errors.Is(err, store.ErrNotFound) {
			h.logger.Error("reading server record", zap.String("user", user), zap.String("server", name), zap.Error(err))
		}
		return nil
	}
	return srv
}

// serverView is one server as the pages show it.
type serverView struct {
	Name     string // "" for the default server
	URL      string // <base>user/<name>/[<server>/]
	SpawnURL string // the start form's action
	StopURL  string // the REST API URL that stops it (DELETE)
	Ready    bool
	Pending  string // "spawn", "stop" or ""
	Failure  string
	// LastActivity is the server's last activity (stored or seen by the proxy), "" for none.
	LastActivity string
	// Profile is the profile the server was started with, "" for none.
	Profile string
}

func (h *Hub) viewServer(user, name string, srv *store.Server) serverView {
	v := serverView{Name: name, URL: h.fullServerURL(user, name), SpawnURL: h.spawnURL(user, name)}
	v.StopURL = h.prefix + "api/users/" + url.PathEscape(user) + "/server"
	if name != "" {
		v.StopURL = h.prefix + "api/users/" + url.PathEscape(user) + "/servers/" + url.PathEscape(name)
	}
	if srv != nil {
		v.Ready, v.Pending, v.Failure = srv.Ready, srv.Pending, failureText(srv.Failure)
		v.LastActivity = adminTime(h.serverActivity(srv))
		v.Profile = lastProfile(srv)
	}
	return v
}

func (h *Hub) spawnURL(user, server string) string {
	u := h.prefix + "spawn/" + url.PathEscape(user)
	if server != "" {
		u += "/" + url.PathEscape(server)
	}
	return u
}

func (h *Hub) spawnPendingURL(user, server string) string {
	u := h.prefix + "spawn-pending/" + url.PathEscape(user)
	if server != "" {
		u += "/" + url.PathEscape(server)
	}
	return u
}

func withNext(u, next string) string {
	if next == "" {
		return u
	}
	return u + "?" + url.Values{"next": {next}}.Encode()
}

// homeData is the home template's data.
type homeData struct {
	Default           serverView
	Named             []serverView
	AllowNamedServers bool
	NamedLimit        int  // named_server_limit_per_user, 0 for none
	AtLimit           bool // the user has NamedLimit named servers: no new one
}

// serveHome is GET /hub/home: the user's servers with start and stop buttons, and logout.
func (h *Hub) serveHome(w http.ResponseWriter, r *http.Request, pr *pageRequest) {
	var servers []*store.Server
	err := h.store.View(func(tx *store.Txn) error {
		var err error
		servers, err = tx.Servers(pr.user.Name)
		return err
	})
	if err != nil {
		h.logger.Error("listing servers", zap.String("user", pr.user.Name), zap.Error(err))
		h.renderError(w, r, pr, http.StatusInternalServerError, "The hub could not read its database. Try again in a moment.")
		return
	}
	d := homeData{AllowNamedServers: h.cfg.AllowNamedServers}
	d.Default = h.viewServer(pr.user.Name, "", nil)
	for _, s := range servers {
		if s.Name == "" {
			d.Default = h.viewServer(pr.user.Name, "", s)
		} else if h.cfg.AllowNamedServers {
			d.Named = append(d.Named, h.viewServer(pr.user.Name, s.Name, s))
		}
	}
	d.NamedLimit = max(h.cfg.NamedServerLimitPerUser, 0)
	d.AtLimit = d.NamedLimit > 0 && len(d.Named) >= d.NamedLimit
	h.render(w, r, pr, http.StatusOK, "home", "Home", d)
}

// spawnTarget resolves the {user} and {server} of /hub/spawn…, /hub/spawn-pending…: a user acts on
// their own servers, and on others' with the servers scope on them (admins hold it for everybody). It answers the request itself and returns ok=false when
// the target is not allowed or does not exist.
func (h *Hub) spawnTarget(w http.ResponseWriter, r *http.Request, pr *pageRequest) (user *store.User, server string, ok bool) {
	name, server := r.PathValue("user"), r.PathValue("server")
	if name == "" {
		name = pr.user.Name
	}
	if server != "" && !h.cfg.AllowNamedServers {
		h.renderError(w, r, pr, http.StatusBadRequest, "Named servers are not enabled on this hub.")
		return nil, "", false
	}
	if name == pr.user.Name {
		return pr.user, server, true
	}
	u, err := h.findUser(name)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		h.logger.Error("reading user", zap.String("user", name), zap.Error(err))
		h.renderError(w, r, pr, http.StatusInternalServerError, "The hub could not read its database. Try again in a moment.")
		return nil, "", false
	}
	if err != nil {
		u = nil // not found
	}
	if !holdsOnServer(h.pageScopes(pr), name, server, u, "servers") {
		// As JupyterHub (needs_scope("servers")): a filtered scope that does not match is "not
		// found", hiding existence.
		h.renderError(w, r, pr, http.StatusNotFound, "No such user, or you may not act on their servers.")
		return nil, "", false
	}
	if u == nil {
		h.renderError(w, r, pr, http.StatusNotFound, "No such user: "+name)
		return nil, "", false
	}
	return u, server, true
}

// holdsOnServer reports whether scopes grant any of want on a server of user name (target is the
// user's record, nil when there is none: group filters then match nothing), as the API's scope
// checks do.
func holdsOnServer(scopes rbac.Set, name, server string, target *store.User, want ...string) bool {
	var groups []string
	if target != nil {
		groups = target.Groups
	}
	return scopes.Authorize(want, rbac.ServerResource(name, server), groups) == rbac.Allowed
}

// spawnData is the spawn template's data.
type spawnData struct {
	For      string // whose server
	Server   serverView
	Action   string // form action (with next)
	Error    string
	OnBehalf bool
	// Profiles are the spawner's choices (spawners.OptionsSpawner), shown as a select named
	// "profile"; none when the spawner offers none.
	Profiles []profileView
}

// profileView is one profile on the spawn page.
type profileView struct {
	Name, Label, Description string
	Selected                 bool
}

// serveSpawnPage is GET /hub/spawn[/{user}[/{server}]], JupyterHub's SpawnHandler.get with no
// options form: a running server → next or the server; a pending one → its progress page; else
// start it, with the query's user options (userOptionsFromQuery), and go to the progress page,
// which sends the browser on to next or the server when it is ready. A request that may not
// start anything (getMayStart: cross-site) gets a page with a start button instead.
func (h *Hub) serveSpawnPage(w http.ResponseWriter, r *http.Request, pr *pageRequest) {
	u, server, ok := h.spawnTarget(w, r, pr)
	if !ok {
		return
	}
	q := r.URL.Query()
	next := h.safeNext(r, q.Get("next"))
	srv := h.webServer(u.Name, server)
	switch {
	case srv != nil && srv.Ready:
		http.Redirect(w, r, cmp.Or(next, h.fullServerURL(u.Name, server)), http.StatusFound)
		return
	case srv != nil && srv.Pending != "":
		http.Redirect(w, r, withNext(h.spawnPendingURL(u.Name, server), next), http.StatusFound)
		return
	}
	if !h.getMayStart(r, pr) {
		h.renderSpawn(w, r, pr, http.StatusOK, u, server, srv, next, "")
		return
	}
	opts, err := h.userOptionsFromQuery(q)
	if err != nil {
		h.renderSpawn(w, r, pr, http.StatusUnprocessableEntity, u, server, srv, next, err.Error())
		return
	}
	if opts == nil && len(h.profiles()) > 0 {
		// An options form and no options in the query: the user chooses first (JupyterHub's
		// SpawnHandler.get with an options_form).
		h.renderSpawn(w, r, pr, http.StatusOK, u, server, srv, next, "")
		return
	}
	h.startFromPage(w, r, pr, u, server, opts, next, true)
}

// getMayStart reports whether GET /hub/spawn may start a server. Not when the browser marks the
// request cross-site (a link or an image on another site: Sec-Fetch-Site, sent by every current
// browser), and not for a fetch() or subresource request (Sec-Fetch-Mode other than navigate)
// without the page's XSRF token. Scripts that send no Sec-Fetch headers may, as in JupyterHub.
func (h *Hub) getMayStart(r *http.Request, pr *pageRequest) bool {
	if strings.EqualFold(r.Header.Get("Sec-Fetch-Site"), "cross-site") {
		return false
	}
	return xsrfExempt(r) || h.checkXSRFFor(r, pr.sess, false) == nil
}

// userOptionsFromQuery is JupyterHub's SpawnHandler._get_user_options over the query of GET
// /hub/spawn: arguments named opt-<name> become option <name>; when there are none, the other
// arguments are the options (the legacy form); when both kinds are present only the opt- ones
// count. next, display_name and _xsrf are the hub's own. Values are lists of strings, as
// options_from_form makes them. nil when there are none: the last stored options are reused.
func (h *Hub) userOptionsFromQuery(q url.Values) (map[string]any, error) {
	prefixed, legacy := map[string]any{}, map[string]any{}
	for k, vs := range q {
		switch k {
		case "next", "display_name", "_xsrf":
			continue
		}
		if name, ok := strings.CutPrefix(k, "opt-"); ok {
			if name == "" {
				return nil, fmt.Errorf("invalid user-option name %s", k)
			}
			prefixed[name] = slices.Clone(vs)
		} else {
			legacy[k] = slices.Clone(vs)
		}
	}
	switch {
	case len(prefixed) > 0:
		if len(legacy) > 0 {
			h.logger.Warn("spawn query mixes opt- prefixed and unprefixed user options; ignoring the unprefixed ones")
		}
		return prefixed, nil
	case len(legacy) > 0:
		h.logger.Warn("user options in a spawn query should be prefixed with opt- to avoid conflicts with the hub's own parameters")
		return legacy, nil
	}
	return nil, nil
}

func (h *Hub) renderSpawn(w http.ResponseWriter, r *http.Request, pr *pageRequest, status int, u *store.User, server string, srv *store.Server, next, msg string) {
	v := h.viewServer(u.Name, server, srv)
	if msg == "" && srv != nil {
		msg = failureText(srv.Failure)
	}
	var profiles []profileView
	if list := h.profiles(); len(list) > 0 {
		// The profile the server last ran with is chosen again, else the default one.
		chosen := servers.DefaultProfile(list).Name
		if last := lastProfile(srv); last != "" && slices.ContainsFunc(list, func(p spawners.Profile) bool { return p.Name == last }) {
			chosen = last
		}
		for _, p := range list {
			profiles = append(profiles, profileView{Name: p.Name, Label: cmp.Or(p.DisplayName, p.Name),
				Description: p.Description, Selected: p.Name == chosen})
		}
	}
	h.render(w, r, pr, status, "spawn", "Start a server", spawnData{
		For:      u.Name,
		Server:   v,
		Action:   withNext(v.SpawnURL, next),
		Error:    msg,
		OnBehalf: u.Name != pr.user.Name,
		Profiles: profiles,
	})
}

// serveSpawn is POST /hub/spawn[/{user}[/{server}]]: start the server (h.startServer) and go to
// its progress page, or to the server when it is ready at once.
func (h *Hub) serveSpawn(w http.ResponseWriter, r *http.Request, pr *pageRequest) {
	r.Body = http.MaxBytesReader(w, r.Body, 1<<20)
	if err := r.ParseForm(); err != nil {
		h.renderError(w, r, pr, http.StatusBadRequest, "The form could not be read.")
		return
	}
	if err := h.checkXSRFFor(r, pr.sess, false); err != nil {
		h.renderError(w, r, pr, http.StatusForbidden, "The form was invalid or expired. Go back, reload the page and try again.")
		return
	}
	u, server, ok := h.spawnTarget(w, r, pr)
	if !ok {
		return
	}
	next := h.safeNext(r, r.FormValue("next"))
	srv := h.webServer(u.Name, server)
	switch {
	case srv != nil && srv.Ready:
		http.Redirect(w, r, cmp.Or(next, h.fullServerURL(u.Name, server)), http.StatusFound)
		return
	case srv != nil && srv.Pending != "":
		http.Redirect(w, r, withNext(h.spawnPendingURL(u.Name, server), next), http.StatusFound)
		return
	}
	// JupyterHub's options_from_form: every other form field, as a list of strings.
	var opts map[string]any
	for k, vs := range r.PostForm {
		if k == "_xsrf" || k == "next" {
			continue
		}
		if opts == nil {
			opts = make(map[string]any)
		}
		opts[k] = slices.Clone(vs)
	}
	h.startFromPage(w, r, pr, u, server, opts, next, false)
}

// startFromPage starts a server for the spawn page (GET or POST) and redirects to its progress
// page, or, when it is ready at once and viaPending is false, to next or the server. A refusal or
// a fast failure shows the spawn page with the reason, under the error's HTTP status.
func (h *Hub) startFromPage(w http.ResponseWriter, r *http.Request, pr *pageRequest, u *store.User, server string, opts map[string]any, next string, viaPending bool) {
	if u.Name != pr.user.Name {
		h.logger.Info("admin starting a server on behalf of a user", zap.String("admin", pr.user.Name), zap.String("user", u.Name), zap.String("server", server))
	}
	pending, err := h.startServerWait(u, server, opts, pageSpawnWait)
	if errors.Is(err, store.ErrDiskFull) {
		h.renderSpawn(w, r, pr, http.StatusServiceUnavailable, u, server, h.webServer(u.Name, server), next, diskFullMessage)
		return
	}
	if err != nil {
		status := http.StatusInternalServerError
		se := asRefusal(err)
		if se != nil {
			status = refusalStatus(se.Code)
		}
		if se != nil && se.RetryAfter > 0 {
			w.Header().Set("Retry-After", strconv.Itoa(se.RetryAfter))
		}
		h.logger.Info("starting server failed", zap.String("user", u.Name), zap.String("server", server), zap.Error(err))
		h.renderSpawn(w, r, pr, status, u, server, h.webServer(u.Name, server), next, "Your server could not be started: "+err.Error())
		return
	}
	if !pending && !viaPending {
		http.Redirect(w, r, cmp.Or(next, h.fullServerURL(u.Name, server)), http.StatusFound)
		return
	}
	http.Redirect(w, r, withNext(h.spawnPendingURL(u.Name, server), next), http.StatusFound)
}

// pendingData is the spawn_pending and not_running templates' data.
type pendingData struct {
	For         string
	Server      serverView
	Stopping    bool
	ProgressURL string // EventSource, with ?_xsrf=
	Next        string // where to go when ready
	SpawnAction string // start form action
	Failure     string
	Message     string
	// ImplicitSpawnSeconds > 0 submits the start form by itself after that many seconds
	// (JupyterHub's implicit_spawn_seconds); only for the user's own server.
	ImplicitSpawnSeconds int
}

func (h *Hub) implicitSpawnSeconds(visitor *store.User, owner string) int {
	if visitor == nil || visitor.Name != owner {
		return 0
	}
	return max(h.cfg.ImplicitSpawnSeconds, 0)
}

// serveSpawnPending is GET /hub/spawn-pending/{user}[/{server}]: progress while starting (from
// the EventSource), the server when ready, the failure in words when it failed (500, as
// JupyterHub). It never starts anything.
func (h *Hub) serveSpawnPending(w http.ResponseWriter, r *http.Request, pr *pageRequest) {
	u, server, ok := h.spawnTarget(w, r, pr)
	if !ok {
		return
	}
	next := h.safeNext(r, r.URL.Query().Get("next"))
	srv := h.webServer(u.Name, server)
	if srv != nil && srv.Ready {
		http.Redirect(w, r, cmp.Or(next, h.fullServerURL(u.Name, server)), http.StatusFound)
		return
	}
	v := h.viewServer(u.Name, server, srv)
	d := pendingData{For: u.Name, Server: v, Next: cmp.Or(next, v.URL), SpawnAction: withNext(v.SpawnURL, next)}
	switch {
	case srv != nil && srv.Pending != "":
		d.Stopping = srv.Pending == "stop"
		progress := h.prefix + "api/users/" + url.PathEscape(u.Name) + "/server/progress"
		if server != "" {
			progress = h.prefix + "api/users/" + url.PathEscape(u.Name) + "/servers/" + url.PathEscape(server) + "/progress"
		}
		d.ProgressURL = progress + "?" + url.Values{"_xsrf": {h.xsrfToken(r, pr.sess)}}.Encode()
		h.render(w, r, pr, http.StatusOK, "spawn_pending", "Starting your server", d)
	case srv != nil && srv.Failure != "":
		d.Failure = failureText(srv.Failure)
		h.render(w, r, pr, http.StatusInternalServerError, "not_running", "Server not running", d)
	default:
		h.render(w, r, pr, http.StatusOK, "not_running", "Server not running", d)
	}
}

// serveHubUser is /hub/user/{user}/{path...}: the edge sends /user/<name>/… here when no route matched,
// i.e. the server is not running (docs/protocols.md, "A server that is not running"). Ready (a race with
// the route) → back to /user/…, with a loop guard; pending or failed → progress page; stopped → 424 page
// with a start button, or JupyterHub's JSON 424 for API clients. Non-GET requests always get the JSON.
func (h *Hub) serveHubUser(w http.ResponseWriter, r *http.Request, pr *pageRequest) {
	name, rest := r.PathValue("user"), r.PathValue("path")
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		h.failStoppedServerAPI(w, r, name, "")
		return
	}
	user := pr.user
	var scopes rbac.Set
	if user != nil {
		scopes = h.pageScopes(pr)
	} else {
		// Tokens are accepted here too (API clients of a stopped server).
		id, err := h.identify(r)
		switch {
		case errors.Is(err, errBadToken):
			apiError(w, http.StatusForbidden, "invalid or expired token")
			return
		case err != nil:
			h.logger.Error("identifying request", zap.Error(err))
			h.renderError(w, r, pr, http.StatusInternalServerError, "The hub could not read its database. Try again in a moment.")
			return
		case id == nil || id.User == nil:
			h.redirectToLogin(w, r)
			return
		}
		user, scopes = id.User, id.Scopes
	}
	server := ""
	if h.cfg.AllowNamedServers {
		if first, _, _ := strings.Cut(rest, "/"); first != "" && h.webServer(name, first) != nil {
			server = first
		}
	}
	if name != user.Name {
		// Gated as JupyterHub's needs_scope("access:servers"), and also open to who may start the
		// server (servers): the page of a stopped server offers to start it. A scope held only for
		// others is "not found".
		target, err := h.findUser(name)
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			h.logger.Error("reading user", zap.String("user", name), zap.Error(err))
			h.renderError(w, r, pr, http.StatusInternalServerError, "The hub could not read its database. Try again in a moment.")
			return
		}
		if err != nil {
			target = nil // not found
		}
		if !holdsOnServer(scopes, name, server, target, "access:servers", "servers") {
			h.renderError(w, r, pr, http.StatusNotFound, "No such server, or you may not access it.")
			return
		}
		if target == nil {
			h.renderError(w, r, pr, http.StatusNotFound, "No such user: "+name)
			return
		}
	}
	srv := h.webServer(name, server)
	if srv != nil && srv.Ready {
		h.redirectToUserServer(w, r, pr, name, rest)
		return
	}
	if wantsJSON(r) || slices.Contains(strings.Split(rest, "/"), "api") {
		h.failStoppedServerAPI(w, r, name, server)
		return
	}
	if srv != nil && (srv.Pending != "" || srv.Failure != "") {
		http.Redirect(w, r, withNext(h.spawnPendingURL(name, server), r.URL.RequestURI()), http.StatusSeeOther)
		return
	}
	v := h.viewServer(name, server, srv)
	h.render(w, r, pr, http.StatusFailedDependency, "not_running", "Server not running", pendingData{
		For:                  name,
		Server:               v,
		SpawnAction:          withNext(v.SpawnURL, r.URL.RequestURI()),
		Message:              "The server you are looking for is not running.",
		ImplicitSpawnSeconds: h.implicitSpawnSeconds(user, name),
	})
}

func (h *Hub) findUser(name string) (*store.User, error) {
	var u *store.User
	err := h.store.View(func(tx *store.Txn) error {
		var err error
		u, err = tx.User(name)
		return err
	})
	return u, err
}

// redirectToUserServer sends the browser from /hub/user/<name>/<rest> back to /user/<name>/<rest>,
// counting the round trips in ?redirects= so that a missing route cannot loop forever.
func (h *Hub) redirectToUserServer(w http.ResponseWriter, r *http.Request, pr *pageRequest, name, rest string) {
	q := r.URL.Query()
	n, _ := strconv.Atoi(q.Get("redirects"))
	if n >= userRedirectLimit {
		h.logger.Warn("redirect loop to a server that the store says is ready", zap.String("user", name), zap.String("path", auth.Truncate(r.URL.Path, 200)))
		h.renderErrorLink(w, r, pr, http.StatusInternalServerError, "Redirect loop detected: your server is marked running but cannot be reached. Try restarting it.", h.prefix+"home", "Go to the hub's home page")
		return
	}
	q.Set("redirects", strconv.Itoa(n+1))
	target := h.fullServerURL(name, "") + rawPathAfter(r, h.prefix+"user/", 1, rest) + "?" + q.Encode()
	http.Redirect(w, r, target, http.StatusFound)
}

// rawPathAfter returns the request's path after prefix and skip more segments, as the client
// encoded it (so that %2F, %3A and the like reach the server unchanged); decoded is the same part
// as the mux decoded it, re-escaped segment by segment when the raw path cannot be used.
func rawPathAfter(r *http.Request, prefix string, skip int, decoded string) string {
	if p, ok := strings.CutPrefix(r.URL.EscapedPath(), prefix); ok {
		for range skip {
			_, p, ok = strings.Cut(p, "/")
			if !ok {
				return ""
			}
		}
		return p
	}
	segs := strings.Split(decoded, "/")
	for i, s := range segs {
		segs[i] = url.PathEscape(s)
	}
	return strings.Join(segs, "/")
}

// failStoppedServerAPI is JupyterHub's answer to API requests for a stopped server: 424 with a
// message saying where to restart it (UserUrlHandler._fail_api_request).
func (h *Hub) failStoppedServerAPI(w http.ResponseWriter, r *http.Request, name, server string) {
	scheme := "http"
	if requestIsTLS(r) {
		scheme = "https"
	}
	p := r.URL.Path
	if strings.HasPrefix(p, h.prefix) {
		p = p[len(h.prefix)-1:]
	}
	spawn := scheme + "://" + r.Host + h.spawnURL(name, server)
	apiError(w, http.StatusFailedDependency, fmt.Sprintf("JupyterHub server no longer running at %s. Restart the server at %s", p, spawn))
}

// wantsJSON reports whether the client prefers application/json to text/html (JupyterHub's
// get_accepted_mimetype with those two choices): higher q wins, then the earlier in the header.
func wantsJSON(r *http.Request) bool {
	best, bestQ := "", -1.0
	for part := range strings.SplitSeq(r.Header.Get("Accept"), ",") {
		mt, params, err := mime.ParseMediaType(strings.TrimSpace(part))
		if err != nil || (mt != "application/json" && mt != "text/html") {
			continue
		}
		q := 1.0
		if s, ok := params["q"]; ok {
			if f, err := strconv.ParseFloat(s, 64); err == nil {
				q = f
			}
		}
		if q > bestQ {
			best, bestQ = mt, q
		}
	}
	return best == "application/json" && bestQ > 0
}

// serveUserRedirect is GET /hub/user-redirect/{path}: the same link works for every user, sending
// each to their own server (/user/<me>/<path>?<query>).
func (h *Hub) serveUserRedirect(w http.ResponseWriter, r *http.Request, pr *pageRequest) {
	target := h.fullServerURL(pr.user.Name, "") + rawPathAfter(r, h.prefix+"user-redirect/", 0, r.PathValue("path"))
	if r.URL.RawQuery != "" {
		target += "?" + r.URL.RawQuery
	}
	http.Redirect(w, r, target, http.StatusFound)
}

const serverDownMessage = "Your server appears to be down. Try restarting it from the hub."

// serveErrorTarget is GET /hub/error/{code}: configurable-http-proxy's error_target pages.
func (h *Hub) serveErrorTarget(w http.ResponseWriter, r *http.Request, pr *pageRequest) {
	code, err := strconv.Atoi(r.PathValue("code"))
	if err != nil || code < 400 || code > 599 {
		code = http.StatusNotFound
	}
	msg := "Something went wrong reaching this page."
	switch code {
	case http.StatusNotFound:
		msg = "No server is running at this address."
	case http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		msg = serverDownMessage
	}
	h.renderErrorLink(w, r, pr, code, msg, h.prefix+"home", "Go to the hub's home page")
}

// serveServerDown answers a request whose route exists but whose server did not answer (the edge
// calls it through ServeProxyError): a page pointing to the hub, or JSON for API clients.
func (h *Hub) serveServerDown(w http.ResponseWriter, r *http.Request, status int, route *routetable.Route) {
	pr := &pageRequest{nonce: newNonce()}
	setSecurityHeaders(w, pr.nonce)
	if wantsJSON(r) || strings.Contains(r.URL.Path, "/api/") {
		apiError(w, status, serverDownMessage)
		return
	}
	h.renderErrorLink(w, r, pr, status, serverDownMessage, h.prefix+"home", "Go to the hub's home page")
}

// redirectToHubUser sends /user/<name>/… (no route: the server is not running) to
// /hub/user/<name>/…, query kept (JupyterHub's PrefixRedirectHandler).
func (h *Hub) redirectToHubUser(w http.ResponseWriter, r *http.Request) {
	p := r.URL.EscapedPath()
	if !strings.HasPrefix(p, h.base) {
		p = r.URL.Path
	}
	target := h.prefix + p[len(h.base):]
	if r.URL.RawQuery != "" {
		target += "?" + r.URL.RawQuery
	}
	status := http.StatusFound
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		status = http.StatusTemporaryRedirect // keep the method: API calls get the JSON 424
	}
	http.Redirect(w, r, target, status)
}

// tokenView is one token as the token page shows it.
type tokenView struct {
	ID, Note, Client           string
	Created, LastUsed, Expires string
	Scopes                     string // the token's own scopes, space-separated ("" for all the owner's)
}

// tokenData is the token template's data.
type tokenData struct {
	API      []tokenView   // the user's API tokens
	OAuth    []tokenView   // tokens issued to applications (servers, services) through OAuth
	TokenURL string        // POST here to create, <TokenURL>/<id> to DELETE (REST API)
	Scopes   []scopeChoice // the scopes the user may put on a new token (tokenpage.go)
}

// serveTokenPage is GET /hub/token: the user's API tokens and authorized applications, with a
// form to request a new token and buttons to revoke (JupyterHub's token.html). Creating and
// revoking go through the REST API (POST/DELETE /hub/api/users/<me>/tokens) with the XSRF header.
func (h *Hub) serveTokenPage(w http.ResponseWriter, r *http.Request, pr *pageRequest) {
	var toks []*store.Token
	now := time.Now()
	err := h.store.View(func(tx *store.Txn) error {
		var err error
		toks, err = tx.OwnerTokens(store.OwnerUser(pr.user.Name), now)
		return err
	})
	if err != nil {
		h.logger.Error("listing tokens", zap.String("user", pr.user.Name), zap.Error(err))
		h.renderError(w, r, pr, http.StatusInternalServerError, "The hub could not read its database. Try again in a moment.")
		return
	}
	d := tokenData{TokenURL: h.prefix + "api/users/" + url.PathEscape(pr.user.Name) + "/tokens", Scopes: h.tokenScopeChoices(pr)}
	when := func(t time.Time) string {
		if t.IsZero() {
			return "never"
		}
		return t.UTC().Format("2006-01-02 15:04 UTC")
	}
	for _, t := range toks {
		v := tokenView{ID: t.ID, Note: t.Note, Client: t.OAuthClient, Created: when(t.Created), LastUsed: when(t.LastActivity), Expires: when(t.ExpiresAt), Scopes: tokenScopesText(t.Scopes)}
		switch t.Kind {
		case "oauth":
			d.OAuth = append(d.OAuth, v)
		case "server":
			// A server's own credentials: not the user's to manage here.
		default:
			d.API = append(d.API, v)
		}
	}
	h.render(w, r, pr, http.StatusOK, "token", "Tokens", d)
}
