package resolve

import (
	"log/slog"
	"runtime/debug"
	"sync"
	"sync/atomic"

	"github.com/fraised/fraised/gql"
)

// Backend runs resolver calls. The dispatcher calls Start and Flush from
// its goroutine, and they never block; the answer comes back through the
// call's Completions (Call.Finish), from any goroutine.
type Backend interface {
	// Start begins c (which is queued: it may already have expired).
	Start(c *Call)
	// Flush ends a dispatch batch: calls started since the last Flush may
	// go out together (one frame on a socket).
	Flush()
	// Abandon tells the backend that c expired, so it can forget it; c may
	// still be running (a resolver that ignores its context).
	Abandon(c *Call, wasRunning bool)
}

// DefaultWorkers is --resolver-workers' default: resolvers mostly wait on
// I/O (a database, an HTTP API), so the pool is larger than the core
// count; 32 concurrent waits cover a few hundred calls per second at
// 100 ms each, and idle workers cost only their stacks (a few KiB each).
const DefaultWorkers = 32

// maxSpareWorkers bounds the workers started to replace workers stuck in
// a resolver that ignores its deadline: capacity stays at the configured
// size while up to this many calls are stuck; past it, stuck calls use up
// the pool (each further call expires), rather than goroutines growing
// without limit behind a resolver that never returns.
const maxSpareWorkers = 256

// Pool runs Go resolvers (compiled in or from plugins) on a fixed number
// of worker goroutines. Start queues without blocking: the queue holds as
// many calls as the dispatcher may have pending.
type Pool struct {
	queue      chan *Call // made with the first call: a server without Go resolvers holds none
	maxPending int
	workers    int
	log        *slog.Logger

	startOnce sync.Once
	spare     atomic.Int64 // replacement workers running beyond workers
	closed    atomic.Bool
	wg        sync.WaitGroup

	calls atomic.Uint64 // calls run, for stats
}

var _ Backend = (*Pool)(nil)

// NewPool returns a pool of workers goroutines (DefaultWorkers when <= 0)
// for up to maxPending queued calls; workers start with the first call.
func NewPool(workers, maxPending int, log *slog.Logger) *Pool {
	if workers <= 0 {
		workers = DefaultWorkers
	}
	if log == nil {
		log = slog.Default()
	}
	return &Pool{maxPending: maxPending, workers: workers, log: log}
}

// Start queues c for a worker. It never blocks (the queue's capacity is
// the cap on pending calls). Called by the dispatcher.
func (p *Pool) Start(c *Call) {
	p.startOnce.Do(func() {
		p.queue = make(chan *Call, p.maxPending)
		for range p.workers {
			p.wg.Add(1)
			go p.worker()
		}
	})
	select {
	case p.queue <- c:
	default:
		panic("BUG: resolve: more calls started than the pool queue holds (the pending cap was not enforced)")
	}
}

// Flush does nothing: workers take calls as they are queued.
func (p *Pool) Flush() {}

// Abandon starts a replacement worker when c's worker is stuck in it,
// up to maxSpareWorkers; the stuck worker exits when its call returns.
func (p *Pool) Abandon(c *Call, wasRunning bool) {
	if !wasRunning || p.closed.Load() {
		return
	}
	if p.spare.Add(1) > maxSpareWorkers {
		p.spare.Add(-1)
		p.log.Warn("resolve: resolver calls are stuck past their deadline and every spare worker is taken; "+
			"the resolver ignores its context (fix it to return when ctx is done)", "field", c.Key, "spare_workers", maxSpareWorkers)
		return
	}
	p.wg.Add(1)
	go p.worker()
}

// Close makes the workers exit once the queued calls are done; it does
// not wait for them (a resolver stuck past its deadline would hold it).
// Call it after the dispatcher stopped.
func (p *Pool) Close() {
	if p.closed.Swap(true) {
		return
	}
	p.startOnce.Do(func() {}) // no call came: nothing to stop
	if p.queue != nil {
		close(p.queue)
	}
}

// Calls returns how many calls the pool ran.
func (p *Pool) Calls() uint64 { return p.calls.Load() }

// worker runs calls until the queue closes, or until its call outlived its
// deadline and a spare took its place.
func (p *Pool) worker() {
	defer p.wg.Done()
	for c := range p.queue {
		if !c.start() {
			continue // expired while it waited
		}
		p.run(c)
		p.calls.Add(1)
		if !c.Finish() && p.retire() {
			return
		}
	}
}

// retire reports whether this worker, whose call expired while it ran,
// should exit because a spare replaced it.
func (p *Pool) retire() bool {
	for {
		n := p.spare.Load()
		if n <= 0 {
			return false
		}
		if p.spare.CompareAndSwap(n, n-1) {
			return true
		}
	}
}

// payloadCap guesses a result's size from its event's, so the payload
// is allocated once: a result is usually about the event's size, plus
// the {"data":{"field":...}} envelope.
func payloadCap(event int) int { return event + event/2 + 64 }

// run calls the resolver and projects its answer into c.Payload. The
// resolver's panic is recovered (and logged) by gql; this recover guards
// the projection itself.
func (p *Pool) run(c *Call) {
	defer func() {
		if r := recover(); r != nil {
			p.log.Error("resolve: projecting a resolver result panicked", "field", c.Key, "panic", r, "stack", string(debug.Stack()))
			c.Payload = c.Op.AppendResolved(c.Payload[:0], nil, gql.ResolverError(gql.CodeInternal, "internal error"))
		}
	}()
	c.Payload = c.Op.AppendResultContext(&c.ctx, make([]byte, 0, payloadCap(len(c.Event))), c.Event)
}
