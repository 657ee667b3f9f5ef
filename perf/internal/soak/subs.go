package soak

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/fraised/fraised/perf/internal/respw"
	"github.com/fraised/fraised/perf/internal/wsframe"
)

// Bounds of the subscriber abuses.
const (
	// connectWorkers bounds the handshakes in flight while a scenario
	// connects its clients.
	connectWorkers = 16
	// liveWait bounds the wait for every subscription to be live.
	liveWait = 60 * time.Second
	// noreadRcvbuf is the receive buffer of a client that stops reading:
	// the kernel's minimum, so the server's side fills at once.
	noreadRcvbuf = 4096
	// outcomeWait bounds reading a client's remaining frames up to its
	// close frame.
	outcomeWait = 20 * time.Second
	// publishWait bounds one pipelined write of a publisher.
	publishWait = time.Second
	// replyWait bounds the wait for the replies of a pipeline.
	replyWait = 30 * time.Second
)

// connectSubs connects n subscribers from 127.0.0.2-250 on topic.
func connectSubs(e *Env, n, rcvbuf int, topic, fields string) []*wsClient {
	out := make([]*wsClient, n)
	var next atomic.Int64
	var wg sync.WaitGroup
	var firstErr atomic.Value
	for range connectWorkers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := int(next.Add(1) - 1); i < n && !e.done(); i = int(next.Add(1) - 1) {
				c, err := subscriber(e.src.next(), e.Child.WS, rcvbuf, topic, fields)
				if err != nil {
					firstErr.CompareAndSwap(nil, err.Error())
					continue
				}
				out[i] = c
			}
		}()
	}
	wg.Wait()
	var ok []*wsClient
	for _, c := range out {
		if c != nil {
			ok = append(ok, c)
		}
	}
	if len(ok) < n {
		e.Fail("only %d of %d subscribers connected (first error: %v)", len(ok), n, firstErr.Load())
	}
	return ok
}

func closeClients(cs []*wsClient) {
	for _, c := range cs {
		c.conn.Close()
	}
}

// outcome reads c's frames until its close frame or the end of the
// connection; it returns the close code (or EOF, RST, TRUNC, HELD), the
// close reason, and the number of events read.
func outcome(c *wsClient, deadline time.Time) (code, reason string, events int) {
	_ = c.conn.SetReadDeadline(deadline)
	var buf []byte
	for {
		f, b, err := c.readFrame(buf)
		buf = b
		switch {
		case err == nil:
		case isTimeout(err):
			return "HELD", "", events
		case errors.Is(err, errTruncated):
			return "TRUNC", "", events
		case errors.Is(err, syscall.ECONNRESET):
			return "RST", "", events
		default:
			return "EOF", "", events
		}
		switch f.op {
		case wsframe.OpClose:
			r := ""
			if len(f.payload) > 2 {
				r = string(f.payload[2:])
			}
			return strconv.Itoa(closeCode(f.payload)), r, events
		case wsframe.OpText:
			if bytes.Equal(wsframe.Type(f.payload), []byte("next")) {
				events++
			}
		}
	}
}

// pipeline publishes events made by mk on topic from one connection
// for at most d (or count events), counting replies on another goroutine;
// it returns the number of integer replies once every reply is in (or
// replyWait passed).
func pipeline(e *Env, p *pubConn, topic string, count int, mk func(dst []byte, seq int64) []byte, d time.Duration) (sent, acked int64) {
	var got atomic.Int64
	replies := make(chan struct{})
	go func() {
		defer close(replies)
		for {
			kind, _, text, err := p.reply(time.Hour)
			if err != nil {
				return
			}
			if kind == ':' {
				got.Add(1)
			} else {
				e.Code(fmt.Sprintf("%c%s", kind, text))
			}
		}
	}()
	var payload, cmd []byte
	end := time.Now().Add(d)
writes:
	for i := range count {
		if time.Now().After(end) || e.done() {
			break
		}
		payload = mk(payload, int64(i))
		cmd = respw.AppendPublish(cmd[:0], []byte(topic), payload)
		for off := 0; off < len(cmd); {
			_ = p.conn.SetWriteDeadline(time.Now().Add(publishWait))
			n, err := p.conn.Write(cmd[off:])
			off += n
			if err != nil && (!isTimeout(err) || time.Now().After(end) || e.done()) {
				break writes // the command is cut: the stream ends here
			}
		}
		sent++
	}
	wait := time.Now().Add(replyWait)
	for got.Load() < sent && time.Now().Before(wait) && !e.done() {
		time.Sleep(20 * time.Millisecond)
	}
	_ = p.conn.SetReadDeadline(time.Now())
	<-replies
	return sent, got.Load()
}

// sized makes eventPayload events of size bytes.
func sized(size int) func([]byte, int64) []byte {
	return func(dst []byte, seq int64) []byte { return eventPayload(dst, seq, size) }
}

// noreadSubscribers: subscribers that never read, with 64 KiB events.
func noreadSubscribers(e *Env) {
	const topic, size = "soak.bulk", 64 << 10
	subs := connectSubs(e, e.scale(2000, 300), noreadRcvbuf, topic, "seq body")
	defer closeClients(subs)
	p := livePub(e, topic, int64(len(subs)))
	if p == nil {
		return
	}
	defer p.conn.Close()
	sent, acked := pipeline(e, p, topic, e.scale(200, 100), sized(size), 30*time.Second)
	e.Fig("subs", "%d", len(subs))
	e.Fig("events_sent", "%d", sent)
	e.Fig("acked", "%d", acked)
	time.Sleep(2 * time.Second)
	cut := 0
	for _, c := range subs {
		if peekState(c.conn) != "open" {
			cut++
		}
	}
	e.Fig("cut", "%d", cut)
}

// slowConsumerCloseCodes: subscribers stop reading until the server cuts
// them, then read everything: each must find close 1013 "slow consumer".
func slowConsumerCloseCodes(e *Env) {
	const topic, size = "soak.slow", 64 << 10
	subs := connectSubs(e, e.scale(200, 50), noreadRcvbuf, topic, "seq body")
	defer closeClients(subs)
	p := livePub(e, topic, int64(len(subs)))
	if p == nil {
		return
	}
	defer p.conn.Close()
	// 12 MiB per subscriber: three times the default --max-outbound.
	sent, acked := pipeline(e, p, topic, 192, sized(size), 30*time.Second)
	e.Fig("events_sent", "%d", sent)
	e.Fig("acked", "%d", acked)
	good := countOutcomes(e, subs, func(code, reason string) bool {
		return code == "1013" && bytes.Contains([]byte(reason), []byte("slow consumer"))
	})
	e.Fig("got_1013", "%d/%d", good, len(subs))
	if float64(good) < closeTarget*float64(len(subs)) {
		e.Fail("%d of %d slow consumers received close 1013 \"slow consumer\" (target >= 99 %%)", good, len(subs))
	}
}

// countOutcomes reads every client to its end in parallel, records the
// codes, and counts those ok accepts.
func countOutcomes(e *Env, cs []*wsClient, ok func(code, reason string) bool) int {
	var good atomic.Int64
	var wg sync.WaitGroup
	deadline := time.Now().Add(outcomeWait)
	for _, c := range cs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			code, reason, _ := outcome(c, deadline)
			e.Code(code)
			if ok(code, reason) {
				good.Add(1)
			}
		}()
	}
	wg.Wait()
	return int(good.Load())
}

// closeWithInputInFlight: clients closed for 4429 (message rate) or 4400
// (invalid message) while they keep sending must still receive the close
// frame with that code: the server must not reset a connection whose
// input is still arriving.
func closeWithInputInFlight(e *Env) {
	n := e.scale(400, 100)
	var rate, bad []*wsClient
	for i := range n {
		c, err := dialWS(e.src.next(), e.Child.WS, 0)
		if err == nil {
			err = c.initAck()
		}
		if err != nil {
			e.Fail("cannot connect client %d: %v", i, err)
			continue
		}
		if i%2 == 0 {
			rate = append(rate, c)
		} else {
			bad = append(bad, c)
		}
	}
	defer closeClients(rate)
	defer closeClients(bad)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for _, c := range rate {
		wg.Add(1)
		go func() { defer wg.Done(); keepSending(c, "", stop) }()
	}
	for _, c := range bad {
		wg.Add(1)
		go func() { defer wg.Done(); keepSending(c, `{"type":"bogus"}`, stop) }()
	}
	var got4429, got4400 int
	var rw sync.WaitGroup
	rw.Add(2)
	go func() {
		defer rw.Done()
		got4429 = countOutcomes(e, rate, func(code, _ string) bool { return code == "4429" })
	}()
	go func() {
		defer rw.Done()
		got4400 = countOutcomes(e, bad, func(code, _ string) bool { return code == "4400" })
	}()
	rw.Wait()
	close(stop)
	wg.Wait()
	e.Fig("got_4429", "%d/%d", got4429, len(rate))
	e.Fig("got_4400", "%d/%d", got4400, len(bad))
	for _, k := range []struct {
		code      string
		got, want int
	}{{"4429", got4429, len(rate)}, {"4400", got4400, len(bad)}} {
		if float64(k.got) < closeTarget*float64(k.want) {
			e.Fail("%d of %d clients received close %s with input in flight (target >= 99 %%)", k.got, k.want, k.code)
		}
	}
}

// inFlightBatch is how many pings a client that keeps sending writes at
// once; it writes batch after batch, so its input is always in flight
// when the server closes it.
const inFlightBatch = 100

// keepSending sends first (if any) and then pings, batch after batch,
// until a write fails or stop is closed.
func keepSending(c *wsClient, first string, stop <-chan struct{}) {
	var buf []byte
	if first != "" {
		buf = c.appendMsg(buf, first)
	}
	for {
		for range inFlightBatch {
			buf = c.appendMsg(buf, `{"type":"ping"}`)
		}
		_ = c.conn.SetWriteDeadline(time.Now().Add(time.Second))
		if _, err := c.conn.Write(buf); err != nil && !isTimeout(err) {
			return
		}
		buf = buf[:0]
		select {
		case <-stop:
			return
		default:
		}
	}
}
