package web

// The admin page, /hub/admin (scope admin-ui): a server-rendered, paginated table of users, sorted
// and filtered here (name search, state), with the actions of JupyterHub's admin panel. The page
// only reads; every action is a fetch to the REST API from the page's script, carrying the page's
// XSRF token as X-XSRFToken, so the API's scope checks decide — never the admin flag. Paging and
// search use the in-memory user index (api_index.go): a page of 100,000 users reads only the
// records it shows.

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/caddyhub/caddyhub/hubapp/rbac"
	"github.com/caddyhub/caddyhub/hubapp/store"
)

const (
	adminPageSize    = 50  // rows per page unless ?limit= says otherwise
	adminMaxPageSize = 500 // the most rows one page shows
)

// pageScopes returns the scopes the page's user holds (their roles'; a cookie request carries no
// token to narrow them), resolved once per request.
func (h *Hub) pageScopes(pr *pageRequest) rbac.Set {
	if pr.user == nil {
		return rbac.Set{}
	}
	if pr.scopes != nil {
		return *pr.scopes
	}
	id := &Identity{User: pr.user}
	if err := h.resolveScopes(id); err != nil {
		h.logger.Error("resolving the scopes of a page's user", zap.String("user", pr.user.Name), zap.Error(err))
		id.Scopes = rbac.Set{}
	}
	pr.scopes = &id.Scopes
	return id.Scopes
}

// holds reports whether the page's user holds scope for every resource (no filter).
func (h *Hub) holds(pr *pageRequest, scope string) bool {
	has, filtered := h.pageScopes(pr).Has(scope)
	return has && !filtered
}

// adminServer is one server as the admin table shows it.
type adminServer struct {
	Name    string // "" for the default server
	State   string // running, starting, stopping, stopped
	URL     string // where the server is opened
	APIURL  string // POST starts it, DELETE stops it
	Started string
	Profile string
	Failure string
}

// adminRow is one user of the admin table.
type adminRow struct {
	Name         string
	APIURL       string
	Admin        bool
	Groups       []string
	Servers      []adminServer
	Active       bool
	LastActivity string
	Started      string
}

// adminData is the admin template's data.
type adminData struct {
	Rows              []adminRow
	Query, State      string
	Sort              string // "name" or "-name"
	Offset, Limit     int
	Total             int
	First, Last       int
	PrevURL, NextURL  string
	SortURL           string // the other sort order
	APIUsers          string // POST: add users
	CanServers        bool   // servers: start and stop
	CanAccess         bool   // access:servers: open a server
	CanUsers          bool   // admin:users: add, edit, delete
	CanGroups         bool   // admin:groups: the groups view
	AllowNamedServers bool
}

// registerAdmin adds the admin pages to the mux.
func (h *Hub) registerAdmin(mux *http.ServeMux) {
	mux.HandleFunc("GET "+h.prefix+"admin", h.page(h.requireLogin(h.serveAdmin)))
	mux.HandleFunc("GET "+h.prefix+"admin/groups", h.page(h.requireLogin(h.serveAdminGroups)))
}

// serveAdmin is GET /hub/admin?q=&state=&sort=&offset=&limit=.
func (h *Hub) serveAdmin(w http.ResponseWriter, r *http.Request, pr *pageRequest) {
	if !h.holds(pr, "admin-ui") {
		h.renderError(w, r, pr, http.StatusForbidden, "The admin page needs the admin-ui scope, which you do not hold.")
		return
	}
	qs := r.URL.Query()
	d := adminData{
		Query:             strings.TrimSpace(qs.Get("q")),
		State:             qs.Get("state"),
		Sort:              qs.Get("sort"),
		Limit:             adminPageSize,
		APIUsers:          h.prefix + "api/users",
		CanServers:        h.holds(pr, "servers"),
		CanAccess:         h.holds(pr, "access:servers"),
		CanUsers:          h.holds(pr, "admin:users"),
		CanGroups:         h.holds(pr, "admin:groups"),
		AllowNamedServers: h.cfg.AllowNamedServers,
	}
	switch d.State {
	case "", "active", "ready", "inactive":
	default:
		d.State = ""
	}
	if d.Sort != "-name" {
		d.Sort = "name"
	}
	if n, err := strconv.Atoi(qs.Get("offset")); err == nil && n > 0 {
		d.Offset = n
	}
	if n, err := strconv.Atoi(qs.Get("limit")); err == nil && n > 0 {
		d.Limit = min(n, adminMaxPageSize)
	}
	if err := h.adminRows(&d); err != nil {
		h.logger.Error("listing users for the admin page", zap.Error(err))
		h.renderError(w, r, pr, http.StatusInternalServerError, "The hub could not read its database. Try again in a moment.")
		return
	}
	link := func(offset int, sort string) string {
		v := url.Values{}
		if d.Query != "" {
			v.Set("q", d.Query)
		}
		if d.State != "" {
			v.Set("state", d.State)
		}
		if sort != "name" {
			v.Set("sort", sort)
		}
		if offset > 0 {
			v.Set("offset", strconv.Itoa(offset))
		}
		if d.Limit != adminPageSize {
			v.Set("limit", strconv.Itoa(d.Limit))
		}
		if len(v) == 0 {
			return h.prefix + "admin"
		}
		return h.prefix + "admin?" + v.Encode()
	}
	if d.Offset > 0 {
		d.PrevURL = link(max(d.Offset-d.Limit, 0), d.Sort)
	}
	if d.Offset+d.Limit < d.Total {
		d.NextURL = link(d.Offset+d.Limit, d.Sort)
	}
	other := "-name"
	if d.Sort == "-name" {
		other = "name"
	}
	d.SortURL = link(0, other)
	if len(d.Rows) > 0 {
		d.First, d.Last = d.Offset+1, d.Offset+len(d.Rows)
	}
	h.render(w, r, pr, http.StatusOK, "admin", "Admin", d)
}

// adminRows fills d.Rows and d.Total: candidate names from the user index (or the store when the
// index is not available), filtered by name and state, in name order; records are read only for
// the rows shown.
func (h *Hub) adminRows(d *adminData) error {
	idx := h.userIndex()
	desc := d.Sort == "-name"
	return h.store.View(func(tx *store.Txn) error {
		if d.Query == "" && d.State == "" && idx != nil {
			page, total := idx.page(d.Offset, d.Limit, desc)
			d.Total = total
			return h.adminFill(tx, d, page)
		}
		sel, err := h.newUserSelection(tx, d.Query, d.State, false)
		if err != nil {
			return err
		}
		names, err := sel.names(tx, idx)
		if err != nil {
			return err
		}
		if d.State == "ready" {
			// Active is cheap (keys only); ready needs the records of the active users' servers.
			names = slices.DeleteFunc(names, func(n string) bool {
				servers, err := tx.Servers(n)
				return err != nil || !hasReadyServer(servers)
			})
		}
		if desc {
			slices.Reverse(names)
		}
		d.Total = len(names)
		return h.adminFill(tx, d, names[min(d.Offset, len(names)):min(d.Offset+d.Limit, len(names))])
	})
}

// adminFill reads the records of the named users into rows.
func (h *Hub) adminFill(tx *store.Txn, d *adminData, names []string) error {
	d.Rows = make([]adminRow, 0, len(names))
	for _, n := range names {
		u, err := tx.User(n)
		if errors.Is(err, store.ErrNotFound) {
			continue // deleted since the index was read
		} else if err != nil {
			return err
		}
		servers, err := tx.Servers(n)
		if err != nil {
			return err
		}
		row := adminRow{Name: u.Name, APIURL: h.prefix + "api/users/" + url.PathEscape(u.Name), Admin: u.Admin, Groups: u.Groups}
		var started time.Time
		hasDefault := false
		for _, s := range servers {
			if s.Name != "" && !h.cfg.AllowNamedServers {
				continue
			}
			v := adminServer{Name: s.Name, URL: h.fullServerURL(u.Name, s.Name), APIURL: row.APIURL + "/server", Failure: failureText(s.Failure)}
			if s.Name != "" {
				v.APIURL = row.APIURL + "/servers/" + url.PathEscape(s.Name)
			}
			switch {
			case s.Ready:
				v.State = "running"
			case s.Pending == "spawn":
				v.State = "starting"
			case s.Pending == "stop":
				v.State = "stopping"
			default:
				v.State = "stopped"
			}
			if s.Active() {
				row.Active = true
				v.Started = adminTime(s.Started)
				if started.IsZero() || s.Started.Before(started) {
					started = s.Started
				}
			}
			if p, ok := s.UserOptions["profile"].(string); ok {
				v.Profile = p
			}
			if s.Name == "" {
				hasDefault = true
				row.Servers = append([]adminServer{v}, row.Servers...)
			} else {
				row.Servers = append(row.Servers, v)
			}
		}
		if !hasDefault {
			row.Servers = append([]adminServer{{
				State: "stopped", URL: h.fullServerURL(u.Name, ""), APIURL: row.APIURL + "/server",
			}}, row.Servers...)
		}
		row.LastActivity, row.Started = adminTime(h.lastActivityOf(u, servers)), adminTime(started)
		d.Rows = append(d.Rows, row)
	}
	return nil
}

// adminTime formats a time for the table; "" for the zero time.
func adminTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format("2006-01-02 15:04 UTC")
}

// adminGroup is one group of the groups view.
type adminGroup struct {
	Name       string
	APIURL     string
	Users      []string
	Properties string // JSON
}

// adminGroupsData is the admin_groups template's data.
type adminGroupsData struct {
	Groups    []adminGroup
	APIGroups string
	CanGroups bool
}

// serveAdminGroups is GET /hub/admin/groups: the groups, their members and properties.
func (h *Hub) serveAdminGroups(w http.ResponseWriter, r *http.Request, pr *pageRequest) {
	if !h.holds(pr, "admin-ui") {
		h.renderError(w, r, pr, http.StatusForbidden, "The admin page needs the admin-ui scope, which you do not hold.")
		return
	}
	d := adminGroupsData{APIGroups: h.prefix + "api/groups", CanGroups: h.holds(pr, "admin:groups")}
	var groups []*store.Group
	err := h.store.View(func(tx *store.Txn) error {
		var err error
		groups, err = tx.Groups(0, adminMaxPageSize)
		return err
	})
	if err != nil {
		h.logger.Error("listing groups for the admin page", zap.Error(err))
		h.renderError(w, r, pr, http.StatusInternalServerError, "The hub could not read its database. Try again in a moment.")
		return
	}
	for _, g := range groups {
		props := "{}"
		if len(g.Properties) > 0 {
			if b, err := json.MarshalIndent(g.Properties, "", "  "); err == nil {
				props = string(b)
			}
		}
		d.Groups = append(d.Groups, adminGroup{
			Name: g.Name, APIURL: d.APIGroups + "/" + url.PathEscape(g.Name), Users: g.Users, Properties: props,
		})
	}
	h.render(w, r, pr, http.StatusOK, "admin_groups", "Groups", d)
}
