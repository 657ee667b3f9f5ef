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
