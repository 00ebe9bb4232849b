package hubapp

import (
	"path/filepath"
	"testing"

	"github.com/dgraph-io/badger/v4"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/caddyhub/caddyhub/hubapp/store"
)

// TestDamagedRouteRecordDoesNotStopStart: a data_dir whose store holds a route record that does not
// decode (bytes written straight into Badger, as a damaged disk or a hand edit leaves them) and one
// whose target the route table refuses still opens: the good route is served, each damaged record
// is named in one error line and moved to quarantine, and the next start is quiet.
func TestDamagedRouteRecordDoesNotStopStart(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "db")
	st, err := store.Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = st.SaveRoutes([]store.Route{
		{Key: "/user/alice", Target: "http://127.0.0.1:1", Data: map[string]any{"user": "alice"}},
		{Key: "/user/carol", Target: "ftp://127.0.0.1:3"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	db, err := badger.Open(badger.DefaultOptions(dir).WithLogger(nil))
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(txn *badger.Txn) error {
		return txn.Set([]byte("route//user/bob"), []byte("{\"key\": \"/user/bob\", \x00"))
	})
	if cerr := db.Close(); err != nil || cerr != nil {
		t.Fatal(err, cerr)
	}

	core, logs := observer.New(zapcore.InfoLevel)
	rs, err := openReloadState(dir, zap.New(core))
	if err != nil {
		t.Fatalf("a damaged route record stopped the start: %v", err)
	}
	if rs.table.Len() != 1 || rs.table.Get("/user/alice") == nil {
		t.Fatalf("table holds %d routes, want alice's only", rs.table.Len())
	}
	lines := logs.FilterLevelExact(zapcore.ErrorLevel).All()
	if len(lines) != 2 {
		t.Fatalf("%d error lines, want one per damaged record: %v", len(lines), lines)
	}
	for i, want := range []string{"route//user/bob", "route//user/carol"} {
		if got := lines[i].ContextMap()["record"]; got != want || lines[i].ContextMap()["quarantined"] != true {
			t.Errorf("line %d names %v (quarantined %v), want %s", i, got, lines[i].ContextMap()["quarantined"], want)
		}
	}
	if q, err := rs.store.Quarantined(); err != nil || len(q) != 2 {
		t.Fatalf("quarantined %v, %v", q, err)
	}
	if err := rs.Destruct(); err != nil {
		t.Fatal(err)
	}

	core, logs = observer.New(zapcore.InfoLevel)
	rs, err = openReloadState(dir, zap.New(core))
	if err != nil {
		t.Fatal(err)
	}
	defer rs.Destruct()
	if n := logs.FilterLevelExact(zapcore.ErrorLevel).Len(); n != 0 || rs.table.Len() != 1 {
		t.Fatalf("second start: %d error lines, %d routes", n, rs.table.Len())
	}
}
