package soak

import (
	"bytes"
	"errors"
	"math/bits"
	"strconv"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/fraised/fraised/perf/internal/respw"
	"github.com/fraised/fraised/perf/internal/wsframe"
)

// Bounds of the fault scenarios.
const (
	// maxLoadEvents bounds a load publisher (and the bitsets that track
	// which events each reader got).
	maxLoadEvents = 1 << 20
	// loadBatch events are written every loadEvery: 10,000 events/s.
	loadBatch, loadEvery = 50, 5 * time.Millisecond
	// drainTimeout is the server's default --drain-timeout; exitSlack is
	// what a loaded machine may add to it.
	drainTimeout, exitSlack = 10 * time.Second, 3 * time.Second
	// sigtermBurst events are written in one go just before SIGTERM.
	sigtermBurst = 5000
	// deadWait bounds how long clients take to notice a killed server.
	deadWait = 5 * time.Second
)

// bitset marks event numbers.
type bitset []uint64

func newBitset(n int) bitset      { return make(bitset, (n+63)/64) }
func (b bitset) set(i int64)      { b[i/64] |= 1 << (i % 64) }
func (b bitset) has(i int64) bool { return b[i/64]&(1<<(i%64)) != 0 }

// missing counts the bits of want not in b.
func (b bitset) missing(want bitset) (n int64) {
	for i := range want {
		n += int64(bits.OnesCount64(want[i] &^ b[i]))
	}
	return n
}

// reader is a subscriber that reads everything, answers pings and records
// which events arrived, until its connection ends.
type reader struct {
	c       *wsClient
	got     bitset
	events  atomic.Int64
	reorder atomic.Int64
	end     string // close code, or EOF, RST, TRUNC
	reason  string
	done    chan struct{}
}

func startReader(c *wsClient, maxSeq int) *reader {
	r := &reader{c: c, got: newBitset(maxSeq), done: make(chan struct{})}
	go r.run(maxSeq)
	return r
}

func (r *reader) run(maxSeq int) {
	defer close(r.done)
	var buf []byte
	last := int64(-1)
	for {
		f, b, err := r.c.readFrame(buf)
		buf = b
		switch {
		case err == nil:
		case errors.Is(err, errTruncated):
			r.end = "TRUNC"
			return
		case errors.Is(err, syscall.ECONNRESET):
			r.end = "RST"
			return
		case isTimeout(err):
			r.end = "HELD"
			return
		default:
			r.end = "EOF"
			return
		}
		if r.c.pong(f) {
			continue
		}
		switch f.op {
		case wsframe.OpClose:
			r.end = strconv.Itoa(closeCode(f.payload))
			if len(f.payload) > 2 {
				r.reason = string(f.payload[2:])
			}
			return
		case wsframe.OpText:
			if !bytes.Equal(wsframe.Type(f.payload), []byte("next")) {
				continue
			}
			seq, ok := wsframe.Seq(f.payload)
			if !ok {
				r.events.Add(1) // an aliased field: counted only
				continue
			}
			if seq < 0 || seq >= int64(maxSeq) {
				continue // probes
			}
			if seq <= last {
				r.reorder.Add(1)
			}
			last = seq
			r.got.set(seq)
			r.events.Add(1)
		}
	}
}

// startReaders connects n readers.
func startReaders(e *Env, n int, topic, fields string, maxSeq int) []*reader {
	var rs []*reader
	for _, c := range connectSubs(e, n, 0, topic, fields) {
		rs = append(rs, startReader(c, maxSeq))
	}
	return rs
}

// waitReaders waits until every reader has ended or limit passes, then
// closes them.
func waitReaders(rs []*reader, limit time.Duration) {
	t := time.NewTimer(limit)
	defer t.Stop()
	for i, r := range rs {
		select {
		case <-r.done:
			continue
		case <-t.C:
		}
		for _, r := range rs[i:] {
			r.c.conn.Close()
		}
		break
	}
	for _, r := range rs {
		r.c.conn.Close()
		<-r.done
	}
}

// waitEvents waits until every reader has n events or limit passes.
func waitEvents(rs []*reader, n int64, limit time.Duration) bool {
	end := time.Now().Add(limit)
	for _, r := range rs {
		for r.events.Load() < n {
			if time.Now().After(end) {
				return false
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	return true
}

// loadPublisher publishes numbered events on topic at 10,000/s until stop
// is closed or a write fails, and marks which ones were acknowledged to at
// least promise subscriptions (a reply's integer is the number of
// subscriptions the event was queued to: a smaller one, during a drain,
// promises nothing to the readers).
type loadPublisher struct {
	p         *pubConn
	promise   int64
	acked     bitset
	nAck      atomic.Int64
	fewer     atomic.Int64 // integer replies below promise
	sent      atomic.Int64
	errs      atomic.Int64
	wdone     chan struct{}
	rdone     chan struct{}
	burst     chan int // a request to write this many events at once
	burstDone chan struct{}
}

func startLoad(p *pubConn, promise int, topic string, size int, stop <-chan struct{}) *loadPublisher {
	l := &loadPublisher{p: p, promise: int64(promise), acked: newBitset(maxLoadEvents), wdone: make(chan struct{}), rdone: make(chan struct{}),
		burst: make(chan int), burstDone: make(chan struct{})}
	go l.write(topic, size, stop)
	go l.read()
	return l
}

func (l *loadPublisher) write(topic string, size int, stop <-chan struct{}) {
	defer close(l.wdone)
	t := time.NewTicker(loadEvery)
	defer t.Stop()
	var buf, payload []byte
	for seq := int64(0); seq+loadBatch <= maxLoadEvents; {
		n := loadBatch
		burst := false
		select {
		case <-stop:
			return
		case <-t.C:
		case n = <-l.burst:
			n, burst = min(n, int(maxLoadEvents-seq)), true
		}
		buf = buf[:0]
		for range n {
			payload = eventPayload(payload, seq, size)
			buf = respw.AppendPublish(buf, []byte(topic), payload)
			seq++
		}
		err := l.p.write(buf, 2*time.Second)
		if burst {
			l.burstDone <- struct{}{}
		}
		if err != nil {
			return // the server is gone or stopped reading: what was acked counts
		}
		l.sent.Store(seq)
	}
}

// read matches replies to commands in order.
func (l *loadPublisher) read() {
	defer close(l.rdone)
	for i := int64(0); i < maxLoadEvents; i++ {
		kind, n, _, err := l.p.reply(time.Minute)
		if err != nil {
			return
		}
		switch {
		case kind != ':':
			l.errs.Add(1)
		case n >= l.promise:
			l.acked.set(i)
			l.nAck.Add(1)
		default:
			l.fewer.Add(1)
		}
	}
}

// sigtermUnderLoad: SIGTERM while a publisher publishes and some clients
// are behind; every event the server acknowledged must reach every
// reading subscriber, then close 1001, then exit 0 within the drain.
func sigtermUnderLoad(e *Env) {
	const topic = "soak.load"
	readers := startReaders(e, e.scale(200, 50), topic, "seq", maxLoadEvents)
	slow := connectSubs(e, e.scale(20, 5), noreadRcvbuf, topic, "seq body")
	defer closeClients(slow)
	p := livePub(e, topic, int64(len(readers)+len(slow)))
	if p == nil {
		waitReaders(readers, 0)
		return
	}
	defer p.conn.Close()
	stop := make(chan struct{})
	// 128-byte bodies: the clients that do not read fall 1.3 MB/s behind,
	// so they hold output, but are not cut yet, when SIGTERM comes.
	l := startLoad(p, len(readers), topic, 128, stop)
	time.Sleep(e.scaleD(3*time.Second, 2*time.Second))
	// A burst written at once, then SIGTERM: deliveries are in flight in
	// the ring and the outboxes when the drain starts.
	select {
	case l.burst <- sigtermBurst:
		<-l.burstDone
	case <-l.wdone:
	}
	term := time.Now()
	if err := e.Child.Signal(syscall.SIGTERM); err != nil {
		e.Fail("cannot signal the server: %v", err)
	}
	select { // keep publishing into the drain for a second
	case <-l.wdone:
	case <-time.After(time.Second):
	}
	close(stop)
	<-l.wdone
	select {
	case <-e.Child.Exited():
	case <-time.After(drainTimeout + stopGrace):
	}
	waitReaders(readers, deadWait)
	_ = p.conn.SetReadDeadline(time.Now())
	<-l.rdone
	e.judgeDrain(readers, l, term)
}

func (e *Env) judgeDrain(readers []*reader, l *loadPublisher, term time.Time) {
	var lost, delivered, reorder int64
	good := 0
	for _, r := range readers {
		lost += r.got.missing(l.acked)
		delivered += l.nAck.Load() - r.got.missing(l.acked)
		reorder += r.reorder.Load()
		e.Code(r.end)
		if r.end == "1001" {
			good++
		}
	}
	acked := l.nAck.Load()
	e.Deliveries(acked*int64(len(readers)), delivered)
	e.Fig("published", "%d", l.sent.Load())
	e.Fig("acked", "%d", acked)
	e.Fig("publish_errors", "%d", l.errs.Load())
	e.Fig("replies_below_readers", "%d", l.fewer.Load())
	e.Fig("lost", "%d", lost)
	status := e.Child.ExitStatus()
	if at := e.Child.ExitedAt(); !at.IsZero() {
		took := at.Sub(term)
		e.Fig("exit_after", "%.1fs", took.Seconds())
		if took > drainTimeout+exitSlack {
			e.Fail("exit %.1fs after SIGTERM (drain timeout %v)", took.Seconds(), drainTimeout)
		}
	}
	if status != "exit 0" {
		e.Fail("server ended with %q after SIGTERM, want exit 0", status)
	}
	if acked == 0 {
		e.Fail("no event was acknowledged: the load never ran")
	}
	if lost > 0 || reorder > 0 {
		e.Fail("%d acknowledged deliveries lost, %d out of order, for reading subscribers (target 0)", lost, reorder)
	}
	if float64(good) < closeTarget*float64(len(readers)) {
		e.Fail("%d of %d reading subscribers received close 1001 (target >= 99 %%)", good, len(readers))
	}
}

// kill9Restart: kill -9 with clients connected; the server must come back
// on the same addresses and serve the clients when they reconnect.
func kill9Restart(e *Env) {
	const topic, events = "soak.k9", 50
	n := e.scale(500, 100)
	readers := startReaders(e, n, topic, "seq", events)
	p, err := dialPub(nil, e.Child.Pub, 0)
	if err != nil {
		e.Fail("%v", err)
		waitReaders(readers, 0)
		return
	}
	if !publishAll(e, p, topic, n, events, readers) {
		e.Fail("before the kill: not every reader got the %d events", events)
	}
	p.conn.Close()
	if err := e.Child.Signal(syscall.SIGKILL); err != nil {
		e.Fail("cannot kill the server: %v", err)
	}
	waitReaders(readers, deadWait)
	for _, r := range readers {
		e.Code(r.end)
		if r.end == "HELD" {
			e.Fail("a client did not notice the killed server within %v", deadWait)
			break
		}
	}
	if !e.restart() {
		return
	}
	readers = startReaders(e, n, topic, "seq", events)
	defer waitReaders(readers, 0)
	e.Fig("reconnected", "%d/%d", len(readers), n)
	p, err = dialPub(nil, e.Child.Pub, 0)
	if err != nil {
		e.Fail("publisher after restart: %v", err)
		return
	}
	defer p.conn.Close()
	if !publishAll(e, p, topic, n, events, readers) {
		e.Fail("after the restart: not every reader got the %d events", events)
	}
	canary, err := StartCanary(e.Child.WS, e.Child.Pub)
	if err != nil {
		e.Fail("canary after restart: %v", err)
		return
	}
	time.Sleep(2 * time.Second)
	cr := canary.Finish()
	e.Fig("canary_after_restart", "%q", cr.String())
	if !cr.OK(e.Cfg.CanaryP99) {
		e.Fail("canary after restart: %s", cr.String())
	}
}

// publishAll waits until n subscriptions are live, publishes events
// numbered 0..events-1 and waits until every reader has them all.
func publishAll(e *Env, p *pubConn, topic string, n, events int, rs []*reader) bool {
	if err := probe(p, topic, int64(n), liveWait); err != nil {
		e.Fail("%v", err)
		return false
	}
	var acked int64
	for i := range events {
		got, err := p.publishWait(topic, eventPayload(nil, int64(i), 0), 5*time.Second)
		if err != nil {
			e.Fail("%v", err)
			return false
		}
		acked += got
	}
	ok := waitEvents(rs, int64(events), 15*time.Second)
	var delivered int64
	for _, r := range rs {
		delivered += r.events.Load()
	}
	e.Deliveries(acked, delivered)
	return ok
}
