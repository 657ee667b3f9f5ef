package redis

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/fraised/fraised/internal/redistest"
	"github.com/fraised/fraised/internal/tcpproxy"
)

func publishN(t *testing.T, n *node, topic string, from, to int) {
	t.Helper()
	for i := from; i < to; i++ {
		if _, err := n.Publish(context.Background(), []byte(topic), fmt.Appendf(nil, `{"i":%d}`, i)); err != nil {
			t.Fatal(err)
		}
	}
}

func waitEvents(t *testing.T, n *node, topic string, want int) []got {
	t.Helper()
	eventually(t, 10*time.Second, func() error {
		if got := len(n.in.events(topic)); got < want {
			return fmt.Errorf("%d of %d events", got, want)
		}
		return nil
	})
	return n.in.events(topic)
}

// TestOffsetRegressionRotatesTheEpoch: Redis lost the last writes of a
// topic (as after a failover to a replica that had not received them, or
// an AOF restart that lost its last second; simulated by setting the
// offset back): the next event reuses an offset the node delivered. The
// node rotates the topic's epoch in Redis and reports the loss; later
// events flow in the new epoch from offset 1.
func TestOffsetRegressionRotatesTheEpoch(t *testing.T) {
	r := redistest.Start(t)
	n := startNode(t, r.URL(), nil)
	n.TopicAdded("t")
	waitReady(t, n)
	subscribed(t, r, "t", 1)
	publishN(t, n, "t", 0, 5)
	old := waitEvents(t, n, "t", 5)[0].pos.Epoch
	// The replica had offsets 1-2 only: its hash and stream both end
	// there (a stream's last id survives XDEL, so it is rebuilt).
	r.Do("DEL", "fraised:s:t")
	r.Do("XADD", "fraised:s:t", "1-1", "p", `{"i":0}`)
	r.Do("XADD", "fraised:s:t", "2-1", "p", `{"i":1}`)
	if got := r.Do("HSET", "fraised:m:t", "o", "2"); got != ":0" {
		t.Fatalf("HSET = %q", got)
	}
	publishN(t, n, "t", 5, 6) // offset 3 again
	eventually(t, 10*time.Second, func() error {
		if len(n.losses.all()) == 0 {
			return errors.New("no loss reported")
		}
		return nil
	})
	l := n.losses.all()[0]
	if l.Reason != "offset_regressed" || l.Epoch != old || l.After != 5 || l.NewEpoch == old || l.NewEpoch == "" {
		t.Fatalf("loss = %+v, want offset_regressed after 5 in %q with a new epoch", l, old)
	}
	if got := r.Do("HGET", "fraised:m:t", "e"); got != "$"+fmt.Sprint(len(l.NewEpoch)) {
		t.Fatalf("HGET epoch header = %q, want the rotated epoch %q", got, l.NewEpoch)
	}
	publishN(t, n, "t", 6, 9)
	evs := waitEvents(t, n, "t", 9)[6:]
	for i, e := range evs {
		if e.pos.Epoch != l.NewEpoch || e.pos.Offset != uint64(i+1) {
			t.Fatalf("event %d after the rotation at %+v, want offset %d in %q", i, e.pos, i+1, l.NewEpoch)
		}
	}
	if got := len(n.losses.all()); got != 1 {
		t.Fatalf("%d losses reported, want 1: %+v", got, n.losses.all())
	}
}

// TestGapPastTheWindowIsReported: a node without repair stream
// (--cluster-repair-window negative) misses events on a silent link: it
// reports them as trimmed, with their count, instead of skipping them.
func TestGapPastTheWindowIsReported(t *testing.T) {
	r := redistest.Start(t)
	p, err := tcpproxy.Listen("127.0.0.1:0", r.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	noWindow := func(c *Config) { c.RepairWindow = -1 }
	sub := startNode(t, "redis://"+p.Addr(), noWindow)
	pub := startNode(t, r.URL(), noWindow)
	sub.TopicAdded("t")
	waitReady(t, sub, pub)
	subscribed(t, r, "t", 1)
	publishN(t, pub, "t", 0, 3)
	waitEvents(t, sub, "t", 3)
	p.Freeze()
	publishN(t, pub, "t", 3, 8)
	eventually(t, 10*time.Second, func() error {
		if sub.Ready() == nil {
			return errors.New("still ready")
		}
		return nil
	})
	waitReady(t, sub)
	subscribed(t, r, "t", 1)
	publishN(t, pub, "t", 8, 9)
	evs := waitEvents(t, sub, "t", 4)
	if len(evs) != 4 || evs[3].pos.Offset != 9 {
		t.Fatalf("events %+v, want offsets 1-3 then 9", evs)
	}
	l := sub.losses.all()
	if len(l) != 1 || l[0].Reason != "trimmed" || l[0].After != 3 || l[0].Now != 9 {
		t.Fatalf("losses %+v, want one trimmed after 3 up to 8", l)
	}
	if s := sub.Stats(); s.Lost != 5 {
		t.Fatalf("lost = %d, want 5", s.Lost)
	}
}

// TestStreamAheadOfOffsetStartsANewEpoch: when a topic's offset is behind
// its own stream (the hash lost writes the stream kept), fraised_publish
// never reuses an offset: it starts a new epoch at offset 1, and the node
// reports the change.
func TestStreamAheadOfOffsetStartsANewEpoch(t *testing.T) {
	r := redistest.Start(t)
	n := startNode(t, r.URL(), nil)
	n.TopicAdded("t")
	waitReady(t, n)
	subscribed(t, r, "t", 1)
	publishN(t, n, "t", 0, 4)
	old := waitEvents(t, n, "t", 4)[0].pos.Epoch
	r.Do("HSET", "fraised:m:t", "o", "1")
	rc, err := n.Publish(context.Background(), []byte("t"), []byte(`{"i":4}`))
	if err != nil {
		t.Fatal(err)
	}
	if rc.Pos.Offset != 1 || rc.Pos.Epoch == old || rc.Pos.Epoch == "" {
		t.Fatalf("publish with the stream ahead = %+v, want offset 1 in a new epoch (old %q)", rc.Pos, old)
	}
	eventually(t, 10*time.Second, func() error {
		if l := n.losses.all(); len(l) != 1 || l[0].Reason != "epoch_changed" || l[0].NewEpoch != rc.Pos.Epoch {
			return fmt.Errorf("losses %+v", l)
		}
		return nil
	})
}

// TestRestartWithAOFKeepsTheEpoch: Redis with an append-only file
// (fsync always) restarted mid-stream keeps epochs, offsets and streams:
// the node reconnects and goes on in the same epoch, nothing reported.
func TestRestartWithAOFKeepsTheEpoch(t *testing.T) {
	r := redistest.Start(t, "--appendonly", "yes", "--appendfsync", "always")
	n := startNode(t, r.URL(), nil)
	n.TopicAdded("t")
	waitReady(t, n)
	subscribed(t, r, "t", 1)
	publishN(t, n, "t", 0, 5)
	waitEvents(t, n, "t", 5)
	r.Restart()
	waitReady(t, n)
	subscribed(t, r, "t", 1)
	publishN(t, n, "t", 5, 10)
	checkContiguous(t, "node", waitEvents(t, n, "t", 10), 10)
	if l := n.losses.all(); len(l) > 0 {
		t.Fatalf("losses after an AOF restart: %+v", l)
	}
}

// TestGapBeforeTheFirstEventIsRepaired: a node subscribed to a topic that
// has had no event yet loses its link; the events published meanwhile are
// repaired after the reconnect like any gap (the node read the topic's
// position when its subscription was confirmed), in order and once.
func TestGapBeforeTheFirstEventIsRepaired(t *testing.T) {
	r := redistest.Start(t)
	p, err := tcpproxy.Listen("127.0.0.1:0", r.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	sub := startNode(t, "redis://"+p.Addr(), nil)
	pub := startNode(t, r.URL(), nil)
	waitReady(t, sub, pub)
	publishN(t, pub, "old", 0, 3) // a topic with history before the node subscribes
	sub.TopicAdded("new")
	sub.TopicAdded("old")
	subscribed(t, r, "new", 1)
	subscribed(t, r, "old", 1)
	p.Freeze()
	publishN(t, pub, "new", 0, 5)
	publishN(t, pub, "old", 3, 5)
	eventually(t, 10*time.Second, func() error {
		if sub.Ready() == nil {
			return errors.New("still ready on a silent link")
		}
		return nil
	})
	waitReady(t, sub)
	publishN(t, pub, "new", 5, 6)
	publishN(t, pub, "old", 5, 6)
	checkContiguous(t, "new", waitEvents(t, sub, "new", 6), 6)
	old := waitEvents(t, sub, "old", 3)
	if len(old) != 3 || old[0].pos.Offset != 4 || old[2].pos.Offset != 6 {
		t.Fatalf("old topic: %+v, want offsets 4-6 (1-3 were published before the node subscribed)", old)
	}
	if l := sub.losses.all(); len(l) > 0 {
		t.Fatalf("losses: %+v", l)
	}
}
