// Package resolve runs subscription resolvers away from the dispatcher, so
// that a slow or stuck resolver delays only the subscriptions that need
// its result.
//
// The dispatcher hands each call (one group, one event: a Call) to the
// Backend its field is routed to (Router) and moves on; the backend
// answers through the dispatcher's Completions queue, which the dispatcher
// drains every turn. Three backends exist:
//
//   - Pool: a bounded pool of goroutines running compiled-in (and plugin)
//     Go functions (gql.ResolverFunc).
//   - Client: a process speaking the socket protocol (protocol.go) over a
//     Unix socket, either started and supervised by fraised (exec:) or
//     already listening (unix:); calls started in one dispatch batch go out
//     in one frame.
//
// The dispatcher owns deadlines: a call not answered by its Deadline is
// expired (Call.Expire), the subscribers get a RESOLVER_TIMEOUT error in
// that event's next, and a late answer is dropped. Every queue here is
// bounded by the dispatcher's cap on pending calls (MaxPending), so none of
// them can grow without limit.
package resolve
