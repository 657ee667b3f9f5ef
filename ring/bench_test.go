package ring

import (
	"runtime"
	"sync"
	"testing"
)

const benchCap = 1024

var sink uint64

// queue is what the benchmarks drive: the ring, popped one value or one batch
// at a time, or a buffered channel for comparison.
type queue interface {
	push(v uint64) // blocks (spins) while full
	pop(n int) int // pops up to n values, blocking while empty; returns count
}

type ringQ struct {
	r   *Ring[uint64]
	dst []uint64
}

func (q *ringQ) push(v uint64) {
	for !q.r.TryPush(v) {
		runtime.Gosched()
	}
}

func (q *ringQ) pop(n int) int {
	for {
		if len(q.dst) == 0 {
			if v, ok := q.r.TryPop(); ok {
				sink += v
				return 1
			}
		} else if got := q.r.PopBatch(q.dst[:min(n, len(q.dst))]); got > 0 {
			sink += q.dst[0]
			return got
		}
		runtime.Gosched()
	}
}

type chanQ chan uint64

func (q chanQ) push(v uint64) { q <- v }
func (q chanQ) pop(int) int   { sink += <-q; return 1 }

var queues = []struct {
	name string
	new  func() queue
}{
	{"ring", func() queue { return &ringQ{r: New[uint64](benchCap)} }},
	{"ring-batch64", func() queue { return &ringQ{r: New[uint64](benchCap), dst: make([]uint64, 64)} }},
	{"chan", func() queue { return make(chanQ, benchCap) }},
}

// BenchmarkSPSC measures one producer goroutine feeding one consumer.
func BenchmarkSPSC(b *testing.B) {
	for _, q := range queues {
		b.Run(q.name, func(b *testing.B) { runProducers(b, q.new(), 1) })
	}
}

// BenchmarkMPSC measures 4 producer goroutines feeding one consumer.
func BenchmarkMPSC(b *testing.B) {
	for _, q := range queues {
		b.Run(q.name, func(b *testing.B) { runProducers(b, q.new(), 4) })
	}
}

// runProducers pushes b.N values from producers goroutines and pops them all
// on the benchmark goroutine.
func runProducers(b *testing.B, q queue, producers int) {
	b.ReportAllocs()
	var wg sync.WaitGroup
	b.ResetTimer()
	for p := range producers {
		n := b.N / producers
		if p == 0 {
			n += b.N % producers
		}
		wg.Go(func() {
			for i := range n {
				q.push(uint64(i))
			}
		})
	}
	for left := b.N; left > 0; {
		left -= q.pop(left)
	}
	wg.Wait()
}

// BenchmarkPushPop measures an uncontended push followed by a pop.
func BenchmarkPushPop(b *testing.B) {
	for _, q := range queues {
		b.Run(q.name, func(b *testing.B) {
			q := q.new()
			b.ReportAllocs()
			for i := range b.N {
				q.push(uint64(i))
				q.pop(1)
			}
		})
	}
}
