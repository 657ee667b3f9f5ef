package resolve

import (
	"context"
	"encoding/json"
	"log/slog"
	"os/exec"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/fraised/fraised/gql"
)

var benchSink []byte

// echoResolver returns the event as raw JSON: as cheap as a resolver gets,
// so the benchmarks below measure what surrounds the call.
func echoResolver(_ context.Context, p gql.ResolveParams) (any, error) {
	return json.RawMessage(p.Event), nil
}

var benchEvent = []byte(`{"id":"42","n":7}`)

// BenchmarkResolverDirect: the resolver and the projection of its result,
// called inline: the cost of "the function itself".
func BenchmarkResolverDirect(b *testing.B) {
	op := testOp(b, echoResolver)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		benchSink = op.AppendResultContext(ctx, benchSink[:0], benchEvent)
	}
}

// BenchmarkResolverPool: the same call through the worker pool as the
// dispatcher makes it (a new Call with its deadline and event copy,
// Start, the completion queue), 256 in flight; the difference to
// BenchmarkResolverDirect is the pool's overhead per call.
func BenchmarkResolverPool(b *testing.B) {
	op := testOp(b, echoResolver)
	pool := NewPool(4, MaxPending, slog.New(slog.DiscardHandler))
	defer pool.Close()
	q := NewCompletions(MaxPending, nil)
	const window = 256
	inflight := 0
	b.ReportAllocs()
	for b.Loop() {
		if inflight == window {
			<-q.ch
			inflight--
		}
		pool.Start(NewCall(op, append([]byte(nil), benchEvent...), time.Now().Add(time.Minute), q))
		inflight++
	}
	for ; inflight > 0; inflight-- {
		<-q.ch
	}
}

// cpuNanos returns the CPU time (user + system) of this process so far:
// fraised's side only, the child's is not counted.
func cpuNanos() int64 {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return ru.Utime.Nano() + ru.Stime.Nano()
}

// BenchmarkPythonBatch64: calls to a Python child (fraised_resolvers,
// a plain echo function) in batches of 64, one frame each way per batch.
// Reported per call: wall time (ns/op, Python included), fraised's CPU
// (fraised-cpu-ns/call), the latency of a call from Flush to its
// answer (p50-us, p99-us) and the calls per second one child serves.
func BenchmarkPythonBatch64(b *testing.B) {
	py, err := exec.LookPath("python3")
	if err != nil {
		b.Skip("python3 not installed")
	}
	cl := Open(Spec{Key: "Subscription.item", Exec: []string{py, "testdata/bench_resolvers.py"}}, time.Minute, slog.New(slog.DiscardHandler))
	defer cl.Close(context.Background())
	deadline := time.Now().Add(10 * time.Second)
	for !cl.Ready() {
		if time.Now().After(deadline) {
			b.Fatal("the Python child did not connect")
		}
		time.Sleep(5 * time.Millisecond)
	}
	op := testOp(b, echoResolver)
	q := NewCompletions(64, nil)
	var lat []time.Duration
	calls := 0
	b.ReportAllocs()
	cpu0, start := cpuNanos(), time.Now()
	b.ResetTimer()
	for calls < b.N {
		n := min(64, b.N-calls)
		for range n {
			cl.Start(NewCall(op, append([]byte(nil), benchEvent...), time.Now().Add(time.Minute), q))
		}
		t0 := time.Now()
		cl.Flush()
		for range n {
			c := <-q.ch
			if len(c.Payload) == 0 || c.Payload[2] != 'd' {
				b.Fatalf("unexpected answer %s", c.Payload)
			}
			lat = append(lat, time.Since(t0))
		}
		calls += n
	}
	b.StopTimer()
	elapsed, cpu := time.Since(start), cpuNanos()-cpu0
	slices.Sort(lat)
	b.ReportMetric(float64(cpu)/float64(calls), "fraised-cpu-ns/call")
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-us")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-us")
	b.ReportMetric(float64(calls)/elapsed.Seconds(), "calls/s")
}
