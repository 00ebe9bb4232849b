package store

import (
	"fmt"
	"time"

	"github.com/dgraph-io/badger/v4"
)

// Route is a route-table record as stored: `route/<key>` holds target and data; `routeact/<key>` holds
// the last activity, written apart so that activity batches are blind writes (no read, no conflict).
type Route struct {
	Key          string         `json:"key"`
	Target       string         `json:"target"`
	Data         map[string]any `json:"data,omitempty"`
	LastActivity time.Time      `json:"-"`
}

const (
	routePrefix    = "route/"
	routeActPrefix = "routeact/"
)

// SaveRoute writes a route durably, replacing any route with the same key.
func (s *Store) SaveRoute(r Route) error { return s.SaveRoutes([]Route{r}) }

// SaveRoutes writes several routes in one durable transaction (one fsync), all or none. The route
// table groups concurrent adds into such batches.
func (s *Store) SaveRoutes(routes []Route) error {
	return s.Update(func(tx *Txn) error {
		for _, r := range routes {
			if err := tx.PutRouteRecord(r); err != nil {
				return err
			}
		}
		return nil
	})
}

// PutRouteRecord writes a route inside a transaction.
func (tx *Txn) PutRouteRecord(r Route) error {
	if err := tx.putJSON(routePrefix+r.Key, r, 0); err != nil {
		return err
	}
	return tx.putRaw(routeActPrefix+r.Key, encodeTime(r.LastActivity), 0)
}

// DeleteRoute removes a route; deleting a missing route is not an error.
func (s *Store) DeleteRoute(key string) error {
	return s.Update(func(tx *Txn) error {
		if err := tx.delete(routePrefix + key); err != nil {
			return err
		}
		return tx.delete(routeActPrefix + key)
	})
}

// SaveActivity records last-activity times for many routes in one batch. Times for routes that were
// deleted meanwhile are dropped when routes are next loaded.
func (s *Store) SaveActivity(acts map[string]time.Time) error {
	if len(acts) == 0 {
		return nil
	}
	if err := s.checkSpace(); err != nil {
		return err
	}
	wb := s.db.NewWriteBatch()
	defer wb.Cancel()
	for key, t := range acts {
		if err := wb.SetEntry(badger.NewEntry([]byte(routeActPrefix+key), encodeTime(t))); err != nil {
			return fmt.Errorf("batching activity for %s: %w", key, err)
		}
	}
	if err := wb.Flush(); err != nil {
		return s.classifyWriteErr(fmt.Errorf("writing route activity: %w", err))
	}
	return nil
}

// Routes returns every stored route with its last activity, in key order, and fails on the first
// record that does not decode (LoadRoutes, which the hub starts from, skips those instead).
func (s *Store) Routes() ([]Route, error) {
	routes, damaged, err := s.LoadRoutes()
	if err != nil {
		return nil, err
	}
	if len(damaged) > 0 {
		return nil, fmt.Errorf("loading routes: %w", damaged[0].Err)
	}
	return routes, nil
}

func encodeTime(t time.Time) []byte {
	if t.IsZero() {
		return nil
	}
	b, _ := t.UTC().MarshalBinary()
	return b
}

func decodeTime(b []byte) time.Time {
	var t time.Time
	if len(b) == 0 || t.UnmarshalBinary(b) != nil {
		return time.Time{}
	}
	return t
}
