package server

import (
	"bytes"
	"crypto/subtle"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/panjf2000/gnet/v2"

	"github.com/fraised/fraised/audit"
	"github.com/fraised/fraised/dispatch"
	"github.com/fraised/fraised/edge"
	"github.com/fraised/fraised/internal/outbox"
	"github.com/fraised/fraised/proto"
	"github.com/fraised/fraised/proxyproto"
)

// maxHeaderBytes bounds an HTTP request head; browsers send a few KiB.
const maxHeaderBytes = 16 << 10

// GraphQLPath is the WebSocket endpoint.
const GraphQLPath = "/graphql"

var headEnd = []byte("\r\n\r\n")

// onHTTP serves HTTP requests until the connection upgrades. A request
// whose body has not fully arrived stays in the inbound buffer, and so do
// requests that follow one whose response is not sent yet: a client that
// pipelines without reading is paused, then cut off past maxInbound.
func (c *httpConn) onHTTP(gc gnet.Conn) gnet.Action {
	buf, _ := gc.Peek(-1)
	start := c.startHTTP(buf)
	if c.edge.awaitProxy || c.phase != phaseHTTP {
		c.afterHTTP(0, len(buf))
		return gnet.None
	}
	off := start
	if c.edge.paused.Load() {
		c.edge.paused.Store(false) // re-set below if responses are still unsent
	}
	for off < len(buf) && c.phase == phaseHTTP {
		if c.responsesUnsent() {
			c.edge.paused.Store(true)
			break
		}
		n, ok := c.serveRequest(buf[off:])
		if !ok {
			break
		}
		off += n
	}
	discard(gc, off)
	if c.pub != nil && off > 0 {
		c.pub.Dispatcher().HandOff()
	}
	buffered := gc.InboundBuffered()
	if c.phase == phaseHTTP && buffered > c.maxInbound() {
		c.refuseHTTP(http.StatusRequestEntityTooLarge, fmt.Sprintf("%d bytes of requests unread: responses are not being read", buffered),
			"read responses before sending more requests")
	}
	c.afterHTTP(off-start, buffered)
	return gnet.None
}

// startHTTP checks the first bytes of a connection: the PROXY protocol
// header a trusted proxy must send first, or one an untrusted peer must
// not. It returns the bytes consumed.
func (c *httpConn) startHTTP(buf []byte) int {
	if c.edge.awaitProxy {
		n, _ := c.readProxyHeader(buf)
		return n
	}
	if !c.edge.started && c.srv.opts.ProxyProtocol && proxyproto.HasSignature(buf) {
		c.refuseHTTP(http.StatusBadRequest, "PROXY protocol header from an untrusted address",
			"add the proxy's address to --trusted-proxies")
		return len(buf)
	}
	return 0
}

// serveRequest handles one request at the start of b. It returns the bytes
// consumed and false when the request is incomplete (or must wait for ring
// space).
func (c *httpConn) serveRequest(b []byte) (int, bool) {
	end := bytes.Index(b, headEnd)
	if end < 0 {
		if len(b) > maxHeaderBytes {
			c.respondClose(http.StatusRequestHeaderFieldsTooLarge, "request head too large\n")
		}
		return 0, false
	}
	head := b[:end+4]
	if isUpgrade(head) {
		c.upgrade(head)
		return len(head), true
	}
	req, err := readRequest(head)
	if err != nil {
		c.respondClose(http.StatusBadRequest, "malformed HTTP request\n")
		return len(b), true
	}
	if req.ContentLength < 0 && (req.Method == http.MethodPost || len(req.TransferEncoding) > 0) {
		c.respondClose(http.StatusLengthRequired, "Content-Length required\n")
		return len(b), true
	}
	if req.ContentLength > int64(c.srv.opts.MaxPayload) {
		c.respondClose(http.StatusRequestEntityTooLarge, fmt.Sprintf("payload too large (limit %d bytes)\n", c.srv.opts.MaxPayload))
		return len(b), true
	}
	bodyLen := int(max(req.ContentLength, 0))
	if bodyLen > 0 && !c.wantsBody(req) {
		// Answer from the head alone and close, instead of holding the
		// connection and its body (up to --max-payload) for a request that
		// is refused or needs no body anyway: an unauthenticated client
		// cannot make fraised buffer a single byte of body.
		c.edge.closeAfter = true
		if !c.route(req, nil) {
			return 0, false // the answer waits for ring space, like any
		}
		c.finishHTTP()
		return len(b), true
	}
	if len(b) < len(head)+bodyLen {
		return 0, false
	}
	if !c.route(req, b[len(head):len(head)+bodyLen]) {
		return 0, false
	}
	if req.Close {
		c.finishHTTP()
	}
	return len(head) + bodyLen, true
}

// route answers a plain HTTP request; false means retry later (ring full).
func (c *httpConn) route(req *http.Request, body []byte) bool {
	path := req.URL.Path
	switch {
	case path == "/healthz":
		if c.srv.draining.Load() {
			return c.respond(http.StatusServiceUnavailable, "draining\n")
		}
		return c.respond(http.StatusOK, "ok\n")
	case path == "/livez":
		if why := c.srv.notLive(); why != "" {
			return c.respond(http.StatusServiceUnavailable, why+"\n")
		}
		return c.respond(http.StatusOK, "ok\n")
	case path == "/readyz":
		return c.respondReady()
	case strings.HasPrefix(path, "/publish/"):
		return c.routePublish(req, strings.TrimPrefix(path, "/publish/"), body)
	case path == GraphQLPath:
		return c.routeGraphQL(req, body)
	case c.srv.routes.servesPage(path):
		return c.serveGraphiQL(req)
	}
	return c.respond(http.StatusNotFound, "not found\n")
}

// wantsBody reports whether req is a request whose body fraised reads: a
// POST /publish/{topic} that carries the publish token, or a POST
// /graphql that its head does not refuse (queryRefusal). Every other
// request is answered from its head.
func (c *httpConn) wantsBody(req *http.Request) bool {
	if req.Method != http.MethodPost {
		return false
	}
	if req.URL.Path == GraphQLPath {
		status, _, _ := c.srv.queryRefusal(req)
		return status == 0
	}
	token := c.srv.opts.PublishToken
	return token != "" && strings.HasPrefix(req.URL.Path, "/publish/") &&
		bearerMatches(req.Header.Get("Authorization"), token)
}

func (c *httpConn) routePublish(req *http.Request, topic string, body []byte) bool {
	if c.cpub != nil && c.cpub.state.Load() != chIdle {
		// This request is with the broker already (checked when it was
		// handed over): its answer is the broker's, draining or not.
		return c.clusterPublish(topic, body)
	}
	token := c.srv.opts.PublishToken
	switch {
	case token == "":
		return c.respond(http.StatusNotFound, "HTTP publishing is disabled (set --publish-token)\n")
	case req.Method != http.MethodPost:
		return c.respond(http.StatusMethodNotAllowed, "use POST\n")
	case !bearerMatches(req.Header.Get("Authorization"), token):
		return c.respond(http.StatusUnauthorized, "missing or wrong bearer token\n")
	case c.srv.draining.Load():
		return c.respond(http.StatusServiceUnavailable, "server is draining (shutting down): publish to another instance or retry after it restarts\n")
	}
	if err := validatePublish([]byte(topic), body, c.srv.opts.MaxPayload); err != nil {
		return c.respond(http.StatusBadRequest, err.Error()+"\n")
	}
	if c.srv.opts.Cluster != nil {
		return c.clusterPublish(topic, body)
	}
	return c.publisher().Publish([]byte(topic), body, dispatch.ReplyHTTP)
}

func bearerMatches(header, token string) bool {
	const prefix = "bearer "
	if len(header) < len(prefix) || !strings.EqualFold(header[:len(prefix)], prefix) {
		return false
	}
	return subtle.ConstantTimeCompare([]byte(header[len(prefix):]), []byte(token)) == 1
}

// publisher returns the connection's publishing side, made at its first
// POST /publish; the dispatcher wakes the event loop to retry a request
// held back by backpressure.
func (c *httpConn) publisher() *dispatch.Publisher {
	if c.pub == nil {
		c.pub = &dispatch.Publisher{}
		c.pub.Init(c.srv.d, &c.out, func() { _ = c.gc.Wake(nil) })
	}
	return c.pub
}

// respond answers with a plain-text response, in order behind any
// publish replies still in flight.
func (c *httpConn) respond(status int, body string) bool {
	return c.respondRaw(appendResponseConn(nil, status, body, c.edge.closeAfter))
}

// respondClose answers and closes the connection.
func (c *httpConn) respondClose(status int, body string) {
	c.send(appendResponseConn(nil, status, body, true))
	c.finishHTTP()
}

// finishHTTP ends an HTTP connection after its last response, which the
// peer must receive: the output (and any publish reply still on its way
// from the dispatcher) is written in full, then the write side is shut
// down, and input is read and discarded until the peer's EOF or the linger
// deadline (the closing sweep), so the peer never meets the reset a close
// with unread input would send, which can make it discard the response.
// Called on the event loop.
func (c *httpConn) finishHTTP() {
	c.phase = phaseClosing
	c.linger.DiscardAll() // HTTP input, not frames
	endAt := time.Now().UnixNano()
	if c.queryRunning() {
		endAt += c.srv.routes.timeout.Load() // its own deadline, not the peer's
	}
	c.httpEndAt.Store(endAt)
	c.startClosing()
	if c.endAfterQuery() {
		return // the running query ends the output after its answer
	}
	if c.pub == nil {
		c.out.End()
		return
	}
	c.pub.WhenReplied(func() { c.out.End() })
}

func appendResponse(dst []byte, status int, body string) []byte {
	return appendResponseConn(dst, status, body, false)
}

// appendResponseConn appends a plain-text response; with last, it says
// Connection: close, because the server closes the connection after it.
func appendResponseConn(dst []byte, status int, body string, last bool) []byte {
	dst = fmt.Appendf(dst, "HTTP/1.1 %d %s\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: ", status, http.StatusText(status))
	dst = strconv.AppendInt(dst, int64(len(body)), 10)
	switch status {
	case http.StatusUnauthorized:
		dst = append(dst, "\r\nWWW-Authenticate: Bearer"...)
	case http.StatusServiceUnavailable:
		dst = append(dst, "\r\nRetry-After: "...)
		dst = strconv.AppendInt(dst, edge.RetryAfterSeconds, 10)
	}
	if last {
		dst = append(dst, "\r\nConnection: close"...)
	}
	dst = append(dst, "\r\n\r\n"...)
	return append(dst, body...)
}

// upgrade switches the connection to WebSocket. A client that does not
// offer graphql-transport-ws is upgraded and then closed with 4406, as the
// protocol asks. gobwas/ws parses the request through pooled state, so an
// upgrade leaves little garbage behind.
func (c *httpConn) upgrade(head []byte) {
	if c.srv.draining.Load() {
		c.respondClose(http.StatusServiceUnavailable, "draining\n")
		return
	}
	u := getUpgrader(c, head)
	defer putUpgrader(u)
	hs, err := u.Upgrade(u)
	c.send(u.w.Bytes())
	if err != nil {
		if u.refusal != "" {
			c.srv.guard.audit(audit.EventConnRefused, c, audit.Record{Reason: u.refusal})
		}
		c.finishHTTP()
		return
	}
	c.phase = phaseWS
	c.out.SetFramer(outbox.WebSocket{})
	c.ws = newWSConn(c)
	if hs.Protocol != proto.Subprotocol {
		c.ws.closeWith(proto.CloseSubprotocolNotOK, "Subprotocol not acceptable")
		return
	}
	c.srv.conns.add(c.ws)
	c.srv.guard.audit(audit.EventConnAccepted, c, audit.Record{})
}
