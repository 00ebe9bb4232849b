// Package archtest holds the test that enforces the import directions written in
// docs/architecture.md ("Import directions"): it reads the table there and checks every package of
// the module against it.
package archtest
