package server

import (
	"net/http"
	"net/netip"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/fraised/fraised/audit"
	"github.com/fraised/fraised/edge"
	"github.com/fraised/fraised/proxyproto"
	"github.com/fraised/fraised/session"
)

// maxHTTPInflight bounds the POST /publish replies a connection may have
// in flight before it stops reading further requests: each is a queued
// reply (about 60 bytes), so a pipelining publisher holds at most ~60 KiB
// of replies, well under --max-outbound.
const maxHTTPInflight = 1024

// Deadline words (httpEdge.deadline): unix nanoseconds of the deadline
// with bit 0 set when part of a request has arrived (the deadline then
// ends with 408, otherwise with a plain close). 0: no deadline (not in the
// HTTP phase); deadlineExpired: the housekeeper has claimed the connection.
const deadlineExpired = -1

func deadlineAt(at int64, partial bool) int64 {
	if partial {
		return at | 1
	}
	return at &^ 1
}

// httpEdge is a connection's state at the edge: its admission ticket, the
// deadline of its HTTP phase, and who the client is.
type httpEdge struct {
	ticket   *edge.Ticket
	deadline atomic.Int64  // see deadlineAt; written by the loop, claimed by the housekeeper
	paused   atomic.Bool   // requests wait in the inbound buffer until responses are sent
	timedOut atomic.Uint32 // set by the housekeeper: why the deadline closed it
	client   netip.Addr    // the client: the TCP peer, or what a trusted proxy says
	// awaitProxy: a PROXY protocol header must come first (trusted peer,
	// --proxy-protocol).
	awaitProxy bool
	started    bool // bytes were consumed (a PROXY header or a request)
	// closeAfter: the response being written is the connection's last
	// (it says Connection: close, so a keep-alive client does not reuse it).
	closeAfter bool
}

// setDeadline stores a new deadline word unless the housekeeper claimed
// the connection. Called on the connection's event loop.
func (e *httpEdge) setDeadline(v int64) {
	for {
		old := e.deadline.Load()
		if old == deadlineExpired || e.deadline.CompareAndSwap(old, v) {
			return
		}
	}
}

// afterHTTP re-arms the HTTP deadline after onHTTP consumed n bytes and
// left buffered bytes unread. Called on the connection's event loop.
func (c *httpConn) afterHTTP(n, buffered int) {
	e := &c.edge
	if c.phase != phaseHTTP {
		e.deadline.Store(0)
		c.srv.httpConns.remove(c)
		return
	}
	now := time.Now().UnixNano()
	if c.queryRunning() {
		// A GraphQL query runs off the loop, for at most its deadline:
		// the client's time starts once the server is done with it.
		now += c.srv.routes.timeout.Load()
	}
	switch {
	case buffered == 0 && n > 0:
		// Every request answered: the connection is idle (keep-alive).
		e.setDeadline(deadlineAt(now+int64(c.srv.opts.HTTPIdleTimeout), false))
	case n > 0:
		// A new request has begun: it gets the whole read timeout.
		e.setDeadline(deadlineAt(now+int64(c.srv.opts.HTTPReadTimeout), true))
	case buffered > 0:
		d := e.deadline.Load()
		if d == deadlineExpired || d&1 == 1 {
			return // a request is being read: its deadline stands
		}
		if e.started {
			// The first byte after an idle period starts a request. (The
			// first request of a connection keeps the deadline set at
			// open, so silent connections cannot stretch it.)
			d = now + int64(c.srv.opts.HTTPReadTimeout)
		}
		e.setDeadline(deadlineAt(d, true))
	}
	if n > 0 {
		e.started = true
	}
}

// fromProxy reports whether the client address is a trusted proxy's: its
// requests' forwarding headers name the real client.
func (c *httpConn) fromProxy() bool {
	return c.edge.ticket != nil && c.edge.ticket.Proxy && c.srv.opts.TrustedProxies.Contains(c.edge.client)
}

// maxInbound is the most unread input an HTTP-phase connection may hold:
// a PROXY header, a request head and the largest body. Past it the client
// is pipelining without reading its responses and is cut off.
func (c *httpConn) maxInbound() int {
	return proxyproto.MaxLength + maxHeaderBytes + c.srv.opts.MaxPayload
}

// responseTimeout answers a request that did not arrive in time.
var responseTimeout = appendResponseConn(nil, http.StatusRequestTimeout, "request not received within --http-read-timeout\n", true)

// Timeouts recorded in httpEdge.timedOut for OnClose to log.
const (
	timeoutSilent  = 1 // no request under way (silent or idle connection)
	timeoutPartial = 2 // part of a request arrived: answered 408
)

// httpTimedOut closes a connection past its HTTP deadline: 408 when part
// of a request arrived, else a plain close. Called by the housekeeper
// after claiming the deadline; the loop logs it when the close lands
// (logTimeout), as only the loop may read the client's address.
func (srv *Server) httpTimedOut(c *httpConn, partial bool) {
	srv.stats.httpTimeouts.Add(1)
	kind := uint32(timeoutSilent)
	if partial {
		kind = timeoutPartial
		c.send(responseTimeout)
	}
	c.edge.timedOut.Store(kind)
	_ = c.gc.Close()
}

// logTimeout logs (throttled) and audits a close by an HTTP deadline.
// Called on the connection's event loop, from OnClose.
func (srv *Server) logTimeout(c *conn) {
	var reason string
	switch c.edge.timedOut.Load() {
	case timeoutSilent:
		reason = "HTTP connection silent past --http-read-timeout or idle past --http-idle-timeout"
	case timeoutPartial:
		reason = "HTTP request not received within --http-read-timeout"
	default:
		return
	}
	srv.refusals.note("http_timeout", c.remoteAddr, reason, "clients must send each request within --http-read-timeout")
	srv.guard.audit(audit.EventConnRefused, c, audit.Record{Reason: reason})
}

// responsesUnsent reports whether earlier responses still wait for the
// socket (or too many publish replies are in flight, or a GraphQL query
// is running): further requests
// then stay unread. Called on the connection's event loop.
func (c *httpConn) responsesUnsent() bool {
	if c.queryRunning() || (c.pub != nil && c.pub.Inflight() > maxHTTPInflight) {
		return true
	}
	return c.out.HasPending()
}

// readProxyHeader consumes the PROXY protocol header at the start of b
// and takes the client address from it. It returns the bytes consumed and
// false while the header is incomplete or after refusing the connection.
func (c *httpConn) readProxyHeader(b []byte) (int, bool) {
	h, n, err := proxyproto.Parse(b)
	if err != nil {
		c.refuseHTTP(http.StatusBadRequest, "PROXY protocol header required from a trusted proxy: "+err.Error(),
			"configure the proxy to send the PROXY protocol, or remove --proxy-protocol")
		return 0, false
	}
	if n == 0 {
		return 0, false
	}
	c.edge.awaitProxy = false
	if !h.Local {
		c.edge.client = h.Source.Addr().Unmap()
		c.remoteAddr = h.Source.String()
		if !c.srv.opts.TrustedProxies.Contains(c.edge.client) && !c.admitClient() {
			return n, false
		}
	}
	return n, true
}

// admitClient charges the connection to its (forwarded) client address
// and applies the per-address connection rate; it answers 503 or 429 and
// closes the connection when one says no.
func (c *httpConn) admitClient() bool {
	if c.edge.ticket != nil && !c.edge.ticket.ChargeAddr(c.edge.client) {
		c.srv.guard.refusedConns.Add(1)
		c.refuseHTTP(http.StatusServiceUnavailable, edge.ReasonAddrCap.String(),
			"raise --max-ip-connections")
		return false
	}
	if !c.srv.allowConnFrom(c.edge.client) {
		c.refuseRate()
		return false
	}
	return true
}

// refuseHTTP answers status with reason, logs and audits the refusal, and
// closes the connection. Called on the connection's event loop.
func (c *httpConn) refuseHTTP(status int, reason, fix string) {
	c.srv.refusals.note("http_"+strconv.Itoa(status), c.remoteAddr, reason, fix)
	c.srv.guard.audit(audit.EventConnRefused, c, audit.Record{Reason: reason})
	c.respondClose(status, reason+"\n")
}

// refuseRate answers 429 to a connection over the per-address rate.
func (c *httpConn) refuseRate() {
	c.srv.refuseConnRate(session.Peer{ID: c.id, Remote: c.remoteAddr})
	c.respondClose(http.StatusTooManyRequests, "too many connections from this address\n")
}

// httpSet is the set of connections in the HTTP phase, for their
// deadlines; touched when a connection opens, upgrades and closes, and by
// the housekeeper.
type httpSet = ptrSet[httpConn]

func newHTTPSet() *httpSet { return newPtrSet[httpConn]() }
