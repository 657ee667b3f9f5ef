package server_test

import (
	"io"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gobwas/ws"

	"github.com/fraised/fraised/server"
)

// transports runs f on a connection to the main listener and on one to
// Handler (mounted on an httptest server), both with tweak applied.
func transports(t *testing.T, tweak func(*server.Options), f func(t *testing.T, c *client)) {
	t.Run("listener", func(t *testing.T) {
		s := startServer(t, tweak)
		f(t, connect(t, s.opts.Listen))
	})
	t.Run("handler", func(t *testing.T) {
		s := startServer(t, tweak)
		ts := httptest.NewServer(s.Handler())
		t.Cleanup(ts.Close)
		f(t, connect(t, strings.TrimPrefix(ts.URL, "http://")))
	})
}

// droppedWithin reports whether the server ended c's connection (EOF or
// an error on read) within limit, reading and discarding what it sends
// (pings, a close frame) meanwhile.
func droppedWithin(c *client, limit time.Duration) <-chan time.Duration {
	start := time.Now()
	done := make(chan time.Duration, 1)
	go func() {
		_ = c.conn.SetReadDeadline(start.Add(limit))
		_, err := io.Copy(io.Discard, c.r)
		if err != nil && strings.Contains(err.Error(), "timeout") {
			close(done) // still open at the limit
			return
		}
		done <- time.Since(start)
	}()
	return done
}

// TestTrickledFrameIsNotLiveness: a peer that sends a frame one byte at a
// time, never finishing it, is as idle as a silent one: the keep-alive
// drops it within a few intervals, on both transports. (Counting any
// input as life let a frame trickled at a byte per interval hold the
// connection for as long as --max-message allows.)
func TestTrickledFrameIsNotLiveness(t *testing.T) {
	const ka = 300 * time.Millisecond
	transports(t, func(o *server.Options) { o.KeepAlive, o.MaxMessage = ka, 1<<20 }, func(t *testing.T, c *client) {
		// A masked text frame announcing 70,000 payload bytes (a 64-bit
		// length: a 14-byte header), sent a byte every 250 ms: less than
		// two intervals apart, so each byte alone would look like life.
		var raw strings.Builder
		h := ws.Header{Fin: true, OpCode: ws.OpText, Masked: true, Mask: [4]byte{1, 2, 3, 4}, Length: 70000}
		if err := ws.WriteHeader(&raw, h); err != nil {
			t.Fatal(err)
		}
		raw.WriteString("xxxxxxxxxx") // and a few payload bytes
		dropped := droppedWithin(c, 10*time.Second)
		stop := make(chan struct{})
		defer close(stop)
		go func() {
			for i := 0; i < raw.Len(); i++ {
				if _, err := c.conn.Write([]byte{raw.String()[i]}); err != nil {
					return
				}
				select {
				case <-stop:
					return
				case <-time.After(250 * time.Millisecond):
				}
			}
		}()
		d, ok := <-dropped
		if !ok {
			t.Fatal("a peer trickling one frame was still connected after 10s (keep-alive 300ms)")
		}
		// The header alone takes 3.5 s: a drop within 3 s came from the
		// keep-alive, with the frame still unfinished.
		if d > 3*time.Second {
			t.Fatalf("dropped after %v: the trickled bytes counted as life", d)
		}
	})
}

// TestLingerDeadlineIsFixed: after the server's close frame a peer that
// keeps sending frames (pings here) and never its close frame is closed
// by the linger deadline counted from the close, not kept open while its
// input lasts (up to the 1 MiB linger budget), on both transports.
func TestLingerDeadlineIsFixed(t *testing.T) {
	transports(t, func(o *server.Options) { o.WriteTimeout = 500 * time.Millisecond }, func(t *testing.T, c *client) {
		c.send(`{"type":"no-such-type"}`) // 4400: the server closes
		_ = c.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		for { // the close frame, read raw: no close frame goes back
			f, err := ws.ReadFrame(c.r)
			if err != nil {
				t.Fatalf("reading the close frame: %v", err)
			}
			if f.Header.OpCode == ws.OpClose {
				break
			}
		}
		// The server shut its write side down after the close frame; it
		// has closed the socket when a write fails (reset).
		ping := ws.MaskFrame(ws.NewPingFrame([]byte("p")))
		start := time.Now()
		for {
			if err := ws.WriteFrame(c.conn, ping); err != nil {
				break
			}
			if time.Since(start) > 15*time.Second {
				t.Fatal("a lingering peer that streams pings was still connected after 15s")
			}
			time.Sleep(200 * time.Millisecond)
		}
		// The linger is 2 s after the close frame is written, plus the
		// write timeout on Handler; 8 s leaves room for a loaded machine.
		if d := time.Since(start); d > 8*time.Second {
			t.Fatalf("closed %v after the server's close frame: the linger deadline moved with the input", d)
		}
	})
}
