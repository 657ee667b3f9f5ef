package server

import (
	"sync"
	"time"

	"github.com/gobwas/ws"

	"github.com/fraised/fraised/codec"

	"golang.org/x/sys/unix"
)

// outbox is a connection's outbound path. Every byte sent to a client goes
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
// the peer's close frame, EOF or the linger deadline (see wsConn). Closing
// the socket while the peer's input is unread would make the kernel answer
// with a reset that destroys the close frame in flight.
//
// The socket is closed by gnet only after OnClose has marked the outbox
// closed under mu, so a write never reaches a reused descriptor. gnet does
// so since v2.6 (v2.5 closed first): go.mod says the minimum and
// TestGnetCallsOnCloseBeforeClosingTheDescriptor pins the behaviour.
type outbox struct {
	mu      sync.Mutex
	fd      int
	pending []byte  // bytes not yet written; nil when idle
	pooled  *[]byte // pool handle of pending's buffer
	closed  bool    // no more writes: the connection is closing
	blocked bool    // the kernel buffer is full; the poller owns the flush
	watched bool    // registered with the writer poller
	dirty   bool    // in the dispatcher's flush list; dispatcher-owned
	ended   bool    // nothing more may be queued: a close frame was, or the connection closed
	framed  bool    // pending holds WebSocket frames (tracks headRemain)
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
	// owner is the WebSocket connection this outbox belongs to; nil for
	// publishers. The housekeeper uses it to cut stalled sockets.
	owner *wsConn
	// hangup closes the connection; set for WebSocket connections. It is
	// safe to call with mu held (gnet's Close only queues the close).
	hangup func()
}

// appendLocked reserves room for n more bytes and returns the pending
// buffer to append to. The caller holds o.mu and stores the result back.
func (o *outbox) appendLocked(n int) []byte {
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

// send queues b and writes it now unless output is already waiting on
// the poller. Safe for concurrent use. It reports false when output has
// ended (a close frame was queued or the connection closed).
func (o *outbox) send(b []byte, w *writer) bool {
	_, ok := o.queue(b, w)
	return ok
}

// queue is send that also returns how many bytes are still pending after
// the write, for the caller's cap check. Safe for concurrent use.
func (o *outbox) queue(b []byte, w *writer) (pending int, ok bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.ended {
		return 0, false
	}
	o.pending = append(o.appendLocked(len(b)), b...)
	o.flushLocked(w)
	return len(o.pending), true
}

// flush writes pending bytes. Safe for concurrent use.
func (o *outbox) flush(w *writer) {
	o.mu.Lock()
	o.flushLocked(w)
	o.mu.Unlock()
}

// flushLocked writes as much pending output as the socket takes, then
// brings the global count of held bytes up to date. The caller holds o.mu.
func (o *outbox) flushLocked(w *writer) {
	if !o.closed && !o.blocked && len(o.pending) > 0 {
		o.writeLocked(w)
	}
	o.accountLocked(w)
}

// writeLocked writes pending until done or until the socket would block.
// The caller holds o.mu.
func (o *outbox) writeLocked(w *writer) {
	n, err := writeAll(o.fd, o.pending)
	if n == len(o.pending) {
		o.dropLocked()
		o.progressAt = 0
		if o.ended && o.framed {
			o.shutLocked()
		}
		return
	}
	if o.framed {
		o.headRemain = o.remainAfter(n)
	}
	o.pending = o.pending[:copy(o.pending, o.pending[n:])]
	if err != nil && err != unix.EAGAIN {
		// The peer is gone. Drop what cannot be sent; hang up so a
		// half-open connection does not wait for its keep-alive.
		o.dropLocked()
		o.progressAt = 0
		if o.hangup != nil {
			o.hangup()
		}
		return
	}
	if n > 0 || o.progressAt == 0 {
		o.progressAt = time.Now().UnixNano()
	}
	o.blocked = true
	w.watch(o)
}

// shutLocked shuts down the write side after the close frame: the peer
// gets our close frame and a FIN, and may still send its own close frame.
// The caller holds o.mu.
func (o *outbox) shutLocked() {
	if o.shut {
		return
	}
	o.shut = true
	o.shutAt = time.Now().UnixNano()
	_ = unix.Shutdown(o.fd, unix.SHUT_WR)
	if o.peerClosed && o.hangup != nil {
		o.hangup()
	}
}

// accountLocked publishes the change of this outbox's held bytes to the
// writer's global total: one atomic add when a connection starts or stops
// holding output, none while it keeps up. The caller holds o.mu.
func (o *outbox) accountLocked(w *writer) {
	held := 0
	if len(o.pending) > 0 {
		held = cap(o.pending)
	}
	if held != o.held {
		w.held.Add(int64(held - o.held))
		o.held = held
	}
}

// remainAfter returns how many bytes after the first n of pending finish
// the frame that n ends in. The caller holds o.mu.
func (o *outbox) remainAfter(n int) int {
	if n < o.headRemain {
		return o.headRemain - n
	}
	return codec.FrameRemainder(o.pending[o.headRemain:], n-o.headRemain)
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
func (o *outbox) dropLocked() {
	if o.pooled != nil {
		*o.pooled = o.pending // keep the buffer if append grew it
		putBuf(o.pooled)
		o.pooled = nil
	}
	o.pending = nil
	o.headRemain = 0
}

// close marks the outbox closed, unregisters it from the poller and frees
// its buffer. Called from OnClose, before gnet closes the socket.
func (o *outbox) close(w *writer) {
	o.mu.Lock()
	o.closed, o.ended = true, true
	if o.watched {
		w.unwatch(o)
	}
	o.dropLocked()
	o.blocked = false
	o.accountLocked(w)
	o.mu.Unlock()
}

// endWithClose queues a WebSocket close frame as the last output and
// writes what the socket takes. With dropQueued, frames not yet started
// are discarded first (the rest of a partly written frame is kept, so the
// close frame starts on a frame boundary) and the write-stall clock starts
// again for the close frame. It reports false when output had already
// ended. Safe for concurrent use.
func (o *outbox) endWithClose(w *writer, code ws.StatusCode, reason string, dropQueued bool) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.ended {
		return false
	}
	o.ended = true
	if dropQueued {
		o.dropQueuedLocked()
	}
	o.pending = codec.AppendClose(o.appendLocked(closeFrameMax), code, reason)
	o.flushLocked(w)
	return true
}

// closeFrameMax is the largest close frame: a 2-byte header and a control
// payload of at most 125 bytes.
const closeFrameMax = 2 + codec.MaxControlPayload

// dropQueuedLocked discards the frames not yet started, keeping the rest
// of a partly written one, and moves what is left into a buffer of its
// size so a cut connection stops holding its large one. The write-stall
// clock starts again. The caller holds o.mu.
func (o *outbox) dropQueuedLocked() {
	head := o.pending[:min(o.headRemain, len(o.pending))]
	if len(head) > 0 && cap(o.pending) > len(head)+closeFrameMax {
		if small := getBuf(len(head) + closeFrameMax); cap(*small) < cap(o.pending) {
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

// peerClose records the peer's close frame. It reports true when our own
// close frame is already written, so the connection can be closed now.
// Safe for concurrent use.
func (o *outbox) peerClose() bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.peerClosed = true
	return o.shut
}

// isFramed reports whether the outbox carries WebSocket frames (the
// connection upgraded). Safe for concurrent use.
func (o *outbox) isFramed() bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.framed
}

// outState is what the housekeeper reads of an outbox in one lock.
type outState struct {
	pending    int
	progressAt int64
	shutAt     int64
	blocked    bool
	ended      bool
	shut       bool
	closed     bool
}

// state returns a snapshot of the outbox. Safe for concurrent use.
func (o *outbox) state() outState {
	o.mu.Lock()
	defer o.mu.Unlock()
	return outState{
		pending: len(o.pending), progressAt: o.progressAt, shutAt: o.shutAt,
		blocked: o.blocked, ended: o.ended, shut: o.shut, closed: o.closed,
	}
}
