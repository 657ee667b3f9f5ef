package server

import (
	"sync/atomic"
	"time"

	"github.com/gobwas/ws"
	"github.com/panjf2000/gnet/v2"

	"github.com/fraised/fraised/audit"
	"github.com/fraised/fraised/auth"
	"github.com/fraised/fraised/codec"
	"github.com/fraised/fraised/proto"
	"github.com/fraised/fraised/ratelimit"
	"github.com/fraised/fraised/registry"
)

// Connection phases.
const (
	phaseHTTP    uint8 = iota // reading HTTP requests (upgrade, publish, health)
	phaseWS                   // a graphql-transport-ws WebSocket
	phaseClosing              // a close frame was sent; input is ignored
)

// Initialisation states (graphql-transport-ws connection_init).
const (
	initNone uint32 = iota
	initAcked
)

// wsConn is a client connection on the main listener: HTTP first, then a
// WebSocket speaking graphql-transport-ws. It is owned by its gnet event
// loop; fields other code touches are atomics or live in out.
type wsConn struct {
	out  outbox
	srv  *Server
	gc   gnet.Conn
	pub  *publisher // set when the connection POSTs events
	edge httpEdge   // admission ticket, HTTP deadline, client address
	subs []*subscription

	initPayload  []byte
	frag         []byte // a fragmented message being reassembled
	upgradeToken string // bearer token from the upgrade's header or cookie
	remoteAddr   string
	id           uint64
	openedAt     int64
	msgBucket    ratelimit.Bucket
	subBucket    ratelimit.Bucket
	fragging     bool
	initSeen     bool
	phase        uint8

	init          atomic.Uint32
	lastRead      atomic.Int64 // unix nanoseconds of the last inbound frame; "now" for the message's rate limits
	identity      atomic.Pointer[auth.Identity]
	holdsConnSlot atomic.Bool // counted against the identity's connection cap
}

// subscription is one active operation of a connection.
type subscription struct {
	conn    *wsConn
	id      []byte        // JSON string literal, owned
	key     string        // unescaped id
	op      *gqlOperation // until the dispatcher registers it
	query   bool
	handle  *registry.Sub[group, member] // dispatcher-owned
	subject string                       // identity counted against its cap, if any
	removed atomic.Bool
}

func newWSConn(s *Server, gc gnet.Conn) *wsConn {
	c := &wsConn{srv: s, gc: gc, openedAt: time.Now().UnixNano(), id: s.nextConnID.Add(1)}
	if a := gc.RemoteAddr(); a != nil {
		c.remoteAddr = a.String()
	}
	c.out.fd = gc.Fd()
	c.lastRead.Store(c.openedAt)
	return c
}

// onTraffic handles inbound bytes on the connection's event loop.
func (c *wsConn) onTraffic(gc gnet.Conn) gnet.Action {
	if c.phase == phaseHTTP {
		c.onHTTP(gc)
		// Frames may follow the upgrade request in the same read.
		if c.phase != phaseWS || gc.InboundBuffered() == 0 {
			return gnet.None
		}
	}
	if c.phase == phaseWS {
		return c.onFrames(gc)
	}
	discard(gc, gc.InboundBuffered())
	return gnet.None
}

// onFrames parses every complete frame in the inbound buffer.
func (c *wsConn) onFrames(gc gnet.Conn) gnet.Action {
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
	}
	discard(gc, off)
	return gnet.None
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
			c.onMessage(payload)
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
			c.onMessage(c.frag)
			c.frag = nil
		}
	case ws.OpBinary:
		c.closeWith(proto.CloseUnsupportedData, "binary messages are not supported: graphql-transport-ws messages are text")
	case ws.OpPing:
		c.send(codec.AppendFrame(nil, ws.OpPong, payload))
	case ws.OpPong:
	case ws.OpClose:
		c.onClientClose(payload)
	}
}

// onClientClose echoes the client's close code and closes the connection.
func (c *wsConn) onClientClose(payload []byte) {
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

// send writes b to the client. Safe for concurrent use.
func (c *wsConn) send(b []byte) {
	c.out.send(b, c.srv.w)
}

// closeWith sends a close frame, stops reading and closes the connection.
// Called on the event loop.
func (c *wsConn) closeWith(code ws.StatusCode, reason string) {
	c.phase = phaseClosing
	c.sendClose(code, reason)
}

// sendClose sends a close frame and closes the connection. Safe for
// concurrent use; later calls are no-ops.
func (c *wsConn) sendClose(code ws.StatusCode, reason string) {
	if c.out.endWithClose(c.srv.w, code, reason, false) {
		_ = c.gc.Close()
	}
}

// cutSlow disconnects a slow consumer: the partly sent frame is finished,
// queued frames are dropped, a close frame says why. Called by the
// dispatcher.
func (c *wsConn) cutSlow() {
	if !c.out.endWithClose(c.srv.w, proto.ClosePolicyViolation, "slow consumer: outbound buffer cap exceeded", true) {
		return
	}
	c.srv.stats.slowConsumers.Add(1)
	c.srv.guard.audit(audit.EventSlowConsumer, c, audit.Record{Reason: "outbound buffer cap exceeded"})
	c.srv.log.Warn("slow consumer disconnected", "remote", c.remoteAddr, "cap", c.srv.opts.MaxOutbound)
	_ = c.gc.Close()
}

// onClose releases the connection: output, subscriptions, bookkeeping.
// Called on the event loop before gnet closes the socket.
func (c *wsConn) onClose() {
	c.out.close(c.srv.w)
	for _, s := range c.subs {
		c.unsubscribe(s)
	}
	c.subs = nil
	c.srv.conns.remove(c)
	if c.holdsConnSlot.Swap(false) {
		c.srv.guard.identConns.Release(c.identity.Load().Subject)
	}
}

// discard drops n consumed inbound bytes. gnet's Discard treats n <= 0 as
// "everything", which would lose a partly received frame, so 0 is a no-op.
func discard(gc gnet.Conn, n int) {
	if n > 0 {
		_, _ = gc.Discard(n)
	}
}
