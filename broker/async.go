package broker

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// Limits of Async, the publish path of callers that must not block (HTTP
// publishes on a gnet event loop).
const (
	// AsyncWorkers is how many publishes may wait on the authority at
	// once: one round trip each, so 32 workers at a loopback round trip of
	// ~100 µs carry ~300,000 publishes/s, far above what one Redis takes.
	AsyncWorkers = 32
	// AsyncQueue bounds the publishes waiting for a worker; past it a
	// publish is refused at once (HTTP 503) instead of queueing without
	// bound behind a slow authority. Each holds its payload (up to
	// --max-payload), so 4096 is what a burst of HTTP publishers needs
	// without letting them pin gigabytes.
	AsyncQueue = 4096
	// AsyncTimeout bounds one publish, queue wait included: the
	// authority's answer normally takes a round trip; past this the
	// publisher is told 503 (the event may still have been published).
	AsyncTimeout = 5 * time.Second
)

// ErrBusy is returned (wrapped in ErrUnavailable) when Async's queue is
// full.
var ErrBusy = fmt.Errorf("%w: too many publishes waiting for the broker (%d queued)", ErrUnavailable, AsyncQueue)

type asyncJob struct {
	data     []byte // topic then payload, owned
	topicLen int
	at       time.Time
	done     func(Receipt, error)
}

// Async runs publishes for callers that must not block: Go queues the
// publish and returns; a worker calls Broker.Publish and then done, on the
// worker's goroutine.
type Async struct {
	b      Broker
	jobs   chan asyncJob
	wg     sync.WaitGroup
	mu     sync.RWMutex // Go holds it shared while it queues; Close exclusively
	closed bool
}

// NewAsync starts AsyncWorkers workers publishing into b.
func NewAsync(b Broker) *Async {
	a := &Async{b: b, jobs: make(chan asyncJob, AsyncQueue)}
	for range AsyncWorkers {
		a.wg.Add(1)
		go a.work()
	}
	return a
}

// Go queues a publish (topic and payload are copied); done is called
// exactly once, on a worker goroutine, with the receipt or the error. It
// must not block. Go reports false, without calling done, when the queue
// is full (ErrBusy) or Close was called. Safe for concurrent use; never
// blocks (Close holds the lock only to mark the queue closed).
func (a *Async) Go(topic, payload []byte, done func(Receipt, error)) bool {
	data := make([]byte, 0, len(topic)+len(payload))
	data = append(append(data, topic...), payload...)
	a.mu.RLock()
	defer a.mu.RUnlock()
	if a.closed {
		return false
	}
	select {
	case a.jobs <- asyncJob{data: data, topicLen: len(topic), at: time.Now(), done: done}:
		return true
	default:
		return false
	}
}

func (a *Async) work() {
	defer a.wg.Done()
	for j := range a.jobs {
		ctx, cancel := context.WithDeadline(context.Background(), j.at.Add(AsyncTimeout))
		r, err := a.b.Publish(ctx, j.data[:j.topicLen], j.data[j.topicLen:])
		cancel()
		j.done(r, err)
	}
}

// Close stops taking publishes (Go reports false from then on) and waits
// until the queued ones are done. Safe to call more than once.
func (a *Async) Close() {
	a.mu.Lock()
	if !a.closed {
		a.closed = true
		close(a.jobs)
	}
	a.mu.Unlock()
	a.wg.Wait()
}
