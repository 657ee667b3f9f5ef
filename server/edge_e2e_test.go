package server_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gobwas/ws"

	"github.com/fraised/fraised/audit"
	"github.com/fraised/fraised/auth"
	"github.com/fraised/fraised/edge"
	"github.com/fraised/fraised/proxyproto"
	"github.com/fraised/fraised/server"
)

// dialFrom opens a TCP connection to addr from the loopback source ip.
func dialFrom(t testing.TB, ip, addr string) net.Conn {
	t.Helper()
	d := net.Dialer{Timeout: 5 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}}
	conn, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatalf("dial from %s: %v", ip, err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// dialSmallReceiveBuffer opens a TCP connection to addr whose receive
// buffer (SO_RCVBUF) is set to size before the handshake. Set after it
// (TCPConn.SetReadBuffer), the buffer shrinks below the window already
// advertised, which the kernel never takes back: the peer keeps sending
// into it, the client's kernel drops the segments (TcpExtTCPRcvQDrop,
// RcvPruned) and the loopback connection falls into retransmission
// backoff in both directions (ss showed backoff 5, rto 6.5 s, the client
// acked for half of what the server had received) while the server sits
// idle with an empty receive queue. Under load that stalled the client's
// writes past its deadline in 3 runs of 7.
func dialSmallReceiveBuffer(t testing.TB, addr string, size int) net.Conn {
	t.Helper()
	d := net.Dialer{Timeout: 5 * time.Second, Control: func(_, _ string, rc syscall.RawConn) error {
		var serr error
		if err := rc.Control(func(fd uintptr) {
			serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, size)
		}); err != nil {
			return err
		}
		return serr
	}}
	conn, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// readUntilClosed reads conn until the server closes it (EOF or reset),
// within a generous deadline, and returns what arrived.
func readUntilClosed(t testing.TB, conn net.Conn) string {
	t.Helper()
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	b, err := io.ReadAll(conn)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("connection still open after 10s; got %q", b)
	}
	return string(b)
}

// readResponse reads one HTTP response from r.
func readResponse(t testing.TB, conn net.Conn, r *bufio.Reader) *http.Response {
	t.Helper()
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	resp, err := http.ReadResponse(r, nil)
	if err != nil {
		t.Fatalf("read response: %v", err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp
}

// TestSilentConnectionClosedByHeadDeadline: a connection that never sends
// a byte is closed at --http-read-timeout, without a response.
func TestSilentConnectionClosedByHeadDeadline(t *testing.T) {
	t.Parallel()
	s := startServer(t, func(o *server.Options) { o.HTTPReadTimeout = 300 * time.Millisecond })
	conn := dialFrom(t, "127.0.0.1", s.opts.Listen)
	start := time.Now()
	if got := readUntilClosed(t, conn); got != "" {
		t.Fatalf("silent connection got %q, want a plain close", got)
	}
	if time.Since(start) < 250*time.Millisecond {
		t.Fatalf("closed after %v, before the 300ms deadline", time.Since(start))
	}
	if s.Stats().HTTPTimeouts == 0 {
		t.Fatal("timeout not counted")
	}
}

// TestSlowlorisHeadGets408: a request head trickling in is cut at the read
// deadline with 408, however often bytes arrive.
func TestSlowlorisHeadGets408(t *testing.T) {
	t.Parallel()
	s := startServer(t, func(o *server.Options) { o.HTTPReadTimeout = 400 * time.Millisecond })
	conn := dialFrom(t, "127.0.0.1", s.opts.Listen)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for _, b := range []byte("GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa") {
			if _, err := conn.Write([]byte{b}); err != nil {
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
	}()
	got := readUntilClosed(t, conn)
	if !strings.HasPrefix(got, "HTTP/1.1 408 ") {
		t.Fatalf("slow head got %q, want 408", got)
	}
	<-done
}

// TestStalledBodyGets408: a POST whose body stops one byte short is closed
// at the read deadline with 408 instead of being held forever.
func TestStalledBodyGets408(t *testing.T) {
	t.Parallel()
	s := startServer(t, func(o *server.Options) {
		o.HTTPReadTimeout = 300 * time.Millisecond
		o.PublishToken = "tok"
	})
	conn := dialFrom(t, "127.0.0.1", s.opts.Listen)
	body := `{"n":1}`
	fmt.Fprintf(conn, "POST /publish/t HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer tok\r\nContent-Length: %d\r\n\r\n%s", len(body), body[:len(body)-1])
	if got := readUntilClosed(t, conn); !strings.HasPrefix(got, "HTTP/1.1 408 ") {
		t.Fatalf("stalled body got %q, want 408", got)
	}
}

// TestIdleKeepAliveClosed: a keep-alive connection is served, then closed
// after --http-idle-timeout without a request; one that keeps asking is
// kept past the read timeout.
func TestIdleKeepAliveClosed(t *testing.T) {
	t.Parallel()
	s := startServer(t, func(o *server.Options) {
		o.HTTPReadTimeout = 300 * time.Millisecond
		o.HTTPIdleTimeout = 900 * time.Millisecond
	})
	conn := dialFrom(t, "127.0.0.1", s.opts.Listen)
	r := bufio.NewReader(conn)
	start := time.Now()
	var idle time.Time
	for time.Since(start) < 1200*time.Millisecond { // past the read timeout, within each idle period
		time.Sleep(100 * time.Millisecond)
		fmt.Fprint(conn, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
		if resp := readResponse(t, conn, r); resp.StatusCode != http.StatusOK {
			t.Fatalf("healthz: %d", resp.StatusCode)
		}
		idle = time.Now()
	}
	if got := readUntilClosed(t, conn); got != "" {
		t.Fatalf("idle connection got %q, want a plain close", got)
	}
	if d := time.Since(idle); d < 800*time.Millisecond {
		t.Fatalf("idle connection closed after %v, before --http-idle-timeout", d)
	}
}

// TestWebSocketLeavesHTTPDeadline: an upgraded connection is governed by
// the init timeout and keep-alive, not the HTTP read timeout.
func TestWebSocketLeavesHTTPDeadline(t *testing.T) {
	t.Parallel()
	s := startServer(t, func(o *server.Options) { o.HTTPReadTimeout = 200 * time.Millisecond })
	c := connect(t, s.opts.Listen)
	time.Sleep(600 * time.Millisecond)
	c.send(`{"type":"ping"}`)
	c.expect(`{"type":"pong"}`)
	if n := s.Stats().HTTPConnections; n != 0 {
		t.Fatalf("%d connections still in the HTTP phase", n)
	}
}

// expect503 reads a refusal at a cap: 503 with Retry-After, then a close.
func expect503(t testing.TB, conn net.Conn) {
	t.Helper()
	fmt.Fprint(conn, rawUpgrade)
	got := readUntilClosed(t, conn)
	if !strings.HasPrefix(got, "HTTP/1.1 503 ") || !strings.Contains(got, fmt.Sprintf("\r\nRetry-After: %d\r\n", edge.RetryAfterSeconds)) {
		t.Fatalf("over the cap got %q, want 503 with Retry-After", got)
	}
}

// TestConnectionCaps: past the global cap and past the per-address cap new
// connections get 503 with Retry-After, while an established subscriber
// keeps receiving; closing connections frees their slots.
func TestConnectionCaps(t *testing.T) {
	t.Parallel()
	sink := &auditSink{}
	log := audit.New(sink, 0)
	t.Cleanup(func() { log.Close() })
	s := startServer(t, func(o *server.Options) {
		o.MaxConnections = 4
		o.MaxConnectionsPerAddr = 2
		o.Security.Audit = log
	})
	sub := connect(t, s.opts.Listen) // 127.0.0.1: 1
	sub.subscribe("1", `subscription { events(topic: "caps") { seq } }`, nil)
	s.waitSubs(t, 1)
	pub := dialPublisher(t, "tcp", s.opts.PublishListen)

	held := dialFrom(t, "127.0.0.1", s.opts.Listen) // 127.0.0.1: 2
	expect503(t, dialFrom(t, "127.0.0.1", s.opts.Listen))
	sink.wait(t, audit.EventConnRefused, func(r auditRec) bool { return strings.Contains(r.Reason, "from this address") })

	other := dialFrom(t, "127.0.0.2", s.opts.Listen) // 3
	_ = dialFrom(t, "127.0.0.3", s.opts.Listen)      // 4: the global cap
	expect503(t, dialFrom(t, "127.0.0.4", s.opts.Listen))
	sink.wait(t, audit.EventConnRefused, func(r auditRec) bool { return strings.Contains(r.Reason, "connection limit") })

	pub.publishUntil("caps", `{"seq":1}`, 1)
	sub.expect(`{"id":"1","type":"next","payload":{"data":{"events":{"seq":1}}}}`)

	held.Close()
	other.Close()
	deadline := time.Now().Add(5 * time.Second)
	for {
		conn := dialFrom(t, "127.0.0.1", s.opts.Listen)
		fmt.Fprint(conn, "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
		got := readUntilClosed(t, conn)
		if strings.HasPrefix(got, "HTTP/1.1 200 ") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("slots not freed after closes: %q", got)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if s.Stats().RefusedConns < 2 {
		t.Fatalf("refusals not counted: %+v", s.Stats())
	}
}

// TestPipelinedRequestsWithoutReadingAreCut: a client pipelining requests
// without reading the responses is paused, then cut off once its unread
// requests pass the inbound cap; the server holds a bounded amount for it.
func TestPipelinedRequestsWithoutReadingAreCut(t *testing.T) {
	t.Parallel()
	const maxPayload = 64 << 10
	s := startServer(t, func(o *server.Options) { o.MaxPayload = maxPayload })
	conn := dialSmallReceiveBuffer(t, s.opts.Listen, 4<<10) // responses back up at once
	req := []byte(strings.Repeat("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n", 1000))
	written := 0
	_ = conn.SetWriteDeadline(time.Now().Add(20 * time.Second))
	var err error
	for written < 256<<20 && err == nil {
		var n int
		n, err = conn.Write(req)
		written += n
	}
	var ne net.Error
	if err == nil || (errors.As(err, &ne) && ne.Timeout()) {
		t.Fatalf("wrote %d bytes of pipelined requests without reading and was not cut off (err %v)", written, err)
	}
	// What the client got into the network before the cut is the cap plus
	// socket buffers (a few MiB on loopback), nowhere near what it tried.
	if written > 64<<20 {
		t.Fatalf("server absorbed %d bytes before cutting the connection", written)
	}
	dialFrom(t, "127.0.0.1", s.opts.Listen) // the server still serves
}

// upgradeWith sends a WebSocket upgrade with extra header lines on conn
// and reports the response status.
func upgradeWith(t testing.TB, conn net.Conn, prefix []byte, extra string) int {
	t.Helper()
	req := strings.Replace(rawUpgrade, "\r\n\r\n", "\r\n"+extra+"\r\n\r\n", 1)
	if extra == "" {
		req = rawUpgrade
	}
	if _, err := conn.Write(append(prefix, req...)); err != nil {
		t.Fatal(err)
	}
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("read upgrade response: %v", err)
	}
	return resp.StatusCode
}

func startProxied(t *testing.T, proxyProtocol bool, perAddr int, header edge.Header) (*testServer, *auditSink) {
	sink := &auditSink{}
	log := audit.New(sink, 0)
	t.Cleanup(func() { log.Close() })
	trusted, err := edge.ParseTrusted("127.0.0.2/32")
	if err != nil {
		t.Fatal(err)
	}
	s := startServer(t, func(o *server.Options) {
		o.TrustedProxies = trusted
		o.ProxyProtocol = proxyProtocol
		o.ForwardedHeader = header
		o.MaxConnectionsPerAddr = perAddr
		o.Security = server.Security{Auth: auth.ModeOff, Audit: log}
	})
	return s, sink
}

func acceptedFrom(remote string) func(auditRec) bool {
	return func(r auditRec) bool { return r.Remote == remote }
}

// TestForwardedFromTrustedProxyOnly: X-Forwarded-For and Forwarded name
// the client only on connections from a trusted proxy (the rightmost
// untrusted entry wins); per-address caps apply to that client.
func TestForwardedFromTrustedProxyOnly(t *testing.T) {
	t.Parallel()
	s, sink := startProxied(t, false, 1, edge.HeaderXFF)
	proxy := dialFrom(t, "127.0.0.2", s.opts.Listen)
	if st := upgradeWith(t, proxy, nil, "X-Forwarded-For: 192.0.2.66, 198.51.100.7"); st != http.StatusSwitchingProtocols {
		t.Fatalf("upgrade via proxy: %d", st)
	}
	sink.wait(t, audit.EventConnAccepted, acceptedFrom("198.51.100.7"))

	// The same client again through the proxy: over its per-address cap.
	again := dialFrom(t, "127.0.0.2", s.opts.Listen)
	if st := upgradeWith(t, again, nil, "X-Forwarded-For: 198.51.100.7"); st != http.StatusServiceUnavailable {
		t.Fatalf("second connection of a capped client: %d, want 503", st)
	}
	// Another client through the same proxy is not affected.
	next := dialFrom(t, "127.0.0.2", s.opts.Listen)
	if st := upgradeWith(t, next, nil, "X-Forwarded-For: 198.51.100.8"); st != http.StatusSwitchingProtocols {
		t.Fatalf("upgrade of another client via proxy: %d", st)
	}

	direct := dialFrom(t, "127.0.0.1", s.opts.Listen)
	if st := upgradeWith(t, direct, nil, "X-Forwarded-For: 203.0.113.1"); st != http.StatusSwitchingProtocols {
		t.Fatalf("direct upgrade: %d", st)
	}
	sink.wait(t, audit.EventConnAccepted, acceptedFrom(direct.LocalAddr().String()))
	for _, r := range sink.records(t) {
		if r.Remote == "203.0.113.1" {
			t.Fatal("X-Forwarded-For from an untrusted peer was believed")
		}
	}
}

func TestForwardedHeaderRFC7239(t *testing.T) {
	t.Parallel()
	s, sink := startProxied(t, false, 0, edge.HeaderForwarded)
	proxy := dialFrom(t, "127.0.0.2", s.opts.Listen)
	// The X-Forwarded-For a client forged is ignored: Forwarded is configured.
	extra := "X-Forwarded-For: 203.0.113.1\r\nForwarded: for=192.0.2.1, for=\"[2001:db8::7]:4711\";proto=https"
	if st := upgradeWith(t, proxy, nil, extra); st != http.StatusSwitchingProtocols {
		t.Fatalf("upgrade via proxy: %d", st)
	}
	sink.wait(t, audit.EventConnAccepted, acceptedFrom("2001:db8::7"))
}

// TestProxyProtocol: with --proxy-protocol a trusted proxy's v1 or v2
// header names the client; an untrusted peer's header is refused, and a
// trusted peer must send one.
func TestProxyProtocol(t *testing.T) {
	t.Parallel()
	s, sink := startProxied(t, true, 0, edge.HeaderXFF)
	to := netip.MustParseAddrPort(s.opts.Listen)

	v1 := dialFrom(t, "127.0.0.2", s.opts.Listen)
	hdr := proxyproto.AppendV1(nil, netip.MustParseAddrPort("198.51.100.1:5000"), to)
	if st := upgradeWith(t, v1, hdr, ""); st != http.StatusSwitchingProtocols {
		t.Fatalf("upgrade after a v1 header: %d", st)
	}
	sink.wait(t, audit.EventConnAccepted, acceptedFrom("198.51.100.1:5000"))

	v2 := dialFrom(t, "127.0.0.2", s.opts.Listen)
	hdr = proxyproto.AppendV2(nil, netip.MustParseAddrPort("[2001:db8::9]:6000"), netip.MustParseAddrPort("[2001:db8::1]:443"))
	if st := upgradeWith(t, v2, hdr, ""); st != http.StatusSwitchingProtocols {
		t.Fatalf("upgrade after a v2 header: %d", st)
	}
	sink.wait(t, audit.EventConnAccepted, acceptedFrom("[2001:db8::9]:6000"))

	untrusted := dialFrom(t, "127.0.0.1", s.opts.Listen)
	hdr = proxyproto.AppendV1(nil, netip.MustParseAddrPort("203.0.113.5:1"), to)
	if st := upgradeWith(t, untrusted, hdr, ""); st != http.StatusBadRequest {
		t.Fatalf("PROXY header from an untrusted peer: %d, want 400", st)
	}
	missing := dialFrom(t, "127.0.0.2", s.opts.Listen)
	if st := upgradeWith(t, missing, nil, ""); st != http.StatusBadRequest {
		t.Fatalf("trusted peer without a PROXY header: %d, want 400", st)
	}
	// A client connecting directly still works without a header.
	c := dialWith(t, s.opts.Listen, ws.Dialer{Protocols: []string{"graphql-transport-ws"}, Timeout: 5 * time.Second})
	c.send(`{"type":"connection_init"}`)
	c.expect(`{"type":"connection_ack"}`)
}

// TestShutdownStopsAccepting: after Shutdown the listener is closed.
func TestShutdownStopsAccepting(t *testing.T) {
	t.Parallel()
	s := startServer(t, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if c, err := net.DialTimeout("tcp", s.opts.Listen, time.Second); err == nil {
		c.Close()
		t.Fatal("listener still accepts after Shutdown")
	}
}

// TestUnwantedBodyAnsweredFromHead: a request whose body fraised would not
// read (no publish token, a wrong one, any other path) is answered from its
// head and the connection closed at once, so a stalled body holds nothing.
func TestUnwantedBodyAnsweredFromHead(t *testing.T) {
	t.Parallel()
	s := startServer(t, func(o *server.Options) {
		o.HTTPReadTimeout = 5 * time.Second
		o.PublishToken = "tok"
	})
	for _, c := range []struct{ head, want string }{
		{"POST /publish/t HTTP/1.1\r\nHost: x\r\n", "HTTP/1.1 401 "},
		{"POST /publish/t HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer wrong\r\n", "HTTP/1.1 401 "},
		{"POST /elsewhere HTTP/1.1\r\nHost: x\r\n", "HTTP/1.1 404 "},
		{"POST /healthz HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer tok\r\n", "HTTP/1.1 200 "},
	} {
		conn := dialFrom(t, "127.0.0.1", s.opts.Listen)
		start := time.Now()
		fmt.Fprintf(conn, "%sContent-Length: 1000000\r\n\r\n{\"partial\":", c.head)
		got := readUntilClosed(t, conn)
		if !strings.HasPrefix(got, c.want) || !strings.Contains(got, "\r\nConnection: close\r\n") {
			t.Errorf("%q with a stalled body got %q, want %s and Connection: close", c.head, got, c.want)
		}
		if d := time.Since(start); d > 2*time.Second {
			t.Errorf("%q: answered after %v; it must not wait for the body (read timeout 5 s)", c.head, d)
		}
	}
}

// TestLastResponseArrives: a response after which the server closes the
// connection reaches the client in full, then EOF, even while the client
// keeps sending (no reset) and when it is a publish reply that comes back
// from the dispatcher after the request was read.
func TestLastResponseArrives(t *testing.T) {
	t.Parallel()
	s := startServer(t, func(o *server.Options) { o.PublishToken = "tok" })
	for i := 0; i < 50; i++ {
		conn := dialFrom(t, "127.0.0.1", s.opts.Listen)
		body := `{"n":1}`
		fmt.Fprintf(conn, "POST /publish/t HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer tok\r\nConnection: close\r\nContent-Length: %d\r\n\r\n%s", len(body), body)
		if got := readUntilClosed(t, conn); !strings.HasPrefix(got, "HTTP/1.1 200 ") || !strings.HasSuffix(got, `{"delivered":0}`) {
			t.Fatalf("run %d: publish with Connection: close got %q, want its 200 reply", i, got)
		}
	}
	for i := 0; i < 20; i++ {
		conn := dialFrom(t, "127.0.0.1", s.opts.Listen)
		fmt.Fprint(conn, "POST /elsewhere HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n\r\n")
		done := make(chan struct{})
		go func() { // keep sending the body the server does not want
			defer close(done)
			chunk := make([]byte, 64<<10)
			for k := 0; k < 8; k++ {
				if _, err := conn.Write(chunk); err != nil {
					return
				}
			}
			_ = conn.(*net.TCPConn).CloseWrite() // done sending: the server's linger ends at our FIN
		}()
		if got := readUntilClosed(t, conn); !strings.HasPrefix(got, "HTTP/1.1 404 ") {
			t.Fatalf("run %d: refused body got %q, want the 404", i, got)
		}
		<-done
	}
}
