// Package gql is the GraphQL half of fraised: it loads an SDL schema with
// fraised's directives (@topic, @filter, @auth), compiles each client
// document once into an Operation, and at event time filters events
// (Operation.Match) and projects the event JSON through the selection set
// straight into output bytes (Operation.AppendResult) without decoding it.
//
// Parsing and validation use github.com/vektah/gqlparser/v2 with its
// standard rules. Execution follows graphql-js: CollectFields with
// @skip/@include and fragment type conditions, result coercion of the
// built-in scalars, and null propagation with errors at their paths.
//
// The event path (Match, AppendResult with the default resolver) reads the
// event with the allocation-free JSON reader of internal/jsonx and does not
// allocate unless a field fails. A projection reads each object of the
// event once, picking selected members by a precomputed key index and
// writing their values as it meets them (fast.go); an event with a field
// error is projected again by the general completion (project.go), which
// records errors and propagates nulls. Match reads the objects on the
// filter paths once for all filters.
//
// Compile caches by what each part of the work depends on (request.go): a
// repeat of a known subscribe is a few hash lookups without allocating,
// and a new variable value on a known document reuses the selection plan.
// Every cache compares full keys, and @auth is checked at every call. The
// request and operation caches are shard.Cache (internal/shard).
package gql
