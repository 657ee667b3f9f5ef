package redis

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/fraised/fraised/internal/redistest"
)

// TestReplicaPromotedAfterLosingWrites: a real replica of the node's Redis
// has events 1-5 of a topic (replicated, WAIT-confirmed), is cut off
// (REPLICAOF NO ONE) while the primary takes 6-8, and the primary dies;
// the replica is promoted onto the primary's address (CONFIG SET port,
// what a floating address or a sentinel-managed DNS name does). The node
// reconnects, finds the topic behind what it delivered, rotates the
// epoch in Redis and reports the loss (offset_regressed, after 8): never
// a silent reuse of offsets 6-8. Later events flow in the new epoch from
// offset 1.
func TestReplicaPromotedAfterLosingWrites(t *testing.T) {
	primary := redistest.Start(t)
	host, port, _ := net.SplitHostPort(primary.Addr)
	replica := redistest.Start(t, "--replicaof", host, port)
	n := startNode(t, primary.URL(), nil)
	n.TopicAdded("t")
	waitReady(t, n)
	subscribed(t, primary, "t", 1)
	publishN(t, n, "t", 0, 5)
	old := waitEvents(t, n, "t", 5)[0].pos.Epoch
	rc := newClient(t, replica)
	eventually(t, 15*time.Second, func() error { // the replica's first sync
		info := rc.Info(context.Background(), "replication").Val()
		if !strings.Contains(info, "master_link_status:up") {
			return errors.New("the replica is not in sync with the primary yet")
		}
		return nil
	})
	if got := primary.Do("WAIT", "1", "3000"); got != ":1" {
		t.Fatalf("WAIT for the replica = %q, want :1 (events 1-5 replicated)", got)
	}
	if got := replica.Do("REPLICAOF", "NO", "ONE"); got != "+OK" {
		t.Fatalf("REPLICAOF NO ONE = %q", got)
	}
	publishN(t, n, "t", 5, 8) // only the primary has 6-8
	waitEvents(t, n, "t", 8)
	if got := rc.HGet(context.Background(), metaPrefix+"t", "o").Val(); got != "5" {
		t.Fatalf("the cut-off replica's offset of the topic = %q, want 5", got)
	}
	primary.Kill()
	if got := replica.Do("CONFIG", "SET", "port", port); got != "+OK" {
		t.Fatalf("CONFIG SET port = %q (the promotion onto the primary's address)", got)
	}
	promoted := *replica
	promoted.Addr = primary.Addr
	eventually(t, 15*time.Second, func() error {
		if len(n.losses.all()) == 0 {
			return errors.New("no loss reported after the promotion")
		}
		return nil
	})
	l := n.losses.all()[0]
	if l.Reason != "offset_regressed" || l.Epoch != old || l.After != 8 || l.NewEpoch == old || l.NewEpoch == "" {
		t.Fatalf("loss = %+v, want offset_regressed after 8 in %q with a new epoch", l, old)
	}
	if got := newClient(t, &promoted).HGet(context.Background(), metaPrefix+"t", "e").Val(); got != l.NewEpoch {
		t.Fatalf("the promoted Redis' epoch of the topic = %q, want the rotated %q", got, l.NewEpoch)
	}
	waitReady(t, n)
	publishN(t, n, "t", 8, 11)
	evs := waitEvents(t, n, "t", 11)[8:]
	for i, e := range evs {
		if e.pos.Epoch != l.NewEpoch || e.pos.Offset != uint64(i+1) {
			t.Fatalf("event %d after the promotion at %+v, want offset %d in %q", i, e.pos, i+1, l.NewEpoch)
		}
	}
	if got := len(n.losses.all()); got != 1 {
		t.Fatalf("%d losses reported, want 1: %+v", got, n.losses.all())
	}
}
