package wsread

import (
	"bytes"
	"slices"
	"testing"

	"github.com/gobwas/ws"
)

// peer is a PeerCloser whose close frame is written (or not).
type peer struct {
	written bool
	closes  int
}

func (p *peer) PeerClose() bool {
	p.closes++
	return p.written
}

// linger feeds in to a fresh Linger in two reads split at split, keeping
// what it left for the next, and returns the bytes left and whether it
// asked to close.
func linger(in []byte, split int, p *peer) (left int, closeNow bool) {
	var l Linger
	var buf []byte
	for _, part := range [][]byte{in[:split], in[split:]} {
		buf = append(buf, part...)
		n, c := l.Feed(buf, p)
		buf = buf[n:]
		if c {
			return len(buf), true
		}
	}
	return len(buf), false
}

func TestLingerSkipsPayloadsAndEndsOnTheCloseFrame(t *testing.T) {
	big := clientFrame(ws.OpText, true, string(bytes.Repeat([]byte("x"), 70000)))
	in := cat(big, clientFrame(ws.OpClose, true, "\x03\xe8"))
	for _, split := range []int{0, 1, 7, 100, len(big) - 1, len(big) + 1} {
		p := &peer{written: true}
		if left, closeNow := linger(in, split, p); !closeNow || p.closes != 1 {
			t.Fatalf("split %d: close %v after %d peer closes (%d left)", split, closeNow, p.closes, left)
		}
	}
	p := &peer{} // our close frame is not written yet: keep reading
	if _, closeNow := linger(in, 3, p); closeNow || p.closes != 1 {
		t.Fatalf("closed before our close frame was written (%d peer closes)", p.closes)
	}
}

func TestLingerDiscardAll(t *testing.T) {
	var l Linger
	l.DiscardAll()
	in := clientFrame(ws.OpClose, true, "")
	p := &peer{written: true}
	if n, closeNow := l.Feed(in, p); n != len(in) || closeNow || p.closes != 0 {
		t.Fatalf("consumed %d, close %v, %d peer closes: HTTP input is not frames", n, closeNow, p.closes)
	}
}

// TestLingerInputBudget: a peer that streams forever is cut once
// MaxLingerInput bytes were discarded, not read forever.
func TestLingerInputBudget(t *testing.T) {
	var l Linger
	frame := clientFrame(ws.OpText, true, `{"type":"ping"}`)
	fed := 0
	for fed <= MaxLingerInput {
		_, closeNow := l.Feed(frame, &peer{})
		fed += len(frame)
		if closeNow {
			if fed <= MaxLingerInput {
				t.Fatalf("cut after %d bytes, budget %d", fed, MaxLingerInput)
			}
			return
		}
	}
	if _, closeNow := l.Feed(frame, &peer{}); !closeNow {
		t.Fatalf("still lingering after %d bytes (budget %d)", fed+len(frame), MaxLingerInput)
	}
}

// FuzzLinger: any input, split anywhere, reaches the same outcome as in
// one read, and only a partial frame header is ever left unconsumed.
func FuzzLinger(f *testing.F) {
	f.Add(0, clientFrame(ws.OpText, true, `{"type":"ping"}`))
	f.Add(3, cat(clientFrame(ws.OpText, true, "a"), clientFrame(ws.OpClose, true, "\x11\x30")))
	f.Add(1, []byte{0x81, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff})
	f.Add(2, []byte("\xc1\x80garbage after a header with reserved bits"))
	f.Fuzz(func(t *testing.T, split int, in []byte) {
		if len(in) > 0 {
			split = (split%len(in) + len(in)) % len(in)
		} else {
			split = 0
		}
		var l Linger
		p1 := &peer{written: true}
		n, wantClose := l.Feed(slices.Clone(in), p1)
		p2 := &peer{written: true}
		left, closeNow := linger(in, split, p2)
		if closeNow != wantClose || p1.closes != p2.closes {
			t.Fatalf("split at %d: close %v (%d peer closes), in one read %v (%d)", split, closeNow, p2.closes, wantClose, p1.closes)
		}
		if !closeNow && (left != len(in)-n || left >= ws.MaxHeaderSize) {
			t.Fatalf("split at %d: %d bytes left (one read: %d); only a partial header may wait", split, left, len(in)-n)
		}
	})
}
