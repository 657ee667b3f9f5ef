package wsread

import (
	"github.com/gobwas/ws"

	"github.com/fraised/fraised/codec"
)

// MaxLingerInput bounds the bytes a connection reads and discards after
// its close frame: enough for a client that floods messages (the 4429
// case) to notice the close frame on loopback or a LAN, while a peer that
// streams forever costs at most this much reading.
const MaxLingerInput = 1 << 20

// Linger is a connection's input after its close frame (or an HTTP
// connection's last response): read and discarded, so that input the
// peer sent before it saw the close never meets a closed socket (the
// kernel would answer with a reset, and the peer would lose the close
// frame and see 1006). It watches for the peer's close frame, skipping
// frame payloads without buffering them. The zero value lingers over
// frames.
type Linger struct {
	read int   // bytes discarded so far
	skip int64 // payload bytes of the current frame still to skip
	junk bool  // input is not (or stopped parsing as) frames: discard everything
}

// DiscardAll makes l discard its input without looking for frames (HTTP
// input after the last response).
func (l *Linger) DiscardAll() { l.junk = true }

// Feed discards the input at the start of buf and returns how many bytes
// it consumed (all but a partial frame header) and whether the connection
// should close now: the peer's close frame arrived and p reports the
// server's close frame written, or more than MaxLingerInput bytes were
// discarded.
func (l *Linger) Feed(buf []byte, p PeerCloser) (n int, closeNow bool) {
	off := 0
	for off < len(buf) && !closeNow {
		if l.skip > 0 {
			k := int(min(l.skip, int64(len(buf)-off)))
			off += k
			l.skip -= int64(k)
			continue
		}
		if l.junk {
			off = len(buf)
			break
		}
		h, hn, err := codec.ParseHeader(buf[off:])
		if err != nil {
			l.junk = true // not frames any more
			continue
		}
		if hn == 0 {
			break // a partial header: wait for the rest
		}
		off += hn
		l.skip = max(h.Length, 0)
		if h.OpCode == ws.OpClose && p.PeerClose() {
			closeNow = true
		}
	}
	l.read += off
	return off, closeNow || l.read > MaxLingerInput
}
