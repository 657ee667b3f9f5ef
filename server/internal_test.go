package server

import (
	"bytes"
	"testing"

	"github.com/gobwas/ws"
	"github.com/panjf2000/gnet/v2"
)

// TestSessionCloseLingers: when the session closes the connection (a
// second connection_init: 4429), the adapter writes the close frame,
// handles no message that followed in the same read, discards input
// while lingering and closes on the peer's close frame.
func TestSessionCloseLingers(t *testing.T) {
	s := newFuzzServer(t)
	fd, peer := socketpair(t)
	fc := &fakeConn{fd: fd}
	newHTTPConn(s, fc)
	fc.in = []byte(upgradeRequest)
	s.OnTraffic(fc)
	fc.in = append(fc.in, maskedText(`{"type":"connection_init"}`)...)
	fc.in = append(fc.in, maskedText(`{"type":"connection_init"}`)...)
	fc.in = append(fc.in, maskedText(`{"type":"ping"}`)...)
	s.OnTraffic(fc)
	c := wsOf(fc)
	if c == nil || !c.closing.Load() || fc.closed {
		t.Fatalf("after the second init: want a close frame, then lingering (closed %v)", fc.closed)
	}
	buf := make([]byte, 4096)
	n, _ := peer.Read(buf)
	out := buf[:n]
	i := bytes.Index(out, []byte("\r\n\r\n"))
	r := bytes.NewReader(out[i+4:])
	var frames []ws.Frame
	for r.Len() > 0 {
		f, err := ws.ReadFrame(r)
		if err != nil {
			t.Fatal(err)
		}
		frames = append(frames, f)
	}
	if len(frames) != 2 || string(frames[0].Payload) != `{"type":"connection_ack"}` || frames[1].Header.OpCode != ws.OpClose {
		t.Fatalf("want the ack then a close frame (no pong), got %d frames: %v", len(frames), frames)
	}
	if code, _ := ws.ParseCloseFrameData(frames[1].Payload); code != 4429 {
		t.Fatalf("close code %d, want 4429", code)
	}
	// Input the client sent meanwhile is discarded; its close frame ends
	// the connection.
	fc.in = append(fc.in, maskedText(`{"type":"ping"}`)...)
	if a := s.OnTraffic(fc); a != gnet.None || len(fc.in) != 0 {
		t.Fatalf("lingering: action %v, %d bytes left; want input discarded and the connection open", a, len(fc.in))
	}
	var b bytes.Buffer
	_ = ws.WriteFrame(&b, ws.MaskFrame(ws.NewCloseFrame(ws.NewCloseFrameBody(4429, ""))))
	fc.in = append(fc.in, b.Bytes()...)
	if a := s.OnTraffic(fc); a != gnet.Close {
		t.Fatalf("the peer's close frame: action %v, want close", a)
	}
}
