package server

import (
	"bytes"
	"net"
	"net/netip"
	"os"
	"strings"
	"testing"

	"github.com/gobwas/ws"
	"github.com/panjf2000/gnet/v2"
	"golang.org/x/sys/unix"

	"github.com/fraised/fraised/edge"
	"github.com/fraised/fraised/gql"
	"github.com/fraised/fraised/proxyproto"
)

// fakeConn is the part of gnet.Conn a connection handler uses, over an
// in-memory inbound buffer; writes go to a real socketpair.
type fakeConn struct {
	gnet.Conn
	in     []byte
	fd     int
	closed bool
	ctx    any
}

func (f *fakeConn) Peek(n int) ([]byte, error) {
	if n < 0 || n > len(f.in) {
		n = len(f.in)
	}
	return f.in[:n], nil
}
func (f *fakeConn) Discard(n int) (int, error)    { f.in = f.in[n:]; return n, nil }
func (f *fakeConn) InboundBuffered() int          { return len(f.in) }
func (f *fakeConn) Fd() int                       { return f.fd }
func (f *fakeConn) Close() error                  { f.closed = true; return nil }
func (f *fakeConn) Wake(gnet.AsyncCallback) error { return nil }
func (f *fakeConn) RemoteAddr() net.Addr          { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 1} }
func (f *fakeConn) LocalAddr() net.Addr           { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 2} }
func (f *fakeConn) Context() any                  { return f.ctx }
func (f *fakeConn) SetContext(ctx any)            { f.ctx = ctx }

// wsOf returns the WebSocket fc upgraded to, or nil.
func wsOf(fc *fakeConn) *wsConn {
	w, _ := fc.ctx.(*wsConn)
	return w
}

// newFuzzServer returns a server that is configured but not serving; its
// dispatcher is never started, so control messages are drained by hand.
func newFuzzServer(t testing.TB) *Server {
	schema, err := gql.LoadSchemaFile("../examples/schema.graphql", gql.Options{})
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(Options{Schema: schema, MaxMessage: 4096, PublishToken: "tok", MaxPayload: 1024})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// socketpair returns a connected pair; the peer end is drained by the caller.
func socketpair(t testing.TB) (int, *os.File) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_NONBLOCK, 0)
	if err != nil {
		t.Fatal(err)
	}
	peer := os.NewFile(uintptr(fds[1]), "peer")
	t.Cleanup(func() { unix.Close(fds[0]); peer.Close() })
	return fds[0], peer
}

const upgradeRequest = "GET /graphql HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
	"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: graphql-transport-ws\r\n\r\n"

func maskedText(msg string) []byte {
	var b bytes.Buffer
	_ = ws.WriteFrame(&b, ws.MaskFrame(ws.NewTextFrame([]byte(msg))))
	return b.Bytes()
}

// FuzzConnInput feeds arbitrary bytes to a client connection, in two
// reads, either as the HTTP request or as WebSocket frames after a valid
// upgrade: nothing may panic or hang, whatever arrives.
func FuzzConnInput(f *testing.F) {
	f.Add(false, []byte(upgradeRequest))
	f.Add(false, []byte("POST /publish/t HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer tok\r\nContent-Length: 7\r\n\r\n{\"a\":1}"))
	f.Add(false, []byte("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\nGET /nope HTTP/1.1\r\n\r\n"))
	f.Add(false, []byte("POST /graphql HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 25\r\n\r\n{\"query\":\"{ __typename }\"}GET /healthz HTTP/1.1\r\n\r\n"))
	f.Add(false, []byte("GET /graphql?query=%7B__typename%7D HTTP/1.1\r\nHost: x\r\nOrigin: http://evil\r\n\r\nGET /graphiql HTTP/1.1\r\nIf-None-Match: *\r\n\r\nHEAD / HTTP/1.1\r\nConnection: close\r\n\r\n"))
	f.Add(true, maskedText(`{"type":"connection_init"}`))
	f.Add(true, append(maskedText(`{"type":"connection_init"}`), maskedText(`{"id":"1","type":"subscribe","payload":{"query":"subscription { events(topic: \"x\") { seq author { name } } }"}}`)...))
	f.Add(true, append(maskedText(`{"type":"connection_init"}`), maskedText(`{"id":"1","type":"subscribe","payload":{"query":"{ __typename }"}}`)...))
	s := newFuzzServer(f)
	f.Fuzz(func(t *testing.T, upgraded bool, data []byte) {
		fd, peer := socketpair(t)
		go func() { _, _ = bytes.NewBuffer(nil).ReadFrom(peer) }()
		fc := &fakeConn{fd: fd}
		c := newHTTPConn(s, fc)
		if upgraded {
			fc.in = []byte(upgradeRequest)
			s.OnTraffic(fc)
			if c.phase != phaseWS {
				t.Fatal("valid upgrade refused")
			}
		}
		half := len(data) / 2
		fc.in = append(fc.in, data[:half]...)
		s.OnTraffic(fc)
		fc.in = append(fc.in, data[half:]...)
		s.OnTraffic(fc)
		s.OnClose(fc, nil)
		s.d.DiscardQueued()
	})
}

// FuzzProxiedInput feeds arbitrary bytes, in two reads, to a connection
// from a trusted proxy on a --proxy-protocol listener: the PROXY header
// parser, the forwarding headers and the caps on the client they name.
func FuzzProxiedInput(f *testing.F) {
	f.Add([]byte("PROXY TCP4 198.51.100.1 192.0.2.1 5000 443\r\n" + upgradeRequest))
	f.Add(append(proxyproto.AppendV2(nil, netip.MustParseAddrPort("[2001:db8::9]:6000"), netip.MustParseAddrPort("[2001:db8::1]:443")),
		"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"...))
	f.Add([]byte("PROXY TCP4 127.0.0.1 127.0.0.1 1 2\r\n" + strings.Replace(upgradeRequest, "Host: x", "Host: x\r\nX-Forwarded-For: 203.0.113.9, 127.0.0.1", 1)))
	f.Add([]byte("\r\n\r\n\x00\r\nQUIT\n\x20\x00\x00\x00GET /healthz HTTP/1.1\r\n\r\n"))
	schema, err := gql.LoadSchemaFile("../examples/schema.graphql", gql.Options{})
	if err != nil {
		f.Fatal(err)
	}
	trusted, _ := edge.ParseTrusted("127.0.0.0/8")
	s, err := New(Options{Schema: schema, MaxMessage: 4096, MaxPayload: 1024, ProxyProtocol: true,
		TrustedProxies: trusted, MaxConnections: 8, MaxConnectionsPerAddr: 1})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		fd, peer := socketpair(t)
		go func() { _, _ = bytes.NewBuffer(nil).ReadFrom(peer) }()
		fc := &fakeConn{fd: fd}
		c := newHTTPConn(s, fc)
		c.edge.ticket = s.gate.NewTicket(netip.MustParseAddrPort("127.0.0.1:1"), true)
		c.edge.client = c.edge.ticket.Peer.Addr()
		c.edge.awaitProxy = true
		half := len(data) / 2
		fc.in = append(fc.in, data[:half]...)
		s.OnTraffic(fc)
		fc.in = append(fc.in, data[half:]...)
		s.OnTraffic(fc)
		s.OnClose(fc, nil)
		if n := s.gate.AddrCount(netip.MustParseAddr("198.51.100.1")); n != 0 {
			t.Fatalf("address slot leaked: %d", n)
		}
		s.d.DiscardQueued()
	})
}
