package outbox

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"golang.org/x/sys/unix"

	"github.com/fraised/fraised/codec"
)

// testOwner counts what the outbox asks of its connection.
type testOwner struct {
	hangups atomic.Int32
	cuts    atomic.Int32
}

func (o *testOwner) Hangup()        { o.hangups.Add(1) }
func (o *testOwner) CutSlow(string) { o.cuts.Add(1) }

// newPair returns an outbox writing, framed, to one end of a non-blocking
// stream socketpair with a small send buffer, the other end, and the
// running writer.
func newPair(t *testing.T) (*Outbox, int, *Writer, *testOwner) {
	t.Helper()
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	_ = unix.SetsockoptInt(fds[0], unix.SOL_SOCKET, unix.SO_SNDBUF, 4096)
	w, err := NewWriter(slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	go w.Run()
	owner := &testOwner{}
	o := &Outbox{}
	o.Init(fds[0], w, owner)
	o.SetFramer(WebSocket{})
	t.Cleanup(func() {
		o.Close()
		w.Stop()
		unix.Close(fds[0])
		unix.Close(fds[1])
	})
	return o, fds[1], w, owner
}

// readAll reads fd until want bytes arrived or the deadline passed.
func readAll(t *testing.T, fd int, until func([]byte) bool) []byte {
	t.Helper()
	var got []byte
	buf := make([]byte, 64<<10)
	deadline := time.Now().Add(10 * time.Second)
	for !until(got) {
		if time.Now().After(deadline) {
			t.Fatalf("read %d bytes before the deadline", len(got))
		}
		n, err := unix.Read(fd, buf)
		if errors.Is(err, unix.EAGAIN) {
			time.Sleep(time.Millisecond)
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, buf[:n]...)
	}
	return got
}

// frames splits b into whole WebSocket frames; it fails on a torn one.
func frames(t *testing.T, b []byte) []ws.Header {
	t.Helper()
	hs, ok := tryFrames(b)
	if !ok {
		t.Fatalf("torn frame after %d whole ones", len(hs))
	}
	return hs
}

func TestWriterFinishesBlockedOutput(t *testing.T) {
	o, peer, w, _ := newPair(t)
	payload := bytes.Repeat([]byte("x"), 1000)
	const count = 500 // far past the socket buffers: the writer must finish
	want := 0
	for range count {
		n, _, ok := o.Deliver([]byte(`"1"`), payload, 1<<20)
		if !ok {
			t.Fatal("output ended")
		}
		want += n
	}
	o.Flush()
	got := readAll(t, peer, func(b []byte) bool { return len(b) >= want })
	if hs := frames(t, got); len(hs) != count {
		t.Fatalf("%d frames, want %d", len(hs), count)
	}
	deadline := time.Now().Add(10 * time.Second)
	for w.Held() != 0 || o.HasPending() {
		if time.Now().After(deadline) {
			t.Fatalf("held %d bytes, pending %v after the peer read everything", w.Held(), o.HasPending())
		}
		time.Sleep(time.Millisecond)
	}
}

func TestCutFinishesThePartlyWrittenFrame(t *testing.T) {
	o, peer, _, _ := newPair(t)
	payload := bytes.Repeat([]byte("y"), 3000) // frames straddle the socket buffer
	for range 200 {
		o.Deliver([]byte(`"1"`), payload, 1<<20)
	}
	o.Flush()
	if !o.State().Blocked {
		t.Fatal("the socket took everything: the test needs a partly written frame")
	}
	if !o.Cut(ws.StatusCode(1013), "slow consumer") {
		t.Fatal("Cut reported output already ended")
	}
	if o.Cut(ws.StatusCode(1013), "again") {
		t.Fatal("a second Cut queued another close frame")
	}
	if _, _, ok := o.Deliver([]byte(`"1"`), payload, 1<<20); ok {
		t.Fatal("Deliver queued a frame after the close frame")
	}
	got := readAll(t, peer, func(b []byte) bool {
		hs, ok := tryFrames(b)
		return ok && len(hs) > 0 && hs[len(hs)-1].OpCode == ws.OpClose
	})
	hs := frames(t, got)
	if len(hs) >= 200 {
		t.Fatalf("%d frames arrived: the cut dropped none", len(hs))
	}
	for _, h := range hs[:len(hs)-1] {
		if h.OpCode != ws.OpText {
			t.Fatalf("frame %v before the close frame", h.OpCode)
		}
	}
}

// tryFrames is frames that reports a torn tail instead of failing.
func tryFrames(b []byte) ([]ws.Header, bool) {
	var hs []ws.Header
	for len(b) > 0 {
		h, n, err := codec.ParseHeader(b)
		if err != nil || n == 0 || int64(len(b)-n) < h.Length {
			return hs, false
		}
		hs = append(hs, h)
		b = b[n+int(h.Length):]
	}
	return hs, true
}

func TestPeerGoneHangsUp(t *testing.T) {
	o, peer, _, owner := newPair(t)
	unix.Close(peer)
	o.Deliver([]byte(`"1"`), []byte(`{}`), 0) // flushAt 0: write now
	if owner.hangups.Load() == 0 {
		t.Fatal("a write to a closed peer did not hang the connection up")
	}
	if o.HasPending() {
		t.Fatal("output to a gone peer is still pending")
	}
}

func TestClosedOutboxRefusesOutput(t *testing.T) {
	o, _, w, _ := newPair(t)
	o.Close()
	if o.Send([]byte("x")) || o.Append([]byte("x")) {
		t.Fatal("output queued after Close")
	}
	if !o.Closed() || w.Held() != 0 {
		t.Fatalf("closed %v, held %d", o.Closed(), w.Held())
	}
}

// lineFramer frames each message as one line: another protocol than
// WebSocket, to show the outbox frames through the Framer it is given.
type lineFramer struct{}

func (lineFramer) NextLen(id, payload []byte) int { return len(id) + 1 + len(payload) + 1 }
func (lineFramer) AppendNext(dst, id, payload []byte) []byte {
	return append(append(append(append(dst, id...), ':'), payload...), '\n')
}
func (lineFramer) AppendClose(dst []byte, code ws.StatusCode, reason string) []byte {
	return append(fmt.Appendf(dst, "close %d %s", code, reason), '\n')
}
func (lineFramer) Remainder(b []byte, n int) int {
	if i := bytes.IndexByte(b[n:], '\n'); i >= 0 {
		return i + 1
	}
	return len(b) - n
}

func TestOtherFramerFramesDeliveriesAndTheCut(t *testing.T) {
	o, peer, _, _ := newPair(t)
	o.SetFramer(lineFramer{})
	for range 2 {
		if n, _, ok := o.Deliver([]byte(`"1"`), []byte(`{}`), 0); !ok || n != 7 {
			t.Fatalf("Deliver appended %d bytes (ok %v), want 7", n, ok)
		}
	}
	o.Cut(ws.StatusCode(1013), "slow consumer")
	const want = "\"1\":{}\n\"1\":{}\nclose 1013 slow consumer\n"
	got := readAll(t, peer, func(b []byte) bool { return len(b) >= len(want) })
	if string(got) != want {
		t.Fatalf("peer read %q, want %q", got, want)
	}
}
