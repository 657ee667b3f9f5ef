package server

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/gobwas/ws"
)

// FuzzNetConnInput feeds arbitrary bytes, in two writes, to a Handler
// connection (netConn) after its upgrade: the frame reader, fragments,
// control frames, lingering and the session behind them. The connection
// must end once the peer closes, whatever it sent.
func FuzzNetConnInput(f *testing.F) {
	f.Add(maskedText(`{"type":"connection_init"}`))
	f.Add(append(maskedText(`{"type":"connection_init"}`), maskedText(`{"id":"1","type":"subscribe","payload":{"query":"subscription { events(topic: \"x\") { seq } }"}}`)...))
	f.Add(append(maskedText(`{"type":"connection_init"}`), maskedText(`{"id":"1","type":"subscribe","payload":{"query":"{ __typename }"}}`)...))
	f.Add(frame(ws.OpPing, true, []byte("p")))
	f.Add(append(frame(ws.OpText, false, []byte(`{"type":`)), frame(ws.OpContinuation, true, []byte(`"ping"}`))...))
	f.Add(frame(ws.OpClose, true, []byte{0x03, 0xe8, 'b', 'y', 'e'}))
	f.Add(frame(ws.OpBinary, true, []byte{1, 2, 3}))
	f.Add([]byte("\x81\x7f\xff\xff\xff\xff\xff\xff\xff\xff"))
	s := newFuzzServer(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		srvSide, cli := net.Pipe()
		go func() { _, _ = io.Copy(io.Discard, cli) }()
		c := newNetConn(s, srvSide, httptest.NewRequest("GET", "/graphql", nil), "")
		done := make(chan struct{})
		go func() { c.serve(bufio.NewReader(srvSide)); close(done) }()
		half := len(data) / 2
		_, _ = cli.Write(data[:half])
		_, _ = cli.Write(data[half:])
		_ = cli.Close()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatal("the connection did not end after the peer closed")
		}
		s.d.DiscardQueued()
	})
}

// frame is a masked client frame.
func frame(op ws.OpCode, fin bool, payload []byte) []byte {
	var b bytes.Buffer
	_ = ws.WriteFrame(&b, ws.MaskFrame(ws.NewFrame(op, fin, payload)))
	return b.Bytes()
}
