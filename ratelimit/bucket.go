package ratelimit

// Limit is a token-bucket rate: Rate tokens refill per second up to Burst.
// The zero value (Rate 0) is unlimited. A Burst below 1 with a positive Rate
// means 1.
type Limit struct {
	Rate  float64 // tokens per second; 0 = unlimited
	Burst int
}

// Unlimited reports whether l never refuses.
func (l Limit) Unlimited() bool {
	return !(l.Rate > 0) // also true for NaN
}

// maxSpan caps the nanosecond spans derived from a Limit so that now+span
// cannot overflow int64 for any realistic clock (about 73 years).
const maxSpan = int64(1) << 61

// spans returns the emission interval (ns per token) and the burst
// tolerance (ns of credit a full bucket holds, Burst intervals), both capped
// at maxSpan. Called only when the Limit is not unlimited.
func (l Limit) spans() (interval, tolerance int64) {
	interval = maxSpan
	if ns := 1e9 / l.Rate; ns < float64(maxSpan) {
		interval = int64(ns)
	}
	burst := int64(max(l.Burst, 1))
	if interval > maxSpan/burst {
		return interval, maxSpan
	}
	return interval, interval * burst
}

// Bucket is one token bucket, kept as the GCRA "theoretical arrival time"
// (8 bytes): equivalent to a token bucket of the Limit passed to Allow, and
// the zero value is a full bucket. Not safe for concurrent use: it belongs
// to one connection or event loop.
type Bucket struct {
	tat int64 // unixnano at which the bucket is full again
}

// Allow takes one token at time now (unixnano) and reports whether one was
// available. O(1), no allocation. Pass the same Limit on every call; a
// clock that steps backwards only delays refill.
func (b *Bucket) Allow(l Limit, now int64) bool {
	if l.Unlimited() {
		return true
	}
	interval, tolerance := l.spans()
	tat := max(b.tat, now)
	if tat+interval-now > tolerance {
		return false
	}
	b.tat = tat + interval
	return true
}

// Full reports whether the bucket holds Burst tokens at now, that is, it
// carries no state worth keeping and may be forgotten.
func (b *Bucket) Full(now int64) bool {
	return b.tat <= now
}
