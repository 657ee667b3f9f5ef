package server

import (
	"sync/atomic"
	"time"

	"github.com/gobwas/ws"
	"github.com/panjf2000/gnet/v2"

	"github.com/fraised/fraised/codec"
	"github.com/fraised/fraised/internal/outbox"
	"github.com/fraised/fraised/internal/wsread"
	"github.com/fraised/fraised/session"
)

// wsConn is a WebSocket speaking graphql-transport-ws on the gnet engine:
// the RFC 6455 framing (wsread: frames, fragments, control frames, UTF-8
// checks, the close handshake) around a session.Session, which it serves
// as the session's Conn. It replaces its httpConn as the gnet context at
// the upgrade and is owned by the connection's event loop; fields other
// goroutines touch are atomics or belong to the session.
type wsConn struct {
	*conn
	sess     session.Session
	in       wsread.Reader
	lastRead atomic.Int64 // unix nanoseconds of the last complete inbound frame (keep-alive)
	readAt   int64        // unix nanoseconds of the read being handled: its messages' arrival (event loop)
}

var (
	_ session.Conn = (*wsConn)(nil)
	_ wsread.Conn  = (*wsConn)(nil)
)

// newWSConn starts the WebSocket of c after its upgrade, taking the
// peer's address and upgrade token as they are now. Called on the event
// loop.
func newWSConn(c *httpConn) *wsConn {
	w := &wsConn{conn: c.conn}
	w.in.Init(c.srv.opts.MaxMessage)
	w.lastRead.Store(c.openedAt)
	w.sess.Init(c.srv.sess, w, session.Peer{ID: c.id, Remote: c.remoteAddr, Token: c.upgradeToken})
	c.sess.Store(&w.sess)
	c.gc.SetContext(w)
	return w
}

// onTraffic handles inbound bytes on the connection's event loop: every
// complete frame, then, once the close frame is queued (by a frame, or by
// another goroutine), the linger.
func (c *wsConn) onTraffic(gc gnet.Conn) gnet.Action {
	if c.phase == phaseWS {
		buf, _ := gc.Peek(-1)
		c.readAt = time.Now().UnixNano()
		if n := c.in.Frames(buf, c); n > 0 {
			// Only a complete frame is a sign of life: a peer
			// trickling a frame that never ends is idle.
			c.lastRead.Store(c.readAt)
			discard(gc, n)
		}
		if !c.closing.Load() {
			return gnet.None // a partial frame waits for the rest
		}
		c.phase = phaseClosing
	}
	return c.onEnding(gc)
}

// Message hands a whole text message to the session (wsread.Conn).
func (c *wsConn) Message(b []byte) { c.sess.OnMessage(b, c.readAt) }

// Ping answers a WebSocket ping (wsread.Conn). Pings count against
// --limit-messages like any message, so a peer cannot flood them for free.
func (c *wsConn) Ping(payload []byte) {
	if !c.sess.ControlAllowed(c.readAt) {
		return // the session closed the connection (4429)
	}
	var buf [codec.MaxHeaderSize + codec.MaxControlPayload]byte
	c.send(codec.AppendFrame(buf[:0], ws.OpPong, payload))
}

// PeerClose records the peer's close frame (wsread.PeerCloser).
func (c *wsConn) PeerClose() bool { return c.out.PeerClose() }

// Closing reports whether the close frame is queued (wsread.Conn).
func (c *wsConn) Closing() bool { return c.closing.Load() }

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
