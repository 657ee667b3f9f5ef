package server

import (
	"sync/atomic"

	"github.com/panjf2000/gnet/v2"
)

// publisher is the publishing side of a connection (a Redis-protocol
// connection, or an HTTP connection that POSTs events). Its replies go
// through the dispatcher when publishes are in flight, so every reply
// leaves in command order.
type publisher struct {
	out      *outbox
	gc       gnet.Conn
	d        *dispatcher
	w        *writer
	inflight atomic.Int64 // events pushed whose reply is not queued yet
	paused   atomic.Bool  // waiting for ring space; the dispatcher wakes it
}

// publish pushes an event whose delivery count is answered as rk. It
// reports false when the ring is full: the caller keeps the command
// unconsumed and retries when woken. Called on the connection's event loop.
func (p *publisher) publish(topic, payload []byte, rk replyKind) bool {
	return p.push(newPublishEvent(topic, payload, p, rk))
}

// reply answers a command that needs no dispatch (an error, PONG) after
// every reply still in flight. It reports false like publish. Called on
// the connection's event loop; b is copied.
func (p *publisher) reply(b []byte) bool {
	if p.inflight.Load() == 0 {
		p.out.send(b, p.w)
		return true
	}
	return p.push(newReplyEvent(b, p))
}

// push offers ev to the ring, counting it in flight; when the ring is full
// it drops ev, asks the dispatcher for a wake-up and reports false.
func (p *publisher) push(ev *event) bool {
	p.inflight.Add(1)
	if p.d.push(ev) {
		return true
	}
	p.inflight.Add(-1)
	ev.release()
	if p.paused.CompareAndSwap(false, true) {
		p.d.pause(p)
	}
	return false
}

// resume wakes the connection's event loop to retry its held-back
// commands. Called by the dispatcher after it freed ring space.
func (p *publisher) resume() {
	p.paused.Store(false)
	_ = p.gc.Wake(nil)
}
