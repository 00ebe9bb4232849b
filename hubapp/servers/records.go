package servers

// The server's traces outside the spawner, each with one home: its route in the route table, its
// credentials (API token, OAuth client and the OAuth tokens the client issued) and its record.

import (
	"errors"
	"fmt"
	"time"

	"go.uber.org/zap"

	"github.com/caddyhub/caddyhub/caddymodule/routetable"
	"github.com/caddyhub/caddyhub/hubapp/store"
)

// RouteData is the data of a user server's route (JupyterHub's proxy route data).
func RouteData(user, server string) map[string]any {
	return map[string]any{"jupyterhub": true, "user": user, "server_name": server}
}

// addRoute routes a server's prefix to target.
func (e *Engine) addRoute(user, server, target string) error {
	if _, err := e.table.Add(e.site.RouteKey(user, server), target, RouteData(user, server)); err != nil {
		return fmt.Errorf("adding route: %w", err)
	}
	return nil
}

// deleteRoute removes a server's route, logging a failure as what.
func (e *Engine) deleteRoute(user, server, what string) {
	if _, err := e.table.Delete(e.site.RouteKey(user, server)); err != nil {
		e.logger.Error(what, zap.String("user", user), zap.String("server", server), zap.Error(err))
	}
}

// resetRecord clears what a running server leaves on its record, but for what the spawner keeps of
// its state for the next start (keptState).
func (e *Engine) resetRecord(s *store.Server) {
	s.Ready, s.Pending, s.Target, s.State, s.Started = false, "", "", e.keptState(s.State), time.Time{}
}

// putServer updates a server's record in one transaction.
func (e *Engine) putServer(user, server string, change func(s *store.Server) error) error {
	return e.store.Update(func(tx *store.Txn) error {
		s, err := tx.Server(user, server)
		if err != nil {
			return err
		}
		if err := change(s); err != nil {
			return err
		}
		return tx.PutServer(s)
	})
}

// revokeCredentials deletes the server's own tokens, its OAuth client and the OAuth tokens the
// client issued (JupyterHub deletes the client, and its tokens go with it), in one scan of the
// user's tokens.
func revokeCredentials(tx *store.Txn, user, server string) error {
	toks, err := Credentials(tx, user, server)
	if err != nil {
		return err
	}
	return deleteCredentials(tx, user, server, toks)
}

// Credentials lists the tokens revokeCredentials deletes, in one scan of the user's.
func Credentials(tx *store.Txn, user, server string) ([]*store.Token, error) {
	clientID := OAuthClientID(user, server)
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

func deleteCredentials(tx *store.Txn, user, server string, toks []*store.Token) error {
	for _, t := range toks {
		if err := tx.DeleteToken(t); err != nil {
			return err
		}
	}
	return tx.DeleteOAuthClient(OAuthClientID(user, server))
}

// markStoppedTx records a server stopped: credentials revoked, record reset.
func (e *Engine) markStoppedTx(tx *store.Txn, user, server string) error {
	toks, err := Credentials(tx, user, server)
	if err != nil {
		return err
	}
	return e.markStoppedTxWith(tx, user, server, toks)
}

// markStoppedTxWith records a server stopped, deleting the credentials listed beforehand.
func (e *Engine) markStoppedTxWith(tx *store.Txn, user, server string, toks []*store.Token) error {
	if err := deleteCredentials(tx, user, server, toks); err != nil {
		return err
	}
	s, err := tx.Server(user, server)
	if errors.Is(err, store.ErrNotFound) {
		return nil
	} else if err != nil {
		return err
	}
	e.resetRecord(s)
	return tx.PutServer(s)
}

// RoutePersister adapts the store to routetable.BatchPersister.
type RoutePersister struct{ Store *store.Store }

// SaveRoute implements routetable.Persister.
func (p RoutePersister) SaveRoute(rec routetable.Record) error {
	return routeStoreErr(p.Store.SaveRoute(storeRoute(rec)))
}

// SaveRoutes makes RoutePersister a routetable.BatchPersister: concurrent adds share one fsync.
func (p RoutePersister) SaveRoutes(recs []routetable.Record) error {
	routes := make([]store.Route, len(recs))
	for i, rec := range recs {
		routes[i] = storeRoute(rec)
	}
	return routeStoreErr(p.Store.SaveRoutes(routes))
}

func storeRoute(rec routetable.Record) store.Route {
	return store.Route{Key: rec.Key, Target: rec.Target, Data: rec.Data, LastActivity: rec.LastActivity}
}

// DeleteRoute implements routetable.Persister.
func (p RoutePersister) DeleteRoute(key string) error { return routeStoreErr(p.Store.DeleteRoute(key)) }

// SaveActivity implements routetable.Persister.
func (p RoutePersister) SaveActivity(acts map[string]time.Time) error {
	return routeStoreErr(p.Store.SaveActivity(acts))
}

// routeStoreErr tells the route table (and through it the proxy API, which knows nothing of the
// store) that a change was refused for want of disk space.
func routeStoreErr(err error) error {
	if errors.Is(err, store.ErrDiskFull) {
		return fmt.Errorf("%w: %w", routetable.ErrStorageFull, err)
	}
	return err
}

var _ routetable.BatchPersister = RoutePersister{}

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
