package ring

import (
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
)

func TestNewCapacity(t *testing.T) {
	tests := []struct{ in, want int }{
		{2, 2}, {3, 4}, {4, 4}, {5, 8}, {1000, 1024}, {1024, 1024}, {1025, 2048},
	}
	for _, tt := range tests {
		if got := New[int](tt.in).Cap(); got != tt.want {
			t.Errorf("New(%d).Cap() = %d, want %d", tt.in, got, tt.want)
		}
	}
}

func TestNewPanics(t *testing.T) {
	for _, c := range []int{-1, 0, 1} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("New(%d) did not panic", c)
				}
			}()
			New[int](c)
		}()
	}
}

func TestFIFO(t *testing.T) {
	r := New[int](8)
	for i := range 8 {
		if !r.TryPush(i) {
			t.Fatalf("TryPush(%d) = false on a ring with %d of 8 values", i, i)
		}
	}
	for i := range 8 {
		v, ok := r.TryPop()
		if !ok || v != i {
			t.Fatalf("TryPop() = %d, %v; want %d, true", v, ok, i)
		}
	}
}

func TestFullAndEmpty(t *testing.T) {
	r := New[int](4)
	if v, ok := r.TryPop(); ok {
		t.Fatalf("TryPop on a new ring = %d, true", v)
	}
	if n := r.PopBatch(make([]int, 4)); n != 0 {
		t.Fatalf("PopBatch on a new ring = %d", n)
	}
	for i := range 4 {
		r.TryPush(i)
	}
	if r.TryPush(99) {
		t.Fatal("TryPush on a full ring = true")
	}
	if got := r.Len(); got != 4 {
		t.Fatalf("Len of a full ring = %d, want 4", got)
	}
	if v, _ := r.TryPop(); v != 0 {
		t.Fatalf("TryPop = %d, want 0", v)
	}
	if !r.TryPush(4) {
		t.Fatal("TryPush after one pop from a full ring = false")
	}
	if r.TryPush(5) {
		t.Fatal("TryPush on a full ring = true")
	}
	for want := 1; want <= 4; want++ {
		if v, ok := r.TryPop(); !ok || v != want {
			t.Fatalf("TryPop = %d, %v; want %d, true", v, ok, want)
		}
	}
	if _, ok := r.TryPop(); ok {
		t.Fatal("TryPop on a drained ring = true")
	}
	if got := r.Len(); got != 0 {
		t.Fatalf("Len of a drained ring = %d", got)
	}
}

func TestWraparound(t *testing.T) {
	tests := []struct {
		name  string
		batch int
	}{
		{"TryPop", 0}, {"PopBatch1", 1}, {"PopBatch3", 3}, {"PopBatch16", 16},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := New[int](4)
			next, want := 0, 0
			dst := make([]int, tt.batch)
			for lap := 0; lap < 1000; lap++ {
				for r.TryPush(next) {
					next++
				}
				if got := r.Len(); got != 4 {
					t.Fatalf("lap %d: Len of a full ring = %d", lap, got)
				}
				// Leave lap%4 values behind so head and tail move relative to the slots.
				for r.Len() > lap%4 {
					got := popSome(r, dst, lap%4)
					for _, v := range got {
						if v != want {
							t.Fatalf("lap %d: popped %d, want %d", lap, v, want)
						}
						want++
					}
				}
			}
		})
	}
}

// popSome pops one value with TryPop (dst empty) or up to len(dst) values,
// without taking the ring below keep values.
func popSome(r *Ring[int], dst []int, keep int) []int {
	if len(dst) == 0 {
		v, _ := r.TryPop()
		return []int{v}
	}
	n := r.PopBatch(dst[:min(len(dst), r.Len()-keep)])
	return dst[:n]
}

func TestPopClearsSlot(t *testing.T) {
	r := New[*int](2)
	r.TryPush(new(int))
	r.TryPush(new(int))
	r.TryPop()
	r.PopBatch(make([]*int, 1))
	for i := range r.slots {
		if r.slots[i].val != nil {
			t.Errorf("slot %d still references a popped value", i)
		}
	}
}

func TestPopBatchPartial(t *testing.T) {
	r := New[int](8)
	for i := range 5 {
		r.TryPush(i)
	}
	dst := make([]int, 8)
	if n := r.PopBatch(dst[:3]); n != 3 || dst[0] != 0 || dst[2] != 2 {
		t.Fatalf("PopBatch(3) = %d %v", n, dst[:n])
	}
	if n := r.PopBatch(dst); n != 2 || dst[0] != 3 || dst[1] != 4 {
		t.Fatalf("PopBatch(8) = %d %v", n, dst[:n])
	}
}

// TestMPMC checks that with 4 producers and 4 consumers every value is popped
// exactly once and each consumer sees each producer's values in push order.
func TestMPMC(t *testing.T) {
	const producers, consumers, per = 4, 4, 20000
	r := New[uint64](64)
	seen := make([][]uint64, consumers)
	var wg sync.WaitGroup
	for p := range producers {
		wg.Go(func() {
			for i := range per {
				for !r.TryPush(uint64(p)<<32 | uint64(i)) {
					runtime.Gosched()
				}
			}
		})
	}
	var popped sync.WaitGroup
	var remaining atomic.Int64
	remaining.Store(producers * per)
	for c := range consumers {
		popped.Go(func() { seen[c] = consume(r, &remaining, c%2 == 1) })
	}
	wg.Wait()
	popped.Wait()
	checkMPMC(t, seen, producers, per)
}

// consume pops (with TryPop, or PopBatch when batch) until remaining, the
// number of values not yet popped by any consumer, reaches 0.
func consume(r *Ring[uint64], remaining *atomic.Int64, batch bool) []uint64 {
	var got []uint64
	dst := make([]uint64, 7)
	for remaining.Load() > 0 {
		n := 0
		if batch {
			n = r.PopBatch(dst)
		} else if v, ok := r.TryPop(); ok {
			dst[0], n = v, 1
		}
		if n == 0 {
			runtime.Gosched()
		}
		remaining.Add(-int64(n))
		got = append(got, dst[:n]...)
	}
	return got
}

func checkMPMC(t *testing.T, seen [][]uint64, producers, per int) {
	t.Helper()
	count := make([][]int, producers)
	for p := range count {
		count[p] = make([]int, per)
	}
	for c, vals := range seen {
		last := make([]int, producers)
		for p := range last {
			last[p] = -1
		}
		for _, v := range vals {
			p, i := int(v>>32), int(uint32(v))
			if i <= last[p] {
				t.Fatalf("consumer %d: producer %d value %d after %d", c, p, i, last[p])
			}
			last[p] = i
			count[p][i]++
		}
	}
	for p := range count {
		for i, n := range count[p] {
			if n != 1 {
				t.Fatalf("producer %d value %d popped %d times", p, i, n)
			}
		}
	}
}

// TestMPSCOrder checks per-producer order with a single consumer.
func TestMPSCOrder(t *testing.T) {
	const producers, per = 4, 20000
	r := New[uint64](16)
	var wg sync.WaitGroup
	for p := range producers {
		wg.Go(func() {
			for i := range per {
				for !r.TryPush(uint64(p)<<32 | uint64(i)) {
					runtime.Gosched()
				}
			}
		})
	}
	var remaining atomic.Int64
	remaining.Store(producers * per)
	got := consume(r, &remaining, false)
	wg.Wait()
	checkMPMC(t, [][]uint64{got}, producers, per)
}
