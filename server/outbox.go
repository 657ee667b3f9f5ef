package server

import (
	"sync"

	"github.com/gobwas/ws"

	"github.com/fraised/fraised/codec"

	"golang.org/x/sys/unix"
)

// outbox is a connection's outbound path. Every byte sent to a client goes
// through it, from the connection's event loop, the dispatcher or the
// housekeeper, so frames are never interleaved.
//
// Writes go straight to the non-blocking socket: the dispatcher appends a
// batch of frames and then flushes each connection once (one write per
// connection per batch). When the kernel's send buffer is full the rest
// waits in pending and the writer poller finishes it on EPOLLOUT. A
// connection whose pending bytes exceed the cap is a slow consumer and is
// cut off; nobody else waits for it.
//
// The socket is closed by gnet only after OnClose has marked the outbox
// closed under mu, so a write never reaches a reused descriptor.
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
	// headRemain is how many bytes at the start of pending finish a frame
	// that was partly written; a cut-off must still send them.
	headRemain int
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
	o.mu.Lock()
	if o.ended {
		o.mu.Unlock()
		return false
	}
	o.pending = append(o.appendLocked(len(b)), b...)
	o.flushLocked(w)
	o.mu.Unlock()
	return true
}

// flush writes pending bytes. Safe for concurrent use.
func (o *outbox) flush(w *writer) {
	o.mu.Lock()
	o.flushLocked(w)
	o.mu.Unlock()
}

// flushLocked writes as much pending output as the socket takes.
// The caller holds o.mu.
func (o *outbox) flushLocked(w *writer) {
	if o.closed || o.blocked || len(o.pending) == 0 {
		return
	}
	n, err := writeAll(o.fd, o.pending)
	if n == len(o.pending) {
		o.dropLocked()
		return
	}
	if o.framed {
		o.headRemain = o.remainAfter(n)
	}
	o.pending = o.pending[:copy(o.pending, o.pending[n:])]
	if err != nil && err != unix.EAGAIN {
		// The peer is gone; gnet sees the error on its next read and
		// closes the connection. Drop what cannot be sent.
		o.dropLocked()
		return
	}
	o.blocked = true
	w.watch(o)
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
	o.mu.Unlock()
}

// endWithClose queues a WebSocket close frame as the last output and
// writes what the socket takes. With dropQueued, frames not yet started
// are discarded first (the rest of a partly written frame is kept, so the
// close frame starts on a frame boundary). It reports false when output
// had already ended. Safe for concurrent use.
func (o *outbox) endWithClose(w *writer, code ws.StatusCode, reason string, dropQueued bool) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.ended {
		return false
	}
	o.ended = true
	buf := o.appendLocked(2 + len(reason))
	if dropQueued {
		buf = buf[:min(o.headRemain, len(buf))]
		o.headRemain = len(buf)
		o.blocked = false // nothing queued is waiting any more: try now
	}
	o.pending = codec.AppendClose(buf, code, reason)
	o.flushLocked(w)
	return true
}
