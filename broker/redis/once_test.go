package redis

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/fraised/fraised/broker"
	"github.com/fraised/fraised/internal/redistest"
)

// TestPublishOnceDropsWhatWasPublished: fraised_publish_once publishes an
// event (with the next offset of its topic, received like any publish)
// unless its origin's seq is at or below the one recorded for its stream
// and part; seqs compare as numbers (10 after 9, 99 after 100 is a
// duplicate); parts and streams are independent.
func TestPublishOnceDropsWhatWasPublished(t *testing.T) {
	r := redistest.Start(t)
	n := startNode(t, r.URL(), nil)
	n.TopicAdded("t")
	waitReady(t, n)
	subscribed(t, r, "t", 1)
	ctx := context.Background()
	steps := []struct {
		stream, part string
		seq          int64
		dup          bool
	}{
		{"s1", "0", 5, false},
		{"s1", "0", 5, true},
		{"s1", "0", 3, true},
		{"s1", "0", 9, false},
		{"s1", "0", 10, false},
		{"s1", "0", 100, false},
		{"s1", "0", 99, true},
		{"s1", "1", 7, false},
		{"s2", "0", 1, false},
		{"s1", "1", 7, true},
	}
	var offset uint64
	for i, st := range steps {
		rc, dup, err := n.PublishOnce(ctx, []byte("t"), []byte(`{"step":1}`), broker.Origin{Stream: st.stream, Part: st.part, Seq: st.seq})
		if err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
		if dup != st.dup {
			t.Fatalf("step %d (%s/%s seq %d): duplicate %v, want %v", i, st.stream, st.part, st.seq, dup, st.dup)
		}
		if !dup {
			offset++
			if rc.Pos.Offset != offset || rc.Receivers != 1 {
				t.Fatalf("step %d: receipt %+v, want offset %d received by 1 node", i, rc, offset)
			}
		}
	}
	eventually(t, 5*time.Second, func() error {
		if got := len(n.in.events("t")); uint64(got) != offset {
			return fmt.Errorf("the node received %d events, want %d (duplicates must not be published)", got, offset)
		}
		return nil
	})
	if _, _, err := n.PublishOnce(ctx, []byte("t"), []byte(`{}`), broker.Origin{Stream: "s1", Part: "0", Seq: -1}); err == nil {
		t.Fatal("a negative seq was accepted")
	}
	if got, err := newClient(t, r).HGet(ctx, markPrefix+"s1", "0").Result(); err != nil || got != "100" {
		t.Fatalf("the mark of s1/0 is %q, want 100", got)
	}
}

// TestPublishOnceThatFailsLeavesNoMark: a fraised_publish_once that
// fails with an error reply (here the topic's meta key holds a value of
// another type, as a stray SET leaves it) answers broker.ErrUnavailable,
// which promises nothing was published; so its origin's mark must not be
// written either, or the publisher's retry would be dropped as a
// duplicate and the event lost.
func TestPublishOnceThatFailsLeavesNoMark(t *testing.T) {
	r := redistest.Start(t)
	n := startNode(t, r.URL(), nil)
	waitReady(t, n)
	ctx := context.Background()
	c := newClient(t, r)
	if err := c.Set(ctx, metaPrefix+"t", "not a hash", 0).Err(); err != nil {
		t.Fatal(err)
	}
	o := broker.Origin{Stream: "s1", Part: "0", Seq: 1}
	if _, _, err := n.PublishOnce(ctx, []byte("t"), []byte(`{}`), o); !errors.Is(err, broker.ErrUnavailable) {
		t.Fatalf("publish once onto a meta key of the wrong type: %v, want ErrUnavailable", err)
	}
	if got := c.HGet(ctx, markPrefix+"s1", "0").Val(); got != "" {
		t.Fatalf("a failed publish once left the mark %q", got)
	}
	c.Del(ctx, metaPrefix+"t")
	rc, dup, err := n.PublishOnce(ctx, []byte("t"), []byte(`{}`), o)
	if err != nil || dup || rc.Pos.Offset != 1 {
		t.Fatalf("the retry: receipt %+v, duplicate %v, err %v; want published at offset 1", rc, dup, err)
	}
}

// BenchmarkPublishOnce compares, on a real local redis-server with a node
// subscribed, a source's publish with its origin (fraised_publish_once:
// one more HGET and HSET in the function) against a plain one, one round
// trip each: what exactly-once costs a clustered source.
func BenchmarkPublishOnce(b *testing.B) {
	br := benchBroker(b, nopInlet{})
	payload := benchPayload
	ctx := context.Background()
	seq := int64(0) // across every run of a sub-benchmark: a seq is never reused
	run := func(name string, publish func(seq int64) error) {
		b.Run(name, func(b *testing.B) {
			cpu0 := redisCPU(b, br)
			for b.Loop() {
				seq++
				if err := publish(seq); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric((redisCPU(b, br)-cpu0)*1e6/float64(b.N), "redis-µs/event")
		})
	}
	run("plain", func(int64) error {
		_, err := br.Publish(ctx, []byte("bench"), payload)
		return err
	})
	stream := "bench:" + strconv.FormatInt(time.Now().UnixNano(), 10)
	run("once", func(seq int64) error {
		_, dup, err := br.PublishOnce(ctx, []byte("bench"), payload, broker.Origin{Stream: stream, Part: "3", Seq: seq})
		if dup {
			return fmt.Errorf("seq %d taken for a duplicate", seq)
		}
		return err
	})
}
