package ratelimit

import (
	"strconv"
	"sync/atomic"
	"testing"
)

var sinkOK bool

func BenchmarkBucketAllow(b *testing.B) {
	var bk Bucket
	l := Limit{Rate: 1e6, Burst: 100}
	now := t0
	b.ReportAllocs()
	for b.Loop() {
		now += 1000
		sinkOK = bk.Allow(l, now)
	}
}

func BenchmarkKeyedAllowHit(b *testing.B) {
	k := NewKeyed(Limit{Rate: 1e6, Burst: 100})
	keys := make([]string, 1024)
	for i := range keys {
		keys[i] = "203.0.113." + strconv.Itoa(i)
		k.Allow(keys[i], t0)
	}
	now := t0
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		now += 1000
		sinkOK = k.Allow(keys[i&1023], now)
		i++
	}
}

func BenchmarkKeyedAllowParallel(b *testing.B) {
	k := NewKeyed(Limit{Rate: 1e6, Burst: 100})
	keys := make([]string, 1024)
	for i := range keys {
		keys[i] = "203.0.113." + strconv.Itoa(i)
	}
	var worker atomic.Int64
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i, now := int(worker.Add(1))*397, t0 // workers start on different keys
		for pb.Next() {
			now += 1000
			k.Allow(keys[i&1023], now)
			i++
		}
	})
}

func BenchmarkCounterAcquireRelease(b *testing.B) {
	c := NewCounter(1 << 30)
	c.Acquire("user-1") // keep the key tracked: measure the hit path
	b.ReportAllocs()
	for b.Loop() {
		sinkOK = c.Acquire("user-1")
		c.Release("user-1")
	}
}
