// Package perf holds fraised's performance tooling; this package itself only
// carries the smoke test that `go test ./perf/...` (and so `make test`) runs:
// a tiny S3 against the floor servers and, once ./cmd/fraised exists, the
// real fraised binary, asserting that every event was delivered.
//
// The harness is perf/cmd/fraised-bench (engine in perf/internal/loadgen),
// the floor servers are perf/cmd/floor-gnet and perf/cmd/floor-net, and the
// gqlgen comparison server is the separate module perf/gqlgen. See
// perf/README.md.
package perf
