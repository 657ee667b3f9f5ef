package server

import (
	"bufio"
	"bytes"
	"net/http"
	"strconv"
	"sync"
	"unicode/utf8"

	"github.com/gobwas/ws"

	"github.com/fraised/fraised/auth"
	"github.com/fraised/fraised/edge"
	"github.com/fraised/fraised/proto"
)

// upgrader is the pooled state of one WebSocket upgrade: gobwas/ws's
// Upgrader with its callbacks bound once, the request head as the reader
// and the response as the writer. Used on an event loop, one upgrade at a
// time.
type upgrader struct {
	ws.Upgrader
	c       *httpConn
	r       bytes.Reader
	w       bytes.Buffer
	host    []byte
	origin  []byte
	fwd     []byte // the forwarding header's lines, joined by ", " (trusted proxies only)
	refusal string // why the upgrade was refused, for the audit log
}

var upgraderPool = sync.Pool{New: func() any {
	u := &upgrader{}
	u.Protocol = func(p []byte) bool { return string(p) == proto.Subprotocol }
	u.OnRequest = u.onRequest
	u.OnHost = u.onHost
	u.OnHeader = u.onHeader
	u.OnBeforeUpgrade = u.onBeforeUpgrade
	return u
}}

func getUpgrader(c *httpConn, head []byte) *upgrader {
	u := upgraderPool.Get().(*upgrader)
	u.c = c
	u.r.Reset(head)
	u.w.Reset()
	u.host, u.origin, u.fwd, u.refusal = u.host[:0], u.origin[:0], u.fwd[:0], ""
	return u
}

func putUpgrader(u *upgrader) {
	u.c = nil
	u.r.Reset(nil)
	if u.w.Cap() > 4<<10 {
		u.w = bytes.Buffer{}
	}
	upgraderPool.Put(u)
}

// Read and Write make the upgrader the io.ReadWriter gobwas/ws talks to.
func (u *upgrader) Read(p []byte) (int, error)  { return u.r.Read(p) }
func (u *upgrader) Write(p []byte) (int, error) { return u.w.Write(p) }

func (u *upgrader) reject(status int, reason string) error {
	u.refusal = reason
	if status == http.StatusServiceUnavailable {
		return ws.RejectConnectionError(ws.RejectionStatus(status), ws.RejectionReason(reason), ws.RejectionHeader(retryAfter))
	}
	return ws.RejectConnectionError(ws.RejectionStatus(status), ws.RejectionReason(reason))
}

// retryAfter is the Retry-After of an upgrade refused at a cap.
var retryAfter = ws.HandshakeHeaderString("Retry-After: " + strconv.Itoa(edge.RetryAfterSeconds) + "\r\n")

func (u *upgrader) onRequest(uri []byte) error {
	path := uri
	if i := bytes.IndexByte(path, '?'); i >= 0 {
		path = path[:i]
	}
	if string(path) != GraphQLPath {
		return u.reject(http.StatusNotFound, "WebSocket endpoint is "+GraphQLPath)
	}
	return nil
}

func (u *upgrader) onHost(host []byte) error {
	u.host = append(u.host[:0], host...)
	return nil
}

func (u *upgrader) onHeader(key, value []byte) error {
	switch {
	case u.c.fromProxy() && bytes.EqualFold(key, []byte(u.c.srv.opts.ForwardedHeader.Name())):
		if len(u.fwd) > 0 {
			u.fwd = append(u.fwd, ", "...)
		}
		u.fwd = append(u.fwd, value...)
	case bytes.EqualFold(key, []byte("Origin")):
		u.origin = append(u.origin[:0], value...)
	case bytes.EqualFold(key, []byte("Authorization")):
		if t, ok := auth.TokenFromHeader(string(value)); ok {
			u.c.upgradeToken = t
		}
	case bytes.EqualFold(key, []byte("Cookie")):
		if u.c.upgradeToken == "" && u.c.srv.guard.Cookie != "" {
			if t, ok := auth.TokenFromCookie(string(value), u.c.srv.guard.Cookie); ok {
				u.c.upgradeToken = t
			}
		}
	}
	return nil
}

// maxEchoedOrigin is how many bytes of a refused Origin the 403 body and
// the log quote: real origins are far shorter, and a forged one cannot
// make the response or the log line large.
const maxEchoedOrigin = 128

func (u *upgrader) onBeforeUpgrade() (ws.HandshakeHeader, error) {
	if !u.c.srv.guard.originAllowed(string(u.origin), string(u.host)) {
		origin := u.c.srv.noteOriginRefused(u.c.remoteAddr, string(u.origin), "connect")
		return nil, u.reject(http.StatusForbidden, "origin not allowed: "+origin)
	}
	return nil, u.admitForwarded()
}

// admitForwarded takes the client address of a connection from a trusted
// proxy from its forwarding header and checks that client's caps.
func (u *upgrader) admitForwarded() error {
	c := u.c
	if !c.fromProxy() {
		return nil
	}
	if a, ok := edge.ClientAddr(c.srv.opts.ForwardedHeader, u.fwd, c.srv.opts.TrustedProxies); ok {
		c.edge.client = a
		c.remoteAddr = a.String()
	}
	if !c.edge.ticket.ChargeAddr(c.edge.client) {
		c.srv.guard.refusedConns.Add(1)
		c.srv.refusals.note("connection_cap", c.remoteAddr, edge.ReasonAddrCap.String(), "raise --max-ip-connections")
		return u.reject(http.StatusServiceUnavailable, edge.ReasonAddrCap.String())
	}
	if !c.srv.allowConnFrom(c.edge.client) {
		c.srv.guard.refusedConns.Add(1)
		c.srv.guard.rateTrips.Add(1)
		return u.reject(http.StatusTooManyRequests, "rate limit: connections per IP")
	}
	return nil
}

// truncate cuts s to at most n bytes on a rune boundary, so a valid UTF-8
// string stays valid (close reasons and HTTP bodies must be UTF-8).
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// isUpgrade reports whether a request head asks for a WebSocket upgrade
// (an Upgrade header naming websocket).
func isUpgrade(head []byte) bool {
	for len(head) > 0 {
		i := bytes.IndexByte(head, '\n')
		if i < 0 {
			return false
		}
		line := head[:i]
		head = head[i+1:]
		const name = "upgrade:"
		if len(line) > len(name) && bytes.EqualFold(line[:len(name)], []byte(name)) {
			return bytes.Contains(bytes.ToLower(line[len(name):]), []byte("websocket"))
		}
	}
	return false
}

var readerPool = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, 1024) }}

// readRequest parses a plain HTTP request head with a pooled reader.
func readRequest(head []byte) (*http.Request, error) {
	br := readerPool.Get().(*bufio.Reader)
	br.Reset(bytes.NewReader(head))
	req, err := http.ReadRequest(br)
	br.Reset(nil)
	readerPool.Put(br)
	return req, err
}
