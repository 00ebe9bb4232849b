//go:build race

package docker

// raceEnabled: CI runs this package twice, once with the race detector; the
// engine tests that check engine behaviour, not our concurrency, run only in
// the other run.
const raceEnabled = true
