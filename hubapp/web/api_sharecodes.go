package web

// Share codes (JupyterHub 5): codes a server owner hands out, and the /hub/accept-share page where a
// logged-in user accepts one.

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"time"

	"go.uber.org/zap"

	"github.com/caddyhub/caddyhub/hubapp/rbac"
	"github.com/caddyhub/caddyhub/hubapp/store"
)

// GET /share-codes/{owner}[/{server}]
func (h *Hub) apiShareCodes(q *apiRequest) error {
	owner, server, one, err := h.readSharesTarget(q)
	if err != nil {
		return err
	}
	return modelList(h, q, func(tx *store.Txn) ([]*store.ShareCode, error) {
		return tx.ShareCodes(owner, server, !one, time.Now())
	}, h.shareCodeModel)
}

// acceptShareURL is the hub page that accepts a share code.
func (h *Hub) acceptShareURL(code string) string {
	return h.prefix + "accept-share?" + url.Values{"code": {code}}.Encode()
}

// POST /share-codes/{owner}/{server}: {"scopes"?, "expires_in"?}; the answer carries the code once.
func (h *Hub) apiShareCodeCreate(q *apiRequest) error {
	owner, server, _ := serverPath(q.r)
	if err := q.need(rbac.ServerResource(owner, server), "shares"); err != nil {
		return err
	}
	data, err := q.bodyObject()
	if err != nil {
		return err
	}
	if err := checkModel(data, map[string]string{"scopes": "list", "expires_in": "int"}, "share_code"); err != nil {
		return err
	}
	scopes, err := h.shareScopes(data["scopes"], owner, server)
	if err != nil {
		return err
	}
	if err := h.checkGrant(q, scopes); err != nil {
		return err
	}
	if err := h.existingServer(q, owner, server); err != nil {
		return err
	}
	expiry := shareCodeDefaultExpiry
	if v, ok := data["expires_in"]; ok {
		n, err := v.(json.Number).Int64()
		if err != nil || n < int64(shareCodeMinExpiry/time.Second) || n > int64(shareCodeMaxExpiry/time.Second) {
			return errStatus(http.StatusBadRequest, "expires_in must be between %d and %d seconds", int64(shareCodeMinExpiry/time.Second), int64(shareCodeMaxExpiry/time.Second))
		}
		expiry = time.Duration(n) * time.Second
	}
	code := "sc_" + store.NewSecret(16)
	now := time.Now().UTC()
	c := &store.ShareCode{Owner: owner, Server: server, Scopes: scopes, Created: now, ExpiresAt: now.Add(expiry)}
	var model map[string]any
	err = h.store.Update(func(tx *store.Txn) error {
		c.ID = ""
		if err := tx.CreateShareCode(c, code); err != nil {
			return err
		}
		model = h.shareCodeModel(tx, c)
		return nil
	})
	if err != nil {
		return err
	}
	model["code"] = code
	model["accept_url"] = h.acceptShareURL(code)
	model["full_accept_url"] = nil
	h.logger.Info("share code created", zap.String("owner", owner), zap.String("server", server), zap.String("id", c.ID))
	return q.writeJSON(http.StatusOK, model)
}

// DELETE /share-codes/{owner}/{server}[?code=…|?id=…]: revoke one code, or all of the server's.
func (h *Hub) apiShareCodeDelete(q *apiRequest) error {
	owner, server, _ := serverPath(q.r)
	if err := q.need(rbac.ServerResource(owner, server), "shares"); err != nil {
		return err
	}
	if err := h.existingServer(q, owner, server); err != nil {
		return err
	}
	code, id := q.r.URL.Query().Get("code"), q.r.URL.Query().Get("id")
	err := h.store.Update(func(tx *store.Txn) error {
		switch {
		case code != "":
			c, err := tx.ShareCodeBySecret(code, time.Now())
			if errors.Is(err, store.ErrNotFound) || (err == nil && (c.Owner != owner || c.Server != server)) {
				return errStatus(http.StatusNotFound, "No matching code found")
			} else if err != nil {
				return err
			}
			return tx.DeleteShareCode(owner, server, c.ID)
		case id != "":
			err := tx.DeleteShareCode(owner, server, id)
			if errors.Is(err, store.ErrNotFound) {
				return errStatus(http.StatusNotFound, "No code found matching id=%s", id)
			}
			return err
		}
		return tx.DeleteShareCodes(owner, server, false)
	})
	if err != nil {
		return err
	}
	return q.noContent()
}

// The /hub/accept-share page (docs/protocols.md, "Pages"): a logged-in user accepts a share code. Every
// URL in the page goes through html/template's escaping (GHSA-c4gm-pwx9-9w8j), and the POST needs the
// XSRF token, cross-site no-cors requests included (GHSA-m68r-v472-jgq9).

func init() {
	pageTemplates["accept-share"] = loadTemplates("accept-share")["accept-share"]
}

// acceptShareData is the accept-share template's data.
type acceptShareData struct {
	Owner, Server, ServerURL, Code, Action, Expires string
	// Next is the validated ?next= (posted back with the form); Redirect is where accepting leads.
	Next, Redirect string
	Ready          bool
	Scopes         []string
}

// registerAcceptShare registers the accept-share page.
func (h *Hub) registerAcceptShare(mux *http.ServeMux) {
	mux.HandleFunc("GET "+h.prefix+"accept-share", h.page(h.requireLogin(h.serveAcceptSharePage)))
	mux.HandleFunc("POST "+h.prefix+"accept-share", h.page(h.requireLogin(h.serveAcceptShare)))
}

// shareCodeFor looks up an unexpired code for the logged-in user; it renders the error page and
// returns nil when the code cannot be accepted.
func (h *Hub) shareCodeFor(w http.ResponseWriter, r *http.Request, pr *pageRequest, code string) *store.ShareCode {
	var c *store.ShareCode
	err := h.store.View(func(tx *store.Txn) error {
		var err error
		c, err = tx.ShareCodeBySecret(code, time.Now())
		return err
	})
	switch {
	case code == "" || errors.Is(err, store.ErrNotFound):
		h.renderError(w, r, pr, http.StatusNotFound, "This share code is invalid or has expired.")
		return nil
	case err != nil:
		h.logger.Error("reading share code", zap.Error(err))
		h.renderError(w, r, pr, http.StatusInternalServerError, "The hub could not read its database. Try again in a moment.")
		return nil
	case c.Owner == pr.user.Name:
		h.renderError(w, r, pr, http.StatusBadRequest, "You cannot accept a share of your own server.")
		return nil
	}
	return c
}

// GET /hub/accept-share?code=…
func (h *Hub) serveAcceptSharePage(w http.ResponseWriter, r *http.Request, pr *pageRequest) {
	code := r.URL.Query().Get("code")
	c := h.shareCodeFor(w, r, pr, code)
	if c == nil {
		return
	}
	ready := false
	_ = h.store.View(func(tx *store.Txn) error {
		if s, err := tx.Server(c.Owner, c.Server); err == nil {
			ready = s.Ready
		}
		return nil
	})
	next := h.safeNext(r, r.URL.Query().Get("next"))
	redirect := next
	if redirect == "" {
		redirect = h.fullServerURL(c.Owner, c.Server)
	}
	h.render(w, r, pr, http.StatusOK, "accept-share", "Accept sharing invitation", acceptShareData{
		Owner: c.Owner, Server: c.Server, ServerURL: h.fullServerURL(c.Owner, c.Server), Code: code,
		Action: h.prefix + "accept-share", Expires: c.ExpiresAt.UTC().Format(time.RFC1123), Scopes: c.Scopes,
		Next: next, Redirect: redirect, Ready: ready,
	})
}

// POST /hub/accept-share: share the code's server with the logged-in user, then go to a valid next=
// or the server.
func (h *Hub) serveAcceptShare(w http.ResponseWriter, r *http.Request, pr *pageRequest) {
	if err := h.checkXSRF(r); err != nil {
		h.renderError(w, r, pr, http.StatusForbidden, "XSRF cookie does not match POST argument")
		return
	}
	code := r.PostFormValue("code")
	if h.shareCodeFor(w, r, pr, code) == nil {
		return
	}
	var c *store.ShareCode
	now := time.Now()
	err := h.store.Update(func(tx *store.Txn) error {
		var err error
		if c, err = tx.ShareCodeBySecret(code, now); err != nil {
			return err
		}
		if _, err := h.shareWith(tx, &store.Share{User: pr.user.Name}, c.Owner, c.Server, c.Scopes); err != nil {
			return err
		}
		return tx.ExchangeShareCode(c, now)
	})
	if errors.Is(err, store.ErrNotFound) {
		h.renderError(w, r, pr, http.StatusNotFound, "This share code is invalid or has expired.")
		return
	} else if err != nil {
		h.logger.Error("accepting share code", zap.Error(err))
		h.renderError(w, r, pr, http.StatusInternalServerError, "The hub could not record the share. Try again in a moment.")
		return
	}
	h.logger.Info("share code accepted", zap.String("owner", c.Owner), zap.String("server", c.Server), zap.String("user", pr.user.Name), zap.String("id", c.ID))
	target := h.safeNext(r, r.FormValue("next"))
	if target == "" {
		target = h.fullServerURL(c.Owner, c.Server)
	}
	http.Redirect(w, r, target, http.StatusSeeOther)
}
