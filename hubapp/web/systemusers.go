package web

// create_system_users (JupyterHub's LocalAuthenticator.add_system_user): a user added to the hub
// gets a system account when it has none, created with the authenticator's add_user_cmd before the
// hub records the user, so that a failure leaves no hub user behind. The ways in: POST
// /hub/api/users and /hub/api/users/{name} (the admin panel uses them), allowed_users and
// admin_users at start, and a login.

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"go.uber.org/zap"

	"github.com/caddyhub/caddyhub/hubapp/store"
)

// systemUserTimeout bounds one run of add_user_cmd.
const systemUserTimeout = time.Minute

// systemUserError is a failure to create a user's system account; the hub user was not created.
type systemUserError struct {
	user string
	err  error
}

func (e *systemUserError) Error() string {
	return fmt.Sprintf("creating the system account of %s: %v", e.user, e.err)
}

func (e *systemUserError) Unwrap() error { return e.err }

// createsSystemUsers reports whether the authenticator's create_system_users is on.
func (h *Hub) createsSystemUsers() bool {
	if h.authn == nil {
		return false
	}
	o := h.authn.Common()
	return o != nil && o.CreateSystemUsers
}

// ensureSystemUser creates the system account of name unless it exists, when create_system_users
// is on. Errors are *systemUserError.
func (h *Hub) ensureSystemUser(ctx context.Context, name string) error {
	if !h.createsSystemUsers() {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, systemUserTimeout)
	defer cancel()
	if err := h.authn.Common().EnsureSystemUser(ctx, name); err != nil {
		h.logger.Error("creating system user failed", zap.String("user", name), zap.Error(err))
		return &systemUserError{user: name, err: err}
	}
	return nil
}

// missingUsers returns the names in names that the hub has no user for, in order.
func (h *Hub) missingUsers(names []string) ([]string, error) {
	var out []string
	err := h.store.View(func(tx *store.Txn) error {
		out = out[:0]
		for _, n := range names {
			if _, err := tx.User(n); errors.Is(err, store.ErrNotFound) {
				out = append(out, n)
			} else if err != nil {
				return err
			}
		}
		return nil
	})
	return out, err
}

// addConfiguredUsers runs at start with create_system_users: every name in allowed_users and
// admin_users gets its system account and its hub user (admin for admin_users), as JupyterHub's
// init_users adds them. A name whose account cannot be created is logged and left out.
func (h *Hub) addConfiguredUsers() {
	if !h.createsSystemUsers() {
		return
	}
	o := h.authn.Common()
	var names, admins []string
	for i, list := range [][]string{o.AdminUsers, o.AllowedUsers} {
		for _, raw := range list {
			n, err := o.Normalize(raw)
			if err != nil {
				continue // the authenticator refuses it at login too
			}
			if i == 0 {
				admins = append(admins, n)
			}
			if !slices.Contains(names, n) {
				names = append(names, n)
			}
		}
	}
	missing, err := h.missingUsers(names)
	if err != nil {
		h.logger.Error("adding allowed_users and admin_users", zap.Error(err))
		return
	}
	created := 0
	for _, n := range names {
		if err := h.ensureSystemUser(context.Background(), n); err != nil {
			continue // logged
		}
		if !slices.Contains(missing, n) {
			continue
		}
		u := &store.User{Name: n, Admin: slices.Contains(admins, n)}
		err := h.store.Update(func(tx *store.Txn) error { return tx.CreateUser(u) })
		if err != nil && !errors.Is(err, store.ErrExists) {
			h.logger.Error("adding user from the configuration", zap.String("user", n), zap.Error(err))
			continue
		}
		h.noteUser(n, false)
		created++
	}
	if created > 0 {
		h.logger.Info("users from allowed_users and admin_users added", zap.Int("users", created))
	}
}
