package resolve

import (
	"context"
	"log/slog"
	"time"
)

// DefaultTimeout is --resolver-timeout's default: long enough for a
// resolver that makes a few calls to a loaded backend, short enough that
// a subscriber waiting behind a stuck one hears about it in seconds.
const DefaultTimeout = 2 * time.Second

// MaxPending caps the resolver calls the dispatcher holds at once, started
// or waiting behind their group's earlier event. Past it, an event's next
// carries RESOLVER_OVERLOADED instead of a result. 65,536 calls hold at most
// MaxPendingBytes of events; the queues sized by it (completions, the pool's
// queue) are 512 KiB of pointers each.
const MaxPending = 1 << 16

// MaxPendingBytes caps the bytes of the events those calls keep (each
// call copies its event, since the ring's buffer is reused): 64 MiB, a
// quarter of the default ring budget times sixteen, small next to the
// outbound budget, and enough for 65,536 events of 1 KiB.
const MaxPendingBytes = 64 << 20

// MaxGroupPending caps the events one group may have waiting for its
// resolver (its calls run one at a time, in order): one dispatch batch
// (1,024 events), so a burst of a batch to one subscription is never
// refused while its resolver keeps up, and a stuck resolver holds at most
// that many events of its group.
const MaxGroupPending = 1024

// Options configures a Router. A zero field means the documented default.
type Options struct {
	Workers int           // Go resolver workers (DefaultWorkers)
	Timeout time.Duration // a call's deadline (DefaultTimeout)
	Log     *slog.Logger
}

// Router maps resolver keys to backends: by default the Pool of Go
// workers; Route sends a key to another backend (a resolver process).
// Routes are set before the dispatcher runs and only read afterwards.
type Router struct {
	pool    *Pool
	routes  map[string]Backend
	closers []interface{ Close(context.Context) }
	timeout time.Duration
}

// NewRouter returns a router whose default backend is a Pool.
func NewRouter(opts Options) *Router {
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultTimeout
	}
	return &Router{pool: NewPool(opts.Workers, MaxPending, opts.Log), routes: map[string]Backend{}, timeout: opts.Timeout}
}

// Route sends the calls of key ("Subscription.userUpdated") to b. Not safe
// for concurrent use; call it before the dispatcher runs.
func (r *Router) Route(key string, b Backend) {
	r.routes[key] = b
	c, ok := b.(interface{ Close(context.Context) })
	if !ok {
		return
	}
	for _, have := range r.closers {
		if have == c {
			return
		}
	}
	r.closers = append(r.closers, c)
}

// Backend returns the backend of key: its route, else the Pool. Safe for
// concurrent use once routes are set.
func (r *Router) Backend(key string) Backend {
	if b, ok := r.routes[key]; ok {
		return b
	}
	return r.pool
}

// Timeout returns a call's deadline after it is handed to its backend.
func (r *Router) Timeout() time.Duration { return r.timeout }

// Pool returns the Go worker pool.
func (r *Router) Pool() *Pool { return r.pool }

// Close drains the routed backends (each answers the calls in flight or
// gives up when ctx ends) and stops the pool. Call it after the
// dispatcher stopped.
func (r *Router) Close(ctx context.Context) {
	for _, c := range r.closers {
		c.Close(ctx)
	}
	r.pool.Close()
}
