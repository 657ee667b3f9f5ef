// Package outbox is a connection's output on a raw descriptor: frames
// appended by the dispatcher and the event loops, flushed straight to the
// non-blocking socket, the rest finished by an EPOLLOUT writer, buffers
// from size-classed pools, a per-connection cap and a global count of the
// bytes held.
package outbox

import (
	"sync"
	"time"

	"github.com/gobwas/ws"
	"golang.org/x/sys/unix"

	"github.com/fraised/fraised/codec"
)

// Outbox is a connection's outbound path. Every byte sent to a client goes
// through it, from the connection's event loop, the dispatcher, the writer
// or the housekeeper, so frames are never interleaved.
//
// Writes go straight to the non-blocking socket: the dispatcher appends a
// batch of frames and then flushes each connection once (one write per
// connection per batch). When the kernel's send buffer is full the rest
// waits in pending and the writer poller finishes it on EPOLLOUT. A
// connection whose pending bytes exceed the cap is a slow consumer and is
// cut off; nobody else waits for it.
//
// A WebSocket ends with a close frame: once it is queued nothing else is;
// once it is fully written the write side is shut down (FIN after the
// close frame) and the connection lingers, reading and discarding, until
// the peer's close frame, EOF or the linger deadline (enforced by the
// owner). Closing the socket while the peer's input is unread would make
// the kernel answer with a reset that destroys the close frame in flight.
//
// The socket is closed by gnet only after OnClose has called Close,
// marking the outbox closed under mu, so a write never reaches a reused
// descriptor. gnet does so since v2.6 (v2.5 closed first): go.mod says the
// minimum and server.TestGnetCallsOnCloseBeforeClosingTheDescriptor pins
// the behaviour.
//
// Every method is safe for concurrent use unless its comment says which
// goroutine owns it. The zero value is unusable: call Init first.
type Outbox struct {
	mu      sync.Mutex
	fd      int
	w       *Writer
	framer  Framer  // frames once upgraded; nil while pending holds raw bytes (HTTP)
	pending []byte  // bytes not yet written; nil when idle
	pooled  *[]byte // pool handle of pending's buffer
	closed  bool    // no more writes: the connection is closing
	blocked bool    // the kernel buffer is full; the poller owns the flush
	watched bool    // registered with the writer poller
	dirty   bool    // in the dispatcher's flush list; dispatcher-owned
	ended   bool    // nothing more may be queued: a close frame was, or the connection closed
	shut    bool    // the close frame is fully written and the write side is shut down
	// peerClosed records that the peer's close frame arrived: the
	// connection is closed as soon as the close frame is written.
	peerClosed bool
	// headRemain is how many bytes at the start of pending finish a frame
	// that was partly written; a cut-off must still send them.
	headRemain int
	// held is how many bytes of buffer this outbox counts in the writer's
	// global total (the capacity of pending's buffer while output waits).
	held int
	// progressAt is, while blocked, when the socket last took a byte (unix
	// nanoseconds); the housekeeper cuts a socket that takes nothing for
	// the write timeout. Zero when not blocked.
	progressAt int64
	shutAt     int64 // when the write side was shut down (unix nanoseconds)
	// owner is the connection this outbox belongs to: the outbox hangs
	// it up when the peer is gone, the housekeeper cuts it when it stalls.
	owner Owner
	// nc is the connection-owned writer of an outbox on a net.Conn
	// (InitConn, conn.go); nil on a descriptor.
	nc *connWriter
	// onDrain runs once when no output is pending any more (NotifyDrained).
	onDrain func()
}

// Owner is the connection an Outbox writes for.
type Owner interface {
	// Hangup closes the connection. It is called with the outbox's lock
	// held, from any goroutine, so it must only queue the close (gnet's
	// Conn.Close does) and never call back into the outbox.
	Hangup()
	// CutSlow cuts the connection as a slow consumer, why being logged:
	// the housekeeper and the budget sweep call it, without the outbox's
	// lock, from their own goroutines.
	CutSlow(why string)
}

// Init prepares o to write to the socket fd for owner, with w finishing
// blocked writes and counting held bytes. Called once, before o is shared.
func (o *Outbox) Init(fd int, w *Writer, owner Owner) {
	o.fd, o.w, o.owner = fd, w, owner
}

// Owner returns the connection o writes for.
func (o *Outbox) Owner() Owner { return o.owner }

// appendLocked reserves room for n more bytes and returns the pending
// buffer to append to. The caller holds o.mu and stores the result back.
func (o *Outbox) appendLocked(n int) []byte {
	if o.pending == nil {
		o.pooled = getBuf(n)
		o.pending = *o.pooled
	} else if cap(o.pending)-len(o.pending) < n {
		// Move to a buffer of the next size class rather than letting
		// append reallocate outside the pools.
		next := getBuf(2*cap(o.pending) + n)
		*next = append(*next, o.pending...)
		*o.pooled = o.pending
		putBuf(o.pooled)
		o.pooled, o.pending = next, *next
	}
	return o.pending
}

// Send queues b and writes it now unless output is already waiting on
// the poller. Safe for concurrent use. It reports false when output has
// ended (a close frame was queued or the connection closed).
func (o *Outbox) Send(b []byte) bool {
	_, ok := o.Queue(b)
	return ok
}

// Queue is Send that also returns how many bytes are still pending after
// the write, for the caller's cap check. Safe for concurrent use.
func (o *Outbox) Queue(b []byte) (pending int, ok bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.ended {
		return 0, false
	}
	o.pending = append(o.appendLocked(len(b)), b...)
	o.flushLocked()
	return len(o.pending), true
}

// Flush writes pending bytes. Safe for concurrent use.
func (o *Outbox) Flush() {
	o.mu.Lock()
	o.flushLocked()
	o.mu.Unlock()
}

// flushLocked writes as much pending output as the socket takes, then
// brings the global count of held bytes up to date. The caller holds o.mu.
func (o *Outbox) flushLocked() {
	if !o.closed && !o.blocked && len(o.pending) > 0 {
		if o.nc != nil {
			o.kickLocked() // the connection's writer goroutine writes
		} else {
			o.writeLocked()
		}
	}
	o.accountLocked()
}

// writeLocked writes pending until done or until the socket would block.
// The caller holds o.mu.
func (o *Outbox) writeLocked() {
	n, err := writeAll(o.fd, o.pending)
	if n == len(o.pending) {
		o.dropLocked()
		o.progressAt = 0
		if o.ended {
			o.shutLocked()
		}
		o.drainedLocked()
		return
	}
	if o.framer != nil {
		o.headRemain = o.remainAfter(n)
	}
	o.pending = o.pending[:copy(o.pending, o.pending[n:])]
	if err != nil && err != unix.EAGAIN {
		// The peer is gone. Drop what cannot be sent; hang up so a
		// half-open connection does not wait for its keep-alive.
		o.dropLocked()
		o.progressAt = 0
		if o.owner != nil {
			o.owner.Hangup()
		}
		o.drainedLocked()
		return
	}
	if n > 0 || o.progressAt == 0 {
		o.progressAt = time.Now().UnixNano()
	}
	o.blocked = true
	o.w.watch(o)
}

// shutLocked shuts down the write side after the last output (a close
// frame, or the last HTTP response): the peer gets it and a FIN, and may
// still send its own close frame.
// The caller holds o.mu.
func (o *Outbox) shutLocked() {
	if o.shut {
		return
	}
	if o.nc != nil {
		o.kickLocked() // the writer shuts the write side once it is idle
		return
	}
	o.shut = true
	o.shutAt = time.Now().UnixNano()
	_ = unix.Shutdown(o.fd, unix.SHUT_WR)
	if o.peerClosed && o.owner != nil {
		o.owner.Hangup()
	}
}

// accountLocked publishes the change of this outbox's held bytes to the
// writer's global total: one atomic add when a connection starts or stops
// holding output, none while it keeps up. The caller holds o.mu.
func (o *Outbox) accountLocked() {
	held := 0
	if len(o.pending) > 0 {
		held = cap(o.pending)
	}
	if o.nc != nil {
		held += o.nc.writingCap
	}
	if held != o.held {
		o.w.held.Add(int64(held - o.held))
		o.held = held
	}
}

// remainAfter returns how many bytes after the first n of pending finish
// the frame that n ends in. The caller holds o.mu.
func (o *Outbox) remainAfter(n int) int {
	if n < o.headRemain {
		return o.headRemain - n
	}
	return o.framer.Remainder(o.pending[o.headRemain:], n-o.headRemain)
}

// writeAll writes b until done or until the socket would block.
func writeAll(fd int, b []byte) (int, error) {
	written := 0
	for written < len(b) {
		n, err := unix.Write(fd, b[written:])
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return written, err
		}
		written += n
	}
	return written, nil
}

// dropLocked discards pending output. The caller holds o.mu.
func (o *Outbox) dropLocked() {
	if o.pooled != nil {
		*o.pooled = o.pending // keep the buffer if append grew it
		putBuf(o.pooled)
		o.pooled = nil
	}
	o.pending = nil
	o.headRemain = 0
}

// Close marks the outbox closed, unregisters it from the poller and frees
// its buffer. Called from OnClose, before gnet closes the socket.
func (o *Outbox) Close() {
	o.mu.Lock()
	o.closed, o.ended = true, true
	if o.watched {
		o.w.unwatch(o)
	}
	if o.nc != nil {
		o.nc.signal() // the writer goroutine sees closed and returns
	}
	o.dropLocked()
	o.blocked = false
	o.accountLocked()
	o.drainedLocked()
	o.mu.Unlock()
}

// NotifyDrained arranges for f to run once as soon as no output is
// pending: now when none is, else when the socket has taken the last
// byte (or the connection closed, or its output was dropped). It
// replaces an f not run yet. f runs with the outbox's lock held, on the
// goroutine that drained it, so it must not block or call into the
// outbox. The dispatcher paces a replay with it. Safe for concurrent use.
func (o *Outbox) NotifyDrained(f func()) {
	o.mu.Lock()
	o.onDrain = f
	if len(o.pending) == 0 && (o.nc == nil || o.nc.writingCap == 0) {
		o.drainedLocked()
	}
	o.mu.Unlock()
}

// drainedLocked runs and clears the NotifyDrained callback. The caller
// holds o.mu.
func (o *Outbox) drainedLocked() {
	if f := o.onDrain; f != nil {
		o.onDrain = nil
		f()
	}
}

// EndWithClose queues a close frame as the last output and
// writes what the socket takes. With dropQueued, frames not yet started
// are discarded first (the rest of a partly written frame is kept, so the
// close frame starts on a frame boundary) and the write-stall clock starts
// again for the close frame. It reports false when output had already
// ended. Safe for concurrent use.
func (o *Outbox) EndWithClose(code ws.StatusCode, reason string, dropQueued bool) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.ended {
		return false
	}
	o.ended = true
	if dropQueued {
		o.dropQueuedLocked()
	}
	o.pending = o.framerLocked().AppendClose(o.appendLocked(MaxCloseFrame), code, reason)
	o.flushLocked()
	return true
}

// End makes the output queued so far the last (for a connection without
// a close frame of its own: HTTP): nothing more is accepted, and once it
// is written the write side is shut down, as after a close frame, so the
// peer reads all of it and then EOF. It reports false when output had
// already ended. Safe for concurrent use.
func (o *Outbox) End() bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.ended {
		return false
	}
	o.ended = true
	if len(o.pending) == 0 {
		o.shutLocked()
		return true
	}
	o.flushLocked()
	return true
}

// Cut implements Sink: EndWithClose dropping the frames not yet started.
func (o *Outbox) Cut(code ws.StatusCode, reason string) bool {
	return o.EndWithClose(code, reason, true)
}

// framerLocked returns the framer, WebSocket when none is set yet (a
// close frame ends only upgraded output today). The caller holds o.mu.
func (o *Outbox) framerLocked() Framer {
	if o.framer == nil {
		return WebSocket{}
	}
	return o.framer
}

// dropQueuedLocked discards the frames not yet started, keeping the rest
// of a partly written one, and moves what is left into a buffer of its
// size so a cut connection stops holding its large one. The write-stall
// clock starts again. The caller holds o.mu.
func (o *Outbox) dropQueuedLocked() {
	head := o.pending[:min(o.headRemain, len(o.pending))]
	if len(head) > 0 && cap(o.pending) > len(head)+MaxCloseFrame {
		if small := getBuf(len(head) + MaxCloseFrame); cap(*small) < cap(o.pending) {
			*small = append(*small, head...)
			head = *small
			if o.pooled != nil {
				*o.pooled = o.pending
				putBuf(o.pooled)
			}
			o.pooled = small
		} else {
			putBuf(small) // no smaller class: keep the buffer
		}
	}
	o.pending = head
	o.headRemain = len(head)
	if len(head) == 0 {
		o.dropLocked()
	}
	o.blocked = false // nothing queued is waiting any more: try now
	o.progressAt = 0
}

// PeerClose records the peer's close frame. It reports true when our own
// close frame is already written, so the connection can be closed now.
// Safe for concurrent use.
func (o *Outbox) PeerClose() bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.peerClosed = true
	return o.shut
}

// IsFramed reports whether the outbox carries frames (the connection
// upgraded). Safe for concurrent use.
func (o *Outbox) IsFramed() bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.framer != nil
}

// SetFramer makes f frame everything queued from now on (the connection
// upgraded; nothing raw may be pending). Safe for concurrent use.
func (o *Outbox) SetFramer(f Framer) {
	o.mu.Lock()
	o.framer = f
	o.mu.Unlock()
}

// State is what the housekeeper reads of an outbox in one lock.
type State struct {
	Pending    int   // bytes not yet written
	Held       int   // bytes of buffer counted in the writer's total
	ProgressAt int64 // while blocked, when the socket last took a byte (unix nanoseconds)
	ShutAt     int64 // when the write side was shut down (unix nanoseconds)
	Blocked    bool  // the kernel buffer is full; the writer owns the flush
	Ended      bool  // nothing more may be queued
	Shut       bool  // the close frame is written and the write side shut down
	Closed     bool  // the connection closed
}

// State returns a snapshot of the outbox. Safe for concurrent use.
func (o *Outbox) State() State {
	o.mu.Lock()
	defer o.mu.Unlock()
	return State{
		Pending: len(o.pending), Held: o.held, ProgressAt: o.progressAt, ShutAt: o.shutAt,
		Blocked: o.blocked, Ended: o.ended, Shut: o.shut, Closed: o.closed,
	}
}

// HasPending reports whether output waits for the socket. Safe for
// concurrent use.
func (o *Outbox) HasPending() bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	return len(o.pending) > 0
}

// Closed reports whether Close was called. Safe for concurrent use.
func (o *Outbox) Closed() bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.closed
}

// Deliver implements Sink: it appends the next frame of payload for
// subscription id and writes once flushAt bytes are pending. Called by the
// dispatcher; it allocates nothing once the pools are warm.
func (o *Outbox) Deliver(id, payload []byte, flushAt int) (n, pending int, ok bool) {
	o.mu.Lock()
	if o.ended {
		o.mu.Unlock()
		return 0, 0, false
	}
	if _, ws := o.framer.(WebSocket); ws || o.framer == nil {
		// The fast path: graphql-transport-ws, framed without an
		// interface call per frame.
		n = codec.NextLen(id, payload)
		o.pending = codec.AppendNext(o.appendLocked(n), id, payload)
	} else {
		n = o.framer.NextLen(id, payload)
		o.pending = o.framer.AppendNext(o.appendLocked(n), id, payload)
	}
	if len(o.pending) >= flushAt {
		o.flushLocked()
	}
	pending = len(o.pending)
	o.mu.Unlock()
	return n, pending, true
}

// Append queues b behind the pending bytes without writing (the caller
// flushes at the end of its batch). It reports false when output has
// ended. Safe for concurrent use.
func (o *Outbox) Append(b []byte) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.ended {
		return false
	}
	o.pending = append(o.appendLocked(len(b)), b...)
	return true
}

// MarkDirty marks o as in the dispatcher's flush list; it reports false
// when it already was. Dispatcher-owned, not under the lock.
func (o *Outbox) MarkDirty() bool {
	if o.dirty {
		return false
	}
	o.dirty = true
	return true
}

// ClearDirty marks o as out of the dispatcher's flush list, before the
// dispatcher flushes it. Dispatcher-owned, not under the lock.
func (o *Outbox) ClearDirty() { o.dirty = false }

// DiscardPending drops the pending bytes, keeping the buffer, without
// writing them: benchmarks of the fan-out without its syscalls use it.
func (o *Outbox) DiscardPending() {
	o.mu.Lock()
	o.pending = o.pending[:0]
	o.mu.Unlock()
}
