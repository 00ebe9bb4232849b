package routetable

// CheckRecord reports whether Load would accept rec: its key normalizes and its target is a
// usable URL. A caller loading records from storage uses it to set aside the ones that cannot be
// routes before loading the rest.
func CheckRecord(rec Record) error {
	_, err := newRoute(rec.Key, rec.Target, rec.Data, rec.LastActivity)
	return err
}
