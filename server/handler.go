package server

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/gobwas/ws"

	"github.com/fraised/fraised/audit"
	"github.com/fraised/fraised/auth"
	"github.com/fraised/fraised/codec"
	"github.com/fraised/fraised/edge"
	"github.com/fraised/fraised/httpgql"
	"github.com/fraised/fraised/internal/outbox"
	"github.com/fraised/fraised/internal/wsread"
	"github.com/fraised/fraised/proto"
	"github.com/fraised/fraised/session"
)

// The net/http path: Handler serves graphql-transport-ws on any net/http
// server (TLS, HTTP/1.1 middleware, routers), through the same session
// state machine, security checks, limits, audit and dispatcher as the
// gnet listener. A connection here costs a read goroutine (reading frames
// into the session) and a writer goroutine (the outbox's WriteLoop, woken
// when output goes from idle to pending): the price of a net.Conn, which
// may be a *tls.Conn the host terminates.

// handlerTick is how often a handler connection's timer looks at its
// deadlines (token expiry) and sends keep-alive pings; the gnet path's
// housekeeper sweeps tokens once a second too.
const handlerTick = time.Second

// Handler returns an http.Handler serving fraised at the path it is
// mounted on: a WebSocket upgrade (graphql-transport-ws) becomes a
// subscription connection, and any other request is GraphQL over HTTP
// (POST, or GET for queries), as on the gnet listener's /graphql. The
// Origin allowlist, authentication (Authorization header or the auth
// cookie), rate limits and caps are the server's. The server must be
// running (Run) while the handler is used; Shutdown closes its WebSockets
// with 1001 like the listener's. HTTP/1.1 only: an upgrade needs a
// connection net/http can hand over (Hijack), which HTTP/2 has not.
func (s *Server) Handler() http.Handler { return netHandler{s} }

// netHandler is Handler's http.Handler.
type netHandler struct{ srv *Server }

func (h netHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s := h.srv
	if !isWebSocketUpgrade(r) {
		s.serveNetHTTPQuery(w, r)
		return
	}
	g := s.guard
	switch {
	case s.draining.Load():
		w.Header().Set("Retry-After", strconv.Itoa(edge.RetryAfterSeconds))
		http.Error(w, "draining", http.StatusServiceUnavailable)
		return
	case !g.originAllowed(r.Header.Get("Origin"), r.Host):
		origin := s.noteOriginRefused(r.RemoteAddr, r.Header.Get("Origin"), "connect")
		http.Error(w, "origin not allowed: "+origin, http.StatusForbidden)
		return
	}
	ticket := s.admitNet(w, r)
	if ticket == nil {
		return // refused at a connection cap or rate
	}
	u := ws.HTTPUpgrader{Protocol: func(p string) bool { return p == proto.Subprotocol }}
	nc, rw, hs, err := u.Upgrade(r, w)
	if err != nil {
		ticket.Release()
		return // gobwas/ws answered the bad upgrade
	}
	c := newNetConn(s, nc, r, tokenOf(r, g.Cookie))
	c.ticket = ticket
	if hs.Protocol != proto.Subprotocol {
		c.Close(proto.CloseSubprotocolNotOK, "Subprotocol not acceptable")
	}
	c.serve(rw.Reader)
}

// isWebSocketUpgrade reports whether r asks for a WebSocket.
func isWebSocketUpgrade(r *http.Request) bool {
	return strings.EqualFold(r.Header.Get("Upgrade"), "websocket")
}

// tokenOf is the bearer token of r: its Authorization header, else the
// cookie named cookie.
func tokenOf(r *http.Request, cookie string) string {
	if t, ok := auth.TokenFromHeader(r.Header.Get("Authorization")); ok {
		return t
	}
	if cookie != "" {
		if t, ok := auth.TokenFromCookie(r.Header.Get("Cookie"), cookie); ok {
			return t
		}
	}
	return ""
}

// netConn is a graphql-transport-ws connection on a net.Conn: the
// session's Conn and its outbox's Owner.
type netConn struct {
	srv  *Server
	nc   net.Conn
	out  outbox.Outbox
	sess session.Session
	peer session.Peer

	in     wsread.Reader // frames (read goroutine)
	linger wsread.Linger // input after the close frame (read goroutine)
	big    []byte        // a frame larger than the bufio.Reader's buffer (read goroutine)

	ticket    *edge.Ticket // its slots of --max-connections and --max-ip-connections, released when it ends
	closing   atomic.Bool  // a close frame is queued: input is read only to linger
	readAt    int64        // unix nanoseconds of the read being handled: its messages' arrival (read goroutine)
	initTimer *time.Timer  // the connection_init deadline
	timer     *time.Timer  // keep-alive pings and token expiry
	lastPing  time.Time    // timer-owned
}

var (
	_ session.Conn = (*netConn)(nil)
	_ outbox.Owner = (*netConn)(nil)
	_ wsread.Conn  = (*netConn)(nil)
)

func newNetConn(s *Server, nc net.Conn, r *http.Request, token string) *netConn {
	c := &netConn{srv: s, nc: nc, peer: session.Peer{ID: s.nextConnID.Add(1), Remote: r.RemoteAddr, Token: token}}
	c.out.InitConn(nc, s.w, c, s.opts.WriteTimeout)
	c.in.Init(s.opts.MaxMessage)
	c.sess.Init(s.sess, c, c.peer)
	c.lastPing = time.Now()
	s.stats.connections.Add(1)
	s.netConns.add(c)
	s.audit(audit.EventConnAccepted, c.peer, audit.Record{})
	return c
}

// serve runs the connection: its writer goroutine, its timer and, on the
// calling goroutine, the read loop; it returns when the connection ended.
func (c *netConn) serve(br *bufio.Reader) {
	go c.out.WriteLoop()
	c.initTimer = time.AfterFunc(c.srv.opts.InitTimeout, c.sess.ExpireInit)
	c.timer = time.AfterFunc(handlerTick, c.onTimer)
	c.readLoop(br)
	c.initTimer.Stop()
	c.timer.Stop()
	c.out.Close()
	c.sess.End()
	_ = c.nc.Close()
	c.srv.netConns.remove(c)
	c.srv.stats.connections.Add(-1)
	if c.ticket != nil {
		c.ticket.Release()
	}
}

// onTimer closes an expired token's connection and pings when the
// keep-alive interval has passed. It runs on the timer's goroutine and
// re-arms itself until the connection closes.
func (c *netConn) onTimer() {
	if c.closing.Load() {
		return
	}
	now := time.Now()
	opts := &c.srv.opts
	if c.srv.guard.Auth != auth.ModeOff {
		c.sess.ExpireToken(now)
	}
	if opts.KeepAlive > 0 && now.Sub(c.lastPing) >= opts.KeepAlive {
		c.lastPing = now
		c.send(codec.FrameControlPing)
	}
	c.timer.Reset(handlerTick)
}

// readLoop reads frames until the connection ends: EOF, an error, the
// idle deadline (two keep-alive intervals without a whole frame), or the end of
// lingering after a close frame. Frames are parsed where br buffered
// them; one larger than br's buffer is read whole into c.big first.
func (c *netConn) readLoop(br *bufio.Reader) {
	need := 1 // bytes to have buffered before parsing again
	c.armReadDeadline()
	for {
		var n int
		var end bool
		if need > br.Size() {
			if n, end = c.readBig(br, need); n == 0 {
				return
			}
		} else {
			if _, err := br.Peek(need); err != nil {
				return
			}
			buf, _ := br.Peek(br.Buffered())
			n, end = c.feed(buf)
			_, _ = br.Discard(n)
		}
		if end {
			return
		}
		need = br.Buffered() + 1 // a partial header (or nothing): any byte more
		if w := c.in.Want(); w > 0 && !c.closing.Load() {
			need = w // a partial frame: all of it
		}
	}
}

// readBig reads and handles one frame of size bytes, more than br can
// buffer; it returns 0 when the connection failed.
func (c *netConn) readBig(br *bufio.Reader, size int) (int, bool) {
	if cap(c.big) < size {
		c.big = make([]byte, size)
	}
	buf := c.big[:size]
	if _, err := io.ReadFull(br, buf); err != nil {
		return 0, false
	}
	return c.feed(buf)
}

// feed handles input: frames (wsread.Reader) until the close frame is
// queued, the linger after it. It returns the bytes consumed and whether
// the connection should end now.
func (c *netConn) feed(buf []byte) (int, bool) {
	n := 0
	if !c.closing.Load() {
		c.readAt = time.Now().UnixNano()
		n = c.in.Frames(buf, c)
		if !c.closing.Load() {
			if n > 0 {
				c.armReadDeadline() // a complete frame: the next one's deadline
			}
			return n, false
		}
	}
	k, end := c.linger.Feed(buf[n:], &c.out)
	return n + k, end
}

// armReadDeadline gives the next frame two keep-alive intervals to
// arrive whole (a live client answers pings; a byte of a frame is no sign
// of life), or no deadline when keep-alive is off. Lingering keeps the
// deadline startClosing set from the close frame: input after it never
// moves it.
func (c *netConn) armReadDeadline() {
	if ka := c.srv.opts.KeepAlive; ka > 0 {
		_ = c.nc.SetReadDeadline(time.Now().Add(2 * ka))
	} else {
		_ = c.nc.SetReadDeadline(time.Time{})
	}
	if c.closing.Load() {
		c.lingerDeadline() // startClosing ran meanwhile: its deadline stands
	}
}

// Message hands a whole text message to the session (wsread.Conn).
func (c *netConn) Message(b []byte) { c.sess.OnMessage(b, c.readAt) }

// Ping answers a WebSocket ping within --limit-messages (wsread.Conn).
func (c *netConn) Ping(payload []byte) {
	if !c.sess.ControlAllowed(c.readAt) {
		return // the session closed the connection (4429)
	}
	c.send(codec.AppendFrame(nil, ws.OpPong, payload))
}

// PeerClose records the peer's close frame (wsread.PeerCloser).
func (c *netConn) PeerClose() bool { return c.out.PeerClose() }

// Closing reports whether the close frame is queued (wsread.Conn).
func (c *netConn) Closing() bool { return c.closing.Load() }

// send queues raw frame bytes; past --max-outbound the client is cut as
// a slow consumer. Safe for concurrent use.
func (c *netConn) send(b []byte) {
	if pending, ok := c.out.Queue(b); ok && pending > c.srv.opts.MaxOutbound {
		c.CutSlow("outbound buffer cap exceeded (control frames)")
	}
}

// Send frames msg as one text frame and queues it (session.Conn).
func (c *netConn) Send(msg []byte) { c.send(codec.AppendFrame(nil, ws.OpText, msg)) }

// Close queues a close frame as the last output (session.Conn); input is
// then read only to linger. Safe for concurrent use.
func (c *netConn) Close(code ws.StatusCode, reason string) {
	if c.out.EndWithClose(code, reason, false) {
		c.startClosing()
	}
}

// startClosing switches the read loop to lingering, within lingerTimeout.
func (c *netConn) startClosing() {
	c.closing.Store(true)
	c.lingerDeadline()
}

// lingerDeadline bounds the linger: the close frame's write (at most
// --write-timeout) and the peer's answer (lingerTimeout).
func (c *netConn) lingerDeadline() {
	_ = c.nc.SetReadDeadline(time.Now().Add(lingerTimeout + c.srv.opts.WriteTimeout))
}

// Output is the connection's outbox (session.Conn).
func (c *netConn) Output() *outbox.Outbox { return &c.out }

// Initialised stops the init deadline (session.Conn).
func (c *netConn) Initialised() { c.initTimer.Stop() }

// Hangup closes the connection (outbox.Owner): the read loop ends.
func (c *netConn) Hangup() { _ = c.nc.Close() }

// CutSlow cuts a slow consumer with 1013 (outbox.Owner).
func (c *netConn) CutSlow(why string) {
	if !c.out.EndWithClose(proto.CloseTryAgainLater, slowConsumerReason, true) {
		return
	}
	c.startClosing()
	c.srv.stats.slowConsumers.Add(1)
	c.srv.audit(audit.EventSlowConsumer, c.peer, audit.Record{Reason: why})
	c.srv.refusals.note("slow_consumer", c.peer.Remote, why, slowConsumerHint)
}

// audit writes a record about the connection of peer; it never blocks.
func (s *Server) audit(event string, peer session.Peer, r audit.Record) {
	if s.guard.Audit == nil {
		return
	}
	r.Event, r.Remote, r.ConnID = event, peer.Remote, peer.ID
	s.guard.Audit.Write(r)
}

// closeNetConns queues close 1001 on every Handler WebSocket (Shutdown)
// and returns how many still had output waiting.
func (s *Server) closeNetConns() int {
	behind := 0
	for _, c := range s.netConns.snapshot(nil) {
		if c.out.State().Pending > 0 {
			behind++
		}
		c.Close(proto.CloseGoingAway, "server shutting down")
	}
	return behind
}

// serveNetHTTPQuery answers a GraphQL-over-HTTP request to Handler with
// the listener's rules (httpquery.go): the head's refusals, the cap on
// running queries, the token and the per-identity operation rate, the
// audit records. A net/http request has no connection of fraised's to
// hold the listener's per-connection buckets.
func (s *Server) serveNetHTTPQuery(w http.ResponseWriter, r *http.Request) {
	h := httpgql.New(s.opts.Schema, httpgql.Options{MaxBodyBytes: s.opts.MaxMessage, Path: r.URL.Path, Execute: s.routes.queries.Append})
	peer := session.Peer{Remote: r.RemoteAddr}
	if status, code, msg := s.queryRefusal(r); status != 0 {
		writeGQL(w, s.refuseQuery(h, r, peer, status, code, msg))
		return
	}
	req, err := httpgql.FromHTTP(r, s.opts.MaxMessage)
	if err != nil {
		http.Error(w, "cannot read the request body", http.StatusBadRequest)
		return
	}
	if !s.startQuery(peer) {
		writeGQL(w, s.refuseQuery(h, r, peer, http.StatusServiceUnavailable, CodeServerBusy, busyMessage))
		return
	}
	defer s.endQuery()
	ctx, cancel := context.WithTimeout(r.Context(), time.Duration(s.routes.timeout.Load()))
	defer cancel()
	writeGQL(w, s.answerQuery(ctx, h, req, tokenOf(r, s.guard.Cookie), peer))
}

// writeGQL writes a GraphQL-over-HTTP response to w.
func writeGQL(w http.ResponseWriter, r httpgql.Response) {
	if r.Status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", "Bearer")
	}
	r.Write(w)
}

// appendNetOutboxes appends the outboxes of the Handler's connections to
// dst, for the outbound budget sweep: they hold output like blocked gnet
// connections do, and are cut the same way when they hold the most.
func (s *Server) appendNetOutboxes(dst []*outbox.Outbox) []*outbox.Outbox {
	if s.netConns.len() == 0 {
		return dst
	}
	for _, c := range s.netConns.snapshot(nil) {
		dst = append(dst, &c.out)
	}
	return dst
}
