package server_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"
	"github.com/tidwall/gjson"

	"github.com/fraised/fraised/server"
)

// learnEpoch returns the epoch of room's mid stream (an epoch_changed
// error names it).
func learnEpoch(t testing.TB, c *client, topicField, room string) string {
	t.Helper()
	c.send(fmt.Sprintf(`{"id":"probe","type":"subscribe","payload":{"query":"subscription { %s(room: \"%s\") { seq } }","extensions":{"fraised":{"resume":{"epoch":"probe0000000","offset":0}}}}}`, topicField, room))
	m := c.next()
	epoch := gjson.Get(m, "payload.0.extensions.available.epoch").String()
	if epoch == "" {
		t.Fatalf("probe: %s", m)
	}
	return epoch
}

// TestManyReplaysOnOneConnection: a client that comes back with several
// subscriptions to resume (graphql-ws re-sends all of them) gets every
// one of them replayed to the end, then live. (Each replay used to wait
// for the connection's drain notice, and each one's request replaced
// the previous one's: all but the last stalled for good.)
func TestManyReplaysOnOneConnection(t *testing.T) {
	replayMany(t, 3, 0)
}

// TestReplaysShareTheConnectionsCap: eight replays of 2 MB each on one
// connection whose cap is 1 MiB finish without a slow-consumer cut: the
// connection's replays share one pacing budget (each used to append its
// own 256 KiB chunk, 2 MiB in all, and the client was cut with 1013,
// every time it came back).
func TestReplaysShareTheConnectionsCap(t *testing.T) {
	replayMany(t, 8, 1<<20)
}

// replayMany resumes subs subscriptions from offset 0 of a 2,000-event
// stream of 1 KiB events on one small-window connection whose client
// reads nothing until every replay has started, then checks each gets
// offsets 1..2000 in order and then the live event.
func replayMany(t *testing.T, subs int, maxOutbound int) {
	const events = 2000
	s := startHistory(t, func(o *server.Options) {
		if maxOutbound > 0 {
			o.MaxOutbound = maxOutbound
		}
	})
	pub := dialPublisher(t, "tcp", s.opts.PublishListen)
	pub.publishN("mid.t", 1, events, strings.Repeat("y", 1000))
	c := dialSmallWindow(t, s.opts.Listen)
	c.send(`{"type":"connection_init","payload":{}}`)
	c.expect(`{"type":"connection_ack"}`)
	epoch := learnEpoch(t, c, "mid", "t")
	for i := 0; i < subs; i++ {
		c.send(fmt.Sprintf(`{"id":"s%d","type":"subscribe","payload":{"query":"subscription { mid(room: \"t\") { seq body } }","extensions":{"fraised":{"resume":{"epoch":%q,"offset":0}}}}}`, i, epoch))
	}
	time.Sleep(200 * time.Millisecond) // every replay starts while the client reads nothing
	last := map[string]uint64{}
	for done := 0; done < subs; {
		m, err := c.read()
		if err != nil {
			t.Fatalf("after %v: %v", last, err)
		}
		id, p := gjson.Get(m, "id").String(), positionedOf(t, m)
		if p.offset != last[id]+1 || p.epoch != epoch {
			t.Fatalf("%s: after offset %d got %+v", id, last[id], p)
		}
		if last[id] = p.offset; p.offset == events {
			done++
		}
	}
	s.waitSubs(t, int64(subs)) // all live
	pub.publishN("mid.t", events+1, 1, "live")
	live := map[string]bool{}
	for range subs {
		m := c.next()
		if p := positionedOf(t, m); p.offset != events+1 || live[gjson.Get(m, "id").String()] {
			t.Fatalf("live: %s (after %v)", m, live)
		}
		live[gjson.Get(m, "id").String()] = true
	}
}

// TestDrainDuringReplay: a replay still running when the server drains
// is abandoned cleanly: the client gets the frames queued for it, in
// order and without a gap, then close 1001 (so it resumes elsewhere
// from its last offset), and the shutdown ends within its deadline.
func TestDrainDuringReplay(t *testing.T) {
	const events = 2000
	s := startHistory(t, nil)
	pub := dialPublisher(t, "tcp", s.opts.PublishListen)
	pub.publishN("mid.t", 1, events, strings.Repeat("y", 1000))
	c := dialSmallWindow(t, s.opts.Listen)
	c.send(`{"type":"connection_init","payload":{}}`)
	c.expect(`{"type":"connection_ack"}`)
	epoch := learnEpoch(t, c, "mid", "t")
	c.send(fmt.Sprintf(`{"id":"r","type":"subscribe","payload":{"query":"subscription { mid(room: \"t\") { seq body } }","extensions":{"fraised":{"resume":{"epoch":%q,"offset":0}}}}}`, epoch))
	if p := c.nextPos("r"); p.offset != 1 {
		t.Fatalf("first replayed %+v", p)
	}
	const drainFor = 2 * time.Second
	shut := make(chan time.Duration, 1)
	go func() {
		start := time.Now()
		ctx, cancel := context.WithTimeout(context.Background(), drainFor)
		defer cancel()
		_ = s.Shutdown(ctx)
		shut <- time.Since(start)
	}()
	last := uint64(1)
	for {
		m, err := c.read()
		var ce wsutil.ClosedError
		if errors.As(err, &ce) {
			if ce.Code != ws.StatusGoingAway {
				t.Fatalf("closed with %d %q after offset %d, want 1001", ce.Code, ce.Reason, last)
			}
			_ = wsutil.WriteClientMessage(c.conn, ws.OpClose, ws.NewCloseFrameBody(ws.StatusGoingAway, ""))
			break
		}
		if err != nil {
			t.Fatalf("after offset %d: %v", last, err)
		}
		if p := positionedOf(t, m); p.offset != last+1 {
			t.Fatalf("after offset %d got %+v", last, p)
		}
		last++
		time.Sleep(2 * time.Millisecond) // slower than the drain: 2,000 events take 4 s
	}
	if last >= events {
		t.Fatalf("the replay finished (offset %d) before the drain: nothing was abandoned", last)
	}
	select {
	case took := <-shut:
		if took > drainFor+time.Second {
			t.Fatalf("shutdown took %v with a %v deadline", took, drainFor)
		}
	case <-time.After(drainFor + 5*time.Second):
		t.Fatal("shutdown hangs with a replay in progress")
	}
}

// TestCompleteAndResubscribeMidReplay: a client that completes a
// replaying subscription and subscribes again with the same id (live,
// no resume) gets the replayed frames already queued, in order, then
// each live event exactly once: the abandoned replay never goes live
// (it would deliver every event twice, and stay registered after the
// connection closed).
func TestCompleteAndResubscribeMidReplay(t *testing.T) {
	const events = 2000
	s := startHistory(t, nil)
	pub := dialPublisher(t, "tcp", s.opts.PublishListen)
	pub.publishN("mid.t", 1, events, strings.Repeat("y", 1000))
	c := dialSmallWindow(t, s.opts.Listen)
	c.send(`{"type":"connection_init","payload":{}}`)
	c.expect(`{"type":"connection_ack"}`)
	epoch := learnEpoch(t, c, "mid", "t")
	const doc = `subscription { mid(room: \"t\") { seq body } }`
	c.send(fmt.Sprintf(`{"id":"r","type":"subscribe","payload":{"query":"%s","extensions":{"fraised":{"resume":{"epoch":%q,"offset":0}}}}}`, doc, epoch))
	time.Sleep(100 * time.Millisecond) // the replay waits for the client's window
	c.send(`{"id":"r","type":"complete"}`)
	c.send(`{"id":"r","type":"subscribe","payload":{"query":"` + doc + `"}}`)
	s.waitSubs(t, 1) // the new one, live
	pub.publishN("mid.t", events+1, 1, "live")
	var last uint64
	for {
		p := c.nextPos("r")
		if p.offset == events+1 {
			break
		}
		if p.offset != last+1 {
			t.Fatalf("after offset %d got %+v", last, p)
		}
		last = p.offset
	}
	if last >= events {
		t.Fatalf("the replay ended (offset %d) before the complete", last)
	}
	c.pingPong() // the live event came once
	if n := s.Stats().Subscriptions; n != 1 {
		t.Fatalf("%d subscriptions registered, want the new one only", n)
	}
	c.conn.Close()
	s.waitSubs(t, 0)
}

// TestGlobalCapTrimsARunningReplay: events a replay has not sent yet,
// trimmed by --history-max-bytes for another topic's traffic, end the
// replay with the trimmed error right after the last contiguous event
// it sent: never a silent gap.
func TestGlobalCapTrimsARunningReplay(t *testing.T) {
	const events = 2000 // about 2.1 MB retained on mid.t
	s := startHistory(t, func(o *server.Options) { o.HistoryMaxBytes = 5 << 19 })
	pub := dialPublisher(t, "tcp", s.opts.PublishListen)
	body := strings.Repeat("y", 1000)
	pub.publishN("mid.t", 1, events, body)
	c := dialSmallWindow(t, s.opts.Listen)
	c.send(`{"type":"connection_init","payload":{}}`)
	c.expect(`{"type":"connection_ack"}`)
	epoch := learnEpoch(t, c, "mid", "t")
	c.send(fmt.Sprintf(`{"id":"r","type":"subscribe","payload":{"query":"subscription { mid(room: \"t\") { seq body } }","extensions":{"fraised":{"resume":{"epoch":%q,"offset":0}}}}}`, epoch))
	time.Sleep(100 * time.Millisecond)        // the replay waits for the client's window
	pub.publishN("feed.other", 1, 4000, body) // 4 MB more: the cap trims both streams
	var last uint64
	for {
		m, err := c.read()
		if err != nil {
			t.Fatalf("after offset %d: %v", last, err)
		}
		if gjson.Get(m, "type").String() == "error" {
			e := gjson.Get(m, "payload.0.extensions")
			if e.Get("reason").String() != "trimmed" || e.Get("requested.offset").Uint() != last ||
				e.Get("available.first").Uint() <= last+1 || e.Get("available.last").Uint() != events {
				t.Fatalf("after offset %d: %s", last, m)
			}
			break
		}
		if p := positionedOf(t, m); p.offset != last+1 {
			t.Fatalf("after offset %d got %+v", last, p)
		}
		last++
	}
	c.pingPong() // the operation is over
}

// TestResumeStormFromZeroIsBounded: forty clients resume from the
// oldest of 10 MB of history at once and read nothing: the memory they
// hold in fraised stays within one replay chunk (256 KiB, in a pooled
// buffer of at most twice that) each, a live subscriber keeps getting
// its events, and closing them frees it all.
func TestResumeStormFromZeroIsBounded(t *testing.T) {
	const clients, events = 40, 10_000
	s := startHistory(t, nil)
	pub := dialPublisher(t, "tcp", s.opts.PublishListen)
	pub.publishN("feed.big", 1, events, strings.Repeat("y", 1000))
	live := connect(t, s.opts.Listen)
	live.subscribe("l", `subscription { plain(topic: "l") { seq } }`, nil)
	s.waitSubs(t, 1)
	probe := connect(t, s.opts.Listen)
	epoch := probeEpoch(t, probe, "big")
	storm := make([]*client, clients)
	for i := range storm {
		storm[i] = dialSmallWindow(t, s.opts.Listen)
		storm[i].send(`{"type":"connection_init","payload":{"fraised":{"resume":{"1":{"epoch":"` + epoch + `","offset":0}}}}}`)
		storm[i].subscribe("1", feedDoc, map[string]any{"room": "big"})
	}
	const bound = clients*2*(256<<10) + 64<<10 // and the live and probe connections
	var peak int64
	for i := 1; i <= 20; i++ {
		pub.publishN("plain.l", i, 1, "")
		if p := positionedOf(t, live.next()); p.seq != int64(i) {
			t.Fatalf("live subscriber got %+v, want seq %d", p, i)
		}
		peak = max(peak, s.Stats().OutboundHeld)
		time.Sleep(10 * time.Millisecond)
	}
	if peak == 0 || peak > bound {
		t.Fatalf("the storm held %d bytes at most, want 1 to %d", peak, bound)
	}
	t.Logf("%d replays that read nothing held at most %d KiB", clients, peak>>10)
	for _, c := range storm {
		c.conn.Close()
	}
	deadline := time.Now().Add(5 * time.Second)
	for s.Stats().OutboundHeld != 0 || s.Stats().Connections > 3 { // live, probe and the publisher
		if time.Now().After(deadline) {
			t.Fatalf("after the storm closed: %d bytes held, %d connections", s.Stats().OutboundHeld, s.Stats().Connections)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
