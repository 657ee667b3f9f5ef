// Package dispatch is the dispatcher: the one goroutine that owns the
// subscription registry, pops batches of events from the ring, projects
// each event once per group and appends every member's frame to its
// connection's output (internal/outbox), then flushes each connection once
// per batch. It also orders publishers' replies behind their publishes and
// wakes publishers waiting for ring space, in turn.
package dispatch

import (
	"log/slog"
	"runtime"
	"sync"
	"sync/atomic"

	"github.com/fraised/fraised/gql"
	"github.com/fraised/fraised/internal/outbox"
	"github.com/fraised/fraised/registry"
	"github.com/fraised/fraised/resolve"
	"github.com/fraised/fraised/ring"
)

// group is the data a registry group shares: the operation every member
// compiled to. Members are interchangeable because subscribe joins a group
// only when its operation has the member's identity (SameGroup); the
// GroupKey only finds candidates, since keys can collide.
type group struct {
	op *gql.Operation
	rq *groupQueue // the events waiting for the resolver; nil without one (resolve.go)
}

// member is a subscriber's entry in a group: the connection's output and
// the subscription's id. The dispatcher holds the descriptor outbox
// concretely (no interface call per frame); outbox.Sink is the seam for
// other transports.
type member struct {
	out *outbox.Outbox
	id  []byte        // JSON string literal
	sub *Subscription // to end it (a loss, fill.go); not used per delivery
}

type subRegistry = registry.Registry[group, member]

// control is a change to the registry, applied by the dispatcher in the
// order it was queued.
type control struct {
	add bool
	sub *Subscription
}

// Dispatcher owns the registry and fans events out. It runs on its own
// goroutine, never on an event loop; resolvers never run here (they run on
// their backends, resolve.go).
//
// Publishers push events into the ring; connections queue registry
// changes on the control queue. The dispatcher pops a batch of events,
// applies queued changes, dispatches the batch (appending each
// subscriber's frame to its outbox), then flushes every outbox it touched
// once: one write per connection per batch.
//
// Run is the dispatcher's goroutine; every method documents whether other
// goroutines may call it. The registry, the flush lists and the scratch
// buffers belong to Run alone; the control queue and the publishers'
// FIFO have their own locks, taken by the event loops and publisher
// goroutines for a few instructions.
type Dispatcher struct {
	ring        *ring.Ring[*event]
	reg         *subRegistry
	w           *outbox.Writer
	log         *slog.Logger
	maxOutbound int

	ctlMu      sync.Mutex
	ctl        []control
	ctlAdds    int // subscribes in ctl, capped at maxQueuedAdds
	ctlN       atomic.Int32
	maxCtlAdds int // maxQueuedAdds; a test may lower it

	pausedMu sync.Mutex
	paused   []*Publisher // FIFO of publishers waiting for ring space
	pausedN  atomic.Int32

	maxBytes     int64        // byte budget of the events in the ring
	bytesIn      atomic.Int64 // bytes of the events pushed and not yet dispatched
	dirtyReplies []Replies    // publishers' replies to flush with the batch

	sleeping atomic.Bool
	wake     chan struct{}
	stopped  chan struct{}
	stopping atomic.Bool

	// maxTotal is --max-outbound-total; past it after a flush, the
	// dispatcher cuts the connections holding the most (overBudget) before
	// it appends anything more, so the total never runs ahead of the
	// budget by more than one flush. One atomic load per flush.
	maxTotal   int64
	overBudget func()

	interest Interest // told of topics gaining or losing local subscribers; nil: nobody asks
	historyState

	batch        []*event
	batchBytes   int // bytes queued since the last flush
	ctlWork      []control
	dirty        []*outbox.Outbox
	slow         []*outbox.Outbox
	scratch      []byte
	reply        []byte
	wokenScratch []*Publisher
	res          *resolving // resolver calls (resolve.go)

	// Drain barrier: events pushed into the ring (one atomic add per
	// publish) and events dispatched and flushed (one per batch).
	pushed  atomic.Uint64
	flushed atomic.Uint64

	// Stats, written by the dispatcher only.
	delivered atomic.Uint64
	published atomic.Uint64
	subs      atomic.Int64
	groups    atomic.Int64
	topics    atomic.Int64
}

// dispatchBatch is the most events popped at once: enough to amortise the
// flush across a burst, small enough to keep the first event's latency low.
const dispatchBatch = 1024

// flushAt is the pending size at which the dispatcher writes a connection
// mid-batch: large enough that a write carries many frames (the write
// syscall is most of the cost of a delivery), small enough that a burst
// never counts against the slow-consumer cap before the socket had a
// chance to take it.
const flushAt = 256 << 10

// batchBudget bounds the bytes a batch may queue across all connections
// before they are flushed mid-batch, so a burst to many thousands of
// subscribers never holds more than this in outbound buffers at once.
const batchBudget = 16 << 20

// publishQuantum is the turn, in events, the dispatcher grants a waiting
// publisher when it wakes it: four publishers' turns fill a batch
// (dispatchBatch), so the ring refills at full speed, while a light
// publisher queued behind floods waits at most a few batches for its turn.
const publishQuantum = 256

// Config is what a Dispatcher is built with.
type Config struct {
	RingSize    int            // events the ring holds (a power of two)
	RingBytes   int64          // byte budget of the events in the ring
	MaxOutbound int            // pending bytes past which a connection is a slow consumer
	Writer      *outbox.Writer // finishes blocked writes; counts the bytes held
	Log         *slog.Logger
	// MaxOutboundTotal is --max-outbound-total: past it after a flush,
	// OverBudget is called (it cuts the connections holding the most)
	// before anything more is appended. Zero: no budget.
	MaxOutboundTotal int64
	OverBudget       func()
	// Interest, when set, is told on the dispatcher goroutine of every
	// topic that gets its first subscriber or loses its last (a cluster
	// broker subscribes to exactly those at its ordering authority).
	Interest Interest
	// Resolvers routes resolver calls to their backends; nil: a Router
	// with the defaults (a pool of Go workers).
	Resolvers *resolve.Router
	// History says which topics keep a history (@history); nil: none
	// does, and the dispatcher keeps none.
	History HistorySource
	// HistoryMaxBytes caps the history of all topics (--history-max-bytes;
	// zero: history.DefaultMaxBytes).
	HistoryMaxBytes int64
	// Filler, when set with History and Interest (a cluster), fills this
	// node's history of a topic from the ordering authority before a
	// resume it cannot serve is answered (fill.go).
	Filler HistoryFiller
}

// New returns a dispatcher; Run serves it.
func New(cfg Config) *Dispatcher {
	d := &Dispatcher{
		maxBytes:    cfg.RingBytes,
		ring:        ring.New[*event](cfg.RingSize),
		reg:         registry.New[group, member](),
		w:           cfg.Writer,
		log:         cfg.Log,
		maxOutbound: cfg.MaxOutbound,
		maxTotal:    cfg.MaxOutboundTotal,
		overBudget:  cfg.OverBudget,
		interest:    cfg.Interest,
		maxCtlAdds:  maxQueuedAdds,
		wake:        make(chan struct{}, 1),
		stopped:     make(chan struct{}),
		batch:       make([]*event, dispatchBatch),
		scratch:     make([]byte, 0, 4096),
	}
	d.res = newResolving(cfg.Resolvers, d.Notify)
	d.initHistory(cfg)
	return d
}

// push offers ev to the ring; false means the ring is full (in slots or in
// bytes) and the caller must hold the event back (backpressure). An event
// over the whole byte budget still goes when the ring holds no bytes, so
// every valid event can be published. The caller calls notify after its
// last push of a read, so a pipelined burst reaches the dispatcher as one
// batch (one write per subscriber for the whole burst). Safe for
// concurrent use.
func (d *Dispatcher) push(ev *event) bool {
	n := ev.size()
	if after := d.bytesIn.Add(n); after > d.maxBytes && after != n {
		d.bytesIn.Add(-n)
		return false
	}
	if d.ring.TryPush(ev) {
		d.pushed.Add(1)
		return true
	}
	d.bytesIn.Add(-n)
	return false
}

// maxQueuedAdds bounds the subscribes waiting for the dispatcher to
// register them. The dispatcher drains the whole queue before every batch,
// so the queue only grows while it is stalled (a slow resolver, a huge
// burst); 65536 absorbs a reconnect storm of thousands of clients with a
// few operations each, while the memory held by waiting subscriptions
// (their compiled operation, about 1 KiB each) stays below ~64 MiB.
// Removals are not counted: each subscription queues at most one, so they
// are bounded by the live subscriptions and must never be refused.
const maxQueuedAdds = 1 << 16

// QueueAdd queues the registration of s; false means the queue is full
// and s was not queued (the caller refuses the subscribe: server busy).
// Safe for concurrent use.
func (d *Dispatcher) QueueAdd(s *Subscription) bool {
	d.ctlMu.Lock()
	if d.ctlAdds >= d.maxCtlAdds {
		d.ctlMu.Unlock()
		return false
	}
	d.ctlAdds++
	d.ctl = append(d.ctl, control{add: true, sub: s})
	d.ctlN.Store(int32(len(d.ctl)))
	d.ctlMu.Unlock()
	d.Notify()
	return true
}

// QueueRemove queues the removal of s from the registry; it is never
// refused. Safe for concurrent use.
func (d *Dispatcher) QueueRemove(s *Subscription) {
	d.ctlMu.Lock()
	d.ctl = append(d.ctl, control{sub: s})
	d.ctlN.Store(int32(len(d.ctl)))
	d.ctlMu.Unlock()
	d.Notify()
}

// pause queues a publisher waiting for ring space at the tail of the FIFO;
// the dispatcher wakes waiters in order after each batch. Safe for
// concurrent use.
func (d *Dispatcher) pause(p *Publisher) {
	d.pausedMu.Lock()
	d.paused = append(d.paused, p)
	d.pausedN.Store(int32(len(d.paused)))
	d.pausedMu.Unlock()
	d.Notify()
}

// Notify wakes the dispatcher if it sleeps: a publisher calls it after
// its last push of a read. Safe for concurrent use.
func (d *Dispatcher) Notify() {
	if d.sleeping.Load() {
		select {
		case d.wake <- struct{}{}:
		default:
		}
	}
}

// HandOff notifies the dispatcher and yields, so that with one P (a
// server pinned to one core) the dispatcher runs now, on this P, instead
// of waiting until the runtime notices this event loop blocked in
// epoll_wait (which can take up to sysmon's 10 ms period). Called on an
// event loop after a read pushed events.
func (d *Dispatcher) HandOff() {
	d.Notify()
	runtime.Gosched()
}

// Run is the dispatcher's loop, on its own goroutine; it returns after
// Stop once the ring is empty.
func (d *Dispatcher) Run() {
	defer close(d.stopped)
	defer d.res.stop()
	if d.hist != nil {
		go d.sweepTicker()
	}
	for {
		n := d.ring.PopBatch(d.batch)
		if d.hist != nil {
			d.historyTurn()
		}
		d.applyControl()
		d.resolveTurn()
		if d.hist != nil {
			d.pumpReplays()
		}
		size := batchSize(d.batch[:n])
		for _, ev := range d.batch[:n] {
			d.dispatch(ev)
			if d.batchBytes > batchBudget {
				d.flushDirty()
			}
		}
		clear(d.batch[:n])
		d.flushResolvers()
		d.flushDirty()
		if n > 0 {
			d.flushed.Add(uint64(n))
		}
		d.bytesIn.Add(-size)
		d.resumePaused()
		if n == 0 && d.idle() {
			return
		}
	}
}

// idle sleeps until there is work; it reports true when the dispatcher
// should exit.
func (d *Dispatcher) idle() bool {
	d.sleeping.Store(true)
	defer d.sleeping.Store(false)
	if d.ring.Len() > 0 {
		// A producer claimed a slot but has not filled it yet; let it
		// run (with one P it could not otherwise).
		runtime.Gosched()
		return false
	}
	if d.ctlN.Load() > 0 || d.pausedN.Load() > 0 || d.resolveReady() || d.historyWork() {
		return false
	}
	if d.stopping.Load() && !d.resolvePending() {
		return true
	}
	d.waitWake()
	return false
}

// Stop makes Run return once the ring is drained, and waits for it. Safe
// for concurrent use; call it once.
func (d *Dispatcher) Stop() {
	d.stopping.Store(true)
	select {
	case d.wake <- struct{}{}:
	default:
	}
	<-d.stopped
}

func (d *Dispatcher) applyControl() {
	if d.ctlN.Load() == 0 {
		return
	}
	d.ctlMu.Lock()
	d.ctlWork, d.ctl = d.ctl, d.ctlWork[:0]
	d.ctlAdds = 0
	d.ctlN.Store(0)
	d.ctlMu.Unlock()
	for i, c := range d.ctlWork {
		if c.add {
			d.subscribe(c.sub)
		} else if c.sub.handle != nil { // registered: remove
			d.remove(c.sub)
		}
		d.ctlWork[i] = control{}
	}
	d.countRegistry()
}

// countRegistry publishes the registry's sizes to Stats.
func (d *Dispatcher) countRegistry() {
	subs, groups, topics := d.reg.Len()
	d.subs.Store(int64(subs))
	d.groups.Store(int64(groups))
	d.topics.Store(int64(topics))
}

// Barrier returns a function reporting whether every event pushed before
// the call has been dispatched and its batch flushed, and no event waits
// for a resolver (the drain's barrier). Events are popped in push order, so once the dispatcher has
// flushed as many events as had been pushed, it has flushed all of those.
// Safe for concurrent use.
func (d *Dispatcher) Barrier() func() bool {
	target := d.pushed.Load()
	return func() bool { return d.flushed.Load() >= target && d.res.pendingN.Load() == 0 }
}

// Stats is a snapshot of the dispatcher's counters.
type Stats struct {
	Published         uint64 // events dispatched
	Delivered         uint64 // frames queued to subscribers
	Subscriptions     int64  // registered, as of the last control batch
	Groups            int64
	Topics            int64
	RingLen           int   // events in the ring
	RingCap           int   // slots of the ring
	RingBytes         int64 // bytes of the events in the ring, against Config.RingBytes
	WaitingPublishers int   // publishers waiting for ring space
}

// Stats returns the counters. Safe for concurrent use: atomic loads.
func (d *Dispatcher) Stats() Stats {
	return Stats{
		Published: d.published.Load(), Delivered: d.delivered.Load(),
		Subscriptions: d.subs.Load(), Groups: d.groups.Load(), Topics: d.topics.Load(),
		RingLen: d.ring.Len(), RingCap: d.ring.Cap(), RingBytes: d.bytesIn.Load(),
		WaitingPublishers: int(d.pausedN.Load()),
	}
}

// SetMaxQueuedAdds lowers the control queue's subscribe cap
// (maxQueuedAdds), so a test can fill it with a few clients. Safe for
// concurrent use.
func (d *Dispatcher) SetMaxQueuedAdds(n int) {
	d.ctlMu.Lock()
	d.maxCtlAdds = n
	d.ctlMu.Unlock()
}

// DiscardQueued drops the queued registry changes and the events in the
// ring, for a harness (a fuzz target) that never runs the dispatcher.
// It must not be called while Run runs.
func (d *Dispatcher) DiscardQueued() {
	d.ctlMu.Lock()
	clear(d.ctl)
	d.ctl, d.ctlAdds = d.ctl[:0], 0
	d.ctlN.Store(0)
	d.ctlMu.Unlock()
	for {
		ev, ok := d.ring.TryPop()
		if !ok {
			return
		}
		ev.release()
	}
}
