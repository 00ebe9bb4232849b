package store

import (
	"encoding/json"
	"errors"
	"testing"
	"time"
)

// FuzzRecordDecode: whatever bytes sit under a record's key (a damaged or hand-edited database),
// reading it returns a record or an error, never panics; a record that decodes re-encodes to a
// fixed point (written back and read again, it encodes the same); a route's activity timestamp
// decodes to a time that survives its own encoding, or to zero.
func FuzzRecordDecode(f *testing.F) {
	f.Add(uint8(0), []byte(`{"name":"alice","admin":true,"groups":["g"],"created":"2026-01-02T03:04:05Z"}`), []byte(nil))
	f.Add(uint8(1), []byte(`{"user":"alice","name":"","ready":true,"state":{"pid":1},"user_options":{"n":1e400}}`), []byte(nil))
	f.Add(uint8(2), []byte(`{"id":"a1","user":"alice","scopes":["inherit"],"expires_at":"0001-01-01T00:00:00Z"}`), []byte(nil))
	f.Add(uint8(3), []byte(`{"key":"/user/alice","target":"http://127.0.0.1:1","data":{"n":12345678901234567890}}`), []byte{1, 0, 0, 0, 14, 223, 0, 0, 0, 0, 0, 0, 0, 255, 255})
	f.Add(uint8(4), []byte(`{"name":"g","users":["a"],"properties":{"x":[1,2]}}`), []byte(nil))
	f.Add(uint8(3), []byte(`null`), []byte{2})
	s, err := Open(f.TempDir(), nil)
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { s.Close() })
	f.Fuzz(func(t *testing.T, kind uint8, val, act []byte) {
		if t := decodeTime(act); !t.IsZero() && !decodeTime(encodeTime(t)).Equal(t) {
			panic("activity time does not survive its encoding: " + t.String())
		}
		now := time.Now()
		var read func(tx *Txn) (any, error)
		var write func(tx *Txn, v any) error
		var key string
		switch kind % 5 {
		case 0:
			key = userPrefix + "fz"
			read = func(tx *Txn) (any, error) { return tx.User("fz") }
			write = func(tx *Txn, v any) error { return tx.putJSON(key, v, 0) }
		case 1:
			key = serverKey("fz", "")
			read = func(tx *Txn) (any, error) { return tx.Server("fz", "") }
			write = func(tx *Txn, v any) error { return tx.putJSON(key, v, 0) }
		case 2:
			key = tokenPrefix + "fz"
			read = func(tx *Txn) (any, error) { return tx.tokenByHash("fz", now) }
			write = func(tx *Txn, v any) error { return tx.putJSON(key, v, 0) }
		case 3:
			key = routePrefix + "/fz"
			read = func(tx *Txn) (any, error) {
				routes, err := s.Routes()
				if err != nil || len(routes) == 0 {
					return nil, errors.Join(err, ErrNotFound)
				}
				return &routes[0], nil
			}
			write = func(tx *Txn, v any) error { return tx.PutRouteRecord(*v.(*Route)) }
		case 4:
			key = groupPrefix + "fz"
			read = func(tx *Txn) (any, error) { return tx.Group("fz") }
			write = func(tx *Txn, v any) error { return tx.putJSON(key, v, 0) }
		}
		err := s.Update(func(tx *Txn) error {
			if err := tx.deletePrefix(routePrefix); err != nil {
				return err
			}
			if err := tx.deletePrefix(routeActPrefix); err != nil {
				return err
			}
			if err := tx.putRaw(routeActPrefix+"/fz", act, 0); err != nil {
				return err
			}
			return tx.putRaw(key, val, 0)
		})
		if err != nil {
			t.Fatal(err)
		}
		var first any
		if err := s.View(func(tx *Txn) error { first, err = read(tx); return err }); err != nil {
			return // refused: fine, as long as nothing panicked
		}
		enc1, err := json.Marshal(first)
		if err != nil {
			t.Fatalf("a decoded record does not encode: %v", err)
		}
		if err := s.Update(func(tx *Txn) error { return write(tx, first) }); err != nil {
			t.Fatalf("writing back a decoded record: %v", err)
		}
		var second any
		if err := s.View(func(tx *Txn) error { second, err = read(tx); return err }); err != nil {
			t.Fatalf("a record written back does not read: %v (%s)", err, enc1)
		}
		if enc2, _ := json.Marshal(second); string(enc2) != string(enc1) {
			t.Fatalf("record not stable:\n%s\n%s", enc1, enc2)
		}
	})
}
