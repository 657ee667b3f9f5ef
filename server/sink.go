package server

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"unsafe"

	"github.com/fraised/fraised/dispatch"
	"github.com/fraised/fraised/source"
)

// This file is the server's one exported publish path, Publish: what a
// source (source/postgres) and the Go library API call. It goes through
// the same validation, limits, ring and dispatcher as a RESP PUBLISH; RESP
// and HTTP publishers keep their own connection-bound fast paths but share
// validatePublish with it.

// ErrDraining is returned (wrapped) by Publish once the server is shutting
// down: the event was not taken.
var ErrDraining = errors.New("server: draining (shutting down): publish to another instance or retry after it restarts")

var _ source.Sink = (*Server)(nil)

// Publish puts one event into the pipeline a RESP PUBLISH goes through:
// the topic and payload are checked as a PUBLISH's are (topic 1 to 1024
// bytes, payload a JSON object of at most --max-payload bytes), then the
// event is pushed into the ring, waiting (with the same fair turns as a
// RESP publisher) while the ring is full. It returns nil once the event is
// in the ring (the server owns it: it is dispatched, on Shutdown too),
// an error wrapping source.ErrInvalid when the event itself is refused
// (sending it again would be refused again), ctx.Err() when ctx ends
// first (the event is dropped), and an error wrapping ErrDraining once
// Shutdown has begun. In cluster mode (Options.Cluster) the event goes to
// the broker instead, once (nil: Redis took it); an unavailable broker's
// error wraps broker.ErrUnavailable (not published), one that never
// answered broker.ErrOutcomeUnknown (it may have been published).
//
// Safe for concurrent use from any goroutine (not from a gnet event loop:
// it blocks while the ring is full). topic and payload are copied; the
// caller may reuse them when Publish returns. A publish that does not
// wait allocates nothing (TestSinkPublishAllocatesNothing).
func (s *Server) Publish(ctx context.Context, topic string, payload []byte) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	t := unsafe.Slice(unsafe.StringData(topic), len(topic)) // read only: newPublishEvent copies it
	if err := validatePublish(t, payload, s.opts.MaxPayload); err != nil {
		return fmt.Errorf("%w: %w", source.ErrInvalid, err)
	}
	if s.draining.Load() {
		return ErrDraining
	}
	if s.opts.Cluster != nil {
		return s.publishCluster(ctx, t, payload)
	}
	p := s.sinkPubs.get(s.d)
	_, ok := p.PublishWait(t, payload, dispatch.ReplyNone, p.woken, ctx.Done())
	s.sinkPubs.put(p)
	if !ok {
		return ctx.Err()
	}
	s.d.Notify()
	return nil
}

// sinkPublisher is a dispatch.Publisher for Publish's callers, which are
// not connections: it answers nothing (ReplyNone) and waits for its turn
// on a channel.
type sinkPublisher struct {
	dispatch.Publisher
	woken chan struct{} // signalled (never blocking) when it may retry
}

// sinkPool lends a sinkPublisher to each Publish call, so concurrent
// callers each have their own (a dispatch.Publisher is used by one
// goroutine at a time) without a lock shared by all of them. Its zero
// value is ready. A publisher still queued in the dispatcher's FIFO when
// it goes back (its caller gave up) is woken there later; the next caller
// then simply retries its push.
type sinkPool struct{ pool sync.Pool }

func (sp *sinkPool) get(d *dispatch.Dispatcher) *sinkPublisher {
	if p, _ := sp.pool.Get().(*sinkPublisher); p != nil {
		return p
	}
	p := &sinkPublisher{woken: make(chan struct{}, 1)}
	p.Init(d, discardReplies{}, func() {
		select {
		case p.woken <- struct{}{}:
		default:
		}
	})
	return p
}

func (sp *sinkPool) put(p *sinkPublisher) { sp.pool.Put(p) }

// discardReplies is the reply output of a publisher that answers nothing:
// with ReplyNone the dispatcher never writes to it.
type discardReplies struct{}

var _ dispatch.Replies = discardReplies{}

func (discardReplies) Append([]byte) bool { return true }
func (discardReplies) Send([]byte) bool   { return true }
func (discardReplies) MarkDirty() bool    { return false }
func (discardReplies) ClearDirty()        {}
func (discardReplies) Flush()             {}
