package dispatch

import (
	"context"
	"sync/atomic"
	"time"

	"github.com/fraised/fraised/gql"
	"github.com/fraised/fraised/registry"
	"github.com/fraised/fraised/resolve"
)

// This file keeps resolvers off the dispatcher. A group whose field has a
// resolver gets a groupQueue: its events wait there in order, and one call
// at a time runs on the field's backend (resolve.Router). The dispatcher
// moves on; each turn it takes the answered calls from its completion
// queue, delivers each result to the group's members as any delivery, and
// starts the group's next event. A slow call delays only its own group;
// other groups and topics go on. Calls past their deadline expire here (the
// dispatcher owns the in-flight list), giving RESOLVER_TIMEOUT.
//
// Everything is bounded: events waiting per group (resolve.MaxGroupPending)
// and calls and event bytes held in total (resolve.MaxPending,
// MaxPendingBytes). An event past a cap is not resolved: its next carries
// RESOLVER_OVERLOADED, in its place in the group's order.

type regGroup = registry.Group[group, member]

// groupQueue is a resolver group's events waiting for their call.
type groupQueue struct {
	op      *gql.Operation
	backend resolve.Backend
	busy    bool           // a call of the group is in flight
	waiting []pendingEvent // FIFO from head
	head    int
	events  int // real events in waiting (capped by MaxGroupPending)
}

// pendingEvent is an event waiting for its group's call, or (event nil) a
// run of overloaded events, whose nexts carry an error in their place.
type pendingEvent struct {
	event      []byte
	ext        []byte // the event's history position, appended to its result (history.go)
	overloaded int
}

// resolving is the dispatcher's resolver state; all of it is owned by the
// dispatcher goroutine but pendingN, read by Barrier.
type resolving struct {
	router   *resolve.Router
	owned    bool // the dispatcher made router and closes it when Run returns
	done     *resolve.Completions
	inflight resolve.Inflight
	pending  int // events held: in flight or waiting
	bytes    int // their event bytes
	pendingN atomic.Int64
	touched  []resolve.Backend
	timer    *time.Timer
	notify   func()
}

var (
	errTimeout    = gql.ResolverError(gql.CodeResolverTimeout, "the resolver did not answer in time (--resolver-timeout)")
	errOverloaded = gql.ResolverError(gql.CodeResolverOverloaded, "too many events are waiting for this resolver; this event was not resolved")
)

// newResolving returns the resolver state of a dispatcher woken by notify.
func newResolving(r *resolve.Router, notify func()) *resolving {
	owned := r == nil
	if owned {
		r = resolve.NewRouter(resolve.Options{})
	}
	return &resolving{router: r, owned: owned, notify: notify}
}

// sink returns the completion queue, made with the first call (it holds
// resolve.MaxPending pointers: 512 KiB a server without resolvers does
// not need).
func (r *resolving) sink() *resolve.Completions {
	if r.done == nil {
		r.done = resolve.NewCompletions(resolve.MaxPending, r.notify)
	}
	return r.done
}

// stop closes the router the dispatcher made. Called when Run returns.
func (r *resolving) stop() {
	if r.owned {
		r.router.Close(context.Background())
	}
}

// newGroupData returns the shared data of a new group of op: with a
// groupQueue when its field has a resolver.
func (d *Dispatcher) newGroupData(op *gql.Operation) group {
	g := group{op: op}
	if key := op.ResolverKey(); key != "" {
		g.rq = &groupQueue{op: op, backend: d.res.router.Backend(key)}
	}
	return g
}

// resolveLater queues payload for g's resolver (its group has one) and
// returns how many subscriptions it will reach; ext (nil without history)
// ends the result, as for any delivery.
func (d *Dispatcher) resolveLater(g *regGroup, payload, ext []byte) int {
	q := g.Data.rq
	switch {
	case !q.busy && q.events == 0 && len(q.waiting) == q.head:
		if d.res.admit(len(payload)) {
			d.startCall(g, q, pendingEvent{event: clone(payload), ext: clone(ext)})
		} else {
			d.deliverGroupCounted(g, withExt(g.Data.op.AppendResolved(d.scratch[:0], nil, errOverloaded), ext))
		}
	case q.events < resolve.MaxGroupPending && d.res.admit(len(payload)):
		q.waiting = append(q.waiting, pendingEvent{event: clone(payload), ext: clone(ext)})
		q.events++
	default:
		if n := len(q.waiting); n > q.head && q.waiting[n-1].event == nil {
			q.waiting[n-1].overloaded++
		} else {
			q.waiting = append(q.waiting, pendingEvent{overloaded: 1})
		}
	}
	return len(g.Subs())
}

// admit counts one more event of n bytes as pending, if the caps allow.
func (r *resolving) admit(n int) bool {
	if r.pending >= resolve.MaxPending || r.bytes+n > resolve.MaxPendingBytes {
		return false
	}
	r.pending++
	r.bytes += n
	r.pendingN.Store(int64(r.pending))
	return true
}

// release forgets one pending event of n bytes.
func (r *resolving) release(n int) {
	r.pending--
	r.bytes -= n
	r.pendingN.Store(int64(r.pending))
}

// startCall hands pe's event (owned, already admitted) to q's backend.
func (d *Dispatcher) startCall(g *regGroup, q *groupQueue, pe pendingEvent) {
	q.busy = true
	d.res.start(q.backend, q.op, pe.event, pe.ext, g)
}

// start hands a call of op's resolver for event (owned, already
// admitted) to b, due by --resolver-timeout, and lists it in flight; tag
// is the dispatcher's handle (a group or a replay), ext the end of its
// payload. Its answer comes through the completions (resolveTurn), on
// the dispatcher goroutine, so the caller may still record c.
func (r *resolving) start(b resolve.Backend, op *gql.Operation, event, ext []byte, tag any) *resolve.Call {
	c := resolve.NewCall(op, event, time.Now().Add(r.router.Timeout()), r.sink())
	c.Tag, c.Ext = tag, ext
	r.inflight.PushBack(c)
	b.Start(c)
	r.touch(b)
	return c
}

// touch notes that b got a call in this batch (flushResolvers).
func (r *resolving) touch(b resolve.Backend) {
	for _, have := range r.touched {
		if have == b {
			return
		}
	}
	r.touched = append(r.touched, b)
}

// resolveTurn delivers the answered calls and expires the overdue ones.
// Called by Run each turn.
func (d *Dispatcher) resolveTurn() {
	r := d.res
	if r.done == nil {
		return
	}
	for c := r.done.Pop(); c != nil; c = r.done.Pop() {
		r.inflight.Remove(c)
		if rp, ok := c.Tag.(*replay); ok {
			d.replayAnswered(rp, c, c.Payload) // replayresolve.go
			continue
		}
		d.resolved(c, c.Payload)
	}
	if r.inflight.Len() == 0 {
		return
	}
	now := time.Now()
	for c := r.inflight.Front(); c != nil && !now.Before(c.Deadline); {
		next := c.Next()
		if expired, running := c.Expire(); expired {
			r.inflight.Remove(c)
			if rp, ok := c.Tag.(*replay); ok {
				d.replayExpired(rp, c, running)
				c = next
				continue
			}
			g := c.Tag.(*regGroup)
			g.Data.rq.backend.Abandon(c, running)
			d.resolved(c, g.Data.op.AppendResolved(d.scratch[:0], nil, errTimeout))
		}
		c = next
	}
}

// resolved delivers payload, the result of c, to its group and starts the
// group's next event.
func (d *Dispatcher) resolved(c *resolve.Call, payload []byte) {
	g := c.Tag.(*regGroup)
	d.res.release(len(c.Event))
	d.wakeStarved() // a replay may wait for room (replayresolve.go)
	d.deliverGroupCounted(g, withExt(payload, c.Ext))
	q := g.Data.rq
	q.busy = false
	d.advance(g, q)
}

// advance delivers g's leading overloaded events and starts its next
// waiting one. A group left by all its members drops what waits.
func (d *Dispatcher) advance(g *regGroup, q *groupQueue) {
	gone := len(g.Subs()) == 0
	for q.head < len(q.waiting) {
		pe := q.waiting[q.head]
		q.waiting[q.head] = pendingEvent{}
		q.head++
		switch {
		case pe.event == nil:
			// No history position: a client that resumes gets these
			// events again, which is what an unresolved event needs.
			for range pe.overloaded {
				if !gone {
					d.deliverGroupCounted(g, g.Data.op.AppendResolved(d.scratch[:0], nil, errOverloaded))
				}
			}
		case gone:
			q.events--
			d.res.release(len(pe.event))
		default:
			q.events--
			d.startCall(g, q, pe)
			d.compactQueue(q)
			return
		}
	}
	d.compactQueue(q)
}

// compactQueue reclaims the consumed head of q's FIFO.
func (d *Dispatcher) compactQueue(q *groupQueue) {
	if q.head == len(q.waiting) {
		q.waiting, q.head = q.waiting[:0], 0
		if cap(q.waiting) > 2*resolve.MaxGroupPending {
			q.waiting = nil
		}
		return
	}
	if q.head >= 64 && q.head*2 >= len(q.waiting) {
		n := copy(q.waiting, q.waiting[q.head:])
		clear(q.waiting[n:])
		q.waiting, q.head = q.waiting[:n], 0
	}
}

// deliverGroup appends payload as a next to every member of g and
// returns how many took it; the caller counts them (Stats.Delivered).
func (d *Dispatcher) deliverGroup(g *regGroup, payload []byte) int {
	count := 0
	for _, s := range g.Subs() {
		if d.deliver(s.Data.out, s.Data.id, payload) {
			count++
		}
	}
	return count
}

// deliverGroupCounted is deliverGroup for one resolved or refused event,
// counted at once.
func (d *Dispatcher) deliverGroupCounted(g *regGroup, payload []byte) {
	d.delivered.Add(uint64(d.deliverGroup(g, payload)))
}

// flushResolvers ends the batch for every backend that got calls in it
// (a socket backend writes them in one frame).
func (d *Dispatcher) flushResolvers() {
	for i, b := range d.res.touched {
		b.Flush()
		d.res.touched[i] = nil
	}
	d.res.touched = d.res.touched[:0]
}

// resolveReady reports whether answered calls wait for the dispatcher.
func (d *Dispatcher) resolveReady() bool { return d.res.done != nil && d.res.done.Len() > 0 }

// resolvePending reports whether calls are in flight or events wait.
func (d *Dispatcher) resolvePending() bool { return d.res.pending > 0 || d.res.inflight.Len() > 0 }

// waitWake sleeps until woken, or with calls in flight until the first
// deadline.
func (d *Dispatcher) waitWake() {
	c := d.res.inflight.Front()
	if c == nil {
		<-d.wake
		return
	}
	wait := time.Until(c.Deadline)
	if wait <= 0 {
		return
	}
	r := d.res
	if r.timer == nil {
		r.timer = time.NewTimer(wait)
	} else {
		r.timer.Reset(wait)
	}
	select {
	case <-d.wake:
		r.timer.Stop()
	case <-r.timer.C:
	}
}

// clone returns a copy of b; nil when b is empty (an event's ext: nil
// without history, withExt).
func clone(b []byte) []byte { return append([]byte(nil), b...) }

// withExt ends payload with ext when there is one (appendExt).
func withExt(payload, ext []byte) []byte {
	if ext == nil {
		return payload
	}
	return appendExt(payload, ext)
}
