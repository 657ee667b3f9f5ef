package session

import (
	"fmt"
	"math"
	"runtime"
	"runtime/metrics"
	"testing"
	"time"

	"github.com/fraised/fraised/gql"
)

// BenchmarkMillionSubscriptions holds 1,000,000 subscriptions (1,000 per
// connection struct, 10,000 topics, one group per topic) as the server
// does: subscription records, registry entries and their groups. It
// reports the heap they keep per subscription and the stop-the-world
// pauses of a full GC with them live, which is what a large registry
// costs a process beyond its sockets.
func BenchmarkMillionSubscriptions(b *testing.B) {
	const subs, perConn, topics = 1_000_000, 1000, 10_000
	e := newTestEnv(b)
	go e.d.Run()
	b.Cleanup(e.d.Stop)
	ops := make([]*gql.Operation, topics)
	for i := range ops {
		op, errs := e.schema.Compile(gql.Request{Query: fmt.Sprintf(`subscription { events(topic: "t.%d") { seq ts body } }`, i)}, gql.Env{})
		if len(errs) > 0 {
			b.Fatal(errs)
		}
		ops[i] = op
	}
	for b.Loop() {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		keep := make([]*subscription, 0, subs)
		var c *recConn
		for i := 0; i < subs; i++ {
			if i%perConn == 0 {
				c = newRecConn(e.w)
			}
			sub := &subscription{key: fmt.Sprint(i % perConn)}
			sub.Out, sub.ID, sub.Op = c.Output(), []byte(fmt.Sprintf(`"%d"`, i%perConn)), ops[i%topics]
			if !e.d.QueueAdd(&sub.Subscription) {
				b.Fatal("subscribe queue full")
			}
			keep = append(keep, sub)
			if len(keep)%queueChunk == 0 { // keep the control queue's arrays small
				waitSubscriptions(b, e, int64(len(keep)))
			}
		}
		waitSubscriptions(b, e, subs)
		runtime.GC()
		runtime.ReadMemStats(&after)
		pause := maxGCPause(func() { runtime.GC() })
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/subs, "heap-B/sub")
		b.ReportMetric(float64(pause.Microseconds()), "max-gc-pause-µs")
		for _, sub := range keep {
			sub.Remove()
			e.d.QueueRemove(&sub.Subscription)
		}
		waitSubscriptions(b, e, 0)
		runtime.KeepAlive(keep)
	}
}

// queueChunk is how many subscribes BenchmarkMillionSubscriptions queues
// before it waits for the dispatcher, so the control queue (kept between
// batches) does not count in the heap per subscription.
const queueChunk = 10_000

// waitSubscriptions waits until the dispatcher has registered exactly n
// subscriptions.
func waitSubscriptions(b *testing.B, e *testEnv, n int64) {
	deadline := time.Now().Add(time.Minute)
	for e.d.Stats().Subscriptions != n {
		if time.Now().After(deadline) {
			b.Fatalf("%d subscriptions registered, want %d", e.d.Stats().Subscriptions, n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// maxGCPause runs f and returns the longest stop-the-world GC pause
// recorded while it ran.
func maxGCPause(f func()) time.Duration {
	sample := []metrics.Sample{{Name: "/sched/pauses/total/gc:seconds"}}
	metrics.Read(sample)
	before := sample[0].Value.Float64Histogram()
	counts := append([]uint64(nil), before.Counts...)
	f()
	metrics.Read(sample)
	h := sample[0].Value.Float64Histogram()
	for i := len(h.Counts) - 1; i >= 0; i-- {
		if h.Counts[i] > counts[i] {
			upper := h.Buckets[i+1]
			if math.IsInf(upper, 1) {
				upper = h.Buckets[i]
			}
			return time.Duration(upper * float64(time.Second))
		}
	}
	return 0
}
