package server

import (
	"sync"

	"github.com/fraised/fraised/dispatch"
)

// maxUnsentReplies caps a RESP publisher's replies not yet written. Past
// it the connection's reader stops reading commands until the writer has
// sent them, so a publisher that never reads its replies is held back by
// TCP instead of growing the server's memory. 1 MiB is ~100k integer
// replies: far more than a pipelining client keeps unread.
const maxUnsentReplies = 1 << 20

// maxKeptReplyBuf is the largest reply buffer kept between writes; a
// burst's bigger buffer is left to the GC.
const maxKeptReplyBuf = 64 << 10

// replyBuf is a RESP publisher's outbound path: the dispatcher and the
// connection's reader append replies, the connection's writer goroutine
// takes them and writes them. Appending never blocks. Safe for concurrent
// use, except dirty (dispatcher-owned).
type replyBuf struct {
	mu      sync.Mutex
	buf     []byte // replies not yet taken by the writer
	writing int    // bytes the writer took and has not finished writing
	closed  bool   // the connection is gone: replies are dropped

	dirty   bool          // in the dispatcher's kick list; dispatcher-owned
	ready   chan struct{} // capacity 1: there are replies to write
	drained chan struct{} // capacity 1: unsent replies fell to the cap or below
}

var _ dispatch.Replies = (*replyBuf)(nil)

func newReplyBuf() *replyBuf {
	return &replyBuf{ready: make(chan struct{}, 1), drained: make(chan struct{}, 1)}
}

// add appends b (copied). It reports whether the buffer was empty, that is
// whether the writer needs a kick; with kick, add gives it at once.
func (r *replyBuf) add(b []byte, kick bool) bool {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return false
	}
	wasEmpty := len(r.buf) == 0
	r.buf = append(r.buf, b...)
	r.mu.Unlock()
	if wasEmpty && kick {
		r.kick()
	}
	return wasEmpty
}

// Append implements dispatch.Replies: add without a kick (the
// dispatcher's Flush gives it at the end of the batch).
func (r *replyBuf) Append(b []byte) bool { return r.add(b, false) }

// Send implements dispatch.Replies: add, kicking the writer.
func (r *replyBuf) Send(b []byte) bool { return r.add(b, true) }

// MarkDirty implements dispatch.Replies. Dispatcher-owned.
func (r *replyBuf) MarkDirty() bool {
	if r.dirty {
		return false
	}
	r.dirty = true
	return true
}

// ClearDirty implements dispatch.Replies. Dispatcher-owned.
func (r *replyBuf) ClearDirty() { r.dirty = false }

// Flush implements dispatch.Replies: kick the writer.
func (r *replyBuf) Flush() { r.kick() }

// kick tells the writer there are replies to write.
func (r *replyBuf) kick() {
	select {
	case r.ready <- struct{}{}:
	default:
	}
}

// take hands the writer every reply queued so far, giving spare (emptied)
// as the new buffer.
func (r *replyBuf) take(spare []byte) []byte {
	r.mu.Lock()
	out := r.buf
	r.buf = spare[:0]
	r.writing = len(out)
	r.mu.Unlock()
	return out
}

// wrote records that the writer finished writing what it took, returning
// the buffer for reuse, and tells a waiting reader when the unsent replies
// are back under the cap.
func (r *replyBuf) wrote(out []byte) []byte {
	r.mu.Lock()
	r.writing = 0
	under := len(r.buf) <= maxUnsentReplies
	r.mu.Unlock()
	if under {
		select {
		case r.drained <- struct{}{}:
		default:
		}
	}
	if cap(out) > maxKeptReplyBuf {
		return nil
	}
	return out[:0]
}

// unsent returns the bytes queued or being written.
func (r *replyBuf) unsent() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.buf) + r.writing
}

// close drops queued replies and every later one.
func (r *replyBuf) close() {
	r.mu.Lock()
	r.closed, r.buf = true, nil
	r.mu.Unlock()
}
