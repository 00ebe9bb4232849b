package spawners

import (
	"context"
	"encoding/json"
)

// OrphanLister is implemented by spawners whose servers outlive the hub and
// can be listed on their own (containers): Orphans lists the servers this hub
// started that none of the claimed states (those of every server the hub has
// a record of) names, in words for an admin, and logs the new ones. The hub
// calls it after adopting its servers at start and for GET /hub/api/info.
type OrphanLister interface {
	Orphans(ctx context.Context, claimed []json.RawMessage) ([]string, error)
}
