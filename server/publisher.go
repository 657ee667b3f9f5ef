package server

import (
	"github.com/fraised/fraised/internal/outbox"
	"sync/atomic"

	"github.com/panjf2000/gnet/v2"
)

// publisher is the publishing side of a connection: a Redis-protocol
// connection (served by its own goroutine, see pubConn) or an HTTP
// connection on a gnet event loop that POSTs events. Its replies go
// through the dispatcher when publishes are in flight, so every reply
// leaves in command order.
//
// Fairness: when the ring is full, publishers wait in the dispatcher's
// FIFO (see dispatcher.pause). While anyone waits, a publisher may push
// only during its turn, a quantum of events the dispatcher grants when it
// wakes it; past the quantum it queues again at the tail. So publishers
// take the freed space in round-robin, and a light publisher is never
// starved by a few floods.
type publisher struct {
	out      *outbox.Outbox // HTTP: the connection's outbox
	replies  *replyBuf      // RESP: the connection's reply buffer
	gc       gnet.Conn      // HTTP: woken to retry a held-back request
	wakeCh   chan struct{}
	d        *dispatcher
	inflight atomic.Int64 // events pushed whose reply is not queued yet
	paused   atomic.Bool  // in the dispatcher's FIFO; the dispatcher wakes it
	turn     atomic.Int32 // events it may still push while others wait
}

// publishWindow caps the events one publisher may have in the ring (pushed,
// not yet answered). The ring's depth ahead of a light publisher's event is
// what it waits for: with the window, a few floods hold a few windows of
// it, not the whole ring (65,536 events, hundreds of milliseconds).
// Four dispatcher batches keep one pipelining publisher at full speed.
const publishWindow = dispatchBatch

// publish pushes an event whose delivery count is answered as rk. It
// reports false when there is no room (or it must wait its turn): the
// caller keeps the command unconsumed and retries when woken.
func (p *publisher) publish(topic, payload []byte, rk replyKind) bool {
	return p.push(newPublishEvent(topic, payload, p, rk))
}

// reply answers a command that needs no dispatch (an error, PONG) after
// every reply still in flight. It reports false like publish. b is copied.
func (p *publisher) reply(b []byte) bool {
	if p.inflight.Load() == 0 {
		p.send(b)
		return true
	}
	return p.push(newReplyEvent(b, p))
}

// send writes b now: no reply is in flight ahead of it.
func (p *publisher) send(b []byte) {
	if p.replies != nil {
		p.replies.add(b, true)
		return
	}
	p.out.Send(b)
}

// push offers ev to the ring; when it cannot go now, push drops ev, joins
// the dispatcher's FIFO of waiting publishers and reports false.
func (p *publisher) push(ev *event) bool {
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
func (p *publisher) tryPush(ev *event) bool {
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

// resume grants the publisher a turn of quantum events and wakes it to
// retry its held-back command: the goroutine of a RESP connection, or the
// event loop of an HTTP one. Called by the dispatcher.
func (p *publisher) resume(quantum int32) {
	p.turn.Store(quantum)
	p.paused.Store(false)
	if p.wakeCh != nil {
		select {
		case p.wakeCh <- struct{}{}:
		default:
		}
		return
	}
	_ = p.gc.Wake(nil)
}
