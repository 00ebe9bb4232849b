//go:build !linux

package store

// statFreeBytes cannot tell on this platform: writes rely on the ENOSPC classification alone.
func statFreeBytes(string) (uint64, bool) { return 0, false }
