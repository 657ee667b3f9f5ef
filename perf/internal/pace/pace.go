// Package pace schedules events at a fixed rate: event i is due at
// start + i/rate. The publisher asks how many are due, sends them in one
// batch, and sleeps until the next is due, so a late wake-up produces a
// larger batch instead of a lower rate.
//
// A Pacer is immutable after New and safe for concurrent use.
package pace

import (
	"math"
	"time"
)

// Pacer schedules total events at rate events per second from start.
type Pacer struct {
	rate  float64
	total int64
	start time.Time
}

// New returns a Pacer; rate must be positive.
func New(rate float64, total int64, start time.Time) *Pacer {
	if rate <= 0 {
		panic("BUG: pace.New with non-positive rate")
	}
	return &Pacer{rate: rate, total: total, start: start}
}

// Total returns the number of events to send.
func (p *Pacer) Total() int64 { return p.total }

// Due returns how many events are due at now (events 0..Due-1), at most Total.
func (p *Pacer) Due(now time.Time) int64 {
	el := now.Sub(p.start)
	if el < 0 {
		return 0
	}
	d := int64(math.Floor(el.Seconds()*p.rate)) + 1
	return min(d, p.total)
}

// At returns when event i is due.
func (p *Pacer) At(i int64) time.Time {
	return p.start.Add(time.Duration(float64(i) / p.rate * float64(time.Second)))
}

// Lag returns how late event i is at now (zero or negative when on time).
func (p *Pacer) Lag(i int64, now time.Time) time.Duration { return now.Sub(p.At(i)) }
