package ratelimit

import (
	"math"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
)

const sec = int64(1e9)

// t0 is an arbitrary fake-clock start (unixnano).
const t0 = int64(1_700_000_000) * sec

func TestBucketAllow(t *testing.T) {
	type step struct {
		at   int64 // ns after t0
		want bool
	}
	tests := []struct {
		name  string
		limit Limit
		steps []step
	}{
		{"unlimited", Limit{}, []step{{0, true}, {0, true}, {0, true}}},
		{"negative rate is unlimited", Limit{Rate: -1, Burst: 1}, []step{{0, true}, {0, true}}},
		{"NaN rate is unlimited", Limit{Rate: math.NaN(), Burst: 1}, []step{{0, true}, {0, true}}},
		{"burst then refuse", Limit{Rate: 1, Burst: 3}, []step{{0, true}, {0, true}, {0, true}, {0, false}}},
		{"refill one per interval", Limit{Rate: 2, Burst: 1}, []step{{0, true}, {0, false}, {sec/2 - 1, false}, {sec / 2, true}, {sec / 2, false}}},
		{"refill caps at burst", Limit{Rate: 1, Burst: 2}, []step{{0, true}, {0, true}, {100 * sec, true}, {100 * sec, true}, {100 * sec, false}}},
		{"burst 0 means 1", Limit{Rate: 10, Burst: 0}, []step{{0, true}, {0, false}, {sec / 10, true}}},
		{"fractional rate", Limit{Rate: 0.5, Burst: 1}, []step{{0, true}, {sec, false}, {2 * sec, true}}},
		{"odd rate keeps full burst", Limit{Rate: 3, Burst: 3}, []step{{0, true}, {0, true}, {0, true}, {0, false}}},
		{"clock steps back", Limit{Rate: 1, Burst: 1}, []step{{10 * sec, true}, {0, false}, {10 * sec, false}, {11 * sec, true}}},
		{"huge rate", Limit{Rate: math.Inf(1), Burst: 1}, []step{{0, true}, {0, true}}},
		{"credit capped at maxSpan, no overflow", Limit{Rate: 1e-300, Burst: 1 << 40}, []step{{0, true}, {0, false}}},
		{"tiny rate burst 1", Limit{Rate: 1e-300, Burst: 1}, []step{{0, true}, {1000 * sec, false}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var b Bucket
			for i, s := range tt.steps {
				if got := b.Allow(tt.limit, t0+s.at); got != s.want {
					t.Fatalf("step %d (t0+%dns): Allow = %v, want %v", i, s.at, got, s.want)
				}
			}
		})
	}
}

func TestBucketSustainedRate(t *testing.T) {
	// Over 10 s of requests every millisecond, a 50/s limit with burst 5
	// admits exactly the burst plus 10 s of refill.
	var b Bucket
	l := Limit{Rate: 50, Burst: 5}
	allowed := 0
	for ms := int64(0); ms < 10_000; ms++ {
		if b.Allow(l, t0+ms*sec/1000) {
			allowed++
		}
	}
	if want := 5 + 500 - 1; allowed != want && allowed != want+1 {
		t.Fatalf("allowed %d, want %d or %d", allowed, want, want+1)
	}
}

func TestKeyedPerKey(t *testing.T) {
	k := NewKeyed(Limit{Rate: 1, Burst: 2})
	steps := []struct {
		key  string
		at   int64
		want bool
	}{
		{"10.0.0.1", 0, true},
		{"10.0.0.1", 0, true},
		{"10.0.0.1", 0, false},
		{"10.0.0.2", 0, true}, // another key has its own bucket
		{"10.0.0.1", sec, true},
		{"10.0.0.1", sec, false},
	}
	for i, s := range steps {
		if got := k.Allow(s.key, t0+s.at); got != s.want {
			t.Fatalf("step %d: Allow(%s) = %v, want %v", i, s.key, got, s.want)
		}
	}
}

func TestKeyedSweep(t *testing.T) {
	k := NewKeyed(Limit{Rate: 1, Burst: 2})
	k.Allow("a", t0)        // refills by t0+1s
	k.Allow("b", t0)        // same
	k.Allow("b", t0)        // empty: refills by t0+2s
	k.Allow("c", t0+10*sec) // refills by t0+11s
	k.Sweep(t0 + sec)
	if got := k.Len(); got != 2 {
		t.Fatalf("after sweep at t0+1s: %d keys, want 2 (b, c)", got)
	}
	if k.Allow("b", t0+sec) && k.Allow("b", t0+sec) {
		t.Fatal("sweep dropped b's partly empty bucket")
	}
	k.Sweep(t0 + 20*sec)
	if got := k.Len(); got != 0 {
		t.Fatalf("after full refill: %d keys, want 0", got)
	}
}

func TestKeyedEvictionBound(t *testing.T) {
	const maxKeys = 256
	k := NewKeyedSize(Limit{Rate: 1, Burst: 1}, maxKeys)
	for i := range 100 * maxKeys { // an IP spray, all at one instant
		k.Allow("198.51.100."+strconv.Itoa(i), t0)
		if n := k.Len(); n > maxKeys {
			t.Fatalf("after %d keys: %d tracked, bound %d", i+1, n, maxKeys)
		}
	}
	if n := k.Len(); n < maxKeys/2 {
		t.Fatalf("only %d keys tracked; eviction too eager", n)
	}
}

func TestKeyedEvictsFullBucketsFirst(t *testing.T) {
	k := NewKeyedSize(Limit{Rate: 1, Burst: 1}, numShards) // one key per shard
	key := "hot"
	other := ""
	for i := 0; other == ""; i++ { // find another key in the same shard
		if c := strconv.Itoa(i); k.m.Index(c) == k.m.Index(key) {
			other = c
		}
	}
	if !k.Allow(key, t0) || k.Allow(key, t0) {
		t.Fatal("hot key: want one allow then a refusal")
	}
	k.Allow(other, t0+5*sec) // shard full; hot's bucket has refilled: evicted
	if !k.Allow(key, t0+5*sec) {
		t.Fatal("hot key refused after refill")
	}
}

func TestKeyedConcurrent(t *testing.T) {
	const burst, goroutines, each = 100, 8, 200
	k := NewKeyed(Limit{Rate: 1, Burst: burst})
	var allowed atomic.Int64
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			for i := range each {
				if k.Allow("shared", t0) {
					allowed.Add(1)
				}
				k.Allow("own-"+strconv.Itoa(g*each+i), t0)
			}
		})
	}
	wg.Wait()
	if got := allowed.Load(); got != burst {
		t.Fatalf("allowed %d on a shared key, want exactly the burst %d", got, burst)
	}
}

func TestKeyedUnlimited(t *testing.T) {
	k := NewKeyed(Limit{})
	for range 10 {
		if !k.Allow("x", t0) {
			t.Fatal("unlimited refused")
		}
	}
	if k.Len() != 0 {
		t.Fatal("unlimited Keyed tracks keys")
	}
}

func TestCounter(t *testing.T) {
	c := NewCounter(2)
	steps := []struct {
		op   string // "acq" or "rel"
		key  string
		want bool // for acq
	}{
		{"acq", "alice", true},
		{"acq", "alice", true},
		{"acq", "alice", false},
		{"acq", "bob", true},
		{"rel", "alice", false},
		{"acq", "alice", true},
		{"rel", "carol", false}, // never held: no-op
		{"acq", "carol", true},
	}
	for i, s := range steps {
		if s.op == "rel" {
			c.Release(s.key)
			continue
		}
		if got := c.Acquire(s.key); got != s.want {
			t.Fatalf("step %d: Acquire(%s) = %v, want %v", i, s.key, got, s.want)
		}
	}
	for key, want := range map[string]int{"alice": 2, "bob": 1, "carol": 1} {
		if got := c.Count(key); got != want {
			t.Fatalf("Count(%s) = %d, want %d", key, got, want)
		}
	}
	c.Release("bob")
	if _, tracked := c.m.Get("bob"); c.Count("bob") != 0 || tracked {
		t.Fatal("released key still tracked")
	}
}

func TestCounterUnlimited(t *testing.T) {
	c := NewCounter(0)
	for range 5 {
		if !c.Acquire("x") {
			t.Fatal("unlimited counter refused")
		}
	}
	c.Release("x")
	if c.Count("x") != 0 {
		t.Fatal("unlimited counter counts")
	}
}

func TestCounterConcurrent(t *testing.T) {
	const maxHeld, goroutines, rounds = 3, 8, 500
	c := NewCounter(maxHeld)
	var held, peak atomic.Int64
	var wg sync.WaitGroup
	for range goroutines {
		wg.Go(func() {
			for range rounds {
				if !c.Acquire("id") {
					continue
				}
				n := held.Add(1)
				for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
				}
				held.Add(-1)
				c.Release("id")
			}
		})
	}
	wg.Wait()
	if p := peak.Load(); p > maxHeld {
		t.Fatalf("peak concurrent holdings %d, max %d", p, maxHeld)
	}
	if c.Count("id") != 0 {
		t.Fatalf("count %d after all releases", c.Count("id"))
	}
}
