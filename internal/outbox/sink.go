package outbox

import (
	"github.com/gobwas/ws"

	"github.com/fraised/fraised/codec"
)

// Sink is one connection's output as the dispatcher sees it: it appends a
// subscriber's frame of a group's encoded payload, flushes once per batch,
// and cuts the connection's output with a close reason when it falls
// behind. The descriptor Outbox is the implementation for connections on
// the gnet engine; a goroutine-backed writer for a net.Conn or *tls.Conn
// is the next one.
//
// Deliver and Flush are called by the dispatcher goroutine only; Cut is
// safe from any goroutine. The payload passed to Deliver is the group's,
// shared by every member and valid until Deliver returns: a Sink copies
// what it keeps.
//
// The dispatcher holds *Outbox concretely on its hot path (no interface
// call per frame); the interface is the seam for other transports.
type Sink interface {
	// Deliver appends one next frame of payload for subscription id and
	// writes when the pending bytes reach flushAt. It returns the bytes
	// appended, the bytes pending afterwards (for the caller's slow
	// consumer cap) and false when output has ended.
	Deliver(id, payload []byte, flushAt int) (n, pending int, ok bool)
	// Flush writes what the socket takes of the pending bytes.
	Flush()
	// Cut drops the frames not yet started, finishes the one partly
	// written and queues a close frame with code and reason as the last
	// output. It reports false when output had already ended.
	Cut(code ws.StatusCode, reason string) bool
}

var _ Sink = (*Outbox)(nil)

// Framer is a protocol's framing of what an Outbox sends: the next frame
// of a group's payload for one subscriber, the close frame that ends the
// output, and where frames end (a cut-off must finish a partly written
// frame before the close frame, or the peer reads garbage). The payload a
// Framer frames is projected once per group by the dispatcher and shared
// by every member; only the subscriber's id differs per frame.
//
// A Framer holds no state: its methods are safe for concurrent use.
type Framer interface {
	// NextLen returns the bytes AppendNext appends for id and payload.
	NextLen(id, payload []byte) int
	// AppendNext appends the frame delivering payload to subscription id.
	AppendNext(dst, id, payload []byte) []byte
	// AppendClose appends the frame ending the output, at most
	// MaxCloseFrame bytes.
	AppendClose(dst []byte, code ws.StatusCode, reason string) []byte
	// Remainder returns how many bytes after the first n of b finish the
	// frame that byte n-1 belongs to; b starts on a frame boundary.
	Remainder(b []byte, n int) int
}

// MaxCloseFrame is the largest close frame a Framer appends: a WebSocket
// close frame's 2-byte header and its control payload of at most 125
// bytes.
const MaxCloseFrame = 2 + codec.MaxControlPayload

// WebSocket frames graphql-transport-ws over RFC 6455: next messages as
// unmasked text frames, close frames with a code and a reason.
type WebSocket struct{}

var _ Framer = WebSocket{}

// NextLen implements Framer.
func (WebSocket) NextLen(id, payload []byte) int { return codec.NextLen(id, payload) }

// AppendNext implements Framer.
func (WebSocket) AppendNext(dst, id, payload []byte) []byte {
	return codec.AppendNext(dst, id, payload)
}

// AppendClose implements Framer.
func (WebSocket) AppendClose(dst []byte, code ws.StatusCode, reason string) []byte {
	return codec.AppendClose(dst, code, reason)
}

// Remainder implements Framer.
func (WebSocket) Remainder(b []byte, n int) int { return codec.FrameRemainder(b, n) }
