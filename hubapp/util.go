package hubapp

import (
	"crypto/subtle"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"strconv"

	"github.com/caddyhub/caddyhub/hubapp/store"
)

func constantTimeEqual(a, b string) bool {
	return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}

func splitHostPort(addr string) (string, int, error) {
	host, p, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, err
	}
	port, err := strconv.Atoi(p)
	if err != nil || port < 0 || port > 65535 {
		return "", 0, errors.New("bad port " + p)
	}
	return host, port, nil
}

// ensureUser returns the user called name, creating the record on first sight (a user who logs in
// for the first time, a name from api_tokens or a config list).
func (h *Hub) ensureUser(name string) (*store.User, error) {
	var u *store.User
	err := h.store.Update(func(tx *store.Txn) error {
		var err error
		if u, err = tx.User(name); err == nil {
			return nil
		} else if !errors.Is(err, store.ErrNotFound) {
			return err
		}
		u = &store.User{Name: name}
		return tx.CreateUser(u)
	})
	return u, err
}

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
func apiError(w http.ResponseWriter, status int, message string) {
	if message == "" {
		message = http.StatusText(status)
	}
	writeJSON(w, status, APIError{Status: status, Message: message})
}
