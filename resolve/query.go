package resolve

import (
	"context"
	"errors"
	"log/slog"
	"runtime/debug"
	"sync/atomic"
	"time"

	"github.com/fraised/fraised/gql"
)

// MaxQueryCalls bounds the query resolver calls running at once, those
// stuck past their deadline in a resolver that ignores its context
// included: each holds a goroutine until its resolver returns, so a
// resolver that never returns holds at most this many (a few MiB of
// stacks). Past it a query field gets RESOLVER_OVERLOADED at once. 1,024
// is four times the HTTP query cap (server.MaxHTTPQueries) and far above
// what queries to resolvers that answer need.
const MaxQueryCalls = 1024

var (
	errQueryTimeout    = gql.ResolverError(gql.CodeResolverTimeout, "the resolver did not answer in time (--resolver-timeout)")
	errQueryOverloaded = gql.ResolverError(gql.CodeResolverOverloaded, "too many query resolver calls are running; retry later")
	errQueryInternal   = gql.ResolverError(gql.CodeInternal, "internal error")
)

// Queries runs the resolvers of query operations (over WebSocket and
// HTTP) with the deadline subscription resolvers get (--resolver-timeout):
// past it, the field's error carries extensions.code RESOLVER_TIMEOUT and
// the query answers, even when the resolver ignores its context. Each
// call's deadline counts from its start, as a subscription call's does
// (the caller's context, an HTTP request's deadline, bounds the whole
// query). Safe for concurrent use.
type Queries struct {
	timeout time.Duration
	log     *slog.Logger
	running atomic.Int64 // calls whose resolver has not returned (MaxQueryCalls)
}

// NewQueries returns a runner giving each query timeout (DefaultTimeout
// when <= 0) for its resolvers.
func NewQueries(timeout time.Duration, log *slog.Logger) *Queries {
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	if log == nil {
		log = slog.Default()
	}
	return &Queries{timeout: timeout, log: log}
}

// Append runs op, a query, and appends its result to dst. Each resolver
// sees a context whose deadline is the timeout from its call, or ctx's
// if that comes first. It blocks until the result is complete: at most
// one timeout per resolver field of op.
func (q *Queries) Append(ctx context.Context, dst []byte, op *gql.Operation) []byte {
	return op.AppendQueryResultVia(ctx, dst, q.call)
}

// answer is what a query resolver returned.
type answer struct {
	v   any
	err error
}

// call runs fn on its own goroutine and waits for it until the timeout,
// or ctx, ends. A panic in fn is logged and answered with
// INTERNAL_SERVER_ERROR.
func (q *Queries) call(ctx context.Context, key string, fn gql.ResolverFunc, p gql.ResolveParams) (any, error) {
	if ctx.Err() != nil {
		return nil, q.ended(ctx)
	}
	ctx, cancel := context.WithTimeout(ctx, q.timeout)
	defer cancel()
	if q.running.Add(1) > MaxQueryCalls {
		q.running.Add(-1)
		return nil, errQueryOverloaded
	}
	done := make(chan answer, 1) // the goroutine never blocks on a caller that gave up
	go func() {
		a := q.run(ctx, key, fn, p)
		q.running.Add(-1) // before the answer: its query may count again at once
		done <- a
	}()
	select {
	case a := <-done:
		if a.err != nil && errors.Is(a.err, context.DeadlineExceeded) && ctx.Err() != nil {
			return nil, q.ended(ctx) // it gave up at the deadline, as asked
		}
		return a.v, a.err
	case <-ctx.Done():
		return nil, q.ended(ctx)
	}
}

// run calls fn, recovering (and logging) a panic as INTERNAL_SERVER_ERROR.
func (q *Queries) run(ctx context.Context, key string, fn gql.ResolverFunc, p gql.ResolveParams) (a answer) {
	defer func() {
		if r := recover(); r != nil {
			q.log.Error("resolve: query resolver panicked", "field", key, "panic", r, "stack", string(debug.Stack()))
			a = answer{err: errQueryInternal}
		}
	}()
	v, err := fn(ctx, p)
	return answer{v, err}
}

// ended is the error of a call whose context ended: RESOLVER_TIMEOUT at
// the deadline, else ctx's error (the query was cancelled).
func (q *Queries) ended(ctx context.Context) error {
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return errQueryTimeout
	}
	return ctx.Err()
}

// Running returns how many query resolver calls have not returned yet.
func (q *Queries) Running() int { return int(q.running.Load()) }
