package wsread

import (
	"bytes"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/gobwas/ws"

	"github.com/fraised/fraised/proto"
)

// recorder is a Conn that records what the reader tells it.
type recorder struct {
	events  []string
	closing bool
	written bool // PeerClose's answer: our close frame is written
}

func (r *recorder) Message(b []byte)    { r.events = append(r.events, "msg "+string(b)) }
func (r *recorder) Ping(payload []byte) { r.events = append(r.events, "ping "+string(payload)) }
func (r *recorder) Closing() bool       { return r.closing }
func (r *recorder) PeerClose() bool {
	r.events = append(r.events, "peer-close")
	return r.written
}
func (r *recorder) Close(code ws.StatusCode, reason string) {
	if r.closing {
		return
	}
	r.closing = true
	r.events = append(r.events, fmt.Sprintf("close %d %s", code, reason))
}

// clientFrame is a masked client frame.
func clientFrame(op ws.OpCode, fin bool, payload string) []byte {
	var b bytes.Buffer
	_ = ws.WriteFrame(&b, ws.MaskFrame(ws.NewFrame(op, fin, []byte(payload))))
	return b.Bytes()
}

// serverFrame is an unmasked frame, as a broken client might send.
func serverFrame(op ws.OpCode, payload string) []byte {
	var b bytes.Buffer
	_ = ws.WriteFrame(&b, ws.NewFrame(op, true, []byte(payload)))
	return b.Bytes()
}

func cat(frames ...[]byte) []byte { return slices.Concat(frames...) }

const testMax = 64

// run feeds in to a fresh Reader in one call.
func run(in []byte) (*recorder, int) {
	var r Reader
	r.Init(testMax)
	c := &recorder{}
	n := r.Frames(slices.Clone(in), c)
	return c, n
}

func TestFrames(t *testing.T) {
	long := strings.Repeat("x", testMax+1)
	for _, tt := range []struct {
		name string
		in   []byte
		want []string
	}{
		{"text", clientFrame(ws.OpText, true, `{"type":"ping"}`), []string{`msg {"type":"ping"}`}},
		{"two texts", cat(clientFrame(ws.OpText, true, "a"), clientFrame(ws.OpText, true, "b")), []string{"msg a", "msg b"}},
		{"fragments with a ping between", cat(clientFrame(ws.OpText, false, "he"), clientFrame(ws.OpPing, true, "p"),
			clientFrame(ws.OpContinuation, false, "ll"), clientFrame(ws.OpContinuation, true, "o")), []string{"ping p", "msg hello"}},
		{"pong ignored", cat(clientFrame(ws.OpPong, true, "x"), clientFrame(ws.OpText, true, "a")), []string{"msg a"}},
		{"binary", clientFrame(ws.OpBinary, true, "\x01"), []string{"close 1003 " + ReasonBinary}},
		{"unmasked", serverFrame(ws.OpText, "a"), []string{"close 1002 " + ReasonUnmasked}},
		{"too big", clientFrame(ws.OpText, true, long), []string{"close 1009 " + ReasonTooBig}},
		{"fragments too big", cat(clientFrame(ws.OpText, false, long[:40]), clientFrame(ws.OpContinuation, true, long[:40])),
			[]string{"close 1009 " + ReasonTooBig}},
		{"nested message", cat(clientFrame(ws.OpText, false, "a"), clientFrame(ws.OpText, true, "b")), []string{"close 1002 " + ReasonNested}},
		{"orphan continuation", clientFrame(ws.OpContinuation, true, "a"), []string{"close 1002 " + ReasonOrphan}},
		{"invalid UTF-8", clientFrame(ws.OpText, true, "a\xffb"), []string{"close 1007 " + ReasonBadUTF8}},
		{"UTF-8 split across fragments", cat(clientFrame(ws.OpText, false, "\xe2\x82"), clientFrame(ws.OpContinuation, true, "\xac")),
			[]string{"msg €"}},
		{"reserved bits", []byte{0xc1, 0x80, 0, 0, 0, 0}, []string{"close 1002 codec: reserved bits set without a negotiated extension"}},
		{"fragmented ping", clientFrame(ws.OpPing, false, "p"), []string{"close 1002 codec: fragmented or oversized control frame"}},
		{"close echoed", clientFrame(ws.OpClose, true, "\x0f\xa0bye"), []string{"peer-close", "close 4000 "}},
		{"empty close is 1000", clientFrame(ws.OpClose, true, ""), []string{"peer-close", "close 1000 "}},
		{"close code 1005 is invalid", clientFrame(ws.OpClose, true, "\x03\xed"), []string{"peer-close", "close 1002 " + ReasonBadClose}},
		{"one-byte close", clientFrame(ws.OpClose, true, "\x03"), []string{"peer-close", "close 1002 " + ReasonBadClose}},
		{"close reason not UTF-8", clientFrame(ws.OpClose, true, "\x03\xe8\xff"), []string{"peer-close", "close 1007 " + ReasonBadUTF8Close}},
		{"nothing after the close", cat(clientFrame(ws.OpBinary, true, ""), clientFrame(ws.OpText, true, "a")), []string{"close 1003 " + ReasonBinary}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c, _ := run(tt.in)
			if !slices.Equal(c.events, tt.want) {
				t.Fatalf("events %q, want %q", c.events, tt.want)
			}
		})
	}
}

// TestFramesWaitForWholeFrames: an incomplete frame is left unconsumed
// and Want names its size once its header is in.
func TestFramesWaitForWholeFrames(t *testing.T) {
	f := clientFrame(ws.OpText, true, "hello")
	var r Reader
	r.Init(testMax)
	c := &recorder{}
	if n := r.Frames(slices.Clone(f[:1]), c); n != 0 || r.Want() != 0 {
		t.Fatalf("partial header: consumed %d, want %d", n, r.Want())
	}
	if n := r.Frames(slices.Clone(f[:len(f)-1]), c); n != 0 || r.Want() != len(f) {
		t.Fatalf("partial payload: consumed %d, want %d (frame is %d)", n, r.Want(), len(f))
	}
	if n := r.Frames(slices.Clone(f), c); n != len(f) || r.Want() != 0 || !slices.Equal(c.events, []string{"msg hello"}) {
		t.Fatalf("whole frame: consumed %d, want %d, events %q", n, r.Want(), c.events)
	}
}

// TestFramesStopWhenClosing: once the connection is closing (another
// goroutine queued the close frame), no frame is handled.
func TestFramesStopWhenClosing(t *testing.T) {
	var r Reader
	r.Init(testMax)
	c := &recorder{closing: true}
	if n := r.Frames(clientFrame(ws.OpText, true, "a"), c); n != 0 || len(c.events) != 0 {
		t.Fatalf("consumed %d, events %q", n, c.events)
	}
}

func TestValidCloseCode(t *testing.T) {
	for code, want := range map[ws.StatusCode]bool{999: false, 1000: true, 1003: true, 1004: false, 1005: false, 1006: false,
		1007: true, 1014: true, 1015: false, 2999: false, 3000: true, 4999: true, 5000: false, proto.CloseTooManyInitRequests: true} {
		if got := validCloseCode(code); got != want {
			t.Errorf("validCloseCode(%d) = %v, want %v", code, got, want)
		}
	}
}

// stream feeds in to a Reader the way a transport does: in two reads
// split at split, keeping what Frames left for the next call. It returns
// the events and the bytes left unconsumed.
func stream(in []byte, split int) (*recorder, int) {
	var r Reader
	r.Init(testMax)
	c := &recorder{}
	var buf []byte
	for _, part := range [][]byte{in[:split], in[split:]} {
		buf = append(buf, part...)
		n := r.Frames(buf, c)
		buf = buf[n:]
	}
	return c, len(buf)
}

// FuzzFrames feeds arbitrary input, split at an arbitrary point, and in
// one call: the reader must never panic, must tell the connection the
// same things either way, must never deliver invalid UTF-8, and must
// leave unconsumed only an incomplete frame (or what follows the close).
func FuzzFrames(f *testing.F) {
	f.Add(0, clientFrame(ws.OpText, true, `{"type":"connection_init"}`))
	f.Add(3, cat(clientFrame(ws.OpText, false, "he"), clientFrame(ws.OpPing, true, "p"), clientFrame(ws.OpContinuation, true, "llo")))
	f.Add(5, cat(clientFrame(ws.OpText, true, "a"), clientFrame(ws.OpClose, true, "\x03\xe8ok"), clientFrame(ws.OpText, true, "b")))
	f.Add(1, []byte{0x81, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff})
	f.Add(2, serverFrame(ws.OpText, "unmasked"))
	f.Add(4, clientFrame(ws.OpText, true, "a\xffb"))
	f.Fuzz(func(t *testing.T, split int, in []byte) {
		if len(in) > 0 {
			split = (split%len(in) + len(in)) % len(in)
		} else {
			split = 0
		}
		whole, n := run(in)
		split2, left := stream(in, split)
		if !slices.Equal(whole.events, split2.events) {
			t.Fatalf("split at %d: events %q, in one call %q", split, split2.events, whole.events)
		}
		if !whole.closing && len(in)-n != left {
			t.Fatalf("split at %d: %d bytes left, in one call %d", split, left, len(in)-n)
		}
		for _, e := range whole.events {
			if msg, ok := strings.CutPrefix(e, "msg "); ok && (!isUTF8(msg) || len(msg) > testMax) {
				t.Fatalf("delivered %q", msg)
			}
		}
	})
}

func isUTF8(s string) bool { return strings.ToValidUTF8(s, "\uFFFD") == s }
