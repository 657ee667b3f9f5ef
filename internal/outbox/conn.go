package outbox

import (
	"net"
	"time"
)

// The connection-owned writer: the Outbox backend for a net.Conn (a
// *tls.Conn a net/http server terminated, say), which has no descriptor
// fraised may write to without blocking. Appends and the dispatcher's
// flush stay what they are on a descriptor (the same pending buffer, the
// same caps and cut-offs); a flush only wakes the connection's writer
// goroutine, and only when the output goes from idle to pending. The
// goroutine takes the whole pending buffer, writes it with a deadline
// outside the lock, and goes on until nothing is pending. Frames are
// never interleaved or torn: a buffer is taken whole, starting on a frame
// boundary, so a cut-off drops only frames not started and its close
// frame follows the chunk in flight.

// connWriter is the state of an Outbox's writer goroutine.
type connWriter struct {
	conn    net.Conn
	timeout time.Duration
	wake    chan struct{} // one slot: a signal is pending or not
	// writingCap is the capacity of the buffer being written, counted in
	// the outbox's held bytes. Under the outbox's lock.
	writingCap int
}

// signal wakes the writer goroutine; it never blocks.
func (nc *connWriter) signal() {
	select {
	case nc.wake <- struct{}{}:
	default:
	}
}

// InitConn prepares o to write to conn for owner: WriteLoop, run on the
// connection's own goroutine, does the writing, each write bounded by
// writeTimeout (past it the connection is hung up: the client took no
// byte for that long). w counts the held bytes for the global budget.
// Called once, before o is shared; the outbox carries frames at once (a
// net.Conn is upgraded before it gets one).
func (o *Outbox) InitConn(conn net.Conn, w *Writer, owner Owner, writeTimeout time.Duration) {
	o.fd, o.w, o.owner = -1, w, owner
	o.framer = WebSocket{}
	o.nc = &connWriter{conn: conn, timeout: writeTimeout, wake: make(chan struct{}, 1)}
}

// kickLocked hands the pending output (or the shutdown of the write side)
// to the writer goroutine, waking it when it is idle. The caller holds
// o.mu.
func (o *Outbox) kickLocked() {
	if o.blocked {
		return // the writer is at work and looks again before it rests
	}
	o.blocked = true
	if o.progressAt == 0 {
		o.progressAt = time.Now().UnixNano()
	}
	o.nc.signal()
}

// WriteLoop writes o's output to its net.Conn until the output is
// finished: the last output written and the write side shut (after a
// close frame, or End), the outbox closed, or a write failed (the
// connection is then hung up). Run it on its own goroutine, one per
// connection, after InitConn.
func (o *Outbox) WriteLoop() {
	for range o.nc.wake {
		if !o.writeConn() {
			return
		}
	}
}

// writeConn writes until nothing is pending. It reports false when the
// writer is done with the connection.
func (o *Outbox) writeConn() bool {
	nc := o.nc
	for {
		o.mu.Lock()
		if o.closed {
			o.drainedLocked() // Close ran it already, unless set since
			o.mu.Unlock()
			return false
		}
		if len(o.pending) == 0 {
			o.blocked, o.progressAt = false, 0
			last := o.ended && !o.shut
			o.drainedLocked() // the socket took the last byte
			o.mu.Unlock()
			if last {
				o.shutConn()
				return false
			}
			return true
		}
		buf, pooled := o.pending, o.pooled
		o.pending, o.pooled = nil, nil
		nc.writingCap = cap(buf)
		o.accountLocked()
		o.mu.Unlock()

		_ = nc.conn.SetWriteDeadline(time.Now().Add(nc.timeout))
		_, err := nc.conn.Write(buf)
		if pooled != nil {
			*pooled = buf
			putBuf(pooled)
		}
		o.mu.Lock()
		nc.writingCap = 0
		o.progressAt = time.Now().UnixNano()
		o.accountLocked()
		if err != nil {
			// The peer is gone, or took nothing for the write timeout
			// (a TLS connection cannot go on after a failed write
			// anyway): drop the rest and hang up.
			o.dropLocked()
			o.accountLocked()
			o.owner.Hangup()
			o.drainedLocked()
			o.mu.Unlock()
			return false
		}
		o.mu.Unlock()
	}
}

// shutConn shuts down the write side after the last output (a TLS
// close_notify, then FIN, where the connection supports it) and hangs up
// when the peer's close frame already arrived.
func (o *Outbox) shutConn() {
	if cw, ok := o.nc.conn.(interface{ CloseWrite() error }); ok {
		_ = o.nc.conn.SetWriteDeadline(time.Now().Add(o.nc.timeout))
		_ = cw.CloseWrite()
	}
	o.mu.Lock()
	o.shut = true
	o.shutAt = time.Now().UnixNano()
	if o.peerClosed {
		o.owner.Hangup()
	}
	o.mu.Unlock()
}
