package resolve

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fraised/fraised/gql"
)

// Call states. A call moves from queued to running (a pool worker took it)
// and ends once, done or expired; Finish and Expire race for the end with
// one compare-and-swap, so exactly one of them delivers.
const (
	stateQueued uint32 = iota
	stateRunning
	stateDone
	stateExpired
)

// Call is one resolver call: one group's operation and one event. For a
// subscription (Op set) the answer is the whole result document, Payload;
// for a query's field over a socket (Op nil) it is Raw or Err.
//
// The dispatcher creates a call, hands it to a Backend and never touches
// Payload, Raw or Err before the call comes back through its Completions.
type Call struct {
	Op       *gql.Operation // the subscription whose resolver runs; nil for a raw call
	Key      string         // "Subscription.userUpdated"
	Event    []byte         // the event JSON, owned by the call
	Params   gql.ResolveParams
	Identity bool // the resolver reads Params.InitPayload and Claims
	Deadline time.Time
	Tag      any    // the dispatcher's handle (its group); backends ignore it
	Ext      []byte // the dispatcher's bytes for the payload's end (the event's history position); backends ignore it

	// The answer, written by the backend before Finish.
	Payload []byte
	Raw     []byte
	Err     error

	id         uint64 // the socket protocol's call id
	prev, next *Call  // Inflight's links
	state      atomic.Uint32
	ctx        callCtx // one allocation with the call
	sink       *Completions
}

// NewCall returns a call of op's resolver for event (which the call keeps:
// pass a copy), due by deadline, answered into sink.
func NewCall(op *gql.Operation, event []byte, deadline time.Time, sink *Completions) *Call {
	c := &Call{Op: op, Key: op.ResolverKey(), Event: event, Deadline: deadline, sink: sink}
	c.Params, c.Identity = op.ResolveParams(event), op.ReadsIdentity()
	c.ctx.deadline = deadline
	return c
}

// NewRawCall returns a call of the resolver of key with params, answered
// as raw JSON (Raw, or Err): a query field's resolver in a process.
func NewRawCall(key string, params gql.ResolveParams, identity bool, deadline time.Time, sink *Completions) *Call {
	c := &Call{Key: key, Params: params, Identity: identity, Deadline: deadline, sink: sink}
	c.ctx.deadline = deadline
	return c
}

// Context returns the context the resolver runs with: its deadline is the
// call's, and it is cancelled when the call expires or has returned.
func (c *Call) Context() context.Context { return &c.ctx }

// start marks a queued call running; false means it already ended
// (expired while it waited).
func (c *Call) start() bool { return c.state.CompareAndSwap(stateQueued, stateRunning) }

// Finish ends the call with the answer written into it and queues it to
// its Completions; false means the call had expired and the answer is
// dropped. Safe for concurrent use.
func (c *Call) Finish() bool {
	for {
		s := c.state.Load()
		if s >= stateDone {
			return false
		}
		if c.state.CompareAndSwap(s, stateDone) {
			c.ctx.cancel(context.Canceled)
			c.sink.push(c)
			return true
		}
	}
}

// Expire ends the call without an answer (its deadline passed): it reports
// whether it did (false: the call had finished, and its answer is in the
// Completions) and whether a worker was running it (a stuck worker). The
// call's context is cancelled. Called by the dispatcher.
func (c *Call) Expire() (expired, wasRunning bool) {
	for {
		s := c.state.Load()
		if s >= stateDone {
			return false, false
		}
		if c.state.CompareAndSwap(s, stateExpired) {
			c.ctx.cancel(context.DeadlineExceeded)
			return true, s == stateRunning
		}
	}
}

// Ended reports whether the call finished or expired.
func (c *Call) Ended() bool { return c.state.Load() >= stateDone }

// callCtx is a call's context: a deadline and a Done channel made only when
// someone asks for it, so a resolver that never looks costs no channel. It
// is one small allocation per call instead of context.WithDeadline's timer.
type callCtx struct {
	deadline time.Time
	mu       sync.Mutex
	done     chan struct{}
	err      error
}

var _ context.Context = (*callCtx)(nil)

// Deadline returns the call's deadline.
func (x *callCtx) Deadline() (time.Time, bool) { return x.deadline, true }

// Done returns a channel closed when the call expires or returns.
func (x *callCtx) Done() <-chan struct{} {
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.done == nil {
		x.done = make(chan struct{})
		if x.err != nil {
			close(x.done)
		}
	}
	return x.done
}

// Err returns context.DeadlineExceeded after expiry, context.Canceled
// after the call returned, else nil. A deadline passed but not yet seen by
// the dispatcher already counts.
func (x *callCtx) Err() error {
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.err == nil && !time.Now().Before(x.deadline) {
		return context.DeadlineExceeded
	}
	return x.err
}

// Value returns nil: a call's context carries no values.
func (x *callCtx) Value(any) any { return nil }

// cancel ends the context with err (once).
func (x *callCtx) cancel(err error) {
	x.mu.Lock()
	if x.err == nil {
		x.err = err
		if x.done != nil {
			close(x.done)
		}
	}
	x.mu.Unlock()
}

// Completions is the queue of answered calls from the backends to the
// dispatcher. Its capacity is the dispatcher's cap on pending calls, and a
// call is pushed at most once, so a push never blocks.
type Completions struct {
	ch     chan *Call
	notify func()
}

// NewCompletions returns a queue for up to capacity pending calls; notify
// (which must not block) wakes the consumer after each push.
func NewCompletions(capacity int, notify func()) *Completions {
	return &Completions{ch: make(chan *Call, capacity), notify: notify}
}

// push queues c and wakes the consumer.
func (q *Completions) push(c *Call) {
	select {
	case q.ch <- c:
	default:
		panic("BUG: resolve: more calls answered than the completion queue holds (the pending cap was not enforced)")
	}
	if q.notify != nil {
		q.notify()
	}
}

// Pop returns the next answered call without waiting, or nil. Called by
// the consumer only.
func (q *Completions) Pop() *Call {
	select {
	case c := <-q.ch:
		return c
	default:
		return nil
	}
}

// Len returns how many answered calls wait.
func (q *Completions) Len() int { return len(q.ch) }

// Wait blocks until a call is answered or ctx ends, for a caller that
// waits for one call (a query's resolver over a socket).
func (q *Completions) Wait(ctx context.Context) (*Call, error) {
	select {
	case c := <-q.ch:
		return c, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// Inflight is the dispatcher's list of started calls in start order, so
// earliest deadline first (every call gets the same timeout). Removing an
// answered call is O(1), so the list holds only calls still in flight. It
// is used by one goroutine.
type Inflight struct {
	head, tail *Call
	n          int
}

// PushBack appends c, the call started last.
func (l *Inflight) PushBack(c *Call) {
	c.prev, c.next = l.tail, nil
	if l.tail != nil {
		l.tail.next = c
	} else {
		l.head = c
	}
	l.tail = c
	l.n++
}

// Remove unlinks c, which must be in l.
func (l *Inflight) Remove(c *Call) {
	if c.prev != nil {
		c.prev.next = c.next
	} else {
		l.head = c.next
	}
	if c.next != nil {
		c.next.prev = c.prev
	} else {
		l.tail = c.prev
	}
	c.prev, c.next = nil, nil
	l.n--
}

// Next returns the call started after c in its Inflight list, or nil.
func (c *Call) Next() *Call { return c.next }

// Front returns the oldest call, or nil.
func (l *Inflight) Front() *Call { return l.head }

// Len returns the number of calls in l.
func (l *Inflight) Len() int { return l.n }
