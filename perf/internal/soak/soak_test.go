package soak

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/fraised/fraised/perf/internal/wsframe"
)

func TestBitsetMissing(t *testing.T) {
	want, got := newBitset(200), newBitset(200)
	for _, i := range []int64{0, 63, 64, 199} {
		want.set(i)
	}
	got.set(63)
	got.set(100) // extra: not missing
	if n := got.missing(want); n != 3 {
		t.Fatalf("missing %d, want 3", n)
	}
	if !got.has(100) || got.has(0) {
		t.Fatal("has is wrong")
	}
}

func TestPayloads(t *testing.T) {
	p := eventPayload(nil, 42, 1000)
	if len(p) != 1000 {
		t.Fatalf("eventPayload: %d bytes, want 1000", len(p))
	}
	if seq, ok := wsframe.Seq(p); !ok || seq != 42 {
		t.Fatalf("eventPayload seq %d %v", seq, ok)
	}
	if p := eventPayload(nil, -1, 0); string(p) != `{"seq":-1,"ts":0,"body":""}` {
		t.Fatalf("eventPayload small: %s", p)
	}
	big := tailSeq(ringPayload)(nil, 7)
	if len(big) != ringPayload || !bytes.HasSuffix(big, []byte(`,"seq":7}`)) {
		t.Fatalf("tailSeq: %d bytes, ends %q", len(big), big[len(big)-12:])
	}
}

func TestStatusField(t *testing.T) {
	b := []byte("Name:\tfraised\nVmHWM:\t  2048 kB\nVmRSS:\t  1024 kB\n")
	if v := statusField(b, "VmRSS:"); v != 1024 {
		t.Fatalf("VmRSS %d", v)
	}
	if v := statusField(b, "VmHWM:"); v != 2048 {
		t.Fatalf("VmHWM %d", v)
	}
	if v := statusField(b, "VmSwap:"); v != 0 {
		t.Fatalf("VmSwap %d", v)
	}
}

func TestSelect(t *testing.T) {
	all, err := Select(Config{})
	if err != nil || len(all) != len(Scenarios()) {
		t.Fatalf("all: %d %v", len(all), err)
	}
	quick, _ := Select(Config{Quick: true})
	for _, s := range quick {
		if !s.Quick {
			t.Fatalf("%s is not in the subset", s.Name)
		}
	}
	one, err := Select(Config{Only: []string{"ring-bytes"}})
	if err != nil || len(one) != 1 || one[0].Name != "ring-bytes" {
		t.Fatalf("only: %v %v", one, err)
	}
	if _, err := Select(Config{Only: []string{"nope"}}); err == nil || !strings.Contains(err.Error(), "kill9-restart") {
		t.Fatalf("unknown scenario error %v should list the known ones", err)
	}
}

func TestReportShowsFailures(t *testing.T) {
	rs := []Result{
		{Name: "a", Pass: true, PeakKB: 2048, Codes: map[string]int{"1013": 3, "EOF": 5}},
		{Name: "b", Failures: []string{"lost 4 | events"}, Codes: map[string]int{}},
	}
	if got := rs[0].CodesString(); got != "EOF×5 1013×3" {
		t.Fatalf("codes %q", got)
	}
	md := Markdown(rs, "h", CanaryP99Limit)
	for _, want := range []string{"| a | PASS | 2.0MiB |", "| b | **FAIL** |", "- b: lost 4 | events"} {
		if !strings.Contains(md, want) {
			t.Fatalf("Markdown lacks %q:\n%s", want, md)
		}
	}
	if l := rs[1].Line(); !strings.HasPrefix(l, "FAIL b") || !strings.Contains(l, "MISSED: lost 4") {
		t.Fatalf("line %q", l)
	}
}

// serve accepts one connection on loopback and runs f on it.
func serve(t *testing.T, f func(net.Conn)) *net.TCPConn {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		c, err := ln.Accept()
		if err == nil {
			f(c)
		}
	}()
	c, err := dialTCP(nil, ln.Addr().String(), 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func TestPeekStateAndReadOutcome(t *testing.T) {
	hold := make(chan struct{})
	defer close(hold)
	open := serve(t, func(c net.Conn) { <-hold; c.Close() })
	if s := peekState(open); s != "open" {
		t.Fatalf("open connection: %s", s)
	}
	closed := serve(t, func(c net.Conn) {
		_, _ = io.WriteString(c, "HTTP/1.1 408 Request Timeout\r\nConnection: close\r\n\r\n")
		c.Close()
	})
	if s := readOutcome(closed, time.Now().Add(5*time.Second)); s != "HTTP 408+EOF" {
		t.Fatalf("outcome %q", s)
	}
	if s := peekState(closed); s != "EOF" {
		t.Fatalf("closed connection: %s", s)
	}
	held := serve(t, func(c net.Conn) { <-hold; c.Close() })
	if s := readOutcome(held, time.Now().Add(50*time.Millisecond)); s != "HELD" {
		t.Fatalf("held outcome %q", s)
	}
}

func closeFrame(code int, reason string) []byte {
	p := binary.BigEndian.AppendUint16(nil, uint16(code))
	return wsframe.AppendFrame(nil, wsframe.OpClose, append(p, reason...), false, [4]byte{})
}

func TestOutcome(t *testing.T) {
	next := wsframe.AppendFrame(nil, wsframe.OpText, []byte(`{"id":"1","type":"next","payload":{"data":{"events":{"seq":1}}}}`), false, [4]byte{})
	f := func(stream []byte, wantCode, wantReason string, wantEvents int) {
		t.Helper()
		conn := serve(t, func(c net.Conn) { _, _ = c.Write(stream); c.Close() })
		c := &wsClient{conn: conn, r: bufio.NewReader(conn)}
		code, reason, events := outcome(c, time.Now().Add(5*time.Second))
		if code != wantCode || reason != wantReason || events != wantEvents {
			t.Fatalf("outcome %q %q %d, want %q %q %d", code, reason, events, wantCode, wantReason, wantEvents)
		}
	}
	f(append(append([]byte{}, next...), closeFrame(1013, "slow consumer")...), "1013", "slow consumer", 1)
	f(next, "EOF", "", 1)
	f(next[:len(next)-3], "TRUNC", "", 0)
	f(closeFrame(1001, ""), "1001", "", 0)
}

// FuzzReadFrame: any byte stream from a server parses to frames or an
// error, never a panic or a frame longer than the limit.
func FuzzReadFrame(f *testing.F) {
	f.Add(closeFrame(1013, "slow consumer"))
	f.Add(wsframe.AppendFrame(nil, wsframe.OpText, bytes.Repeat([]byte("x"), 300), false, [4]byte{}))
	f.Add([]byte{0x81, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, b []byte) {
		c := &wsClient{r: bufio.NewReader(bytes.NewReader(b))}
		var buf []byte
		for {
			fr, nb, err := c.readFrame(buf)
			buf = nb
			if err != nil {
				if !errors.Is(err, io.EOF) && !errors.Is(err, errTruncated) && !strings.Contains(err.Error(), "bad frame header") {
					t.Fatalf("unexpected error %v", err)
				}
				return
			}
			if len(fr.payload) > maxClientFrame {
				t.Fatalf("frame of %d bytes", len(fr.payload))
			}
		}
	})
}

// TestPollFrameFinishesAStartedFrame: a frame that arrives in pieces
// slower than the poll (a loaded machine, a frame split across writes)
// is read whole by pollFrame; a bare read deadline that expires inside
// it ends in errTruncated, the "mid-frame" cut that the resume storm
// counted against the server, and loses the bytes already read.
func TestPollFrameFinishesAStartedFrame(t *testing.T) {
	next := wsframe.AppendFrame(nil, wsframe.OpText, []byte(`{"id":"1","type":"next","payload":{"data":{"events":{"seq":1}}}}`), false, [4]byte{})
	pieces := func(c net.Conn) {
		for _, p := range [][]byte{next[:1], next[1:10], next[10:]} {
			_, _ = c.Write(p)
			time.Sleep(250 * time.Millisecond)
		}
	}
	conn := serve(t, pieces)
	c := &wsClient{conn: conn, r: bufio.NewReader(conn)}
	var f frame
	var err error
	for start := time.Now(); time.Since(start) < 5*time.Second; {
		if f, _, err = c.pollFrame(nil, 100*time.Millisecond); !isTimeout(err) {
			break
		}
	}
	if err != nil || f.op != wsframe.OpText || !bytes.Equal(f.payload, next[2:]) {
		t.Fatalf("pollFrame: %q %v", f.payload, err)
	}
	conn = serve(t, pieces)
	c = &wsClient{conn: conn, r: bufio.NewReader(conn)}
	time.Sleep(50 * time.Millisecond) // the first byte is there
	_ = conn.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
	if _, _, err := c.readFrame(nil); !errors.Is(err, errTruncated) || !isTimeout(err) {
		t.Fatalf("a deadline inside a frame: %v, want errTruncated from a timeout", err)
	}
}
