package redis

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/fraised/fraised/broker"
)

// stampInlet records when each event reaches the node's dispatcher side.
type stampInlet struct{ at chan time.Time }

func (s stampInlet) Deliver([]byte, []byte, broker.Position, <-chan struct{}) bool {
	s.at <- time.Now()
	return true
}

// BenchmarkHopLatency is the timeline of one event through Redis, one
// event at a time on an otherwise idle broker: "fcall" is the publisher's
// wait (publish in → FCALL → receipt), "hop" the event's way from the
// Publish call to the Inlet (FCALL out, fraised_publish, PUBLISH, the
// receiver's read, parse and position check): what the cluster adds to an
// event's latency before the dispatcher's ring, which both modes share.
// Reported as p50 and p99 in µs; loopback, redis-server unpinned.
func BenchmarkHopLatency(b *testing.B) {
	in := stampInlet{at: make(chan time.Time, 1)}
	br := benchBroker(b, in)
	ctx := context.Background()
	topic := []byte("bench")
	var fcall, hop []time.Duration
	for b.Loop() {
		t0 := time.Now()
		if _, err := br.Publish(ctx, topic, benchPayload); err != nil {
			b.Fatal(err)
		}
		t1 := time.Now()
		select {
		case t2 := <-in.at:
			fcall, hop = append(fcall, t1.Sub(t0)), append(hop, t2.Sub(t0))
		case <-time.After(10 * time.Second):
			b.Fatal("the event did not come back through pub/sub within 10 s")
		}
	}
	report(b, "fcall", fcall)
	report(b, "hop", hop)
}

func report(b *testing.B, name string, d []time.Duration) {
	if len(d) == 0 {
		return
	}
	slices.Sort(d)
	q := func(p float64) float64 { return float64(d[int(p*float64(len(d)-1))].Nanoseconds()) / 1e3 }
	b.ReportMetric(q(0.50), name+"-p50-µs")
	b.ReportMetric(q(0.99), name+"-p99-µs")
}
