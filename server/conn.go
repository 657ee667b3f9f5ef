package server

import (
	"sync/atomic"
	"time"

	"github.com/gobwas/ws"
	"github.com/panjf2000/gnet/v2"

	"github.com/fraised/fraised/audit"
	"github.com/fraised/fraised/internal/outbox"
	"github.com/fraised/fraised/internal/wsread"
	"github.com/fraised/fraised/proto"
	"github.com/fraised/fraised/session"
)

// Connection phases.
const (
	phaseHTTP    uint8 = iota // reading HTTP requests (upgrade, publish, health)
	phaseWS                   // a graphql-transport-ws WebSocket
	phaseClosing              // closing: input is discarded (after a close frame: lingering)
)

// conn is what a client connection on the main listener is for its whole
// life, whatever it speaks: the gnet connection, its output, its
// admission at the edge, and its ending (lingering). The protocol on top
// is an httpConn first and, after an upgrade, a wsConn; gnet's context
// holds the one in use. It is owned by its gnet event loop; fields other
// goroutines touch are atomics or live in out.
type conn struct {
	out        outbox.Outbox
	srv        *Server
	gc         gnet.Conn
	edge       httpEdge // admission ticket, HTTP deadline, client address
	remoteAddr string
	id         uint64
	openedAt   int64
	phase      uint8

	linger wsread.Linger // input after the close frame (or the last HTTP response)

	closing   atomic.Bool                     // a close frame is queued: input is discarded
	httpEndAt atomic.Int64                    // HTTP: when finishHTTP asked to end the output, after a running query's deadline (0: never)
	sess      atomic.Pointer[session.Session] // the WebSocket's session once upgraded (for audit records)
}

var _ outbox.Owner = (*conn)(nil)

func newConn(s *Server, gc gnet.Conn) *conn {
	c := &conn{srv: s, gc: gc, openedAt: time.Now().UnixNano(), id: s.nextConnID.Add(1)}
	if a := gc.RemoteAddr(); a != nil {
		c.remoteAddr = a.String()
	}
	c.out.Init(gc.Fd(), s.w, c)
	return c
}

// base returns the connection under a protocol (connRef).
func (c *conn) base() *conn { return c }

// connRef is a connection in either phase (*conn, *httpConn, *wsConn).
type connRef interface{ base() *conn }

// send writes b to the client. A client whose unsent bytes pass
// --max-outbound (a ping flood it does not read the pongs of, say) is cut
// off like any slow consumer. Safe for concurrent use.
func (c *conn) send(b []byte) {
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

// sendClose queues a close frame behind the frames already queued; the
// connection closes once the peer answered it (or at the linger or
// write-stall deadline). It reports false when output had already ended.
// Safe for concurrent use; later calls are no-ops.
func (c *conn) sendClose(code ws.StatusCode, reason string) bool {
	if !c.out.EndWithClose(code, reason, false) {
		return false
	}
	c.startClosing()
	return true
}

// startClosing records that the close frame is queued: the event loop
// switches to lingering and the housekeeper watches the deadlines.
func (c *conn) startClosing() {
	c.closing.Store(true)
	c.srv.conns.addClosing(c)
}

// slowConsumerReason is the close reason of a slow consumer (with code
// 1013 Try Again Later: graphql-ws clients reconnect on it, while 1008
// would be fatal for them).
const slowConsumerReason = "slow consumer"

// slowConsumerHint is what the log of a slow consumer's cut tells the
// operator, on the listener and Handler alike (both count against every
// one of these flags).
const slowConsumerHint = "the client must read faster; raise --max-outbound, --max-outbound-total or --write-timeout if its bursts are legitimate"

// CutSlow disconnects a slow consumer: the partly sent frame is finished,
// queued frames are dropped, and a close frame 1013 "slow consumer"
// follows; the writer delivers it when the client reads again (or gives
// up after --write-timeout). why is logged. Safe for concurrent use.
func (c *conn) CutSlow(why string) {
	if !c.out.EndWithClose(proto.CloseTryAgainLater, slowConsumerReason, true) {
		return
	}
	c.startClosing()
	c.srv.stats.slowConsumers.Add(1)
	c.srv.guard.audit(audit.EventSlowConsumer, c, audit.Record{Reason: why})
	c.srv.refusals.note("slow_consumer", c.remoteAddr, why, slowConsumerHint)
}

// Hangup closes the connection (outbox.Owner). Safe for concurrent use, and with the
// outbox's lock held (gnet's Close only queues the close on the loop).
func (c *conn) Hangup() {
	_ = c.gc.Close()
}

// lingerTimeout bounds the wait for the peer's close frame or EOF after
// ours was written (the linger: wsread.Linger): a graphql-ws client
// answers within a round trip; 2 s covers a slow mobile link without
// keeping dead peers. The bytes read meanwhile are bounded by
// wsread.MaxLingerInput.
const lingerTimeout = 2 * time.Second

// onEnding handles input once the connection's output is ending: it
// lingers after a close frame (or an HTTP connection's last response),
// and discards input otherwise. Called on the event loop.
func (c *conn) onEnding(gc gnet.Conn) gnet.Action {
	if c.closing.Load() {
		return c.onLinger(gc)
	}
	discard(gc, gc.InboundBuffered())
	return gnet.None
}

// onLinger discards input after the close frame was queued; it closes
// the connection when the peer's close frame arrived and ours is
// written, or past wsread.MaxLingerInput. Called on the event loop.
func (c *conn) onLinger(gc gnet.Conn) gnet.Action {
	buf, _ := gc.Peek(-1)
	n, closeNow := c.linger.Feed(buf, &c.out)
	discard(gc, n)
	if closeNow {
		return gnet.Close
	}
	return gnet.None
}

// release gives back what the connection held at the edge once it
// closed: its place in the closing sweep and its admission ticket; it
// logs a close by an HTTP deadline. Called by OnClose on the event loop,
// after the output was closed.
func (c *conn) release() {
	c.srv.stats.connections.Add(-1)
	c.srv.conns.doneClosing(c)
	c.srv.logTimeout(c)
	if c.edge.ticket != nil {
		c.edge.ticket.Release()
	}
}

// discard drops n consumed inbound bytes. gnet's Discard treats n <= 0 as
// "everything", which would lose a partly received frame, so 0 is a no-op.
func discard(gc gnet.Conn, n int) {
	if n > 0 {
		_, _ = gc.Discard(n)
	}
}
