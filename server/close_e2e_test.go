package server_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"

	"github.com/fraised/fraised/proto"
	"github.com/fraised/fraised/ratelimit"
	"github.com/fraised/fraised/resp"
	"github.com/fraised/fraised/server"
)

// smallRcvBuf is the receive buffer of the test clients that stop
// reading: small, so the server's outbox fills after little traffic.
const smallRcvBuf = 16 << 10

// dialSmall opens a graphql-transport-ws connection whose socket has a
// small receive buffer, and completes connection_init.
func dialSmall(t testing.TB, addr string) *client {
	t.Helper()
	d := ws.Dialer{
		Protocols: []string{proto.Subprotocol},
		Timeout:   5 * time.Second,
		NetDial: func(ctx context.Context, network, addr string) (net.Conn, error) {
			nd := net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
				var err error
				_ = rc.Control(func(fd uintptr) {
					err = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, smallRcvBuf)
				})
				return err
			}}
			return nd.DialContext(ctx, network, addr)
		},
	}
	c := dialWith(t, addr, d)
	c.send(`{"type":"connection_init","payload":{}}`)
	c.expect(`{"type":"connection_ack"}`)
	return c
}

// closeOf reads until the server's close frame and returns its code and
// reason; an error means the connection ended without one (a browser
// would report 1006).
func (c *client) closeOf(within time.Duration) (ws.StatusCode, string, error) {
	deadline := time.Now().Add(within)
	for {
		_ = c.conn.SetReadDeadline(deadline)
		msgs, err := wsutil.ReadServerMessage(c.r, nil)
		if err != nil {
			return 0, "", err
		}
		for _, m := range msgs {
			if m.OpCode == ws.OpClose {
				code, reason := ws.ParseCloseFrameData(m.Payload)
				return code, reason, nil
			}
		}
	}
}

// flood publishes payload to topic in pipelined batches until done
// reports true or the deadline passes; it returns how many were
// acknowledged.
func flood(t testing.TB, addr, topic, payload string, within time.Duration, done func() bool) int {
	t.Helper()
	p := dialPublisher(t, "tcp", addr)
	defer p.conn.Close()
	cmd := resp.AppendArray(nil, []byte("PUBLISH"), []byte(topic), []byte(payload))
	const batch = 32
	buf := make([]byte, 0, batch*len(cmd))
	for range batch {
		buf = append(buf, cmd...)
	}
	acked := 0
	deadline := time.Now().Add(within)
	for !done() {
		if time.Now().After(deadline) {
			t.Fatalf("condition not reached after %d publishes in %v", acked, within)
		}
		p.write(buf)
		for range batch {
			if l := p.line(); !strings.HasPrefix(l, ":") {
				t.Fatalf("publish reply %q", l)
			}
			acked++
		}
	}
	return acked
}

// waitStat polls a server counter until ok, or fails after 10 s.
func waitStat(t testing.TB, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestSlowConsumersReceive1013: 50 subscribers stop reading, are cut off
// at --max-outbound, then read again: every one receives close 1013
// "slow consumer" (after the frames already in its socket), none a
// truncated frame or a bare EOF.
func TestSlowConsumersReceive1013(t *testing.T) {
	const n = 50
	s := startServer(t, func(o *server.Options) {
		o.MaxOutbound = 64 << 10
		o.WriteTimeout = 30 * time.Second // the test reads the 50 one after the other
	})
	clients := make([]*client, n)
	for i := range clients {
		clients[i] = dialSmall(t, s.opts.Listen)
		clients[i].subscribe("1", `subscription { events(topic: "slow") { seq body } }`, nil)
	}
	s.waitSubs(t, n)
	payload := fmt.Sprintf(`{"seq":1,"body":%q}`, strings.Repeat("x", 8<<10))
	flood(t, s.opts.PublishListen, "slow", payload, 60*time.Second, func() bool { return s.Stats().SlowConsumers >= n })
	got := 0
	for i, c := range clients {
		code, reason, err := c.closeOf(10 * time.Second)
		switch {
		case err != nil:
			t.Errorf("client %d: no close frame: %v", i, err)
		case code != proto.CloseTryAgainLater || reason != "slow consumer":
			t.Errorf("client %d: close %d %q, want 1013 \"slow consumer\"", i, code, reason)
		default:
			got++
		}
	}
	if got < n*99/100 {
		t.Fatalf("%d of %d slow consumers received 1013", got, n)
	}
	waitStat(t, "the cut connections to close", func() bool { return s.Stats().Connections == 0 })
}

// TestCloseCodeArrivesWithInputInFlight: a client that keeps sending
// while the server closes it (rate limit 4429, bad request 4400) still
// receives the close code, not a reset: the server lingers, reading and
// discarding, until the client's close frame or EOF. 20 runs of each.
func TestCloseCodeArrivesWithInputInFlight(t *testing.T) {
	s := startServer(t, func(o *server.Options) {
		o.Security.Limits.MessagesPerConn = ratelimit.Limit{Rate: 50, Burst: 50}
	})
	for _, tc := range []struct {
		name  string
		first string // sent once before the stream
		code  ws.StatusCode
	}{
		{"rate limit", "", proto.CloseTooManyInitRequests},
		{"bad request", `{"type":"no such type"}`, proto.CloseBadRequest},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for run := range 20 {
				c := connect(t, s.opts.Listen)
				if tc.first != "" {
					c.send(tc.first)
				}
				var stop atomic.Bool
				var wg sync.WaitGroup
				wg.Add(1)
				go func() { // keeps input in flight until the close frame is read
					defer wg.Done()
					frame := ws.MaskFrame(ws.NewTextFrame([]byte(`{"type":"ping"}`)))
					for !stop.Load() {
						if ws.WriteFrame(c.conn, frame) != nil {
							return
						}
					}
				}()
				code, reason, err := c.closeOf(10 * time.Second)
				stop.Store(true)
				c.conn.Close()
				wg.Wait()
				if err != nil {
					t.Fatalf("run %d: no close frame (a browser sees 1006): %v", run, err)
				}
				if code != tc.code {
					t.Fatalf("run %d: close %d %q, want %d", run, code, reason, tc.code)
				}
			}
		})
	}
}

// TestPeerCloseEndsLinger: after the close handshake (the client answers
// the close frame) the server closes the TCP connection at once instead
// of waiting for the linger deadline.
func TestPeerCloseEndsLinger(t *testing.T) {
	s := startServer(t, nil)
	c := connect(t, s.opts.Listen)
	c.send(`{"type":"no such type"}`)
	if code, _, err := c.closeOf(5 * time.Second); err != nil || code != proto.CloseBadRequest {
		t.Fatalf("close %d, %v; want 4400", code, err)
	}
	start := time.Now()
	if err := wsutil.WriteClientMessage(c.conn, ws.OpClose, ws.NewCloseFrameBody(proto.CloseBadRequest, "")); err != nil {
		t.Fatal(err)
	}
	_ = c.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.r.ReadByte(); err != io.EOF {
		t.Fatalf("after the close handshake: read %v, want EOF", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("the server closed %v after the client's close frame; want at once (linger is for silent peers)", d)
	}
}

// TestLingerDeadline: a client that neither answers the close frame nor
// closes its socket is closed after the linger deadline, not held.
func TestLingerDeadline(t *testing.T) {
	s := startServer(t, nil)
	c := connect(t, s.opts.Listen)
	c.send(`{"type":"no such type"}`)
	if code, _, err := c.closeOf(5 * time.Second); err != nil || code != proto.CloseBadRequest {
		t.Fatalf("close %d, %v; want 4400", code, err)
	}
	_ = c.conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.r.ReadByte(); err != io.EOF {
		t.Fatalf("read %v, want EOF (the server's FIN after its close frame)", err)
	}
	waitStat(t, "the lingering connection to close", func() bool { return s.Stats().Connections == 0 })
}

// TestPingFloodWithoutReading: a client that floods WebSocket pings and
// never reads the pongs is cut off at --max-outbound (pongs count like any
// output) and the server's held output stays bounded; with
// --limit-messages on, pings count as messages and the flood gets 4429.
func TestPingFloodWithoutReading(t *testing.T) {
	t.Run("outbound cap", func(t *testing.T) {
		const maxOutbound = 256 << 10
		s := startServer(t, func(o *server.Options) { o.MaxOutbound = maxOutbound })
		c := dialSmall(t, s.opts.Listen)
		var pings bytes.Buffer // 64 pings per write
		for range 64 {
			_ = ws.WriteFrame(&pings, ws.MaskFrame(ws.NewPingFrame([]byte(strings.Repeat("p", 125)))))
		}
		var maxHeld atomic.Int64
		done := make(chan struct{})
		go func() {
			defer close(done)
			for {
				if _, err := c.conn.Write(pings.Bytes()); err != nil {
					return
				}
				maxHeld.Store(max(maxHeld.Load(), s.Stats().OutboundHeld))
			}
		}()
		waitStat(t, "the ping flooder to be cut as a slow consumer", func() bool { return s.Stats().SlowConsumers == 1 })
		select {
		case <-done: // the server closed the connection: writes fail
		case <-time.After(10 * time.Second):
			t.Fatal("the flooding connection is still open 10 s after the cut")
		}
		if h := maxHeld.Load(); h > 2*maxOutbound {
			t.Fatalf("server held %d outbound bytes for one flooder; cap %d", h, maxOutbound)
		}
		waitStat(t, "the flooder's connection to close", func() bool { return s.Stats().Connections == 0 })
	})
	t.Run("message rate", func(t *testing.T) {
		s := startServer(t, func(o *server.Options) {
			o.Security.Limits.MessagesPerConn = ratelimit.Limit{Rate: 100, Burst: 100}
		})
		c := connect(t, s.opts.Listen)
		var stop atomic.Bool
		go func() {
			ping := ws.MaskFrame(ws.NewPingFrame(nil))
			for !stop.Load() && ws.WriteFrame(c.conn, ping) == nil {
			}
		}()
		defer stop.Store(true)
		code, _, err := c.closeOf(10 * time.Second)
		if err != nil || code != proto.CloseTooManyInitRequests {
			t.Fatalf("ping flood: close %d, %v; want 4429", code, err)
		}
	})
}

// TestWriteStallCut: a socket that takes no byte for --write-timeout is
// cut like a slow consumer even below --max-outbound, and the client,
// reading again, receives 1013.
func TestWriteStallCut(t *testing.T) {
	s := startServer(t, func(o *server.Options) {
		o.MaxOutbound = 64 << 20 // the cap is not what cuts it
		o.WriteTimeout = time.Second
	})
	c := dialSmall(t, s.opts.Listen)
	c.subscribe("1", `subscription { events(topic: "stall") { seq body } }`, nil)
	s.waitSubs(t, 1)
	payload := fmt.Sprintf(`{"seq":1,"body":%q}`, strings.Repeat("x", 4<<10))
	flood(t, s.opts.PublishListen, "stall", payload, 30*time.Second, func() bool { return s.Stats().OutboundHeld > 0 })
	waitStat(t, "the write stall to cut the connection as a slow consumer", func() bool {
		st := s.Stats()
		return st.WriteStalls == 1 && st.SlowConsumers == 1
	})
	code, reason, err := c.closeOf(10 * time.Second)
	if err != nil || code != proto.CloseTryAgainLater || reason != "slow consumer" {
		t.Fatalf("close %d %q, %v; want 1013 \"slow consumer\"", code, reason, err)
	}
}

// TestGlobalOutboundBudget: many subscribers that never read, with large
// events, cannot take the server past --max-outbound-total: the ones
// holding the most are cut (1013), and a subscriber that reads gets every
// event in order meanwhile.
func TestGlobalOutboundBudget(t *testing.T) {
	const (
		stalled = 40
		budget  = 8 << 20
		events  = 400
	)
	s := startServer(t, func(o *server.Options) {
		o.MaxOutbound = 4 << 20 // 40 x 4 MiB would be 160 MiB without the budget
		o.MaxOutboundTotal = budget
		o.WriteTimeout = time.Minute
	})
	for range stalled {
		c := dialSmall(t, s.opts.Listen)
		c.subscribe("1", `subscription { events(topic: "big") { seq body } }`, nil)
	}
	good := connect(t, s.opts.Listen)
	good.subscribe("1", `subscription { events(topic: "big") { seq } }`, nil)
	s.waitSubs(t, stalled+1)

	var maxHeld atomic.Int64
	stopSampling := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		for {
			select {
			case <-stopSampling:
				return
			case <-time.After(time.Millisecond):
				maxHeld.Store(max(maxHeld.Load(), s.Stats().OutboundHeld))
			}
		}
	}()
	readErr := make(chan error, 1)
	go func() {
		for i := 1; i <= events; i++ {
			m, err := good.read()
			if err != nil {
				readErr <- fmt.Errorf("event %d: %w", i, err)
				return
			}
			if want := fmt.Sprintf(`{"id":"1","type":"next","payload":{"data":{"events":{"seq":%d}}}}`, i); m != want {
				readErr <- fmt.Errorf("got %s, want %s", m, want)
				return
			}
		}
		readErr <- nil
	}()
	p := dialPublisher(t, "tcp", s.opts.PublishListen)
	body := strings.Repeat("x", 64<<10)
	go func() {
		w := bufio.NewWriter(p.conn)
		for i := 1; i <= events; i++ {
			_, _ = w.Write(resp.AppendArray(nil, []byte("PUBLISH"), []byte("big"), fmt.Appendf(nil, `{"seq":%d,"body":%q}`, i, body)))
		}
		_ = w.Flush()
	}()
	for range events {
		p.line()
	}
	if err := <-readErr; err != nil {
		t.Fatalf("the reading subscriber: %v", err)
	}
	close(stopSampling)
	<-sampled
	st := s.Stats()
	if st.SlowConsumers == 0 {
		t.Fatalf("nobody was cut: %+v", st)
	}
	// The total is checked after each flush: frames appended since the
	// last one (the dispatcher's 16 MiB flush budget, in buffers of up to
	// twice their length) may overshoot it. Without the budget these 40
	// hold ~200 MB.
	if h := maxHeld.Load(); h > budget+2*16<<20 {
		t.Fatalf("held %d bytes, budget %d", h, budget)
	}
	t.Logf("max held %d bytes (budget %d), %d cut", maxHeld.Load(), budget, st.SlowConsumers)
}
