// Package wsread is the inbound half of a server-side WebSocket (RFC 6455)
// carrying a text protocol (graphql-transport-ws): it parses a client's
// frames out of a byte buffer, applies the protocol's rules (masking, the
// message size cap, fragments, control frames, UTF-8, close codes) and
// hands whole messages, pings and the peer's close frame to its Conn.
// After the server's close frame, Linger reads and discards what the peer
// still sends, watching for its close frame, within a byte budget.
//
// It knows no transport and does no I/O: the gnet adapter feeds it the
// event loop's inbound buffer, the net/http Handler the bytes its
// bufio.Reader holds. Both call it from the one goroutine that reads the
// connection; a Reader and a Linger are not safe for concurrent use.
package wsread

import (
	"unicode/utf8"

	"github.com/gobwas/ws"

	"github.com/fraised/fraised/codec"
	"github.com/fraised/fraised/proto"
)

// Close reasons the reader sends (with the codes RFC 6455 §7.4.1 gives).
const (
	ReasonBadUTF8      = "text message is not valid UTF-8"
	ReasonBadUTF8Close = "close reason is not valid UTF-8"
	ReasonTooBig       = "message too big"
	ReasonUnmasked     = "client frames must be masked"
	ReasonBinary       = "binary messages are not supported: graphql-transport-ws messages are text"
	ReasonNested       = "new message inside a fragmented message"
	ReasonOrphan       = "continuation frame without a message"
	ReasonBadClose     = "invalid close frame"
)

// PeerCloser records the peer's close frame (an outbox's PeerClose): it
// reports true when the server's own close frame is already written, so
// the connection may end now.
type PeerCloser interface {
	PeerClose() bool
}

// Conn is the connection a Reader reads for. Its methods are called on
// the reading goroutine; slices passed are valid until the call returns.
type Conn interface {
	PeerCloser
	// Message handles a whole text message (reassembled when it was
	// fragmented), checked to be valid UTF-8.
	Message(b []byte)
	// Ping answers a ping frame's payload (at most 125 bytes) with a pong.
	Ping(payload []byte)
	// Close queues the server's close frame with code and reason; input
	// is then lingered (Linger). Later calls are no-ops.
	Close(code ws.StatusCode, reason string)
	// Closing reports whether the server's close frame is queued (by the
	// reader or any other goroutine): the reader then stops handling
	// frames.
	Closing() bool
}

// Reader turns a client's frames into messages. The zero value is not
// ready: call Init.
type Reader struct {
	max      int    // the largest message, in payload bytes
	frag     []byte // a fragmented message being reassembled
	fragging bool
	want     int // header and payload of the incomplete frame Frames stopped at (0: unknown)
}

// Init prepares r for messages of at most maxMessage bytes (a frame or a
// reassembled message larger than that is closed with 1009).
func (r *Reader) Init(maxMessage int) { r.max = maxMessage }

// Frames handles the complete frames at the start of buf in order,
// unmasking their payloads in place, and stops at an incomplete frame or
// once c is closing. It returns the bytes consumed; the caller keeps the
// rest for the next call (or lingers it, when c is closing).
func (r *Reader) Frames(buf []byte, c Conn) int {
	off := 0
	r.want = 0
	for off < len(buf) && !c.Closing() {
		h, n, err := codec.ParseHeader(buf[off:])
		switch {
		case err != nil:
			c.Close(proto.CloseProtocolError, err.Error())
			return off
		case n == 0:
			return off // a partial header waits for the rest
		case h.Length > int64(r.max):
			c.Close(proto.CloseMessageTooBig, ReasonTooBig)
			return off
		case !h.Masked:
			c.Close(proto.CloseProtocolError, ReasonUnmasked)
			return off
		}
		end := off + n + int(h.Length)
		if end > len(buf) {
			r.want = n + int(h.Length)
			return off // a partial payload waits for the rest
		}
		payload := buf[off+n : end]
		codec.Unmask(payload, h.Mask, 0)
		off = end
		r.frame(h, payload, c)
	}
	return off
}

// Want is the size (header and payload) of the incomplete frame the last
// Frames call stopped at, when its header had arrived; else 0. A reader
// of a stream waits for that many bytes before calling Frames again.
func (r *Reader) Want() int { return r.want }

// frame handles one whole unmasked frame.
func (r *Reader) frame(h ws.Header, payload []byte, c Conn) {
	switch h.OpCode {
	case ws.OpText:
		if r.fragging {
			c.Close(proto.CloseProtocolError, ReasonNested)
			return
		}
		if h.Fin {
			r.text(payload, c)
			return
		}
		r.fragging = true
		r.frag = append(r.frag[:0], payload...)
	case ws.OpContinuation:
		if !r.fragging {
			c.Close(proto.CloseProtocolError, ReasonOrphan)
			return
		}
		if len(r.frag)+len(payload) > r.max {
			c.Close(proto.CloseMessageTooBig, ReasonTooBig)
			return
		}
		r.frag = append(r.frag, payload...)
		if h.Fin {
			r.fragging = false
			r.text(r.frag, c)
			r.frag = nil
		}
	case ws.OpBinary:
		c.Close(proto.CloseUnsupportedData, ReasonBinary)
	case ws.OpPing:
		c.Ping(payload)
	case ws.OpPong:
	case ws.OpClose:
		peerClose(payload, c)
	}
}

// text hands a whole text message to c. RFC 6455 §8.1 asks for the whole
// message to be UTF-8, so it is checked before anything reads it: no id
// or error text the server echoes can then be invalid UTF-8.
func (r *Reader) text(b []byte, c Conn) {
	if !utf8.Valid(b) {
		c.Close(proto.CloseInvalidPayload, ReasonBadUTF8)
		return
	}
	c.Message(b)
}

// peerClose answers the peer's close frame: its code echoed, or 1002 for
// an invalid code, or 1007 for a reason that is not UTF-8. The peer's
// close is recorded first in every case: it sends nothing after it, so
// the connection ends once the answer is written.
func peerClose(payload []byte, c Conn) {
	c.PeerClose()
	code := proto.CloseNormal
	if len(payload) >= 2 {
		code = ws.StatusCode(uint16(payload[0])<<8 | uint16(payload[1]))
	}
	switch {
	case len(payload) > 2 && !utf8.Valid(payload[2:]):
		c.Close(proto.CloseInvalidPayload, ReasonBadUTF8Close)
	case len(payload) == 1 || (len(payload) >= 2 && !validCloseCode(code)):
		c.Close(proto.CloseProtocolError, ReasonBadClose)
	default:
		c.Close(code, "")
	}
}

// validCloseCode reports whether a peer may send code in a close frame
// (RFC 6455 §7.4: the defined codes it may send, and 3000-4999).
func validCloseCode(code ws.StatusCode) bool {
	switch {
	case code >= 3000 && code <= 4999:
		return true
	case code >= 1000 && code <= 1014:
		return code != 1004 && code != 1005 && code != 1006
	}
	return false
}
