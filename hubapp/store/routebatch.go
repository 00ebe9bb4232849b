package store

// DeleteRouteRecord removes a route's records inside a transaction, so that a caller can batch many
// route deletions with other changes (the hub's adoption of servers at start marks thousands of dead
// servers stopped and drops their routes in a few commits instead of one fsync per route).
func (tx *Txn) DeleteRouteRecord(key string) error {
	if err := tx.delete(routePrefix + key); err != nil {
		return err
	}
	return tx.delete(routeActPrefix + key)
}
