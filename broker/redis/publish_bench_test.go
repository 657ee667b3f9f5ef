package redis

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/fraised/fraised/broker"
	"github.com/fraised/fraised/internal/redistest"
)

// nopInlet drops what it receives.
type nopInlet struct{}

func (nopInlet) Deliver([]byte, []byte, broker.Position, <-chan struct{}) bool { return true }

// benchBroker starts a broker delivering into in on its own
// redis-server, subscribed to topic "bench" and ready; both stop when b
// ends.
func benchBroker(b *testing.B, in broker.Inlet) *Broker {
	b.Helper()
	r := redistest.Start(b)
	br, err := New(Config{URL: r.URL()})
	if err != nil {
		b.Fatal(err)
	}
	if err := br.Start(in); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(br.Stop)
	br.TopicAdded("bench")
	deadline := time.Now().Add(10 * time.Second)
	for br.Ready() != nil {
		if time.Now().After(deadline) {
			b.Fatalf("not ready: %v", br.Ready())
		}
		time.Sleep(time.Millisecond)
	}
	return br
}

// benchPayload is the event the publish benchmarks send: ~150 bytes.
var benchPayload = []byte(`{"seq":123456,"ts":1732740000.123,"body":"` + fmt.Sprintf("%0100d", 0) + `"}`)

// BenchmarkPublish measures publishes through fraised_publish on a real
// local redis-server, one round trip each (sequential) and in pipelines of
// a RESP publisher's batch size: the cluster's publish ceiling for one
// Redis and one publisher connection. With a node subscribed, each event
// also costs Redis the PUBLISH to it.
func BenchmarkPublish(b *testing.B) {
	br := benchBroker(b, nopInlet{})
	payload := benchPayload
	ctx := context.Background()
	b.Run("sequential", func(b *testing.B) {
		b.SetBytes(int64(len(payload)))
		for b.Loop() {
			if _, err := br.Publish(ctx, []byte("bench"), payload); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("batch=256", func(b *testing.B) {
		const n = 256
		evs := make([]broker.Event, n)
		out := make([]broker.Result, n)
		for i := range evs {
			evs[i] = broker.Event{Topic: []byte("bench"), Payload: payload}
		}
		b.SetBytes(int64(n * len(payload)))
		cpu0, self0 := redisCPU(b, br), selfCPU()
		for b.Loop() {
			br.PublishBatch(ctx, evs, out)
			if out[0].Err != nil {
				b.Fatal(out[0].Err)
			}
		}
		b.ReportMetric(float64(b.N*n)/b.Elapsed().Seconds(), "events/s")
		b.ReportMetric((redisCPU(b, br)-cpu0)*1e6/float64(b.N*n), "redis-µs/event")
		// The publishing side's CPU (this process: the batches' encoding,
		// the replies, and the receiver reading every event back).
		b.ReportMetric((selfCPU()-self0)*1e6/float64(b.N*n), "node-µs/event")
	})
}

// selfCPU returns this process' CPU seconds (user + system) so far.
func selfCPU() float64 {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return float64(ru.Utime.Nano()+ru.Stime.Nano()) / 1e9
}

// redisCPU returns redis-server's CPU seconds (user + system) so far.
func redisCPU(b *testing.B, br *Broker) float64 {
	b.Helper()
	info, err := br.rdb.Info(context.Background(), "cpu").Result()
	if err != nil {
		b.Fatal(err)
	}
	total := 0.0
	for _, line := range strings.Split(info, "\r\n") {
		for _, k := range []string{"used_cpu_sys:", "used_cpu_user:"} {
			if v, ok := strings.CutPrefix(line, k); ok {
				f, _ := strconv.ParseFloat(v, 64)
				total += f
			}
		}
	}
	return total
}
