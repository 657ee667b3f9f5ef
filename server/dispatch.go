package server

import (
	"log/slog"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/fraised/fraised/gql"
	"github.com/fraised/fraised/internal/outbox"
	"github.com/fraised/fraised/registry"
	"github.com/fraised/fraised/resp"
	"github.com/fraised/fraised/ring"
)

// group is the data a registry group shares: the operation every member
// compiled to. Members are interchangeable because subscribe joins a group
// only when its operation has the member's identity (SameGroup); the
// GroupKey only finds candidates, since keys can collide.
type group struct {
	op *gql.Operation
}

// member is a subscriber's entry in a group.
type member struct {
	conn *wsConn
	id   []byte // JSON string literal
}

type subRegistry = registry.Registry[group, member]

// control is a change to the registry, applied by the dispatcher in the
// order it was queued.
type control struct {
	add bool
	sub *subscription
}

// dispatcher owns the registry and fans events out. It runs on its own
// goroutine, never on an event loop; resolvers run here too.
//
// Publishers push events into the ring; connections queue registry
// changes on the control queue. The dispatcher pops a batch of events,
// applies queued changes, dispatches the batch (appending each
// subscriber's frame to its outbox), then flushes every outbox it touched
// once: one write per connection per batch.
type dispatcher struct {
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
	paused   []*publisher // FIFO of publishers waiting for ring space
	pausedN  atomic.Int32

	maxBytes     int64        // byte budget of the events in the ring
	bytesIn      atomic.Int64 // bytes of the events pushed and not yet dispatched
	dirtyReplies []*replyBuf  // RESP reply buffers to kick at the end of the batch

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

	batch        []*event
	batchBytes   int // bytes queued since the last flush
	ctlWork      []control
	dirty        []*outbox.Outbox
	slow         []*wsConn
	scratch      []byte
	reply        []byte
	wokenScratch []*publisher

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

// newDispatcher returns a dispatcher with a ring of ringSize events and the
// default byte budget (the server sets maxBytes from Options.RingBytes).
func newDispatcher(ringSize, maxOutbound int, w *outbox.Writer, log *slog.Logger) *dispatcher {
	return &dispatcher{
		maxBytes:    DefaultRingBytes,
		ring:        ring.New[*event](ringSize),
		reg:         registry.New[group, member](),
		w:           w,
		log:         log,
		maxOutbound: maxOutbound,
		maxCtlAdds:  maxQueuedAdds,
		wake:        make(chan struct{}, 1),
		stopped:     make(chan struct{}),
		batch:       make([]*event, dispatchBatch),
		scratch:     make([]byte, 0, 4096),
	}
}

// push offers ev to the ring; false means the ring is full (in slots or in
// bytes) and the caller must hold the event back (backpressure). An event
// over the whole byte budget still goes when the ring holds no bytes, so
// every valid event can be published. The caller calls notify after its
// last push of a read, so a pipelined burst reaches the dispatcher as one
// batch (one write per subscriber for the whole burst). Safe for
// concurrent use.
func (d *dispatcher) push(ev *event) bool {
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

// queueAdd queues the registration of s; false means the queue is full
// and s was not queued (the caller refuses the subscribe: server busy).
// Safe for concurrent use.
func (d *dispatcher) queueAdd(s *subscription) bool {
	d.ctlMu.Lock()
	if d.ctlAdds >= d.maxCtlAdds {
		d.ctlMu.Unlock()
		return false
	}
	d.ctlAdds++
	d.ctl = append(d.ctl, control{add: true, sub: s})
	d.ctlN.Store(int32(len(d.ctl)))
	d.ctlMu.Unlock()
	d.notify()
	return true
}

// queueRemove queues the removal of s from the registry; it is never
// refused. Safe for concurrent use.
func (d *dispatcher) queueRemove(s *subscription) {
	d.ctlMu.Lock()
	d.ctl = append(d.ctl, control{sub: s})
	d.ctlN.Store(int32(len(d.ctl)))
	d.ctlMu.Unlock()
	d.notify()
}

// pause queues a publisher waiting for ring space at the tail of the FIFO;
// the dispatcher wakes waiters in order after each batch. Safe for
// concurrent use.
func (d *dispatcher) pause(p *publisher) {
	d.pausedMu.Lock()
	d.paused = append(d.paused, p)
	d.pausedN.Store(int32(len(d.paused)))
	d.pausedMu.Unlock()
	d.notify()
}

func (d *dispatcher) notify() {
	if d.sleeping.Load() {
		select {
		case d.wake <- struct{}{}:
		default:
		}
	}
}

// handOff notifies the dispatcher and yields, so that with one P (a
// server pinned to one core) the dispatcher runs now, on this P, instead
// of waiting until the runtime notices this event loop blocked in
// epoll_wait (which can take up to sysmon's 10 ms period). Called on an
// event loop after a read pushed events.
func (d *dispatcher) handOff() {
	d.notify()
	runtime.Gosched()
}

// run is the dispatcher's loop; it returns after stop once the ring is empty.
func (d *dispatcher) run() {
	defer close(d.stopped)
	for {
		n := d.ring.PopBatch(d.batch)
		d.applyControl()
		size := batchSize(d.batch[:n])
		for _, ev := range d.batch[:n] {
			d.dispatch(ev)
			if d.batchBytes > batchBudget {
				d.flushDirty()
			}
		}
		clear(d.batch[:n])
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
func (d *dispatcher) idle() bool {
	d.sleeping.Store(true)
	defer d.sleeping.Store(false)
	if d.ring.Len() > 0 {
		// A producer claimed a slot but has not filled it yet; let it
		// run (with one P it could not otherwise).
		runtime.Gosched()
		return false
	}
	if d.ctlN.Load() > 0 || d.pausedN.Load() > 0 {
		return false
	}
	if d.stopping.Load() {
		return true
	}
	<-d.wake
	return false
}

// stop makes run return once the ring is drained, and waits for it.
func (d *dispatcher) stop() {
	d.stopping.Store(true)
	select {
	case d.wake <- struct{}{}:
	default:
	}
	<-d.stopped
}

func (d *dispatcher) applyControl() {
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
		} else if c.sub.handle != nil {
			d.reg.Remove(c.sub.handle)
			c.sub.handle = nil
		}
		d.ctlWork[i] = control{}
	}
	subs, groups, topics := d.reg.Len()
	d.subs.Store(int64(subs))
	d.groups.Store(int64(groups))
	d.topics.Store(int64(topics))
}

func (d *dispatcher) subscribe(s *subscription) {
	if s.removed.Load() {
		return
	}
	op := s.op
	same := func(g group) bool { return g.op.SameGroup(op) }
	s.handle = d.reg.Add(op.Topic, op.GroupKey, same, func() group { return group{op: op} }, member{conn: s.conn, id: s.id})
	s.op = nil // the group keeps the operation it needs
}

func (d *dispatcher) dispatch(ev *event) {
	switch ev.kind {
	case evPublish:
		n := d.fanOut(ev.topic, ev.payload)
		d.published.Add(1)
		if ev.from != nil {
			d.replyCount(ev.from, ev.replyKind, n)
		}
	case evReply:
		d.queueReply(ev.from, ev.data)
	}
	ev.release()
}

// fanOut delivers payload to every matching subscriber of topic and
// returns how many subscriptions it reached.
func (d *dispatcher) fanOut(topic, payload []byte) int {
	t := d.reg.Lookup(topic)
	if t == nil {
		return 0
	}
	count := 0
	for _, g := range t.Groups() {
		op := g.Data.op
		if !op.Match(payload) {
			continue
		}
		d.scratch = op.AppendResult(d.scratch[:0], payload)
		for _, s := range g.Subs() {
			if d.deliver(s.Data.conn, s.Data.id, d.scratch) {
				count++
			}
		}
	}
	d.delivered.Add(uint64(count))
	return count
}

// deliver appends one next frame to c's outbox.
func (d *dispatcher) deliver(c *wsConn, id, payload []byte) bool {
	o := &c.out
	n, pending, ok := o.Deliver(id, payload, flushAt)
	if !ok {
		return false
	}
	d.batchBytes += n
	if pending > d.maxOutbound {
		d.slow = append(d.slow, c)
		return true
	}
	if o.MarkDirty() {
		d.dirty = append(d.dirty, o)
	}
	return true
}

func (d *dispatcher) replyCount(p *publisher, rk replyKind, n int) {
	switch rk {
	case replyRESP:
		d.reply = resp.AppendInt(d.reply[:0], int64(n))
	case replyHTTP:
		d.reply = appendHTTPDelivered(d.reply[:0], n)
	default:
		return
	}
	d.queueReply(p, d.reply)
}

// queueReply appends a reply to p's output, after every earlier reply.
// Called by the dispatcher; it never blocks (a RESP publisher's reply
// buffer is bounded by its reader, which stops reading past the cap).
func (d *dispatcher) queueReply(p *publisher, b []byte) {
	if rb := p.replies; rb != nil {
		if rb.add(b, false) && !rb.dirty {
			rb.dirty = true
			d.dirtyReplies = append(d.dirtyReplies, rb)
		}
		p.inflight.Add(-1)
		return
	}
	o := p.out
	o.Append(b)
	p.inflight.Add(-1)
	if o.MarkDirty() {
		d.dirty = append(d.dirty, o)
	}
}

func (d *dispatcher) flushDirty() {
	d.batchBytes = 0
	for i, o := range d.dirty {
		o.ClearDirty()
		o.Flush()
		d.dirty[i] = nil
	}
	d.dirty = d.dirty[:0]
	for i, c := range d.slow {
		c.CutSlow("outbound buffer cap (--max-outbound) exceeded")
		d.slow[i] = nil
	}
	d.slow = d.slow[:0]
	if d.maxTotal > 0 && d.w.Held() > d.maxTotal {
		d.overBudget()
	}
}

// barrier returns a function reporting whether every event pushed before
// the call has been dispatched and its batch flushed (the drain's
// barrier). Events are popped in push order, so once the dispatcher has
// flushed as many events as had been pushed, it has flushed all of those.
// Safe for concurrent use.
func (d *dispatcher) barrier() func() bool {
	target := d.pushed.Load()
	return func() bool { return d.flushed.Load() >= target }
}

// resumePaused kicks the RESP writers the batch gave replies to, then
// wakes waiting publishers in FIFO order, one per publishQuantum slots
// free (at least one), each with a turn of publishQuantum events; the
// rest stay at the head of the queue for the next batch.
func (d *dispatcher) resumePaused() {
	for i, rb := range d.dirtyReplies {
		rb.dirty = false
		rb.kick()
		d.dirtyReplies[i] = nil
	}
	d.dirtyReplies = d.dirtyReplies[:0]
	if d.pausedN.Load() == 0 {
		return
	}
	wake := max(1, (d.ring.Cap()-d.ring.Len())/publishQuantum)
	d.pausedMu.Lock()
	wake = min(wake, len(d.paused))
	woken := append(d.wokenScratch[:0], d.paused[:wake]...)
	n := copy(d.paused, d.paused[wake:])
	clear(d.paused[n:])
	d.paused = d.paused[:n]
	d.pausedN.Store(int32(n))
	d.pausedMu.Unlock()
	for i, p := range woken {
		p.resume(publishQuantum)
		woken[i] = nil
	}
	d.wokenScratch = woken[:0]
}

// batchSize returns the bytes the events of a batch hold against the
// ring's byte budget.
func batchSize(batch []*event) int64 {
	var n int64
	for _, ev := range batch {
		n += ev.size()
	}
	return n
}

func appendHTTPDelivered(dst []byte, n int) []byte {
	var num [20]byte
	body := strconv.AppendInt(num[:0], int64(n), 10)
	dst = append(dst, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: "...)
	dst = strconv.AppendInt(dst, int64(len(body)+len(`{"delivered":}`)), 10)
	dst = append(dst, "\r\n\r\n{\"delivered\":"...)
	dst = append(dst, body...)
	return append(dst, '}')
}
