// Package backoff is the reconnect backoff of fraised's clients of other
// processes (the cluster's Redis, a PostgreSQL source): capped exponential
// growth with jitter, so a fleet that lost a peer neither spins nor
// reconnects in lockstep.
package backoff

import (
	"math/rand/v2"
	"time"
)

// Backoff hands out the waits between reconnect attempts: the first is
// about Min, each next one twice as long, never more than Max, each
// jittered into [d/2, d] (never zero: a flapping peer is not hammered;
// spread by half: nodes that lost it together come back apart). The zero
// value is not usable: set Min and Max (0 < Min <= Max). A Backoff is not
// safe for concurrent use; each reconnect loop owns one.
type Backoff struct {
	Min, Max time.Duration
	cur      time.Duration
}

// Next returns the wait before the next attempt and doubles the backoff
// for the one after.
func (b *Backoff) Next() time.Duration {
	d := max(b.cur, b.Min)
	b.cur = min(2*d, b.Max)
	return d/2 + rand.N(d/2+1)
}

// Reset makes the next wait about Min again: call it once a connection
// proved good (stayed up, got subscribed).
func (b *Backoff) Reset() { b.cur = 0 }

// Sleep waits d, or less if done is closed first; it reports whether the
// whole wait passed.
func Sleep(done <-chan struct{}, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-done:
		return false
	case <-t.C:
		return true
	}
}
