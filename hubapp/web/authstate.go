package web

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"go.uber.org/zap"

	"github.com/caddyhub/caddyhub/auth"
	"github.com/caddyhub/caddyhub/hubapp/servers"
	"github.com/caddyhub/caddyhub/hubapp/store"
)

// authState returns u's auth_state, decrypted, or nil: none stored, enable_auth_state off, or
// sealed with a key that is no longer configured (logged; the next login replaces it).
func (h *Hub) authState(u *store.User) map[string]any {
	if len(u.EncryptedAuthState) == 0 || h.deps.Crypter == nil {
		return nil
	}
	var st map[string]any
	if _, err := h.deps.Crypter.OpenJSON(u.EncryptedAuthState, &st); err != nil {
		h.logger.Warn("cannot read a user's auth_state; it is ignored until the user logs in again",
			zap.String("user", u.Name), zap.Error(err))
		return nil
	}
	return st
}

// setAuthState seals st into u (the caller writes u); nil clears it. Without enable_auth_state
// nothing is kept, as in JupyterHub.
func (h *Hub) setAuthState(u *store.User, st map[string]any) error {
	if h.deps.Crypter == nil || st == nil {
		u.EncryptedAuthState = nil
		return nil
	}
	b, err := h.deps.Crypter.SealJSON(st)
	if err != nil {
		return fmt.Errorf("sealing the auth_state of %s: %w", u.Name, err)
	}
	u.EncryptedAuthState = b
	return nil
}

// authUser is what the authenticator knows of a stored user: for RefreshUser and LogoutURL.
func (h *Hub) authUser(u *store.User) *auth.User {
	return &auth.User{Name: u.Name, Admin: u.Admin, Groups: slices.Clone(u.Groups), AuthState: h.authState(u)}
}

// manageGroups reports whether the authenticator owns group membership (manage_groups).
func (h *Hub) manageGroups() bool {
	gm, ok := h.authn.(auth.GroupManager)
	return ok && gm.ManageGroups()
}

// syncGroups makes name a member of exactly groups, creating missing groups (manage_groups).
func syncGroups(tx *store.Txn, name string, groups []string) error {
	u, err := tx.User(name)
	if err != nil {
		return err
	}
	want := make(map[string]bool, len(groups))
	for _, g := range groups {
		if g == "" || want[g] {
			continue
		}
		want[g] = true
		grp, err := tx.Group(g)
		if errors.Is(err, store.ErrNotFound) {
			grp = &store.Group{Name: g}
		} else if err != nil {
			return err
		}
		if !slices.Contains(grp.Users, name) {
			if err := tx.SetGroupMembers(grp, append(slices.Clone(grp.Users), name)); err != nil {
				return err
			}
		}
	}
	for _, g := range u.Groups {
		if want[g] {
			continue
		}
		grp, err := tx.Group(g)
		if errors.Is(err, store.ErrNotFound) {
			continue
		} else if err != nil {
			return err
		}
		members := slices.DeleteFunc(slices.Clone(grp.Users), func(n string) bool { return n == name })
		if err := tx.SetGroupMembers(grp, members); err != nil {
			return err
		}
	}
	return nil
}

// refreshTimeout bounds the authenticator's refresh before a spawn.
const refreshTimeout = 30 * time.Second

// spawnAuth runs before a spawn: it refreshes the user's login when the authenticator can
// (auth.UserRefresher, JupyterHub's refresh_user), stores what changed, and returns the
// auth_state for the spawner and the environment the authenticator hands to the server. A refresh
// that needs a new login, or a user no longer allowed, refuses the spawn (*servers.Refusal, Forbidden).
func (h *Hub) spawnAuth(user *store.User) (map[string]any, map[string]string, error) {
	au := h.authUser(user)
	if rf, ok := h.authn.(auth.UserRefresher); ok {
		ctx, cancel := context.WithTimeout(context.Background(), refreshTimeout)
		nu, err := rf.RefreshUser(ctx, au)
		cancel()
		switch {
		case errors.Is(err, auth.ErrLoginExpired):
			h.logger.Info("spawn refused: the login must be renewed", zap.String("user", user.Name), zap.Error(err))
			return nil, nil, &servers.Refusal{Code: servers.Forbidden, Msg: "Your sign-in has expired. Log out and sign in again to start your server."}
		case errors.Is(err, auth.ErrNotAllowed):
			h.logger.Info("spawn refused: the authenticator no longer allows the user", zap.String("user", user.Name), zap.Error(err))
			return nil, nil, &servers.Refusal{Code: servers.Forbidden, Msg: "Your account is no longer allowed on this hub."}
		case err != nil:
			h.logger.Warn("refreshing the login before a spawn failed", zap.String("user", user.Name), zap.Error(err))
			return nil, nil, &servers.Refusal{Code: servers.Unavailable, Msg: "Your sign-in could not be refreshed (the identity provider did not answer). Try again in a few minutes."}
		case nu != nil && nu != au:
			if err := h.storeRefreshed(nu); err != nil {
				return nil, nil, fmt.Errorf("storing the refreshed login of %s: %w", user.Name, err)
			}
			au = nu
		}
	}
	var env map[string]string
	if se, ok := h.authn.(auth.SpawnEnvironment); ok && au.AuthState != nil {
		env = se.SpawnEnv(au.AuthState)
	}
	return au.AuthState, env, nil
}

// storeRefreshed records a refreshed login: auth_state, admin granted, groups (manage_groups).
func (h *Hub) storeRefreshed(au *auth.User) error {
	return h.store.Update(func(tx *store.Txn) error {
		u, err := tx.User(au.Name)
		if err != nil {
			return err
		}
		if au.Admin {
			u.Admin = true
		}
		if err := h.setAuthState(u, au.AuthState); err != nil {
			return err
		}
		if err := tx.PutUser(u); err != nil {
			return err
		}
		if h.manageGroups() {
			return syncGroups(tx, u.Name, au.Groups)
		}
		return nil
	})
}
