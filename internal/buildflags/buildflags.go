// Package buildflags holds the build tags of CaddyHub's binary, for the
// tests and benchmarks that build it.
//
// Caddy's internal CA (caddypki) links smallstep's certificate authority,
// which links a database driver for each backend it supports: Badger v1
// and v2, BoltDB, MySQL and PostgreSQL (pgx). Nothing in this build opens
// one of those databases (acme_server, their only user, is left out of
// cmd/caddy), and the drivers are an eighth of the executable, whose mapped
// pages are most of an idle hub's memory. smallstep/nosql leaves each driver
// out under a build tag; Caddy's own release builds set three of them.
// .ci/run builds, vets and tests with the same tags (GOFLAGS), so that they
// share one build cache; a build without them works the same, only larger.
package buildflags

// Tags is the -tags value of the binary's build.
const Tags = "nobadger,nomysql,nopgx,nobbolt"
