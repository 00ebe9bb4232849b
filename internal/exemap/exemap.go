// Package exemap keeps the running executable's resident memory to the
// pages it uses.
//
// On Linux with large page-cache folios (ext4 and others since 6.x), the
// kernel maps a file-backed mapping in whole 2 MiB pages when the page cache
// holds the file so, whether or not the pages are ever touched: most of a
// freshly built or copied caddy executable then counts as resident in every
// process running it (docs/benchmarks.md). Release undoes that for this
// process's executable.
package exemap

// Stats says what Release did.
type Stats struct {
	Mappings       int   // mappings released
	Bytes          int64 // their total size
	ResidentBefore int64 // of which resident before
	HugeBefore     int64 // of which mapped as 2 MiB pages before
}

// Release marks this process's read-only executable mappings as not to be
// mapped with huge pages and drops their page table entries; the pages
// fault back in one by one as they are used, from the page cache. Mappings
// holding private copies of pages are left alone. It is safe to call at any
// time and does nothing on systems other than Linux.
func Release() (Stats, error) {
	return release()
}
