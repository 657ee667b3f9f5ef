package postgres

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// The seed's figure: COMMIT -> event handed to the Sink. Writers commit one
// row per transaction; t0 is taken just before COMMIT is sent, t1 when the
// source hands the event to the sink.
//
//	go test -run '^$' -bench CommitToPublish -benchtime 3000x ./source/postgres/   (1,000 rows/s, 3 s)
//	go test -run '^$' -bench Rates -benchtime 8000x ./source/postgres/             (2,000 to 4,000 rows/s)
//	go test -run '^$' -bench Ceiling -benchtime 20000x ./source/postgres/          (as fast as 8 writers go)
//	go test -run '^$' -bench Drain -benchtime 50000x ./source/postgres/            (the reader alone)
//
// The test PostgreSQL runs with fsync=off, so COMMIT does not wait for the
// disk: the figures are fraised's path (NOTIFY wake-up, read, hand-over),
// not the disk's.

const (
	benchRate    = 1000 // rows per second, the seed's figure
	benchWriters = 8    // connections committing in parallel
	benchMaxRows = 200_000
)

type latencySink struct {
	t0, t1 []atomic.Int64 // before COMMIT is sent, at Publish
	tc     []atomic.Int64 // when COMMIT returned
	got    atomic.Int64
}

func (s *latencySink) Publish(_ context.Context, _ string, payload []byte) error {
	now := time.Now().UnixNano()
	i := bytes.IndexByte(payload, ':')
	j := bytes.IndexByte(payload, '}')
	if i < 0 || j < i {
		return fmt.Errorf("bench sink: payload %s", payload)
	}
	seq, err := strconv.Atoi(string(bytes.TrimSpace(payload[i+1 : j])))
	if err != nil || seq < 0 || seq >= len(s.t1) {
		return fmt.Errorf("bench sink: payload %s", payload)
	}
	if s.t1[seq].CompareAndSwap(0, now) {
		s.got.Add(1)
	}
	return nil
}

func BenchmarkCommitToPublish(b *testing.B) {
	for _, mode := range []Mode{ModeOutbox, ModeListen} {
		b.Run(string(mode), func(b *testing.B) { benchLatency(b, mode, benchRate) })
	}
}

// BenchmarkRates finds the highest rate whose p99 stays under the target:
// the same measurement at 2,000, 3,000 and 4,000 rows/s.
func BenchmarkRates(b *testing.B) {
	for _, mode := range []Mode{ModeOutbox, ModeListen} {
		for _, rate := range []int{2000, 3000, 4000} {
			b.Run(fmt.Sprintf("%s/%d", mode, rate), func(b *testing.B) { benchLatency(b, mode, rate) })
		}
	}
}

func BenchmarkCeiling(b *testing.B) {
	for _, mode := range []Mode{ModeOutbox, ModeListen} {
		b.Run(string(mode), func(b *testing.B) { benchLatency(b, mode, 0) })
	}
}

// benchLatency commits b.N rows at rate rows/s (0: unpaced) and reports the
// COMMIT -> Publish percentiles, the writers' commits/s and the delivered
// rows/s (from the first commit to the last event handed over).
func benchLatency(b *testing.B, mode Mode, rate int) {
	n := min(b.N, benchMaxRows)
	db := newDB(b)
	url := db
	if mode == ModeListen {
		url += "&mode=listen&channels=bench"
	}
	sink := &latencySink{t0: make([]atomic.Int64, n), t1: make([]atomic.Int64, n), tc: make([]atomic.Int64, n)}
	src, _ := runSource(b, url, sink)
	waitHealthy(b, src)
	conns := make([]*pgx.Conn, benchWriters)
	for i := range conns {
		conns[i] = connect(b, db)
	}
	stmt := "SELECT fraised.publish('bench', jsonb_build_object('seq', $1::int))"
	if mode == ModeListen {
		stmt = "SELECT pg_notify('bench', json_build_object('seq', $1::int)::text)"
	}
	b.ResetTimer()
	start := time.Now()
	work := make(chan int, n)
	go pace(work, n, rate, start)
	var wg sync.WaitGroup
	errs := make(chan error, benchWriters)
	for _, c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for seq := range work {
				if err := commitRow(c, stmt, seq, &sink.t0[seq], &sink.tc[seq]); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	committed := time.Since(start)
	close(errs)
	if err := <-errs; err != nil {
		b.Fatal(err)
	}
	deadline := time.Now().Add(60 * time.Second)
	for sink.got.Load() < int64(n) {
		if time.Now().After(deadline) {
			b.Fatalf("%d of %d events delivered within 60 s", sink.got.Load(), n)
		}
		time.Sleep(time.Millisecond)
	}
	elapsed := time.Since(start)
	b.StopTimer()
	reportLatency(b, sink, n, elapsed)
	b.ReportMetric(float64(n)/committed.Seconds(), "commits/s")
}

// pace sends 0..n-1 to work, one every 1/rate seconds on a fixed schedule
// (a late writer does not shift later rows), or all at once when rate is 0.
func pace(work chan<- int, n, rate int, start time.Time) {
	defer close(work)
	for i := range n {
		if rate > 0 {
			if d := time.Until(start.Add(time.Duration(i) * time.Second / time.Duration(rate))); d > 0 {
				time.Sleep(d)
			}
		}
		work <- i
	}
}

func commitRow(c *pgx.Conn, stmt string, seq int, t0, tc *atomic.Int64) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	tx, err := c.Begin(ctx)
	if err != nil {
		return err
	}
	if _, err := tx.Exec(ctx, stmt, seq); err != nil {
		return err
	}
	t0.Store(time.Now().UnixNano())
	err = tx.Commit(ctx)
	tc.Store(time.Now().UnixNano())
	return err
}

func reportLatency(b *testing.B, s *latencySink, n int, elapsed time.Duration) {
	lat := make([]time.Duration, n)
	for i := range n {
		lat[i] = time.Duration(s.t1[i].Load() - s.t0[i].Load())
	}
	slices.Sort(lat)
	q := func(p float64) time.Duration { return lat[min(n-1, int(p*float64(n)))] }
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	b.ReportMetric(ms(q(0.50)), "p50-ms")
	b.ReportMetric(ms(q(0.99)), "p99-ms")
	b.ReportMetric(ms(q(0.999)), "p99.9-ms")
	b.ReportMetric(ms(lat[n-1]), "max-ms")
	b.ReportMetric(float64(n)/elapsed.Seconds(), "rows/s")
	b.ReportMetric(0, "ns/op")
	// The COMMIT itself (part of the latency above): how much of the tail
	// is PostgreSQL's commit rather than the source.
	for i := range n {
		lat[i] = time.Duration(s.tc[i].Load() - s.t0[i].Load())
	}
	slices.Sort(lat)
	b.ReportMetric(ms(q(0.99)), "commit-p99-ms")
}

// BenchmarkDrain measures the outbox reader alone: b.N rows are committed
// first (one transaction), then a new source reads them from the start.
func BenchmarkDrain(b *testing.B) {
	n := min(b.N, benchMaxRows)
	url := newDB(b)
	exec1(b, connect(b, url), "SELECT fraised.publish('bench', jsonb_build_object('seq', i)) FROM generate_series(0, $1::int - 1) AS i", n)
	sink := &latencySink{t0: make([]atomic.Int64, n), t1: make([]atomic.Int64, n)}
	b.ResetTimer()
	start := time.Now()
	runSource(b, url+"&start=earliest", sink)
	deadline := time.Now().Add(120 * time.Second)
	for sink.got.Load() < int64(n) {
		if time.Now().After(deadline) {
			b.Fatalf("%d of %d events read within 120 s", sink.got.Load(), n)
		}
		time.Sleep(time.Millisecond)
	}
	b.StopTimer()
	b.ReportMetric(float64(n)/time.Since(start).Seconds(), "rows/s")
}
