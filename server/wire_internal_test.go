package server

import (
	"bytes"
	"testing"
	"unicode/utf8"
)

// upgradedConn returns a connection past connection_init over a real
// socketpair whose peer end is drained.
func upgradedConn(t testing.TB) (*wsConn, *fakeConn) {
	s := newFuzzServer(t)
	fd, peer := socketpair(t)
	go func() { _, _ = bytes.NewBuffer(nil).ReadFrom(peer) }()
	fc := &fakeConn{fd: fd}
	newHTTPConn(s, fc)
	fc.in = []byte(upgradeRequest)
	s.OnTraffic(fc)
	fc.in = append(fc.in, maskedText(`{"type":"connection_init"}`)...)
	s.OnTraffic(fc)
	c := wsOf(fc)
	if c == nil || c.phase != phaseWS || !c.sess.Acked() {
		t.Fatal("connection not initialised")
	}
	return c, fc
}

// TestPingWithoutPayloadDoesNotAllocate: answering a ping without payload
// (the keep-alive of every graphql-ws client) allocates nothing, UTF-8
// check included.
func TestPingWithoutPayloadDoesNotAllocate(t *testing.T) {
	if raceDetector {
		t.Skip("allocation counts are not meaningful under the race detector")
	}
	c, fc := upgradedConn(t)
	ping := maskedText(`{"type":"ping"}`)
	in := make([]byte, 0, len(ping))
	if n := testing.AllocsPerRun(200, func() {
		fc.in = append(in[:0], ping...)
		c.onTraffic(fc)
	}); n != 0 {
		t.Fatalf("%v allocations per ping, want 0", n)
	}
	if c.phase != phaseWS {
		t.Fatal("connection closed by the pings")
	}
}

// BenchmarkUTF8CheckSubscribe is the cost of the RFC 6455 UTF-8 check on
// a typical subscribe message.
func BenchmarkUTF8CheckSubscribe(b *testing.B) {
	msg := []byte(`{"id":"6f1c2a7e-5d1b-4a8e-9c3f-2b7d8e1a0c55","type":"subscribe","payload":{"query":"subscription OnEvents($topic: String!) { events(topic: $topic) { seq ts body kind author { id name } tags } }","operationName":"OnEvents","variables":{"topic":"events.room-42"}}}`)
	b.SetBytes(int64(len(msg)))
	b.ReportAllocs()
	for b.Loop() {
		sinkBool = utf8.Valid(msg)
	}
}

var sinkBool bool
