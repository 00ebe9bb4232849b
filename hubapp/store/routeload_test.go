package store

import (
	"slices"
	"testing"
	"time"
)

// TestLoadRoutesSkipsDamaged: records that do not decode, carry trailing bytes or name another key
// are returned as damaged and skipped, the others load; QuarantineRoute moves a damaged record (and
// its activity) under quarantine/ with its bytes, so that the next load no longer meets it.
func TestLoadRoutesSkipsDamaged(t *testing.T) {
	s, err := Open(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.SaveRoutes([]Route{{Key: "/user/alice", Target: "http://127.0.0.1:1"}, {Key: "/user/bob", Target: "http://127.0.0.1:2"}}); err != nil {
		t.Fatal(err)
	}
	bad := map[string]string{
		routePrefix + "/user/carol": `{"key": "/user/carol", "target": `,
		routePrefix + "/user/dave":  `{"key": "/user/somebody-else", "target": "http://127.0.0.1:3"}`,
		routePrefix + "/user/erin":  `{"key": "/user/erin", "target": "http://127.0.0.1:4"} {}`,
		routePrefix + "/user/frank": "\xff\x00garbage",
	}
	err = s.Update(func(tx *Txn) error {
		for k, v := range bad {
			if err := tx.putRaw(k, []byte(v), 0); err != nil {
				return err
			}
		}
		return tx.putRaw(routeActPrefix+"/user/carol", encodeTime(time.Now()), 0)
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Routes(); err == nil {
		t.Fatal("Routes (strict) accepted damaged records")
	}
	routes, damaged, err := s.LoadRoutes()
	if err != nil {
		t.Fatal(err)
	}
	if len(routes) != 2 || routes[0].Key != "/user/alice" || routes[1].Key != "/user/bob" {
		t.Fatalf("routes %+v", routes)
	}
	var keys []string
	for _, d := range damaged {
		keys = append(keys, d.Key)
		if d.Err == nil {
			t.Errorf("%s: damaged without a reason", d.Key)
		}
	}
	want := []string{routePrefix + "/user/carol", routePrefix + "/user/dave", routePrefix + "/user/erin", routePrefix + "/user/frank"}
	if !slices.Equal(keys, want) {
		t.Fatalf("damaged %v, want %v", keys, want)
	}
	for _, k := range keys {
		if err := s.QuarantineRoute(k); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.QuarantineRoute("user/alice"); err == nil {
		t.Fatal("quarantined a record that is not a route")
	}
	routes, damaged, err = s.LoadRoutes()
	if err != nil || len(routes) != 2 || len(damaged) != 0 {
		t.Fatalf("after quarantine: %d routes, damaged %v, %v", len(routes), damaged, err)
	}
	q, err := s.Quarantined()
	if err != nil || !slices.Equal(q, want) {
		t.Fatalf("quarantined %v, %v; want %v", q, err, want)
	}
	err = s.View(func(tx *Txn) error {
		if ok, err := tx.exists(routeActPrefix + "/user/carol"); err != nil || ok {
			t.Errorf("carol's activity record kept (%v, %v)", ok, err)
		}
		item, err := tx.txn.Get([]byte(quarantinePrefix + routePrefix + "/user/frank"))
		if err != nil {
			return err
		}
		v, err := item.ValueCopy(nil)
		if string(v) != bad[routePrefix+"/user/frank"] {
			t.Errorf("quarantined bytes %q", v)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}
