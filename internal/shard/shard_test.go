package shard

import (
	"slices"
	"strconv"
	"sync"
	"testing"

	"github.com/cespare/xxhash/v2"
)

func newStrings(n int) *Map[string, int] { return New[string, int](n, xxhash.Sum64String) }

func TestInitRoundsShardsToAPowerOfTwo(t *testing.T) {
	for _, tt := range []struct{ n, want int }{{-1, 1}, {0, 1}, {1, 1}, {3, 4}, {16, 16}, {33, 64}} {
		m := newStrings(tt.n)
		if got := m.Shards(); got != tt.want {
			t.Errorf("New(%d): %d shards, want %d", tt.n, got, tt.want)
		}
		for i := range 100 {
			if ix := m.Index(strconv.Itoa(i)); ix < 0 || ix >= m.Shards() {
				t.Fatalf("New(%d): Index = %d", tt.n, ix)
			}
		}
	}
}

func TestNewWithoutHashPanics(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Fatal("New with a nil hash did not panic")
		}
	}()
	New[string, int](4, nil)
}

func TestMapOperations(t *testing.T) {
	m := newStrings(8)
	for i := range 100 {
		m.Set(strconv.Itoa(i), i)
	}
	m.Set("7", 700) // replaces
	m.Delete("8")
	m.Delete("absent")
	if n := m.Len(); n != 99 {
		t.Fatalf("Len = %d, want 99", n)
	}
	if v, ok := m.Get("7"); !ok || v != 700 {
		t.Fatalf("Get(7) = %d, %v", v, ok)
	}
	if _, ok := m.Get("8"); ok {
		t.Fatal("deleted key found")
	}
	keys := m.AppendKeys([]string{"x"})
	if len(keys) != 100 || keys[0] != "x" || slices.Contains(keys[1:], "8") {
		t.Fatalf("AppendKeys: %d keys", len(keys))
	}
	m.DeleteFunc(func(k string, v int) bool { return v%2 == 1 })
	if n := m.Len(); n != 50 {
		t.Fatalf("after DeleteFunc: Len = %d, want 50", n)
	}
	seen := 0
	if !m.Range(func(k string, v int) bool { seen++; return v%2 == 0 }) || seen != 50 {
		t.Fatalf("Range saw %d of 50 entries", seen)
	}
	seen = 0
	if m.Range(func(string, int) bool { seen++; return seen < 3 }) || seen != 3 {
		t.Fatalf("Range did not stop when told: %d calls", seen)
	}
}

func TestLockedShard(t *testing.T) {
	m := newStrings(4)
	s := m.Lock("a")
	if _, ok := s.Get("a"); ok || s.Len() != 0 {
		t.Fatal("empty shard holds something")
	}
	s.Set("a", 1)
	if v, _ := s.Get("a"); v != 1 || s.Len() != 1 {
		t.Fatal("Set on a locked shard lost the value")
	}
	s.Delete("a")
	s.Set("a", 2)
	s.Unlock()
	if v, ok := m.Get("a"); !ok || v != 2 {
		t.Fatalf("Get after the locked update = %d, %v", v, ok)
	}
	s = m.Lock("a")
	s.Unlock()
	if s != &m.shards[m.Index("a")] {
		t.Fatal("Lock and Index disagree on a key's shard")
	}
}

func TestKeysSpreadOverShards(t *testing.T) {
	m := newStrings(64)
	counts := make([]int, m.Shards())
	for i := range 64 * 200 {
		counts[m.Index("198.51.100."+strconv.Itoa(i))]++
	}
	for i, n := range counts {
		if n < 100 || n > 300 { // 200 expected; far outside is a broken mask
			t.Fatalf("shard %d got %d of 12800 keys", i, n)
		}
	}
}

func TestConcurrentUpdates(t *testing.T) {
	m := newStrings(16)
	const workers, rounds, keys = 8, 2000, 50
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for r := range rounds {
				k := strconv.Itoa((w + r) % keys)
				s := m.Lock(k)
				v, _ := s.Get(k)
				s.Set(k, v+1)
				s.Unlock()
				if r%100 == 0 {
					m.Len()
					m.Range(func(string, int) bool { return true })
				}
			}
		}()
	}
	wg.Wait()
	total := 0
	m.Range(func(_ string, v int) bool { total += v; return true })
	if total != workers*rounds {
		t.Fatalf("total %d, want %d: an update was lost", total, workers*rounds)
	}
}

func TestShardZeroAllocs(t *testing.T) {
	m := newStrings(64)
	m.Set("known", 1)
	tests := []struct {
		name string
		f    func()
	}{
		{"Get", func() { _, _ = m.Get("known") }},
		{"Set of a present key", func() { m.Set("known", 2) }},
		{"Delete of an absent key", func() { m.Delete("absent") }},
		{"locked read-modify-write", func() {
			s := m.Lock("known")
			v, _ := s.Get("known")
			s.Set("known", v+1)
			s.Unlock()
		}},
		{"Range", func() { m.Range(func(string, int) bool { return true }) }},
	}
	for _, tt := range tests {
		if n := testing.AllocsPerRun(100, tt.f); n != 0 {
			t.Errorf("%s: %v allocs per run", tt.name, n)
		}
	}
}

func TestCache(t *testing.T) {
	const shards = 16
	c := NewCache[string](shards, 2*shards, 100*shards)
	put := func(shard, i uint64, v string, cost int) uint64 {
		h := i<<4 | shard // the low bits pick the shard
		c.Put(h, v, cost)
		return h
	}
	s0 := &c.m.shards[0]
	a := put(0, 1, "a", 10)
	put(0, 2, "b", 10)
	put(0, 3, "c", 10) // evicts a or b
	if s0.cost != 20 || len(s0.m) != 2 {
		t.Errorf("shard 0: %d entries, cost %d", len(s0.m), s0.cost)
	}
	put(0, 3, "c2", 95) // replaces c, evicts the other
	if v, ok := c.Get(3<<4 | 0); !ok || v != "c2" || s0.cost != 95 || len(s0.m) != 1 {
		t.Errorf("replace: got %q, cost %d", v, s0.cost)
	}
	put(1, 1, "too big", 101)
	if c.Len() != 1 {
		t.Errorf("an entry costing more than a shard holds was stored")
	}
	if _, ok := c.Get(a); ok {
		t.Error("evicted entry still found")
	}
}

func TestCacheBounds(t *testing.T) {
	c := NewCache[int](16, 256, 1<<20)
	for i := range 10000 {
		c.Put(xxhash.Sum64String(strconv.Itoa(i)), i, 1)
		if n := c.Len(); n > 256 {
			t.Fatalf("after %d puts: %d entries, bound 256", i+1, n)
		}
	}
	if n := c.Len(); n < 128 {
		t.Fatalf("only %d entries kept; eviction too eager", n)
	}
	for i := range c.m.shards {
		s := &c.m.shards[i]
		if s.cost != len(s.m) {
			t.Fatalf("shard %d: cost %d for %d entries of cost 1", i, s.cost, len(s.m))
		}
	}
}
