package server_test

import (
	"fmt"
	"io"
	"log/slog"
	"net"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/fraised/fraised/resp"
	"github.com/fraised/fraised/server"
)

// fairnessRun is the issue 8 scenario: three publishers flood the ring
// with pipelined publishes to a topic one subscriber reads, while a light
// publisher sends one PUBLISH at a time and times each reply.
type fairnessRun struct {
	latencies  []time.Duration
	maxWaiting int // most publishers seen waiting for ring space
}

func runFairness(tb testing.TB, ringSize, samples int) fairnessRun {
	s := startServer(tb, func(o *server.Options) {
		o.RingSize = ringSize
		o.Logger = slog.New(slog.DiscardHandler)
	})
	sub := connect(tb, s.opts.Listen)
	sub.subscribe("f", eventsQuery, map[string]any{"t": "flood"})
	s.waitSubs(tb, 1)
	go func() { _, _ = io.Copy(io.Discard, sub.conn) }() // a fast reader of everything

	stop := make(chan struct{})
	var wg sync.WaitGroup
	var floods []net.Conn
	var chunk []byte
	for i := range 256 {
		chunk = resp.AppendArray(chunk, []byte("PUBLISH"), []byte("flood"), fmt.Appendf(nil, `{"seq":%d,"body":"flood"}`, i))
	}
	for range 3 {
		conn, err := net.Dial("unix", s.opts.PublishUnix)
		if err != nil {
			tb.Fatal(err)
		}
		floods = append(floods, conn)
		wg.Add(2)
		go func() { // write as fast as the server reads
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				_ = conn.SetWriteDeadline(time.Now().Add(200 * time.Millisecond))
				_, _ = conn.Write(chunk)
			}
		}()
		go func() {
			defer wg.Done()
			_, _ = io.Copy(io.Discard, conn)
		}()
	}
	defer func() {
		close(stop)
		for _, c := range floods {
			c.Close()
		}
		wg.Wait()
	}()

	light := dialPublisher(tb, "tcp", s.opts.PublishListen)
	var run fairnessRun
	cmd := resp.AppendArray(nil, []byte("PUBLISH"), []byte("light"), []byte(`{"seq":1}`))
	time.Sleep(50 * time.Millisecond) // let the floods fill the ring
	for range samples {
		run.maxWaiting = max(run.maxWaiting, server.WaitingPublishers(s.Server))
		start := time.Now()
		light.write(cmd)
		if got := light.line(); got != ":0" {
			tb.Fatalf("light publisher: reply %q", got)
		}
		run.latencies = append(run.latencies, time.Since(start))
		run.maxWaiting = max(run.maxWaiting, server.WaitingPublishers(s.Server))
		time.Sleep(2 * time.Millisecond)
	}
	return run
}

func percentile(d []time.Duration, p float64) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	return s[min(len(s)-1, int(float64(len(s))*p))]
}

// TestLightPublisherNotStarved: with three publishers flooding a small
// ring, a light publisher's replies come back within a generous bound
// (issue 8 measured 16.8-30.8 s before round-robin turns). The real
// figure is BenchmarkLightPublisherLatency's.
func TestLightPublisherNotStarved(t *testing.T) {
	run := runFairness(t, 1024, 100)
	p50, p99 := percentile(run.latencies, 0.5), percentile(run.latencies, 0.99)
	t.Logf("light publisher reply latency over %d: p50 %s, p99 %s, max %s; up to %d publishers waited",
		len(run.latencies), p50, p99, slices.Max(run.latencies), run.maxWaiting)
	if run.maxWaiting == 0 {
		t.Fatal("no publisher ever waited for ring space: the floods did not fill the ring, so fairness was not tested")
	}
	if p99 > 2*time.Second {
		t.Fatalf("light publisher p99 reply latency %s, want under 2s", p99)
	}
}

// BenchmarkLightPublisherLatency reports the light publisher's reply
// latency (p50, p99) with three publishers flooding the default ring.
func BenchmarkLightPublisherLatency(b *testing.B) {
	run := runFairness(b, server.DefaultRingSize, max(b.N, 200))
	b.ReportMetric(float64(percentile(run.latencies, 0.5).Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(percentile(run.latencies, 0.99).Microseconds())/1000, "p99-ms")
	b.ReportMetric(float64(run.maxWaiting), "max-waiting")
}
