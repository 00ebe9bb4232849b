//go:build !race

package routetable

const raceEnabled = false
