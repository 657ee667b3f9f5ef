package server

import (
	"bytes"
	"testing"

	"github.com/gobwas/ws"
	"github.com/panjf2000/gnet/v2"

	"github.com/fraised/fraised/internal/wsread"
)

// lingering returns a connection that sent its close frame and lingers.
func lingering(t *testing.T, s *Server) (*wsConn, *fakeConn) {
	fd, peer := socketpair(t)
	go func() { _, _ = bytes.NewBuffer(nil).ReadFrom(peer) }()
	fc := &fakeConn{fd: fd}
	newHTTPConn(s, fc)
	fc.in = []byte(upgradeRequest)
	s.OnTraffic(fc)
	c := wsOf(fc)
	if c == nil || c.phase != phaseWS {
		t.Fatal("valid upgrade refused")
	}
	c.closeWith(4400, "test")
	return c, fc
}

func maskedFrame(op ws.OpCode, payload []byte) []byte {
	var b bytes.Buffer
	_ = ws.WriteFrame(&b, ws.MaskFrame(ws.NewFrame(op, true, payload)))
	return b.Bytes()
}

// FuzzLinger feeds arbitrary input to a lingering connection, split at an
// arbitrary point: it must never panic, must consume everything but a
// partial frame header, and must reach the same outcome (closed by the
// peer's close frame or not, bytes discarded) as when the input arrives in
// one read.
func FuzzLinger(f *testing.F) {
	f.Add(0, maskedText(`{"type":"ping"}`))
	f.Add(3, append(maskedText(`{"type":"ping"}`), maskedFrame(ws.OpClose, []byte{0x11, 0x30})...))
	f.Add(7, append(maskedFrame(ws.OpText, bytes.Repeat([]byte("x"), 70000)), maskedFrame(ws.OpClose, nil)...))
	f.Add(1, []byte{0x81, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff})
	f.Add(2, []byte("\xc1\x80garbage after a header with reserved bits"))
	s := newFuzzServer(f)
	f.Fuzz(func(t *testing.T, split int, data []byte) {
		whole, wfc := lingering(t, s)
		wfc.in = append(wfc.in, data...)
		wantAction := whole.onTraffic(wfc)
		wantLeft := len(wfc.in)
		whole.onClose()

		c, fc := lingering(t, s)
		if len(data) > 0 {
			split = (split%len(data) + len(data)) % len(data)
		} else {
			split = 0
		}
		fc.in = append(fc.in, data[:split]...)
		action := c.onTraffic(fc)
		if action == gnet.None {
			fc.in = append(fc.in, data[split:]...)
			action = c.onTraffic(fc)
		}
		defer c.onClose()
		if action != wantAction {
			t.Fatalf("split at %d: action %v, in one read %v", split, action, wantAction)
		}
		if action == gnet.None && len(fc.in) != wantLeft {
			t.Fatalf("split at %d: %d bytes left, in one read %d", split, len(fc.in), wantLeft)
		}
		if action == gnet.None && len(fc.in) >= ws.MaxHeaderSize {
			t.Fatalf("%d bytes left unconsumed while lingering; only a partial header may wait", len(fc.in))
		}
	})
}

// TestLingerInputCap: a lingering peer that keeps streaming is closed
// once wsread.MaxLingerInput bytes were discarded, not read forever.
func TestLingerInputCap(t *testing.T) {
	s := newFuzzServer(t)
	c, fc := lingering(t, s)
	frame := maskedText(`{"type":"ping"}`)
	fed := 0
	for fed <= wsread.MaxLingerInput {
		fc.in = append(fc.in, frame...)
		fed += len(frame)
		if a := c.onTraffic(fc); a != gnet.None {
			if fed <= wsread.MaxLingerInput {
				t.Fatalf("closed after %d bytes, cap %d", fed, wsread.MaxLingerInput)
			}
			return
		}
	}
	fc.in = append(fc.in, frame...)
	if a := c.onTraffic(fc); a != gnet.Close {
		t.Fatalf("still lingering after %d bytes (cap %d)", fed+len(frame), wsread.MaxLingerInput)
	}
}
