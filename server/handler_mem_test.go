package server_test

import (
	"net/http/httptest"
	"testing"
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
	connMemory(b, s, ts.Listener.Addr().String())
}
