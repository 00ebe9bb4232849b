//go:build race

package routetable

const raceEnabled = true
