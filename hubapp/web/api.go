package web

// JupyterHub's REST API (docs/protocols.md, "REST API"): every /hub/api/* endpoint except the ones
// api_servers.go registers (version and whoami in api_whoami.go, activity and server start/stop in
// api_servers.go, progress in progress.go, OAuth in oauth.go). This file holds the plumbing that every
// endpoint shares: registration, authentication, scope checks, JSON bodies, pagination, error mapping
// and the error body. The endpoints live in api_*.go, one file per resource.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"

	"github.com/caddyhub/caddyhub/hubapp/culler"
	"github.com/caddyhub/caddyhub/hubapp/rbac"
	"github.com/caddyhub/caddyhub/hubapp/services"
	"github.com/caddyhub/caddyhub/hubapp/store"
)

const (
	// apiMaxBody bounds request bodies; larger ones get 413 (JupyterHub relies on tornado's 10 MiB
	// default; API bodies here are small JSON documents).
	apiMaxBody = 1 << 20
	// apiPageDefaultLimit and apiPageMaxLimit are the defaults of JupyterHub's
	// api_page_default_limit and api_page_max_limit (Config.APIPageDefaultLimit,
	// Config.APIPageMaxLimit; docs/protocols.md, "Credentials, errors and pagination").
	apiPageDefaultLimit = 50
	apiPageMaxLimit     = 200
	// paginationMediaType opts a client into the paginated envelope.
	paginationMediaType = "application/jupyterhub-pagination+json"
)

// apiState is what the REST API keeps per config generation.
type apiState struct {
	engine    *rbac.Engine
	engineErr error
	metrics   *hubMetrics // nil once stopped
	stopped   bool

	bgMu     sync.Mutex // orders wg.Add of background work before stopAPI's wg.Wait
	stopping bool

	tokenUse sync.Map // token hash → time of the last recorded use (noteTokenUse throttle)
	users    userIndex

	ctx      context.Context
	cancel   context.CancelFunc
	services *services.Supervisor // managed services; guarded by bgMu
	culler   *culler.Culler
	wg       sync.WaitGroup
}

// apiState returns the API state of h, creating it on first use (tests build Hubs by hand).
func (h *Hub) apiState() *apiState {
	h.apiMu.Lock()
	defer h.apiMu.Unlock()
	if h.api == nil {
		h.api = newAPIState(h)
	}
	return h.api
}

// rbacRoles converts the configured roles for the RBAC engine.
func (a *Config) rbacRoles() []rbac.Role {
	roles := make([]rbac.Role, 0, len(a.Roles))
	for _, r := range a.Roles {
		roles = append(roles, rbac.Role{
			Name: r.Name, Description: r.Description, Scopes: r.Scopes,
			Users: r.Users, Groups: r.Groups, Services: r.Services,
		})
	}
	return roles
}

func newAPIState(h *Hub) *apiState {
	st := &apiState{}
	st.ctx, st.cancel = context.WithCancel(context.Background())
	st.engine, st.engineErr = rbac.NewEngine(rbac.EngineOptions{Roles: h.cfg.rbacRoles(), NoAdminAccess: !h.cfg.AdminAccess})
	if st.engineErr != nil {
		// Keep a working engine with the built-in roles so that requests are answered; startAPI
		// reports the configuration error and the app refuses to start.
		st.engine, _ = rbac.NewEngine(rbac.EngineOptions{NoAdminAccess: !h.cfg.AdminAccess})
		st.engineErr = fmt.Errorf("roles: %w", st.engineErr)
	}
	st.metrics = newHubMetrics(h)
	return st
}

// registerAPI registers the REST API endpoints on the hub's mux.
func (h *Hub) registerAPI(mux *http.ServeMux) {
	h.apiState()
	p := h.prefix + "api/"
	handle := func(pattern string, fn apiFunc) {
		method, path, _ := strings.Cut(pattern, " ")
		mux.Handle(method+" "+p+path, h.apiHandler(fn))
	}
	// Users (api_users.go).
	handle("GET users", h.apiListUsers)
	handle("POST users", h.apiCreateUsers)
	handle("GET users/{name}", h.apiGetUser)
	handle("POST users/{name}", h.apiCreateUser)
	handle("PATCH users/{name}", h.apiPatchUser)
	handle("DELETE users/{name}", h.apiDeleteUser)
	handle("GET users/{name}/servers/{server}", h.apiGetServer)
	handle("POST users/{name}/admin-access", h.apiAdminAccess)
	// Tokens (api_tokens.go).
	handle("GET users/{name}/tokens", h.apiListTokens)
	handle("POST users/{name}/tokens", h.apiCreateToken)
	handle("GET users/{name}/tokens/{id}", h.apiGetToken)
	handle("DELETE users/{name}/tokens/{id}", h.apiDeleteToken)
	// Groups (api_groups.go).
	handle("GET groups", h.apiListGroups)
	handle("POST groups", h.apiCreateGroups)
	handle("GET groups/{name}", h.apiGetGroup)
	handle("POST groups/{name}", h.apiCreateGroup)
	handle("DELETE groups/{name}", h.apiDeleteGroup)
	handle("POST groups/{name}/users", h.apiAddGroupUsers)
	handle("DELETE groups/{name}/users", h.apiRemoveGroupUsers)
	handle("PUT groups/{name}/properties", h.apiSetGroupProperties)
	// Services, proxy, hub (api_services.go, api_proxy.go, api_hub.go).
	handle("GET services", h.apiListServices)
	handle("GET services/{name}", h.apiGetService)
	handle("GET proxy", h.apiGetProxy)
	handle("POST proxy", h.apiSyncProxy)
	handle("PATCH proxy", h.apiSyncProxy)
	handle("POST shutdown", h.apiShutdown)
	handle("GET info", h.apiInfo)
	handle("GET authorizations/token/{token}", h.apiAuthorizationsToken)
	handle("POST authorizations/token", h.apiAuthorizationsTokenRemoved)
	handle("GET authorizations/cookie/{cookie}", h.apiAuthorizationsCookie)
	handle("GET authorizations/cookie/{cookie}/{value}", h.apiAuthorizationsCookie)
	// Shares and share codes (api_shares.go, api_sharecodes.go).
	h.registerShares(handle)
	// Health and metrics: unauthenticated health, scope-checked metrics, under /hub/ and /hub/api/.
	mux.HandleFunc("GET "+p+"health", h.serveHealth)
	h.handleIfFree(mux, "GET "+h.prefix+"health", http.HandlerFunc(h.serveHealth))
	mux.Handle("GET "+p+"metrics", h.apiHandler(h.apiMetrics))
	mux.Handle("GET "+h.prefix+"metrics", h.apiHandler(h.apiMetrics))
	// Anything else under /hub/api/: JSON 404 (JupyterHub's API404); OPTIONS: 200 empty.
	mux.HandleFunc(p, func(w http.ResponseWriter, r *http.Request) {
		h.apiHeaders(w)
		if r.Method == http.MethodOptions {
			w.WriteHeader(http.StatusOK)
			return
		}
		apiError(w, http.StatusNotFound, "")
	})
}

// handleIfFree registers a pattern unless another part of the hub registered it already (the pages
// helper may serve /hub/health itself); ServeMux panics on such a conflict.
func (h *Hub) handleIfFree(mux *http.ServeMux, pattern string, handler http.Handler) {
	defer func() {
		if v := recover(); v != nil {
			h.logger.Debug("pattern registered elsewhere", zap.String("pattern", pattern))
		}
	}()
	mux.Handle(pattern, handler)
}

// serveHealth is /hub/health and /hub/api/health: 200, empty, no authentication (docs/protocols.md,
// "Endpoints").
func (h *Hub) serveHealth(w http.ResponseWriter, r *http.Request) {
	h.apiHeaders(w)
	w.WriteHeader(http.StatusOK)
}

// startAPI starts what runs in the background: managed services, service routes and OAuth
// clients, the idle culler, pre-configured groups.
func (h *Hub) startAPI() error {
	st := h.apiState()
	if st.engineErr != nil {
		return st.engineErr
	}
	if err := h.loadConfigGroups(); err != nil {
		return err
	}
	st.metrics.register(h)
	if err := h.startServices(st); err != nil {
		return err
	}
	h.startCuller(st)
	h.startUserIndex() // build the user-name index now rather than on the first listing
	return nil
}

// stopAPI stops this generation's background work (not users' servers).
func (h *Hub) stopAPI() {
	h.apiMu.Lock()
	st := h.api
	h.apiMu.Unlock()
	if st == nil || st.stopped {
		return
	}
	st.bgMu.Lock()
	st.stopping = true // no background work starts from now on
	sv := st.services
	st.bgMu.Unlock()
	st.cancel()
	if sv != nil {
		sv.Stop(caddy.Exiting())
	}
	st.wg.Wait()
	if st.metrics != nil {
		st.metrics.unregister()
	}
	// Requests still in flight on this generation keep working with the roles they had.
	dead := &apiState{engine: st.engine, engineErr: st.engineErr, ctx: st.ctx, cancel: st.cancel, stopped: true}
	h.apiMu.Lock()
	h.api = dead
	h.apiMu.Unlock()
}

// resolveScopes fills id.Scopes from the owner's roles and, for tokens, the token's scopes intersected
// with the owner's at this moment (JupyterHub 2+; docs/protocols.md, "RBAC: scopes and roles").
func (h *Hub) resolveScopes(id *Identity) error {
	st := h.apiState()
	eng := st.engine
	var owner rbac.Owner
	var roles, shared []string
	switch {
	case id.User != nil:
		owner = rbac.UserOwner(id.User.Name)
		var err error
		if roles, err = h.userRoleNames(id.User, true); err != nil {
			return err
		}
		if shared, err = h.sharedScopes(id.User); err != nil { // api_shares.go
			return err
		}
	case id.Service != nil:
		owner = rbac.ServiceOwner(id.Service.Name)
		roles = h.serviceRoleNames(id.Service)
	default:
		return errBadToken
	}
	if id.Token == nil {
		set, err := eng.OwnerScopes(owner, roles)
		if err != nil {
			return fmt.Errorf("scopes of %s: %w", owner, err)
		}
		if id.Scopes, err = h.withShared(set, shared); err != nil {
			return fmt.Errorf("shared scopes of %s: %w", owner, err)
		}
		return nil
	}
	raw, client, err := h.tokenRawScopes(id.Token)
	if err != nil {
		return err
	}
	set, err := eng.TokenScopes(rbac.Token{Owner: owner, OwnerRoles: roles, Scopes: raw, Client: client, Shared: shared}, h.groupLookup())
	if err != nil {
		return fmt.Errorf("scopes of token %s of %s: %w", id.Token.ID, owner, err)
	}
	id.Scopes = set
	return nil
}

// apiFunc is an endpoint. It returns an error to answer with JupyterHub's error shape: *httpError
// for what the client should see, anything else is logged and answered with 500 (store.ErrNotFound
// becomes 404).
type apiFunc func(q *apiRequest) error

// apiRequest is one API request: who made it and helpers to check scopes and read the body.
type apiRequest struct {
	h  *Hub
	w  http.ResponseWriter
	r  *http.Request
	id *Identity // nil: anonymous
	// users caches user records read during the request (scope checks and models need them).
	users map[string]*store.User
}

// httpError is an error with the status and message the client sees.
type httpError struct {
	status  int
	message string
	header  http.Header
}

func (e *httpError) Error() string { return fmt.Sprintf("%d: %s", e.status, e.message) }

func errStatus(status int, format string, args ...any) error {
	return &httpError{status: status, message: fmt.Sprintf(format, args...)}
}

// apiHandler wraps an endpoint: headers, identification, XSRF for cookie requests, error mapping.
func (h *Hub) apiHandler(fn apiFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		h.apiHeaders(w)
		sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
		q := &apiRequest{h: h, w: sw, r: r}
		err := q.authenticate()
		if err == nil {
			err = fn(q)
		}
		if err != nil {
			h.writeAPIError(sw, r, err)
		}
		if m := h.apiState().metrics; m != nil {
			m.observeRequest(r, sw.status, time.Since(start))
		}
	})
}

// diskFullMessage is what clients are told while the store refuses writes (store.ErrDiskFull).
const diskFullMessage = "The hub cannot save changes right now: its disk is full. Reading and open servers still work; try again later."

func (h *Hub) writeAPIError(w http.ResponseWriter, r *http.Request, err error) {
	var he *httpError
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &he):
		for k, v := range he.header {
			w.Header()[k] = v
		}
		apiError(w, he.status, he.message)
	case errors.As(err, &mbe):
		apiError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("request body larger than %d bytes", mbe.Limit))
	case errors.Is(err, store.ErrNotFound):
		apiError(w, http.StatusNotFound, "")
	case errors.Is(err, store.ErrDiskFull):
		// The store logs the condition once; a log line per refused request would fill the disk more.
		w.Header().Set("Retry-After", "60")
		apiError(w, http.StatusServiceUnavailable, diskFullMessage)
	case errors.Is(err, store.ErrTooBig):
		h.logger.Warn("api request changes too much at once", zap.String("method", r.Method), zap.String("path", r.URL.Path), zap.Error(err))
		apiError(w, http.StatusRequestEntityTooLarge, "This request changes too many records at once; split it into smaller requests.")
	default:
		h.logger.Error("api request failed", zap.String("method", r.Method), zap.String("path", r.URL.Path), zap.Error(err))
		apiError(w, http.StatusInternalServerError, "")
	}
}

// apiHeaders sets the headers every API response carries (docs/protocols.md, "Wire conventions").
func (h *Hub) apiHeaders(w http.ResponseWriter) {
	hd := w.Header()
	hd.Set("X-JupyterHub-Version", apiJupyterHubVersion)
	hd.Set("Access-Control-Allow-Headers", "accept, content-type, authorization")
	hd.Set("Content-Security-Policy", "frame-ancestors 'none'; default-src 'none'")
}

// apiJupyterHubVersion is the JupyterHub version whose API this hub speaks; X-JupyterHub-Version
// must be PEP 440 (singleuser parses it).
const apiJupyterHubVersion = "5.5.1"

// authenticate identifies the requester. An invalid token makes the request anonymous (JupyterHub
// answers 403 for what it then cannot do). Cookie-authenticated requests must pass the XSRF check.
func (q *apiRequest) authenticate() error {
	id, err := q.h.identify(q.r)
	if errors.Is(err, errBadToken) {
		return nil
	}
	if err != nil {
		return err
	}
	if id != nil && id.Token == nil && id.Service == nil && tokenFromRequest(q.r) == "" {
		if err := q.h.apiCheckXSRF(q.r); err != nil {
			q.h.logger.Debug("api request failed the xsrf check", zap.String("path", q.r.URL.Path), zap.Error(err))
			return errStatus(http.StatusForbidden, "XSRF cookie does not match POST argument")
		}
	}
	q.id = id
	return nil
}

// apiCheckXSRF applies the pages' XSRF check (xsrf.go) to a cookie-authenticated API request; read-only
// navigations pass inside that check.
func (h *Hub) apiCheckXSRF(r *http.Request) error {
	if r.Method == http.MethodHead || r.Method == http.MethodOptions {
		return nil
	}
	return h.checkXSRF(r)
}

// user returns a user record, cached for the request; store.ErrNotFound if there is none.
// existingUser is user, with a missing user answered as JupyterHub does: 404 "User … not found".
func (q *apiRequest) existingUser(name string) (*store.User, error) {
	u, err := q.user(name)
	if errors.Is(err, store.ErrNotFound) {
		return nil, errStatus(http.StatusNotFound, "User %s not found", name)
	}
	return u, err
}

func (q *apiRequest) user(name string) (*store.User, error) {
	if u, ok := q.users[name]; ok {
		return u, nil
	}
	var u *store.User
	err := q.h.store.View(func(tx *store.Txn) error {
		var err error
		u, err = tx.User(name)
		return err
	})
	if err != nil {
		return nil, err
	}
	if q.users == nil {
		q.users = map[string]*store.User{}
	}
	q.users[name] = u
	return u, nil
}

// forget drops a cached user after the handler changed it.
func (q *apiRequest) forget(name string) { delete(q.users, name) }

// groupsOf returns the groups of a user for filter checks; none for an unknown user.
func (q *apiRequest) groupsOf(name string) []string {
	if name == "" {
		return nil
	}
	u, err := q.user(name)
	if err != nil {
		return nil
	}
	return u.Groups
}

// scopes returns the requester's scopes (empty when anonymous).
func (q *apiRequest) scopes() rbac.Set {
	if q.id == nil {
		return rbac.Set{}
	}
	return q.id.Scopes
}

// need checks that the requester holds any of scopes on res (JupyterHub's needs_scope): 403 when no
// scope is held at all, 404 when one is held only for other resources.
func (q *apiRequest) need(res rbac.Resource, scopes ...string) error {
	owner := res.User
	if owner == "" && res.Server != "" {
		owner, _, _ = strings.Cut(res.Server, "/")
	}
	switch q.scopes().Authorize(scopes, res, q.groupsOf(owner)) {
	case rbac.Allowed:
		return nil
	case rbac.NotFound:
		return errStatus(http.StatusNotFound, "No access to resources or resources not found")
	}
	return q.forbidden(scopes...)
}

func (q *apiRequest) forbidden(scopes ...string) error {
	if q.id == nil {
		return errStatus(http.StatusForbidden, "Missing or invalid credentials.")
	}
	return errStatus(http.StatusForbidden, "Action is not authorized with current scopes; requires any of [%s]", strings.Join(scopes, ", "))
}

// body reads the JSON body: nil for an empty body; 400 for invalid UTF-8 or JSON; 413 when too large.
func (q *apiRequest) body() (any, error) {
	b, err := io.ReadAll(http.MaxBytesReader(q.w, q.r.Body, apiMaxBody))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, err
		}
		return nil, errStatus(http.StatusBadRequest, "reading request body failed")
	}
	b = bytes.TrimSpace(b)
	if len(b) == 0 {
		return nil, nil
	}
	if !utf8.Valid(b) {
		return nil, errStatus(http.StatusBadRequest, "Invalid JSON in body of request")
	}
	var v any
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	if err := dec.Decode(&v); err != nil || dec.More() {
		return nil, errStatus(http.StatusBadRequest, "Invalid JSON in body of request")
	}
	if n, ok := firstHugeNumber(v); ok {
		// Stored as written (group properties, user options), such a number could never be read
		// back into a float64: the record would fail to decode on every later read (found by
		// FuzzAPIBody: a group whose properties held 1e400 answered 500 ever after).
		return nil, errStatus(http.StatusBadRequest, "Number %.40s in body of request is out of range", n.String())
	}
	return v, nil
}

// firstHugeNumber finds a number in a decoded body (UseNumber) that does not fit a float64.
func firstHugeNumber(v any) (json.Number, bool) {
	switch v := v.(type) {
	case json.Number:
		if _, err := strconv.ParseFloat(v.String(), 64); err != nil {
			return v, true
		}
	case map[string]any:
		for _, e := range v {
			if n, ok := firstHugeNumber(e); ok {
				return n, true
			}
		}
	case []any:
		for _, e := range v {
			if n, ok := firstHugeNumber(e); ok {
				return n, true
			}
		}
	}
	return "", false
}

// rawBody reads the body, bounded.
func (q *apiRequest) rawBody() ([]byte, error) {
	return io.ReadAll(http.MaxBytesReader(q.w, q.r.Body, apiMaxBody))
}

// bodyObject reads a body that must be a JSON object or empty (nil map when empty).
func (q *apiRequest) bodyObject() (map[string]any, error) {
	v, err := q.body()
	if err != nil || v == nil {
		return nil, err
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, errStatus(http.StatusBadRequest, "Invalid JSON data: %s", pyRepr(v))
	}
	return m, nil
}

// writeJSON answers with v.
func (q *apiRequest) writeJSON(status int, v any) error {
	writeJSON(q.w, status, v)
	return nil
}

// noContent answers 204.
func (q *apiRequest) noContent() error {
	q.w.Header().Set("Content-Type", "text/plain")
	q.w.WriteHeader(http.StatusNoContent)
	return nil
}

// checkModel is JupyterHub's _check_model: only known keys, each of the right JSON type.
func checkModel(model map[string]any, types map[string]string, name string) error {
	for k := range model {
		if _, ok := types[k]; !ok {
			return errStatus(http.StatusBadRequest, "Invalid JSON keys: %s", pyRepr(model))
		}
	}
	for k, v := range model {
		if pyType(v) != types[k] {
			return errStatus(http.StatusBadRequest, "%s.%s must be <class '%s'>, not: <class '%s'>", name, k, types[k], pyType(v))
		}
	}
	return nil
}

// pyType names a decoded JSON value's type as Python would (the error messages are JupyterHub's).
func pyType(v any) string {
	switch x := v.(type) {
	case nil:
		return "NoneType"
	case bool:
		return "bool"
	case string:
		return "str"
	case []any:
		return "list"
	case map[string]any:
		return "dict"
	case json.Number:
		if strings.ContainsAny(x.String(), ".eE") {
			return "float"
		}
		return "int"
	}
	return fmt.Sprintf("%T", v)
}

// pyRepr renders a value for an error message (JSON, shortened).
func pyRepr(v any) string {
	b, _ := json.Marshal(v)
	if len(b) > 200 {
		return string(b[:200]) + "…"
	}
	return string(b)
}

// stringList returns v as a list of strings, or a 400 naming what.
func stringList(v any, what string) ([]string, error) {
	list, ok := v.([]any)
	if !ok {
		return nil, errStatus(http.StatusBadRequest, "%s must be a list of strings", what)
	}
	out := make([]string, 0, len(list))
	for _, x := range list {
		s, ok := x.(string)
		if !ok {
			return nil, errStatus(http.StatusBadRequest, "%s must be str, not %s", what, pyType(x))
		}
		out = append(out, s)
	}
	return out, nil
}

// acceptsPagination reports whether the client opted into the paginated envelope.
func (q *apiRequest) acceptsPagination() bool {
	for _, a := range strings.Split(q.r.Header.Get("Accept"), ",") {
		if strings.EqualFold(strings.TrimSpace(a), paginationMediaType) {
			return true
		}
	}
	return false
}

// pagination returns offset and limit (docs/protocols.md, "Credentials, errors and pagination"):
// abs(int), limit clamped to [1, api_page_max_limit]; paginating clients get
// api_page_default_limit as default, legacy clients the maximum.
func (q *apiRequest) pagination() (offset, limit int, err error) {
	maxLimit := q.h.cfg.pageMaxLimit()
	limit = maxLimit
	if q.acceptsPagination() {
		limit = min(q.h.cfg.pageDefaultLimit(), maxLimit)
	}
	qs := q.r.URL.Query()
	bad := errStatus(http.StatusBadRequest, "Invalid argument type, offset and limit must be integers")
	if s := qs.Get("offset"); qs.Has("offset") {
		if offset, err = strconv.Atoi(strings.TrimSpace(s)); err != nil {
			return 0, 0, bad
		}
		offset = max(offset, -offset)
	}
	if s := qs.Get("limit"); qs.Has("limit") {
		if limit, err = strconv.Atoi(strings.TrimSpace(s)); err != nil {
			return 0, 0, bad
		}
		limit = max(limit, -limit)
	}
	return offset, min(max(limit, 1), maxLimit), nil
}

// pageDefaultLimit is api_page_default_limit, with its default.
func (a *Config) pageDefaultLimit() int {
	if a.APIPageDefaultLimit > 0 {
		return a.APIPageDefaultLimit
	}
	return apiPageDefaultLimit
}

// pageMaxLimit is api_page_max_limit, with its default.
func (a *Config) pageMaxLimit() int {
	if a.APIPageMaxLimit > 0 {
		return a.APIPageMaxLimit
	}
	return apiPageMaxLimit
}

// paginated writes items as a bare list (legacy) or in the pagination envelope.
func (q *apiRequest) paginated(items any, offset, limit, total int) error {
	if !q.acceptsPagination() {
		return q.writeJSON(http.StatusOK, items)
	}
	var next any
	if offset+limit < total {
		u := q.fullURL()
		qs := u.Query()
		qs.Set("offset", strconv.Itoa(offset+limit))
		qs.Set("limit", strconv.Itoa(limit))
		u.RawQuery = qs.Encode()
		next = map[string]any{"offset": offset + limit, "limit": limit, "url": u.String()}
	}
	return q.writeJSON(http.StatusOK, map[string]any{
		"items": items,
		"_pagination": map[string]any{
			"offset": offset, "limit": limit, "total": total, "next": next,
		},
	})
}

// fullURL is the request's URL as the client sent it (tornado's full_url).
func (q *apiRequest) fullURL() *url.URL {
	u := *q.r.URL
	u.Scheme = "http"
	if q.r.TLS != nil {
		u.Scheme = "https"
	} else if p := q.r.Header.Get("X-Forwarded-Proto"); p == "https" || p == "http" {
		u.Scheme = p
	}
	u.Host = q.r.Host
	return &u
}

// isoTime formats a timestamp as JupyterHub does (utils.isoformat): UTC with microseconds and a
// literal Z; nil for the zero time.
func isoTime(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UTC().Format("2006-01-02T15:04:05.000000Z")
}

// statusWriter records the status for metrics.
type statusWriter struct {
	http.ResponseWriter
	status int
	wrote  bool
}

func (w *statusWriter) WriteHeader(code int) {
	if !w.wrote {
		w.status, w.wrote = code, true
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// APIError is the REST API's error body, JupyterHub's shape: {"status": 404, "message": "…"}.
type APIError struct {
	Status  int    `json:"status"`
	Message string `json:"message"`
}

// writeJSON writes v as the JSON response body with the given status.
func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status, b = http.StatusInternalServerError, []byte(`{"status":500,"message":"encoding response failed"}`)
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// apiError answers an API request with JupyterHub's error shape. message is what the client sees;
// log the cause separately, never a secret.
// WriteAPIError writes the REST API's error body {"status": N, "message": "..."} with status
// (message "": the status text), for handlers outside the hub such as the app's listeners.
func WriteAPIError(w http.ResponseWriter, status int, message string) { apiError(w, status, message) }

func apiError(w http.ResponseWriter, status int, message string) {
	if message == "" {
		message = http.StatusText(status)
	}
	writeJSON(w, status, APIError{Status: status, Message: message})
}
