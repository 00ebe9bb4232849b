package hubapp

import (
	"go.uber.org/zap"

	"github.com/caddyhub/caddyhub/caddymodule/routetable"
	"github.com/caddyhub/caddyhub/hubapp/store"
)

// loadRoutes reads the stored routes for the route table. A record that does not decode, or that
// the route table refuses (a damaged or hand-edited database), does not keep the hub from
// starting: it is logged in one line naming the record and moved to quarantine/<record key> in
// the store (bytes kept for the operator); the other routes load. Only a failing store is an
// error.
func loadRoutes(st *store.Store, logger *zap.Logger) ([]routetable.Record, error) {
	recs, damaged, err := st.LoadRoutes()
	if err != nil {
		return nil, err
	}
	out := make([]routetable.Record, 0, len(recs))
	for _, r := range recs {
		rec := routetable.Record{Key: r.Key, Target: r.Target, Data: r.Data, LastActivity: r.LastActivity}
		if err := routetable.CheckRecord(rec); err != nil {
			damaged = append(damaged, store.DamagedRecord{Key: store.QuarantineRouteKey(r.Key), Err: err})
			continue
		}
		out = append(out, rec)
	}
	for _, d := range damaged {
		qerr := st.QuarantineRoute(d.Key)
		logger.Error("skipping a damaged route record; the hub starts without it",
			zap.String("record", d.Key), zap.Error(d.Err), zap.Bool("quarantined", qerr == nil), zap.NamedError("quarantine_error", qerr))
	}
	return out, nil
}
