package shard

import (
	"strconv"
	"sync/atomic"
	"testing"

	"github.com/cespare/xxhash/v2"
)

var sinkInt int

// benchKeys returns 1024 distinct address-like keys, all stored in m.
func benchKeys(m *Map[string, int]) []string {
	keys := make([]string, 1024)
	for i := range keys {
		keys[i] = "203.0.113." + strconv.Itoa(i)
		m.Set(keys[i], i)
	}
	return keys
}

func BenchmarkMapGet(b *testing.B) {
	m := New[string, int](64, xxhash.Sum64String)
	keys := benchKeys(m)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		sinkInt, _ = m.Get(keys[i&1023])
		i++
	}
}

// BenchmarkMapUpdateParallel is the limiters' pattern: lock a key's shard,
// read, write back, from every core at once.
func BenchmarkMapUpdateParallel(b *testing.B) {
	m := New[string, int](64, xxhash.Sum64String)
	keys := benchKeys(m)
	var worker atomic.Int64
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := int(worker.Add(1)) * 397 // workers start on different keys
		for pb.Next() {
			k := keys[i&1023]
			s := m.Lock(k)
			v, _ := s.Get(k)
			s.Set(k, v+1)
			s.Unlock()
			i++
		}
	})
}

func BenchmarkCachePutGet(b *testing.B) {
	c := NewCache[int](16, 1024, 1<<20)
	hashes := make([]uint64, 4096) // four times the bound: Put evicts
	for i := range hashes {
		hashes[i] = xxhash.Sum64String(strconv.Itoa(i))
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		h := hashes[i&4095]
		if _, ok := c.Get(h); !ok {
			c.Put(h, i, 64)
		}
		i++
	}
}
