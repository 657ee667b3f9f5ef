package soak

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/fraised/fraised/perf/internal/respw"
	"github.com/fraised/fraised/perf/internal/wsframe"
)

// Bounds of the input abuses.
const (
	// stallWait is how long a stalled client waits for the server to close
	// it: longer than any sane read-timeout default (<= 30 s).
	stallWait = 45 * time.Second
	// floodGrowthLimit is the RSS growth (KiB) a write flood without reads
	// may cause: a connection's buffers are capped at a few MiB
	// (--max-outbound is 4 MiB), so 64 MiB allows sixteen of them.
	floodGrowthLimit = 64 << 10
	// stallGrowthPerConn is the RSS growth (KiB) one stalled partial
	// request of 1 MiB may cause: the bytes it sent, in a buffer that
	// grows by doubling; a server that copies them again fails.
	stallGrowthPerConn = 2 << 10
	// openBatch and openPause pace the idle flood: 2,000 connections/s
	// in all, 8/s per source address, far under the per-address limit.
	openBatch, openPause = 100, 50 * time.Millisecond
	// peekReads bounds how much peekState drains (256 x 4 KiB) from a
	// connection the server keeps writing to.
	peekReads = 256
	// driverFDSpare is what the driver keeps for itself under its limit.
	driverFDSpare = 500
	// freshWait bounds the wait for a new client to be served after a
	// flood (the server may need its idle timeout to shed the flood).
	freshWait = 45 * time.Second
)

// peekState reports, without blocking, whether the server closed conn:
// "open", "EOF", "RST" (pending input is drained and discarded).
func peekState(conn *net.TCPConn) string {
	rc, err := conn.SyscallConn()
	if err != nil {
		return "EOF"
	}
	state := "open"
	var buf [4096]byte
	_ = rc.Control(func(fd uintptr) {
		for range peekReads {
			n, _, err := unix.Recvfrom(int(fd), buf[:], unix.MSG_DONTWAIT)
			switch {
			case err == unix.EAGAIN:
				return
			case err != nil:
				state = "RST"
				return
			case n == 0:
				state = "EOF"
				return
			}
		}
	})
	return state
}

// countClosed counts the connections the server closed.
func countClosed(conns []*net.TCPConn) (closed int) {
	for _, c := range conns {
		if peekState(c) != "open" {
			closed++
		}
	}
	return closed
}

func closeAll(conns []*net.TCPConn) {
	for _, c := range conns {
		c.Close()
	}
}

// growth checks the RSS growth over the scenario's baseline.
func (e *Env) growth(limitKB int64, why string) {
	if g := e.Sampler.PeakKB() - e.Sampler.BaseKB(); g > limitKB {
		e.Fail("RSS grew %s > %s (%s)", mib(g), mib(limitKB), why)
	}
}

// fresh waits until a new well-behaved client is served: upgrade and
// connection_ack.
func (e *Env) fresh(limit time.Duration) {
	start := time.Now()
	var err error
	for time.Since(start) < limit && !e.done() {
		var c *wsClient
		if c, err = dialWS(nil, e.Child.WS, 0); err == nil {
			err = c.initAck()
			c.conn.Close()
			if err == nil {
				e.Fig("fresh_client_after", "%.1fs", time.Since(start).Seconds())
				return
			}
		}
		time.Sleep(time.Second)
	}
	if !e.alive() {
		e.Fail("no new client can be served: the server is gone (%s)", e.Child.ExitStatus())
		return
	}
	e.Fail("a new client was not served within %v: %v", limit, err)
}

// idleFlood opens TCP connections from 127.0.0.2-250 that never send a
// byte, up to past the server's descriptor limit, and holds them.
func idleFlood(e *Env) {
	want := e.scale(19000, 3000)
	var lim unix.Rlimit
	_ = unix.Getrlimit(unix.RLIMIT_NOFILE, &lim)
	want = min(want, int(lim.Cur)-driverFDSpare)
	var conns []*net.TCPConn
	defer func() { closeAll(conns) }()
	var firstErr error
	refused := 0
	for len(conns)+refused < want && !e.done() {
		for range openBatch {
			c, err := dialTCP(e.src.next(), e.Child.WS, 0)
			if err != nil {
				refused++
				if firstErr == nil {
					firstErr = err
				}
				continue
			}
			conns = append(conns, c)
		}
		time.Sleep(openPause)
	}
	e.Fig("opened", "%d", len(conns))
	e.Fig("refused", "%d", refused)
	if firstErr != nil {
		e.Fig("first_refusal", "%q", shortErr(firstErr))
	}
	time.Sleep(2 * time.Second) // let the server see them all
	e.fresh(freshWait)
	closed := countClosed(conns)
	e.Fig("closed_by_server", "%d", closed)
	for range closed {
		e.Code("EOF/RST")
	}
}

func shortErr(err error) string {
	s := err.Error()
	if i := strings.LastIndex(s, ": "); i >= 0 {
		return s[i+2:]
	}
	return s
}

// writeFlood writes unit repeatedly on conn for d without reading, and
// returns the bytes written; writes that block simply wait (a server that
// stops reading is right to).
func writeFlood(e *Env, conn *net.TCPConn, unit []byte, d time.Duration) (written int64, err error) {
	chunk := bytes.Repeat(unit, max(1, (64<<10)/len(unit)))
	end := time.Now().Add(d)
	off := 0 // into chunk: a partial write resumes where it stopped
	for time.Now().Before(end) && !e.done() {
		_ = conn.SetWriteDeadline(time.Now().Add(250 * time.Millisecond))
		n, err := conn.Write(chunk[off:])
		written += int64(n)
		off = (off + n) % len(chunk)
		if err != nil && !isTimeout(err) {
			return written, err
		}
	}
	return written, nil
}

// floodScenario opens n connections with setup, floods each with unit for
// d without reading, and records the bytes the server took.
func floodScenario(e *Env, n int, d time.Duration, setup func(src net.IP) (*net.TCPConn, error), unit []byte) {
	var total atomic.Int64
	var wg sync.WaitGroup
	var conns []*net.TCPConn
	for range n {
		c, err := setup(e.src.next())
		if err != nil {
			e.Fail("cannot set up a flooding connection: %v", err)
			continue
		}
		conns = append(conns, c)
	}
	defer closeAll(conns)
	ended := 0
	var mu sync.Mutex
	for _, c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w, err := writeFlood(e, c, unit, d)
			total.Add(w)
			if err != nil {
				mu.Lock()
				ended++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	e.Fig("conns", "%d", len(conns))
	e.Fig("server_took", "%.1fMiB", float64(total.Load())/(1<<20))
	e.Fig("write_errors", "%d", ended)
	for _, c := range conns {
		e.Code(peekState(c))
	}
	e.growth(floodGrowthLimit, "buffers of a client that does not read must be capped")
}

// healthzNoread: one connection pipelines GET /healthz without reading.
func healthzNoread(e *Env) {
	setup := func(src net.IP) (*net.TCPConn, error) { return dialTCP(src, e.Child.WS, 4096) }
	floodScenario(e, 1, e.scaleD(15*time.Second, 5*time.Second), setup, []byte("GET /healthz HTTP/1.1\r\nHost: soak\r\n\r\n"))
}

// pingFloodNoread: one WebSocket floods ping frames without reading.
func pingFloodNoread(e *Env) {
	setup := func(src net.IP) (*net.TCPConn, error) {
		c, err := dialWS(src, e.Child.WS, 4096)
		if err != nil {
			return nil, err
		}
		return c.conn, nil
	}
	ping := wsframe.AppendFrame(nil, wsframe.OpPing, []byte("soak"), true, [4]byte{1, 2, 3, 4})
	floodScenario(e, 1, e.scaleD(15*time.Second, 5*time.Second), setup, ping)
}

// publisherNoreadReplies: publishers pipeline PUBLISH and never read the
// replies.
func publisherNoreadReplies(e *Env) {
	setup := func(src net.IP) (*net.TCPConn, error) { return dialTCP(src, e.Child.Pub, 4096) }
	cmd := respw.AppendPublish(nil, []byte("soak.noread"), []byte(`{"seq":1,"ts":0,"body":"x"}`))
	floodScenario(e, e.scale(4, 2), e.scaleD(15*time.Second, 5*time.Second), setup, cmd)
}

// stallScenario opens n connections, sends each prefix and stalls, then
// waits up to stallWait for the server to close each one.
func stallScenario(e *Env, n int, addr string, prefix []byte) {
	var conns []*net.TCPConn
	defer func() { closeAll(conns) }()
	for range n {
		if e.done() {
			break
		}
		c, err := dialTCP(e.src.next(), addr, 0)
		if err != nil {
			e.Fail("cannot connect a stalled client: %v", err)
			continue
		}
		conns = append(conns, c)
		_ = c.SetWriteDeadline(time.Now().Add(10 * time.Second))
		if _, err := c.Write(prefix); err != nil {
			e.Code("write " + shortErr(err))
		}
	}
	e.Fig("stalled", "%d", len(conns))
	var wg sync.WaitGroup
	var mu sync.Mutex
	var closed int
	var last time.Duration // when the last closed one was closed
	start := time.Now()
	for _, c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			code := readOutcome(c, start.Add(stallWait))
			e.Code(code)
			if code != "HELD" {
				mu.Lock()
				closed, last = closed+1, max(last, time.Since(start))
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	e.growth(int64(len(conns))*stallGrowthPerConn, "a stalled partial request may hold at most 2 MiB")
	e.Fig("closed_by_server", "%d", closed)
	e.Fig("last_closed_after", "%.1fs", last.Seconds())
	if len(conns) > 0 && float64(closed) < closeTarget*float64(len(conns)) {
		e.Fail("%d of %d stalled clients still held after %v (target: >= 99 %% closed)", len(conns)-closed, len(conns), stallWait)
	}
}

// readOutcome reads until the server closes conn or deadline passes:
// "HTTP <status>" or "-ERR" (the first answer) plus how it ended, or HELD.
func readOutcome(conn *net.TCPConn, deadline time.Time) string {
	_ = conn.SetReadDeadline(deadline)
	var first []byte
	buf := make([]byte, 4096)
	for {
		n, err := conn.Read(buf)
		if len(first) < 64 && n > 0 {
			first = append(first, buf[:min(n, 64)]...)
		}
		if err == nil {
			continue
		}
		what := "EOF"
		switch {
		case isTimeout(err):
			return "HELD"
		case errors.Is(err, syscall.ECONNRESET):
			what = "RST"
		}
		switch {
		case bytes.HasPrefix(first, []byte("HTTP/1.1 ")) && len(first) >= 12:
			return fmt.Sprintf("HTTP %s+%s", first[9:12], what)
		case bytes.HasPrefix(first, []byte("-")):
			return "-ERR+" + what
		}
		return what
	}
}

// slowlorisBody: POSTs that announce 1 MiB and send one byte less.
func slowlorisBody(e *Env) {
	const size = 1 << 20 // the default --max-payload
	head := fmt.Sprintf("POST /publish/soak HTTP/1.1\r\nHost: soak\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n", size)
	prefix := append([]byte(head), bytes.Repeat([]byte("a"), size-1)...)
	stallScenario(e, e.scale(200, 40), e.Child.WS, prefix)
}

// publisherPartialInline: inline commands of 1 MiB with no newline.
func publisherPartialInline(e *Env) {
	prefix := append([]byte("PUBLISH soak.inline "), bytes.Repeat([]byte("a"), 1<<20)...)
	stallScenario(e, e.scale(200, 40), e.Child.Pub, prefix)
}
