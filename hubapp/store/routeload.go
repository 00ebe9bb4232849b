package store

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

// quarantinePrefix holds records set aside because they could not be used (a damaged or
// hand-edited database): `quarantine/<original key>` keeps the original bytes for the operator.
const quarantinePrefix = "quarantine/"

// DamagedRecord is a stored record that could not be used.
type DamagedRecord struct {
	Key string // the record's database key, e.g. "route//user/alice"
	Err error  // why it could not be used
}

// LoadRoutes returns every stored route that decodes, with its last activity, in key order, and
// the route records that do not decode (or name another key than their own), which it skips: one
// damaged record must not keep the hub from starting. Errors are failures of the store.
func (s *Store) LoadRoutes() ([]Route, []DamagedRecord, error) {
	var out []Route
	var damaged []DamagedRecord
	acts := map[string]time.Time{}
	err := s.View(func(tx *Txn) error {
		err := tx.scan(routeActPrefix, "", true, func(key string, val []byte) (bool, error) {
			acts[strings.TrimPrefix(key, routeActPrefix)] = decodeTime(val)
			return true, nil
		})
		if err != nil {
			return err
		}
		return tx.scan(routePrefix, "", true, func(key string, val []byte) (bool, error) {
			var r Route
			dec := json.NewDecoder(bytes.NewReader(val))
			dec.UseNumber() // extra numeric fields come back verbatim, as they were added
			err := dec.Decode(&r)
			if err == nil && dec.More() {
				err = errors.New("trailing data after the record")
			}
			if err == nil && r.Key != strings.TrimPrefix(key, routePrefix) {
				err = fmt.Errorf("the record names route %q", r.Key)
			}
			if err != nil {
				damaged = append(damaged, DamagedRecord{Key: key, Err: fmt.Errorf("decoding %s: %w", key, err)})
				return true, nil
			}
			r.LastActivity = acts[r.Key]
			out = append(out, r)
			return true, nil
		})
	})
	if err != nil {
		return nil, nil, fmt.Errorf("loading routes: %w", err)
	}
	return out, damaged, nil
}

// QuarantineRoute moves the record of a route that cannot be used (damaged, or refused by the
// route table) to `quarantine/route/<key>`, bytes unchanged, and drops its activity record, so that
// the next start does not meet it again and the operator can still look at it. dbKey is the
// record's database key (DamagedRecord.Key); QuarantineRouteKey gives it for a route key.
func (s *Store) QuarantineRoute(dbKey string) error {
	if !strings.HasPrefix(dbKey, routePrefix) {
		return fmt.Errorf("quarantining %q: not a route record", dbKey)
	}
	err := s.Update(func(tx *Txn) error {
		item, err := tx.txn.Get([]byte(dbKey))
		if err != nil {
			return fmt.Errorf("reading %s: %w", dbKey, err)
		}
		val, err := item.ValueCopy(nil)
		if err != nil {
			return fmt.Errorf("reading %s: %w", dbKey, err)
		}
		if err := tx.putRaw(quarantinePrefix+dbKey, val, 0); err != nil {
			return err
		}
		if err := tx.delete(dbKey); err != nil {
			return err
		}
		return tx.delete(routeActPrefix + strings.TrimPrefix(dbKey, routePrefix))
	})
	if err != nil {
		return fmt.Errorf("quarantining %s: %w", dbKey, err)
	}
	return nil
}

// QuarantineRouteKey is the database key of the record of route key.
func QuarantineRouteKey(key string) string { return routePrefix + key }

// Quarantined returns the database keys of the records set aside by QuarantineRoute (without the
// quarantine prefix), in key order.
func (s *Store) Quarantined() ([]string, error) {
	var keys []string
	err := s.View(func(tx *Txn) error {
		return tx.scan(quarantinePrefix, "", false, func(key string, _ []byte) (bool, error) {
			keys = append(keys, strings.TrimPrefix(key, quarantinePrefix))
			return true, nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("listing quarantined records: %w", err)
	}
	return keys, nil
}
