package server_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"

	"github.com/fraised/fraised/proto"
	"github.com/fraised/fraised/resp"
	"github.com/fraised/fraised/server"
)

// drainSub is a subscriber reading at full speed: it records the seq of
// every event until the close frame, which it answers as clients do.
type drainSub struct {
	c     *client
	seqs  []int
	code  ws.StatusCode
	err   error
	ended chan struct{}
}

func startDrainSub(t *testing.T, c *client, topic string) *drainSub {
	t.Helper()
	c.subscribe("1", fmt.Sprintf(`subscription { events(topic: %q) { seq } }`, topic), nil)
	d := &drainSub{c: c, ended: make(chan struct{})}
	go d.run()
	return d
}

func (d *drainSub) run() {
	defer close(d.ended)
	for {
		_ = d.c.conn.SetReadDeadline(time.Now().Add(20 * time.Second))
		msgs, err := wsutil.ReadServerMessage(d.c.r, nil)
		if err != nil {
			d.err = err
			return
		}
		for _, m := range msgs {
			switch m.OpCode {
			case ws.OpClose:
				d.code, _ = ws.ParseCloseFrameData(m.Payload)
				_ = wsutil.WriteClientMessage(d.c.conn, ws.OpClose, m.Payload)
				return
			case ws.OpText:
				var next struct {
					Payload struct {
						Data struct {
							Events struct{ Seq int }
						}
					}
				}
				if err := json.Unmarshal(m.Payload, &next); err != nil {
					d.err = err
					return
				}
				d.seqs = append(d.seqs, next.Payload.Data.Events.Seq)
			}
		}
	}
}

// streamPublisher publishes seq 1, 2, ... with a window of pipelined
// commands and records each acknowledged seq's reply (the number of
// subscriptions it was queued to), until the server refuses or closes.
type streamPublisher struct {
	mu      sync.Mutex
	replies map[int]int
	done    chan struct{}
}

func startStreamPublisher(t *testing.T, addr, topic string) *streamPublisher {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	p := &streamPublisher{replies: map[int]int{}, done: make(chan struct{})}
	const window = 16
	sent := make(chan int, window)
	go func() { // writer: keeps window commands in flight
		defer close(sent)
		for seq := 1; ; seq++ {
			cmd := resp.AppendArray(nil, []byte("PUBLISH"), []byte(topic), fmt.Appendf(nil, `{"seq":%d}`, seq))
			if _, err := conn.Write(cmd); err != nil {
				return
			}
			select {
			case sent <- seq:
			case <-p.done:
				return
			}
		}
	}()
	go func() { // reader: one reply per command, in order
		defer close(p.done)
		r := bufio.NewReader(conn)
		for seq := range sent {
			_ = conn.SetReadDeadline(time.Now().Add(20 * time.Second))
			line, err := r.ReadString('\n')
			if err != nil || !strings.HasPrefix(line, ":") {
				return // refused (draining) or closed: not acknowledged
			}
			n, _ := strconv.Atoi(strings.TrimSpace(line[1:]))
			p.mu.Lock()
			p.replies[seq] = n
			p.mu.Unlock()
		}
	}()
	return p
}

func (p *streamPublisher) acked() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.replies)
}

// TestDrainLosesNoAcknowledgedEvent: SIGTERM's Shutdown with subscribers
// reading at full speed and a publisher mid-stream: every acknowledged
// event reaches as many subscribers as its reply said (all of them), each
// subscriber then gets 1001, and Shutdown returns within the drain
// timeout.
func TestDrainLosesNoAcknowledgedEvent(t *testing.T) {
	const subs = 4
	drainTimeout := 5 * time.Second
	s := startServer(t, func(o *server.Options) { o.DrainTimeout = drainTimeout })
	readers := make([]*drainSub, subs)
	for i := range readers {
		readers[i] = startDrainSub(t, connect(t, s.opts.Listen), "drain")
	}
	s.waitSubs(t, subs)
	pub := startStreamPublisher(t, s.opts.PublishListen, "drain")
	waitStat(t, "the stream to start", func() bool { return pub.acked() >= 2000 })

	start := time.Now()
	if err := s.Shutdown(context.Background()); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	took := time.Since(start)
	<-pub.done
	for _, r := range readers {
		<-r.ended
	}
	if took > drainTimeout+time.Second {
		t.Fatalf("Shutdown took %v, drain timeout %v", took, drainTimeout)
	}
	received := map[int]int{}
	for i, r := range readers {
		if r.err != nil || r.code != proto.CloseGoingAway {
			t.Fatalf("subscriber %d: close %d, error %v; want 1001 after its events", i, r.code, r.err)
		}
		for j, seq := range r.seqs {
			if j > 0 && seq <= r.seqs[j-1] {
				t.Fatalf("subscriber %d: seq %d after %d", i, seq, r.seqs[j-1])
			}
			received[seq]++
		}
	}
	lost, full := 0, 0
	for seq, n := range pub.replies {
		if received[seq] != n {
			lost++
			if lost <= 5 {
				t.Errorf("seq %d: acknowledged to %d subscriptions, received by %d", seq, n, received[seq])
			}
		}
		if n == subs {
			full++
		}
	}
	if lost > 0 {
		t.Fatalf("%d of %d acknowledged events lost", lost, len(pub.replies))
	}
	t.Logf("%d events acknowledged (%d to all %d subscribers), none lost; Shutdown took %v", len(pub.replies), full, subs, took)
}

// lockedBuffer is an io.Writer for a test's log, safe for concurrent use.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestDrainCountsSubscribersBehind: a subscriber that stopped reading
// cannot hold the drain past its deadline; it is counted and logged, and
// a reading subscriber still gets everything and 1001.
func TestDrainCountsSubscribersBehind(t *testing.T) {
	var logs lockedBuffer
	drainTimeout := 2 * time.Second
	s := startServer(t, func(o *server.Options) {
		o.DrainTimeout = drainTimeout
		o.WriteTimeout = time.Minute // the deadline that matters here is the drain's
		o.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	})
	stuck := dialSmall(t, s.opts.Listen)
	stuck.subscribe("1", `subscription { events(topic: "behind") { seq body } }`, nil)
	reader := startDrainSub(t, connect(t, s.opts.Listen), "behind")
	s.waitSubs(t, 2)
	payload := fmt.Sprintf(`{"seq":1,"body":%q}`, strings.Repeat("x", 4<<10))
	acked := flood(t, s.opts.PublishListen, "behind", payload, 30*time.Second, func() bool { return s.Stats().OutboundHeld > 0 })

	start := time.Now()
	_ = s.Shutdown(context.Background())
	if took := time.Since(start); took > drainTimeout+500*time.Millisecond {
		t.Fatalf("Shutdown took %v with a subscriber that does not read; drain timeout %v", took, drainTimeout)
	}
	<-reader.ended
	if reader.err != nil || reader.code != proto.CloseGoingAway || len(reader.seqs) != acked {
		t.Fatalf("reading subscriber: %d of %d events, close %d, error %v", len(reader.seqs), acked, reader.code, reader.err)
	}
	if out := logs.String(); !strings.Contains(out, "behind_at_close=1") {
		t.Fatalf("the subscriber left behind is not counted in the log:\n%s", out)
	}
}

// TestHealthz503DuringDrain: a load balancer's probe on an open
// keep-alive connection sees 503 as soon as the drain starts.
func TestHealthz503DuringDrain(t *testing.T) {
	s := startServer(t, nil)
	probe, err := net.Dial("tcp", s.opts.Listen)
	if err != nil {
		t.Fatal(err)
	}
	defer probe.Close()
	r := bufio.NewReader(probe)
	get := func() int {
		t.Helper()
		if _, err := probe.Write([]byte("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")); err != nil {
			t.Fatal(err)
		}
		_ = probe.SetReadDeadline(time.Now().Add(5 * time.Second))
		res, err := http.ReadResponse(r, nil)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res.StatusCode
	}
	if code := get(); code != http.StatusOK {
		t.Fatalf("before the drain: %d", code)
	}
	// A client that never answers the close frame keeps the drain open
	// for the linger deadline.
	silent := connect(t, s.opts.Listen)
	_ = silent
	drained := make(chan struct{})
	go func() { _ = s.Shutdown(context.Background()); close(drained) }()
	deadline := time.Now().Add(5 * time.Second)
	for {
		code := get()
		if code == http.StatusServiceUnavailable {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("healthz on the open connection still %d during the drain", code)
		}
		time.Sleep(5 * time.Millisecond)
	}
	select {
	case <-drained:
	case <-time.After(10 * time.Second):
		t.Fatal("Shutdown did not return")
	}
}
