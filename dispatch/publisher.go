package dispatch

import (
	"sync/atomic"

	"github.com/fraised/fraised/internal/outbox"
)

// Replies is a publisher's reply output, written in command order: the
// descriptor outbox of an HTTP connection on gnet, or the reply buffer of
// a RESP connection served by its own goroutines.
//
// Append, MarkDirty, ClearDirty and Flush are called by the dispatcher
// goroutine (MarkDirty and ClearDirty by it alone: the flag is its own);
// Send by the publisher's goroutine or event loop. None may block.
type Replies interface {
	// Append queues b (copied) without writing; false: output has ended.
	Append(b []byte) bool
	// Send queues b (copied) and writes it, or hands it to the writer, now.
	Send(b []byte) bool
	// MarkDirty marks the output as in the dispatcher's flush list; false
	// when it already was.
	MarkDirty() bool
	// ClearDirty takes the output out of the flush list, before Flush.
	ClearDirty()
	// Flush writes what Append queued, or wakes the writer that does.
	Flush()
}

var _ Replies = (*outbox.Outbox)(nil)

// Publisher is the publishing side of a connection: a Redis-protocol
// connection (served by its own goroutine) or an HTTP connection on a gnet
// event loop that POSTs events. Its replies go through the dispatcher when
// publishes are in flight, so every reply leaves in command order.
//
// Fairness: when the ring is full, publishers wait in the dispatcher's
// FIFO (see Dispatcher.pause). While anyone waits, a publisher may push
// only during its turn, a quantum of events the dispatcher grants when it
// wakes it; past the quantum it queues again at the tail. So publishers
// take the freed space in round-robin, and a light publisher is never
// starved by a few floods.
//
// Its methods are called by the connection's own goroutine or event loop
// (one at a time), except where a comment says otherwise.
type Publisher struct {
	replies  Replies
	wake     func() // asks the connection to retry its held-back command
	d        *Dispatcher
	inflight atomic.Int64           // events pushed whose reply is not queued yet
	paused   atomic.Bool            // in the dispatcher's FIFO; the dispatcher wakes it
	turn     atomic.Int32           // events it may still push while others wait
	replied  atomic.Pointer[func()] // run once no reply is in flight (WhenReplied)
}

// WhenReplied runs f once the reply of every event p pushed is queued:
// at once when none is in flight, else on the dispatcher goroutine right
// after the last one is queued. f must not block. For a connection that
// ends after its last reply (HTTP Connection: close); p must push no more
// events afterwards. Safe for concurrent use; call it once.
func (p *Publisher) WhenReplied(f func()) {
	p.replied.Store(&f)
	if p.inflight.Load() == 0 && p.replied.CompareAndSwap(&f, nil) {
		f()
	}
}

// Init prepares p to publish into d, replying through replies; wake is
// called by the dispatcher when p may retry a held-back command (it must
// not block: signal a channel, or gnet's Conn.Wake). Called once, before
// p is used.
func (p *Publisher) Init(d *Dispatcher, replies Replies, wake func()) {
	p.d, p.replies, p.wake = d, replies, wake
}

// Dispatcher returns the dispatcher p publishes into.
func (p *Publisher) Dispatcher() *Dispatcher { return p.d }

// Inflight returns how many of p's events wait for their reply. Safe for
// concurrent use.
func (p *Publisher) Inflight() int64 { return p.inflight.Load() }

// publishWindow caps the events one publisher may have in the ring (pushed,
// not yet answered). The ring's depth ahead of a light publisher's event is
// what it waits for: with the window, a few floods hold a few windows of
// it, not the whole ring (65,536 events, hundreds of milliseconds).
// Four dispatcher batches keep one pipelining publisher at full speed.
const publishWindow = dispatchBatch

// Publish pushes an event (topic and payload are copied) whose delivery
// count is answered as rk. It reports false when there is no room (or it
// must wait its turn): the caller keeps the command unconsumed and retries
// when woken.
func (p *Publisher) Publish(topic, payload []byte, rk ReplyKind) bool {
	return p.push(newPublishEvent(topic, payload, p, rk))
}

// Reply answers a command that needs no dispatch (an error, PONG) after
// every reply still in flight. It reports false like Publish. b is copied.
func (p *Publisher) Reply(b []byte) bool {
	if p.inflight.Load() == 0 {
		p.Send(b)
		return true
	}
	return p.push(newReplyEvent(b, p))
}

// Send writes b now: no reply is in flight ahead of it.
func (p *Publisher) Send(b []byte) {
	p.replies.Send(b)
}

// PublishWait is Publish that waits for p's turn while the ring is full,
// woken by woken (the channel the wake function signals), and gives up
// when cancel is closed. It reports whether it had to wait, and false in
// ok when it gave up (the event is dropped).
func (p *Publisher) PublishWait(topic, payload []byte, rk ReplyKind, woken, cancel <-chan struct{}) (waited, ok bool) {
	return p.pushWait(newPublishEvent(topic, payload, p, rk), woken, cancel)
}

// ReplyWait is Reply that waits like PublishWait.
func (p *Publisher) ReplyWait(b []byte, woken, cancel <-chan struct{}) (waited, ok bool) {
	if p.inflight.Load() == 0 {
		p.Send(b)
		return false, true
	}
	return p.pushWait(newReplyEvent(b, p), woken, cancel)
}

// pushWait pushes ev, waiting for p's turn while the ring is full. It
// releases ev and reports false when cancel closes first.
func (p *Publisher) pushWait(ev *event, woken, cancel <-chan struct{}) (waited, ok bool) {
	for !p.tryPush(ev) {
		waited = true
		select {
		case <-woken:
		case <-cancel:
			ev.release()
			return waited, false
		}
	}
	return waited, true
}

// push offers ev to the ring; when it cannot go now, push drops ev, joins
// the dispatcher's FIFO of waiting publishers and reports false.
func (p *Publisher) push(ev *event) bool {
	if p.tryPush(ev) {
		return true
	}
	ev.release()
	return false
}

// tryPush offers ev to the ring, counting it in flight. It reports false,
// keeping ev, when the ring is full, the publisher's window is, or other
// publishers wait and this one has no turn; the publisher is then queued
// for a wake-up (resume).
func (p *Publisher) tryPush(ev *event) bool {
	if p.inflight.Load() < publishWindow && (p.turn.Load() > 0 || p.d.pausedN.Load() == 0) {
		p.inflight.Add(1)
		if p.d.push(ev) {
			if p.turn.Load() > 0 {
				p.turn.Add(-1)
			}
			return true
		}
		p.inflight.Add(-1)
	}
	p.turn.Store(0)
	if p.paused.CompareAndSwap(false, true) {
		p.d.pause(p)
	}
	return false
}

// settle counts one of p's events as answered (or, for ReplyNone, as
// dispatched) and runs the WhenReplied function once none is left in
// flight. Called by the dispatcher.
func (p *Publisher) settle() {
	if p.inflight.Add(-1) == 0 {
		if f := p.replied.Swap(nil); f != nil {
			(*f)()
		}
	}
}

// resume grants the publisher a turn of quantum events and wakes it to
// retry its held-back command. Called by the dispatcher.
func (p *Publisher) resume(quantum int32) {
	p.turn.Store(quantum)
	p.paused.Store(false)
	p.wake()
}
