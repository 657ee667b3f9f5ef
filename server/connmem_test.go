package server_test

import (
	"bytes"
	"io"
	"net"
	"runtime"
	"testing"
	"time"

	"github.com/gobwas/ws"
)

const rawUpgrade = "GET /graphql HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
	"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: graphql-transport-ws\r\n\r\n"

func rawFrame(msg string) []byte {
	var b bytes.Buffer
	_ = ws.WriteFrame(&b, ws.MaskFrame(ws.NewTextFrame([]byte(msg))))
	return b.Bytes()
}

// BenchmarkConnMemory opens b.N subscribed connections over raw sockets
// and reports the heap the server keeps per connection (live-B/conn) and
// what it allocated to get there (alloc-B/conn, garbage included; the
// small raw client adds a few hundred bytes). -benchtime=2000x.
func BenchmarkConnMemory(b *testing.B) {
	s := startServer(b, nil)
	connMemory(b, s, s.opts.Listen)
}

// connMemory is the body of the connection-memory benchmarks: b.N
// subscribed raw connections to addr, served by s; it reports the heap
// kept (live-B/conn), the goroutine stacks kept (stack-B/conn) and the
// bytes allocated (alloc-B/conn) per connection.
func connMemory(b *testing.B, s *testServer, addr string) {
	b.Helper()
	hello := append([]byte(rawUpgrade), rawFrame(`{"type":"connection_init"}`)...)
	hello = append(hello, rawFrame(`{"id":"1","type":"subscribe","payload":{"query":"subscription($t: String!) { events(topic: $t) { seq body } }","variables":{"t":"mem"}}}`)...)
	conns := make([]net.Conn, 0, b.N)
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	b.ResetTimer()
	buf := make([]byte, 512)
	for i := 0; i < b.N; i++ {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			b.Fatal(err)
		}
		conns = append(conns, c)
		if _, err := c.Write(hello); err != nil {
			b.Fatal(err)
		}
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := io.ReadAtLeast(c, buf, 1); err != nil {
			b.Fatal(err)
		}
	}
	s.waitSubs(b, int64(b.N))
	b.StopTimer()
	runtime.GC()
	runtime.ReadMemStats(&after)
	b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/float64(b.N), "live-B/conn")
	b.ReportMetric(float64(after.StackInuse-before.StackInuse)/float64(b.N), "stack-B/conn")
	b.ReportMetric(float64(after.TotalAlloc-before.TotalAlloc)/float64(b.N), "alloc-B/conn")
}
