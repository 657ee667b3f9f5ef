package server

import (
	"bytes"
	"testing"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"
	"github.com/panjf2000/gnet/v2"
)

// TestInternalErrorCloses4500: a panic while handling a message closes
// that connection with 4500 and nothing else.
func TestInternalErrorCloses4500(t *testing.T) {
	s := newFuzzServer(t)
	fd, peer := socketpair(t)
	fc := &fakeConn{fd: fd}
	c := newWSConn(s, fc)
	fc.in = []byte(upgradeRequest)
	c.onTraffic(fc)
	testHookMessage = func() { panic("boom") }
	defer func() { testHookMessage = nil }()
	fc.in = append(fc.in, maskedText(`{"type":"connection_init"}`)...)
	c.onTraffic(fc)
	if !c.closing.Load() || fc.closed {
		t.Fatalf("after a panic: closing %v, closed %v; want a close frame, then lingering", c.closing.Load(), fc.closed)
	}
	buf := make([]byte, 4096)
	n, _ := peer.Read(buf)
	out := buf[:n]
	i := bytes.Index(out, []byte("\r\n\r\n"))
	frames, err := wsutil.ReadServerMessage(bytes.NewReader(out[i+4:]), nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(frames) == 0 || frames[0].OpCode != ws.OpClose {
		t.Fatalf("want a close frame, got %v", frames)
	}
	if code, _ := ws.ParseCloseFrameData(frames[0].Payload); code != 4500 {
		t.Fatalf("close code %d, want 4500", code)
	}
	// Input the client sent meanwhile is discarded; its close frame ends
	// the connection.
	fc.in = append(fc.in, maskedText(`{"type":"ping"}`)...)
	if a := c.onTraffic(fc); a != gnet.None || len(fc.in) != 0 {
		t.Fatalf("lingering: action %v, %d bytes left; want input discarded and the connection open", a, len(fc.in))
	}
	var b bytes.Buffer
	_ = ws.WriteFrame(&b, ws.MaskFrame(ws.NewCloseFrame(ws.NewCloseFrameBody(4500, ""))))
	fc.in = append(fc.in, b.Bytes()...)
	if a := c.onTraffic(fc); a != gnet.Close {
		t.Fatalf("the peer's close frame: action %v, want close", a)
	}
}
