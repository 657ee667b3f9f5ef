package redisclients

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// topic is the benchmarks' topic.
var topic = []byte("bench")

// batchSize is a RESP publisher's pipeline (broker PublishBatch) size.
const batchSize = 256

// latencySamples caps the round trips kept for percentiles: the last
// 64 Ki, allocated before the timer starts so the samples cost no
// allocation per operation.
const latencySamples = 1 << 16

// arrivalTimeout bounds waiting for one event to come back through
// pub/sub: far above any loopback hop, on a loaded 2-core machine.
const arrivalTimeout = 10 * time.Second

var sink int64

// latencies keeps the last latencySamples durations.
type latencies struct {
	d []time.Duration
	n int
}

func newLatencies() *latencies { return &latencies{d: make([]time.Duration, latencySamples)} }

func (l *latencies) add(d time.Duration) {
	l.d[l.n%len(l.d)] = d
	l.n++
}

// report adds name-p50-µs and name-p99-µs to b's results.
func (l *latencies) report(b *testing.B, name string) {
	d := l.d[:min(l.n, len(l.d))]
	if len(d) == 0 {
		return
	}
	slices.Sort(d)
	q := func(p float64) float64 { return float64(d[int(p*float64(len(d)-1))].Nanoseconds()) / 1e3 }
	b.ReportMetric(q(0.50), name+"-p50-µs")
	b.ReportMetric(q(0.99), name+"-p99-µs")
}

// selfCPU returns this process' CPU seconds (user + system) so far: the
// client's encoding, decoding and goroutines, not redis-server's.
func selfCPU() float64 {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return float64(ru.Utime.Nano()+ru.Stime.Nano()) / 1e9
}

// BenchmarkFcall is one fraised_publish at a time: the cluster's publish
// of a lone RESP PUBLISH (broker Publish). rtt is the call's round trip.
func BenchmarkFcall(b *testing.B) {
	s := startRedis(b)
	for _, cl := range clients {
		b.Run("client="+cl.name, func(b *testing.B) {
			c := dial(b, s, cl.dial)
			ctx := context.Background()
			lat := newLatencies()
			b.ReportAllocs()
			var cpu0 float64
			for i := 0; b.Loop(); i++ {
				if i == 0 {
					cpu0 = selfCPU()
				}
				t0 := time.Now()
				r, err := c.publish(ctx, topic, payload)
				lat.add(time.Since(t0))
				if err != nil {
					b.Fatal(err)
				}
				sink = r.offset
			}
			lat.report(b, "rtt")
			b.ReportMetric((selfCPU()-cpu0)*1e6/float64(b.N), "cpu-µs/op")
		})
	}
}

// BenchmarkPipeline is fraised_publish in pipelines of batchSize (broker
// PublishBatch: go-redis Pipelined, rueidis DoMulti); an op is one batch.
func BenchmarkPipeline(b *testing.B) {
	s := startRedis(b)
	payloads := make([][]byte, batchSize)
	for i := range payloads {
		payloads[i] = payload
	}
	for _, cl := range clients {
		b.Run(fmt.Sprintf("client=%s/batch=%d", cl.name, batchSize), func(b *testing.B) {
			c := dial(b, s, cl.dial)
			ctx := context.Background()
			out := make([]receipt, batchSize)
			b.ReportAllocs()
			var cpu0 float64
			for i := 0; b.Loop(); i++ {
				if i == 0 {
					cpu0 = selfCPU()
				}
				if err := c.publishBatch(ctx, topic, payloads, out); err != nil {
					b.Fatal(err)
				}
				if out[batchSize-1].offset != out[0].offset+batchSize-1 {
					b.Fatalf("offsets %d..%d in one batch, want %d apart", out[0].offset, out[batchSize-1].offset, batchSize-1)
				}
			}
			events := float64(b.N * batchSize)
			b.ReportMetric(events/b.Elapsed().Seconds(), "events/s")
			b.ReportMetric((selfCPU()-cpu0)*1e6/events, "cpu-µs/event")
		})
	}
}

// publishers is how many goroutines publish at once in BenchmarkParallel:
// several RESP publisher connections, each calling broker Publish.
const publishers = 16

// BenchmarkParallel is publishers goroutines each running one
// fraised_publish at a time, on one client: go-redis takes a pooled
// connection per call, rueidis pipelines concurrent calls on one.
func BenchmarkParallel(b *testing.B) {
	s := startRedis(b)
	for _, cl := range clients {
		b.Run(fmt.Sprintf("client=%s/publishers=%d", cl.name, publishers), func(b *testing.B) {
			c := dial(b, s, cl.dial)
			ctx := context.Background()
			b.ReportAllocs()
			b.SetParallelism((publishers + 1) / 2) // × GOMAXPROCS (2 here)
			cpu0 := selfCPU()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, err := c.publish(ctx, topic, payload); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
			b.ReportMetric((selfCPU()-cpu0)*1e6/float64(b.N), "cpu-µs/event")
		})
	}
}

// BenchmarkPubSub is the hop from a publish to its message arriving at a
// subscriber of the channel fraised_publish PUBLISHes to, one event at a
// time. The publisher is a raw connection that allocates nothing
// (TestRawPublisherAllocs), so allocs/op and B/op are the subscribing
// client's per message received (its reader goroutine included).
func BenchmarkPubSub(b *testing.B) {
	s := startRedis(b)
	channel := channelPrefix + string(topic)
	for _, cl := range clients {
		b.Run("client="+cl.name, func(b *testing.B) {
			sub := dial(b, s, cl.dial)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			arrived := make(chan time.Time, 1)
			err := sub.subscribe(ctx, channel, func(ch, data string) {
				if ch == channel && strings.HasPrefix(data, "F1 ") {
					arrived <- time.Now()
				}
			})
			if err != nil {
				b.Fatal(err)
			}
			s.waitSubscribed(b, channel, 1)
			pub := newRawPublisher(b, s, topic, payload)
			timer := time.NewTimer(arrivalTimeout)
			hop := newLatencies()
			b.ReportAllocs()
			var cpu0 float64
			for i := 0; b.Loop(); i++ {
				if i == 0 {
					cpu0 = selfCPU()
				}
				t0 := time.Now()
				if err := pub.publish(); err != nil {
					b.Fatal(err)
				}
				timer.Reset(arrivalTimeout)
				select {
				case t := <-arrived:
					hop.add(t.Sub(t0))
				case <-timer.C:
					b.Fatalf("the event did not arrive through pub/sub within %s", arrivalTimeout)
				}
			}
			hop.report(b, "hop")
			b.ReportMetric((selfCPU()-cpu0)*1e6/float64(b.N), "cpu-µs/op")
		})
	}
}

// rawPublisher sends one precomputed fraised_publish on its own
// connection and reads the RESP2 reply without allocating.
type rawPublisher struct {
	c   net.Conn
	r   *bufio.Reader
	cmd []byte
}

func newRawPublisher(tb testing.TB, s *server, topic, payload []byte) *rawPublisher {
	tb.Helper()
	c, err := net.DialTimeout("tcp", s.Addr, time.Second)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { c.Close() })
	t := string(topic)
	cmd := appendCommand(nil, "FCALL", "fraised_publish", "2", metaPrefix+t, streamPrefix+t, channelPrefix+t,
		string(payload), strconv.Itoa(streamSize), strconv.Itoa(streamTTLms), strconv.Itoa(metaTTLms))
	return &rawPublisher{c: c, r: bufio.NewReader(c), cmd: cmd}
}

// publish sends the command and reads its reply, *3 :receivers :offset
// $len epoch: five lines.
func (p *rawPublisher) publish() error {
	if _, err := p.c.Write(p.cmd); err != nil {
		return err
	}
	for i := range 5 {
		line, err := p.r.ReadSlice('\n')
		if err != nil {
			return err
		}
		if i == 0 && string(line) != "*3\r\n" {
			return fmt.Errorf("fraised_publish answered %q, want an array of 3", line)
		}
	}
	return nil
}
