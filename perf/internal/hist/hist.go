// Package hist is a log-linear (HDR-style) histogram of non-negative int64
// values: exact below 128, then 128 linear sub-buckets per power of two, so
// any reported quantile is within 1/128 (0.8 %) of the true value.
//
// A Histogram is not safe for concurrent use: give each goroutine its own
// and Merge them. Record never allocates.
package hist

import "math/bits"

const (
	subBits  = 7
	subCount = 1 << subBits
	// nBuckets covers values up to 2^63-1: msb 62 → shift 55 → 56 groups.
	nBuckets = (63 - subBits + 1) * subCount
)

// Histogram counts values in log-linear buckets. The zero value is empty and
// ready to use; it is about 58 KiB, so keep it behind a pointer.
type Histogram struct {
	counts   [nBuckets]uint64
	n        uint64
	min, max int64
	sum      float64
}

// bucket returns the index of v's bucket; v < 0 counts as 0.
func bucket(v int64) int {
	if v < subCount {
		return int(max(v, 0))
	}
	shift := bits.Len64(uint64(v)) - 1 - subBits
	return (shift+1)*subCount + int(v>>shift) - subCount
}

// upper returns the largest value that falls in bucket i.
func upper(i int) int64 {
	if i < subCount {
		return int64(i)
	}
	shift := i/subCount - 1
	m := int64(i%subCount + subCount)
	return (m+1)<<shift - 1
}

// Record counts one value; negative values count as 0.
func (h *Histogram) Record(v int64) {
	v = max(v, 0)
	h.counts[bucket(v)]++
	if h.n == 0 || v < h.min {
		h.min = v
	}
	if v > h.max {
		h.max = v
	}
	h.n++
	h.sum += float64(v)
}

// Merge adds every count of o to h.
func (h *Histogram) Merge(o *Histogram) {
	if o.n == 0 {
		return
	}
	for i, c := range o.counts {
		h.counts[i] += c
	}
	if h.n == 0 || o.min < h.min {
		h.min = o.min
	}
	h.max = max(h.max, o.max)
	h.n += o.n
	h.sum += o.sum
}

// Reset empties h.
func (h *Histogram) Reset() { *h = Histogram{} }

// Count returns the number of recorded values.
func (h *Histogram) Count() uint64 { return h.n }

// Min returns the smallest recorded value (0 when empty).
func (h *Histogram) Min() int64 { return h.min }

// Max returns the largest recorded value, exactly (0 when empty).
func (h *Histogram) Max() int64 { return h.max }

// Mean returns the mean of the recorded values (0 when empty).
func (h *Histogram) Mean() float64 {
	if h.n == 0 {
		return 0
	}
	return h.sum / float64(h.n)
}

// Quantile returns the value at quantile q in [0, 1]: the upper bound of
// the bucket holding the ceil(q·n)-th smallest value, clamped to [Min, Max].
func (h *Histogram) Quantile(q float64) int64 {
	if h.n == 0 {
		return 0
	}
	rank := uint64(q*float64(h.n) + 0.9999999)
	rank = min(max(rank, 1), h.n)
	var seen uint64
	for i, c := range h.counts {
		seen += c
		if seen >= rank {
			return min(max(upper(i), h.min), h.max)
		}
	}
	return h.max
}
