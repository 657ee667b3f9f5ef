package server

import (
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/gobwas/ws"
	"github.com/panjf2000/gnet/v2"

	"github.com/fraised/fraised/audit"
	"github.com/fraised/fraised/auth"
	"github.com/fraised/fraised/codec"
	"github.com/fraised/fraised/dispatch"
	"github.com/fraised/fraised/internal/outbox"
	"github.com/fraised/fraised/proto"
	"github.com/fraised/fraised/ratelimit"
)

// Connection phases.
const (
	phaseHTTP    uint8 = iota // reading HTTP requests (upgrade, publish, health)
	phaseWS                   // a graphql-transport-ws WebSocket
	phaseClosing              // closing: input is discarded (after a close frame: lingering)
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
	out     outbox.Outbox
	srv     *Server
	gc      gnet.Conn
	pub     *dispatch.Publisher // set when the connection POSTs events
	edge    httpEdge            // admission ticket, HTTP deadline, client address
	subs    []*subscription
	queries []*query // running; a query is never registered with the dispatcher

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

	lingerRead int   // bytes discarded since the close frame was queued
	lingerSkip int64 // payload bytes of the current frame still to skip while lingering
	lingerJunk bool  // input stopped parsing as frames while lingering

	closing       atomic.Bool  // a close frame is queued: input is discarded
	httpEndAt     atomic.Int64 // HTTP: when finishHTTP asked to end the output (0: never)
	init          atomic.Uint32
	lastRead      atomic.Int64 // unix nanoseconds of the last inbound frame; "now" for the message's rate limits
	identity      atomic.Pointer[auth.Identity]
	holdsConnSlot atomic.Bool  // counted against the identity's connection cap
	cpub          *clusterHTTP // cluster mode: the HTTP publish waiting for the broker
}

// subscription is an active subscription of a connection: the
// dispatcher's part (output, id, operation) and the session's.
type subscription struct {
	dispatch.Subscription
	conn    *wsConn
	key     string // unescaped id
	subject string // identity counted against its cap, if any
}

// query is a query operation of a connection, run once off the event loop
// (runQuery); complete or a close before it answers drops its answer.
type query struct {
	id    []byte // JSON string literal, owned
	key   string // unescaped id
	ended atomic.Bool
}

var _ outbox.Owner = (*wsConn)(nil)

func newWSConn(s *Server, gc gnet.Conn) *wsConn {
	c := &wsConn{srv: s, gc: gc, openedAt: time.Now().UnixNano(), id: s.nextConnID.Add(1)}
	if a := gc.RemoteAddr(); a != nil {
		c.remoteAddr = a.String()
	}
	c.out.Init(gc.Fd(), s.w, c)
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
	if c.phase == phaseWS && c.closing.Load() {
		c.phase = phaseClosing // another goroutine queued the close frame
	}
	if c.phase == phaseWS {
		c.onFrames(gc)
		if c.phase == phaseWS {
			return gnet.None // a partial frame waits for the rest
		}
	}
	if c.closing.Load() {
		return c.onLinger(gc)
	}
	discard(gc, gc.InboundBuffered())
	return gnet.None
}

// Lingering: after its close frame a WebSocket keeps reading (and
// discarding) until the peer's close frame or EOF, so that input the peer
// sent before it saw our close frame never meets a closed socket (the
// kernel would answer with a reset, and the peer would lose the close
// frame and see 1006). Both the time and the bytes are bounded.
const (
	// lingerTimeout bounds the wait for the peer's close frame or EOF
	// after ours was written: a graphql-ws client answers within a round
	// trip; 2 s covers a slow mobile link without keeping dead peers.
	lingerTimeout = 2 * time.Second
	// lingerMaxInput bounds the bytes read and discarded while lingering:
	// enough for a client that floods messages (the 4429 case) to notice
	// the close frame on loopback or a LAN, while a peer that streams
	// forever costs at most this much reading.
	lingerMaxInput = 1 << 20
)

// onLinger discards input after the close frame was queued, watching for
// the peer's close frame; it closes the connection when the peer's close
// frame arrived and ours is written, or past lingerMaxInput. Frame
// payloads are skipped without being buffered whole. Called on the event
// loop.
func (c *wsConn) onLinger(gc gnet.Conn) gnet.Action {
	buf, _ := gc.Peek(-1)
	off, action := 0, gnet.None
	for off < len(buf) && action == gnet.None {
		if c.lingerSkip > 0 {
			k := int(min(c.lingerSkip, int64(len(buf)-off)))
			off += k
			c.lingerSkip -= int64(k)
			continue
		}
		if c.lingerJunk {
			off = len(buf) // not frames any more: discard everything
			break
		}
		h, n, err := codec.ParseHeader(buf[off:])
		if err != nil {
			c.lingerJunk = true
			continue
		}
		if n == 0 {
			break // a partial header: wait for the rest
		}
		off += n
		c.lingerSkip = max(h.Length, 0)
		if h.OpCode == ws.OpClose && c.out.PeerClose() {
			action = gnet.Close
		}
	}
	discard(gc, off)
	c.lingerRead += off
	if c.lingerRead > lingerMaxInput {
		return gnet.Close
	}
	return action
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
	c.onMessage(b)
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

// send writes b to the client. A client whose unsent bytes pass
// --max-outbound (a ping flood it does not read the pongs of, say) is cut
// off like any slow consumer. Safe for concurrent use.
func (c *wsConn) send(b []byte) {
	pending, ok := c.out.Queue(b)
	if !ok || pending <= c.srv.opts.MaxOutbound {
		return
	}
	if c.out.IsFramed() {
		c.CutSlow("outbound buffer cap exceeded (control frames)")
		return
	}
	// An HTTP client that does not read its responses: there is no close
	// frame to send, only the connection to close.
	c.srv.stats.slowConsumers.Add(1)
	c.Hangup()
}

// onControlPing answers a WebSocket ping. Pings count against
// --limit-messages like any message, so a peer cannot flood them for free.
func (c *wsConn) onControlPing(payload []byte) {
	g := c.srv.guard
	if !c.msgBucket.Allow(g.Limits.MessagesPerConn, c.lastRead.Load()) {
		g.rateTrips.Add(1)
		g.audit(audit.EventRateLimit, c, audit.Record{Reason: "too many messages"})
		c.closeWith(proto.CloseTooManyInitRequests, "Too many messages")
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

// sendClose queues a close frame behind the frames already queued; the
// connection closes once the peer answered it (or at the linger or
// write-stall deadline). It reports false when output had already ended.
// Safe for concurrent use; later calls are no-ops.
func (c *wsConn) sendClose(code ws.StatusCode, reason string) bool {
	if !c.out.EndWithClose(code, reason, false) {
		return false
	}
	c.startClosing()
	return true
}

// startClosing records that the close frame is queued: the event loop
// switches to lingering and the housekeeper watches the deadlines.
func (c *wsConn) startClosing() {
	c.closing.Store(true)
	c.srv.conns.addClosing(c)
}

// slowConsumerReason is the close reason of a slow consumer (with code
// 1013 Try Again Later: graphql-ws clients reconnect on it, while 1008
// would be fatal for them).
const slowConsumerReason = "slow consumer"

// CutSlow disconnects a slow consumer: the partly sent frame is finished,
// queued frames are dropped, and a close frame 1013 "slow consumer"
// follows; the writer delivers it when the client reads again (or gives
// up after --write-timeout). why is logged. Safe for concurrent use.
func (c *wsConn) CutSlow(why string) {
	if !c.out.EndWithClose(proto.CloseTryAgainLater, slowConsumerReason, true) {
		return
	}
	c.startClosing()
	c.srv.stats.slowConsumers.Add(1)
	c.srv.guard.audit(audit.EventSlowConsumer, c, audit.Record{Reason: why})
	c.srv.refusals.note("slow_consumer", c.remoteAddr, why,
		"the client must read faster; raise --max-outbound, --max-outbound-total or --write-timeout if its bursts are legitimate")
}

// Hangup closes the connection (outbox.Owner). Safe for concurrent use, and with the
// outbox's lock held (gnet's Close only queues the close on the loop).
func (c *wsConn) Hangup() {
	_ = c.gc.Close()
}

// onClose releases the connection: output, subscriptions, bookkeeping.
// Called on the event loop before gnet closes the socket.
func (c *wsConn) onClose() {
	c.out.Close()
	for _, s := range c.subs {
		c.unsubscribe(s)
	}
	c.subs = nil
	for _, q := range c.queries {
		q.ended.Store(true)
	}
	c.queries = nil
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
