package server

import (
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/gobwas/ws"
	"github.com/panjf2000/gnet/v2"

	"github.com/fraised/fraised/codec"
	"github.com/fraised/fraised/internal/outbox"
	"github.com/fraised/fraised/proto"
	"github.com/fraised/fraised/session"
)

// wsConn is a WebSocket speaking graphql-transport-ws on the gnet engine:
// the RFC 6455 framing (frames, fragments, control frames, UTF-8 checks,
// the close handshake) around a session.Session, which it serves as the
// session's Conn. It replaces its httpConn as the gnet context at the
// upgrade and is owned by the connection's event loop; fields other
// goroutines touch are atomics or belong to the session.
type wsConn struct {
	*conn
	sess     session.Session
	frag     []byte // a fragmented message being reassembled
	fragging bool
	lastRead atomic.Int64 // unix nanoseconds of the last inbound frame (keep-alive; the messages' arrival)
}

var _ session.Conn = (*wsConn)(nil)

// newWSConn starts the WebSocket of c after its upgrade, taking the
// peer's address and upgrade token as they are now. Called on the event
// loop.
func newWSConn(c *httpConn) *wsConn {
	w := &wsConn{conn: c.conn}
	w.lastRead.Store(c.openedAt)
	w.sess.Init(c.srv.sess, w, session.Peer{ID: c.id, Remote: c.remoteAddr, Token: c.upgradeToken})
	c.sess.Store(&w.sess)
	c.gc.SetContext(w)
	return w
}

// onTraffic handles inbound bytes on the connection's event loop.
func (c *wsConn) onTraffic(gc gnet.Conn) gnet.Action {
	if c.phase == phaseWS && c.closing.Load() {
		c.phase = phaseClosing // another goroutine queued the close frame
	}
	if c.phase == phaseWS {
		c.onFrames(gc)
		if c.phase == phaseWS {
			return gnet.None // a partial frame waits for the rest
		}
	}
	return c.onEnding(gc)
}

// onFrames parses every complete frame in the inbound buffer.
func (c *wsConn) onFrames(gc gnet.Conn) {
	buf, _ := gc.Peek(-1)
	off := 0
	for off < len(buf) && c.phase == phaseWS {
		h, n, err := codec.ParseHeader(buf[off:])
		if err != nil {
			c.closeWith(proto.CloseProtocolError, err.Error())
			break
		}
		if n == 0 {
			break
		}
		if h.Length > int64(c.srv.opts.MaxMessage) {
			c.closeWith(proto.CloseMessageTooBig, "message too big")
			break
		}
		end := off + n + int(h.Length)
		if end > len(buf) {
			break
		}
		if !h.Masked {
			c.closeWith(proto.CloseProtocolError, "client frames must be masked")
			break
		}
		payload := buf[off+n : end]
		codec.Unmask(payload, h.Mask, 0)
		off = end
		c.lastRead.Store(time.Now().UnixNano())
		c.onFrame(h, payload)
		if c.closing.Load() {
			c.phase = phaseClosing // the session closed (Close): stop reading
		}
	}
	discard(gc, off)
}

// onFrame handles one frame; payload is valid until it returns.
func (c *wsConn) onFrame(h ws.Header, payload []byte) {
	switch h.OpCode {
	case ws.OpText:
		if c.fragging {
			c.closeWith(proto.CloseProtocolError, "new message inside a fragmented message")
			return
		}
		if h.Fin {
			c.onText(payload)
			return
		}
		c.fragging = true
		c.frag = append(c.frag[:0], payload...)
	case ws.OpContinuation:
		if !c.fragging {
			c.closeWith(proto.CloseProtocolError, "continuation frame without a message")
			return
		}
		if len(c.frag)+len(payload) > c.srv.opts.MaxMessage {
			c.closeWith(proto.CloseMessageTooBig, "message too big")
			return
		}
		c.frag = append(c.frag, payload...)
		if h.Fin {
			c.fragging = false
			c.onText(c.frag)
			c.frag = nil
		}
	case ws.OpBinary:
		c.closeWith(proto.CloseUnsupportedData, "binary messages are not supported: graphql-transport-ws messages are text")
	case ws.OpPing:
		c.onControlPing(payload)
	case ws.OpPong:
	case ws.OpClose:
		if len(payload) > 2 && !utf8.Valid(payload[2:]) {
			c.closeWith(proto.CloseInvalidPayload, reasonBadUTF8Close)
			return
		}
		c.onClientClose(payload)
	}
}

// Close reasons for invalid UTF-8 (RFC 6455 §8.1: close with 1007).
const (
	reasonBadUTF8      = "text message is not valid UTF-8"
	reasonBadUTF8Close = "close reason is not valid UTF-8"
)

// onText handles a whole text message (reassembled when it was
// fragmented); b is valid until it returns. RFC 6455 §8.1 asks for the
// whole message to be UTF-8, so it is checked before anything reads it:
// no id or error text the server echoes can then be invalid UTF-8.
func (c *wsConn) onText(b []byte) {
	if !utf8.Valid(b) {
		c.closeWith(proto.CloseInvalidPayload, reasonBadUTF8)
		return
	}
	c.sess.OnMessage(b, c.lastRead.Load())
}

// onClientClose echoes the client's close code and closes the connection
// once the echo is written.
func (c *wsConn) onClientClose(payload []byte) {
	c.out.PeerClose()
	code := proto.CloseNormal
	if len(payload) >= 2 {
		code = ws.StatusCode(uint16(payload[0])<<8 | uint16(payload[1]))
	}
	if len(payload) == 1 || (len(payload) >= 2 && !validCloseCode(code)) {
		c.closeWith(proto.CloseProtocolError, "invalid close frame")
		return
	}
	c.closeWith(code, "")
}

func validCloseCode(code ws.StatusCode) bool {
	switch {
	case code >= 3000 && code <= 4999:
		return true
	case code >= 1000 && code <= 1014:
		return code != 1004 && code != 1005 && code != 1006
	}
	return false
}

// onControlPing answers a WebSocket ping. Pings count against
// --limit-messages like any message, so a peer cannot flood them for free.
func (c *wsConn) onControlPing(payload []byte) {
	if !c.sess.ControlAllowed(c.lastRead.Load()) {
		return
	}
	c.send(codec.AppendFrame(nil, ws.OpPong, payload))
}

// closeWith sends a close frame and stops handling input (it is read and
// discarded until the peer's close frame). Called on the event loop.
func (c *wsConn) closeWith(code ws.StatusCode, reason string) {
	c.phase = phaseClosing
	c.sendClose(code, reason)
}

// smallMessage is the largest server message Send frames in a buffer on
// the stack: acks, pongs and most errors fit, so answering them allocates
// nothing; a larger message (a query result, a long error list) is framed
// in a buffer of its own.
const smallMessage = 512

// Send frames msg as one text frame and queues it (session.Conn). Safe
// for concurrent use.
func (c *wsConn) Send(msg []byte) {
	if len(msg) <= smallMessage {
		var buf [codec.MaxHeaderSize + smallMessage]byte
		c.send(codec.AppendFrame(buf[:0], ws.OpText, msg))
		return
	}
	c.send(codec.AppendFrame(nil, ws.OpText, msg))
}

// Close queues a close frame (session.Conn); the event loop stops
// handling input after the message being handled, or at its next read
// when another goroutine closed. Safe for concurrent use.
func (c *wsConn) Close(code ws.StatusCode, reason string) { c.sendClose(code, reason) }

// Output is the connection's outbox, where the dispatcher delivers
// (session.Conn).
func (c *wsConn) Output() *outbox.Outbox { return &c.out }

// Initialised stops the connection_init deadline (session.Conn). Safe for
// concurrent use.
func (c *wsConn) Initialised() { c.srv.conns.acked(c) }

// onClose releases the connection: output, session, bookkeeping. Called
// on the event loop before gnet closes the socket.
func (c *wsConn) onClose() {
	c.out.Close()
	c.sess.End()
	c.srv.conns.remove(c)
	c.release()
}
