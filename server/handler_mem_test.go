package server_test

import (
	"io"
	"net"
	"net/http/httptest"
	"runtime"
	"testing"
	"time"
)

// BenchmarkHandlerConnMemory is BenchmarkConnMemory for connections
// served by Handler on a net/http server (plain HTTP, so the raw client
// is the same): the heap the server keeps per subscribed connection, and
// the goroutine stacks (the read and writer goroutines net/http and the
// handler keep per connection; the gnet path has none). -benchtime=2000x.
func BenchmarkHandlerConnMemory(b *testing.B) {
	s := startServer(b, nil)
	ts := httptest.NewServer(s.Handler())
	defer ts.Close()
	addr := ts.Listener.Addr().String()
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
