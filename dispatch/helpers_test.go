package dispatch

import (
	"log/slog"
	"testing"

	"github.com/fraised/fraised/internal/outbox"
)

// Test defaults: the server's (server.DefaultRingSize, DefaultRingBytes,
// DefaultMaxOutbound).
const (
	testRingSize    = 1 << 16
	testRingBytes   = 16 << 20
	testMaxOutbound = 4 << 20
)

// nopOwner is a connection that is never hung up or cut in these tests.
type nopOwner struct{}

func (nopOwner) Hangup()        {}
func (nopOwner) CutSlow(string) {}

// newTestDispatcher returns a dispatcher (not running) with the server's
// defaults and its writer (not running either: benchmark sockets never
// block).
func newTestDispatcher(tb testing.TB, ringSize int) (*Dispatcher, *outbox.Writer) {
	tb.Helper()
	log := slog.New(slog.DiscardHandler)
	w, err := outbox.NewWriter(log)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(w.Stop)
	return New(Config{RingSize: ringSize, RingBytes: testRingBytes, MaxOutbound: testMaxOutbound, Writer: w, Log: log}), w
}

// newOut returns an outbox writing to fd (-1: never written).
func newOut(fd int, w *outbox.Writer, framed bool) *outbox.Outbox {
	o := &outbox.Outbox{}
	o.Init(fd, w, nopOwner{})
	if framed {
		o.SetFramer(outbox.WebSocket{})
	}
	return o
}
