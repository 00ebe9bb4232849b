package web

// Server endpoints of the REST API: POST /hub/api/users/{name}/activity, which single-user servers
// call to report use, and starting and stopping servers (POST/DELETE …/server, …/servers/{server};
// docs/protocols.md, "Endpoints" and "What jupyterhub-singleuser calls on the hub").

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/caddyhub/caddyhub/hubapp/rbac"
	"github.com/caddyhub/caddyhub/hubapp/servers"
	"github.com/caddyhub/caddyhub/hubapp/store"
)

// activityFuture is how far in the future an activity timestamp may lie (JupyterHub: 59 minutes).
const activityFuture = 59 * time.Minute

// parseActivityTime parses an activity timestamp (ISO 8601, with or without zone: naive means UTC)
// and refuses one more than 59 minutes ahead, with JupyterHub's messages.
func parseActivityTime(v any, now time.Time) (time.Time, error) {
	s, ok := v.(string)
	if !ok {
		return time.Time{}, errStatus(http.StatusBadRequest, "Not a valid timestamp: %s", pyRepr(v))
	}
	var t time.Time
	var err error
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05.999999999", "2006-01-02 15:04:05.999999999Z07:00",
		"2006-01-02 15:04:05.999999999", "2006-01-02T15:04:05.999999999Z0700", "2006-01-02"} {
		if t, err = time.Parse(layout, strings.TrimSpace(s)); err == nil {
			break
		}
	}
	if err != nil {
		return time.Time{}, errStatus(http.StatusBadRequest, "Not a valid timestamp: %s", pyStrRepr(s))
	}
	t = t.UTC()
	if t.Sub(now) > activityFuture {
		return time.Time{}, errStatus(http.StatusBadRequest, "Rejecting activity from more than an hour in the future: %s",
			t.Format("2006-01-02T15:04:05.000000Z"))
	}
	return t, nil
}

// pyStrRepr is Python's repr of a simple string ('alice'), for JupyterHub's %r messages.
func pyStrRepr(s string) string {
	return "'" + strings.NewReplacer(`\`, `\\`, "'", `\'`, "\n", `\n`).Replace(s) + "'"
}

// serveActivity is POST /hub/api/users/{name}/activity (docs/protocols.md, "What jupyterhub-singleuser
// calls on the hub"): moves the user's and servers' last_activity forward, never back.
func (h *Hub) serveActivity(w http.ResponseWriter, r *http.Request) {
	h.apiHandler(func(q *apiRequest) error {
		name := r.PathValue("name")
		if err := q.need(rbac.UserResource(name), "users:activity"); err != nil {
			return err
		}
		if _, err := q.user(name); errors.Is(err, store.ErrNotFound) {
			return errStatus(http.StatusNotFound, "No such user: %s", pyStrRepr(name))
		} else if err != nil {
			return err
		}
		v, err := q.body()
		if err != nil {
			return err
		}
		body, ok := v.(map[string]any)
		if !ok {
			return errStatus(http.StatusBadRequest, "body must be a json dict")
		}
		now := time.Now().UTC()
		userTS, serversRaw := body["last_activity"], body["servers"]
		if isFalsy(userTS) && isFalsy(serversRaw) {
			return errStatus(http.StatusBadRequest, "body must contain at least one of `last_activity` or `servers`")
		}
		var userAt time.Time
		if !isFalsy(userTS) {
			if userAt, err = parseActivityTime(userTS, now); err != nil {
				return err
			}
		}
		serverAt := map[string]time.Time{}
		if !isFalsy(serversRaw) {
			const msg = "servers must be a dict of the form {server_name: {last_activity: timestamp}}"
			servers, ok := serversRaw.(map[string]any)
			if !ok {
				return errStatus(http.StatusBadRequest, msg)
			}
			names := make([]string, 0, len(servers))
			for n := range servers {
				names = append(names, n)
			}
			slices.Sort(names)
			err := h.store.View(func(tx *store.Txn) error {
				for _, n := range names {
					if _, err := tx.Server(name, n); errors.Is(err, store.ErrNotFound) {
						return errStatus(http.StatusBadRequest, "No such server '%s' for user %s", n, name)
					} else if err != nil {
						return err
					}
				}
				return nil
			})
			if err != nil {
				return err
			}
			for _, n := range names {
				info, ok := servers[n].(map[string]any)
				if !ok {
					return errStatus(http.StatusBadRequest, msg)
				}
				ts, ok := info["last_activity"]
				if !ok {
					return errStatus(http.StatusBadRequest, msg)
				}
				if serverAt[n], err = parseActivityTime(ts, now); err != nil {
					return err
				}
			}
		}
		err = h.store.Update(func(tx *store.Txn) error {
			if !userAt.IsZero() {
				u, err := tx.User(name)
				if err != nil {
					return err
				}
				if u.LastActivity.Before(userAt) {
					u.LastActivity = userAt
					if err := tx.PutUser(u); err != nil {
						return err
					}
				}
			}
			for n, at := range serverAt {
				s, err := tx.Server(name, n)
				if errors.Is(err, store.ErrNotFound) {
					continue
				} else if err != nil {
					return err
				}
				if s.LastActivity.Before(at) {
					s.LastActivity = at
					if err := tx.PutServer(s); err != nil {
						return err
					}
				}
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("recording activity of %s: %w", name, err)
		}
		w.Header().Set("Content-Type", "text/plain")
		w.WriteHeader(http.StatusOK)
		return nil
	}).ServeHTTP(w, r)
}

// isFalsy is Python truthiness for decoded JSON (missing, null, "", {}, [], false, 0).
func isFalsy(v any) bool {
	switch x := v.(type) {
	case nil:
		return true
	case string:
		return x == ""
	case bool:
		return !x
	case map[string]any:
		return len(x) == 0
	case []any:
		return len(x) == 0
	}
	if n, ok := v.(interface{ String() string }); ok {
		f, err := strconv.ParseFloat(n.String(), 64)
		return err == nil && f == 0
	}
	return false
}

// serveStartServer is POST /hub/api/users/{name}/server and …/servers/{server}: 201 when the server is
// up within slow_spawn_timeout, 202 while it starts (docs/protocols.md, "Endpoints"). The body is
// user_options.
func (h *Hub) serveStartServer(w http.ResponseWriter, r *http.Request) {
	h.apiHandler(func(q *apiRequest) error {
		name, server := r.PathValue("name"), r.PathValue("server")
		if err := q.need(rbac.ServerResource(name, server), "servers"); err != nil {
			return err
		}
		user, err := q.user(name)
		if errors.Is(err, store.ErrNotFound) {
			return errStatus(http.StatusNotFound, "")
		} else if err != nil {
			return err
		}
		v, err := q.body()
		if err != nil {
			return err
		}
		var opts map[string]any
		switch x := v.(type) {
		case nil:
		case map[string]any:
			opts = x
		default:
			return errStatus(http.StatusBadRequest, "user_options must be a dict, not %s", pyType(v))
		}
		pending, err := h.startServer(user, server, opts)
		if err != nil {
			return asHTTPError(err)
		}
		status := http.StatusCreated
		if pending {
			status = http.StatusAccepted
		}
		w.Header().Set("Content-Type", "text/plain")
		w.WriteHeader(status)
		return nil
	}).ServeHTTP(w, r)
}

// serveStopServer is DELETE /hub/api/users/{name}/server and …/servers/{server}: 204 when stopped
// within slow_stop_timeout, 202 while stopping; {"remove": true} deletes a named server's record.
func (h *Hub) serveStopServer(w http.ResponseWriter, r *http.Request) {
	h.apiHandler(func(q *apiRequest) error {
		name, server := r.PathValue("name"), r.PathValue("server")
		if err := q.need(rbac.ServerResource(name, server), "delete:servers"); err != nil {
			return err
		}
		if _, err := q.user(name); errors.Is(err, store.ErrNotFound) {
			return errStatus(http.StatusNotFound, "")
		} else if err != nil {
			return err
		}
		body, err := q.bodyObject()
		if err != nil {
			return err
		}
		remove := false
		if rv, ok := body["remove"]; ok {
			remove = !isFalsy(rv)
		}
		if server != "" {
			if !h.cfg.AllowNamedServers {
				return errStatus(http.StatusBadRequest, "Named servers are not enabled.")
			}
			rec, err := h.eng.Record(name, server)
			if err != nil {
				return err
			}
			if rec == nil && h.eng.Op(servers.Key(name, server)) == nil {
				return errStatus(http.StatusNotFound, "%s has no server named '%s'", name, server)
			}
		} else if remove {
			return errStatus(http.StatusBadRequest, "Cannot delete the default server")
		}
		op, err := h.eng.BeginStop(name, server, remove)
		if err != nil {
			return asHTTPError(err)
		}
		status := http.StatusNoContent
		if op != nil {
			t := time.NewTimer(slowStopTimeout)
			defer t.Stop()
			select {
			case <-op.Done():
				if op.Err() != nil {
					return op.Err()
				}
			case <-t.C:
				status = http.StatusAccepted
			case <-r.Context().Done():
				return r.Context().Err()
			}
		}
		w.Header().Set("Content-Type", "text/plain")
		w.WriteHeader(status)
		return nil
	}).ServeHTTP(w, r)
}

// asHTTPError maps a *servers.Refusal to the API's error (with Retry-After); others pass through.
func asHTTPError(err error) error {
	se := asRefusal(err)
	if se == nil {
		return err
	}
	he := &httpError{status: refusalStatus(se.Code), message: se.Msg}
	if se.RetryAfter > 0 {
		he.header = http.Header{"Retry-After": {strconv.Itoa(se.RetryAfter)}}
	}
	return he
}

// apiAuthorize identifies an API request and checks that it holds any of scopes on res (owner is
// the user whose groups count for group filters). It answers 403/404 itself and reports false then.
func (h *Hub) apiAuthorize(w http.ResponseWriter, r *http.Request, scopes []string, res rbac.Resource, owner string) (*Identity, bool) {
	h.apiHeaders(w)
	q := &apiRequest{h: h, w: w, r: r}
	err := q.authenticate()
	if err == nil {
		err = q.need(res, scopes...)
	}
	if err != nil {
		h.writeAPIError(w, r, err)
		return nil, false
	}
	return q.id, true
}

func (h *Hub) apiServerLookupError(w http.ResponseWriter, err error) {
	h.logger.Error("reading server record", zap.Error(err))
	apiError(w, http.StatusInternalServerError, "")
}

// waitServerIdle waits until no op is in flight on a server (tests, shutdown).
func (h *Hub) waitServerIdle(ctx context.Context, user, server string) error {
	return h.eng.WaitIdle(ctx, user, server)
}

// registerServerAPI registers the endpoints of the spawn flow, whoami, activity and the OAuth provider.
func (h *Hub) registerServerAPI(mux *http.ServeMux) {
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
