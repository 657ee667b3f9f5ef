package hist

import (
	"math/rand/v2"
	"slices"
	"testing"
)

func TestBucketBounds(t *testing.T) {
	for _, v := range []int64{0, 1, 127, 128, 129, 255, 256, 1000, 1 << 20, 1<<40 + 12345, 1<<63 - 1} {
		i := bucket(v)
		if i < 0 || i >= nBuckets {
			t.Fatalf("v=%d: bucket %d out of range", v, i)
		}
		if up := upper(i); up < v || (i > 0 && upper(i-1) >= v) {
			t.Fatalf("v=%d: bucket %d spans (%d, %d]", v, i, upper(i-1), up)
		}
		if v >= subCount && float64(upper(i)-v) > float64(v)/subCount {
			t.Fatalf("v=%d: bucket upper %d beyond 1/128 error", v, upper(i))
		}
	}
}

func TestQuantilesMatchSorted(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	var h Histogram
	vals := make([]int64, 100_000)
	for i := range vals {
		vals[i] = int64(r.ExpFloat64() * 1e6) // ~1 ms mean, in ns
		h.Record(vals[i])
	}
	slices.Sort(vals)
	for _, q := range []float64{0, 0.5, 0.9, 0.99, 0.999, 1} {
		idx := int(q*float64(len(vals))+0.9999999) - 1
		exact := vals[max(idx, 0)]
		got := h.Quantile(q)
		if got < exact || float64(got-exact) > float64(exact)/subCount+1 {
			t.Errorf("q=%v: got %d, exact %d", q, got, exact)
		}
	}
	if h.Max() != vals[len(vals)-1] || h.Min() != vals[0] || h.Count() != uint64(len(vals)) {
		t.Errorf("min/max/count = %d/%d/%d", h.Min(), h.Max(), h.Count())
	}
}

func TestSmallValuesExact(t *testing.T) {
	var h Histogram
	for v := int64(1); v <= 100; v++ {
		h.Record(v)
	}
	tests := []struct {
		q    float64
		want int64
	}{{0.01, 1}, {0.5, 50}, {0.99, 99}, {1, 100}}
	for _, tt := range tests {
		if got := h.Quantile(tt.q); got != tt.want {
			t.Errorf("Quantile(%v) = %d, want %d", tt.q, got, tt.want)
		}
	}
	if h.Mean() != 50.5 {
		t.Errorf("Mean = %v", h.Mean())
	}
}

func TestMergeAndReset(t *testing.T) {
	var a, b, empty Histogram
	a.Record(10)
	b.Record(5)
	b.Record(1000)
	a.Merge(&b)
	a.Merge(&empty)
	if a.Count() != 3 || a.Min() != 5 || a.Max() != 1000 || a.Quantile(0.5) != 10 {
		t.Fatalf("merged: n=%d min=%d max=%d p50=%d", a.Count(), a.Min(), a.Max(), a.Quantile(0.5))
	}
	a.Record(-3)
	if a.Min() != 0 {
		t.Fatalf("negative must count as 0, min=%d", a.Min())
	}
	a.Reset()
	if a.Count() != 0 || a.Quantile(0.99) != 0 || a.Mean() != 0 {
		t.Fatal("Reset must empty the histogram")
	}
}

var sink int64

func BenchmarkRecord(b *testing.B) {
	h := new(Histogram)
	b.ReportAllocs()
	v := int64(1)
	for b.Loop() {
		v = v*6364136223846793005 + 1442695040888963407
		h.Record(v >> 40)
	}
	sink = h.Max()
}
