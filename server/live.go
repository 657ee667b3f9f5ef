package server

import (
	"fmt"
	"sync"
	"time"
)

// This file is GET /livez: whether the process itself is stuck.

// DefaultLivenessStall is how long the dispatcher may hold accepted
// events without finishing a batch before /livez says the process is
// stuck: a batch takes milliseconds, a slow resolver seconds; 30 s is
// past any honest delay yet restarts a wedged process within a minute.
const DefaultLivenessStall = 30 * time.Second

// liveness remembers, between /livez probes, since when the dispatcher
// has had work it has not finished.
type liveness struct {
	mu      sync.Mutex
	since   time.Time   // zero: no unfinished work seen
	reached func() bool // the dispatcher's barrier taken then
}

// notLive returns why GET /livez must answer 503 (the dispatcher has not
// finished the events it held at a probe for Options.LivenessStall), or
// "": draining is not stuck, so a draining node stays live. Called on an event loop, at probe rate:
// it takes the liveness lock and reads the dispatcher's counters.
func (s *Server) notLive() string {
	l := &s.live
	l.mu.Lock()
	defer l.mu.Unlock()
	now := time.Now()
	if l.reached != nil && l.reached() {
		l.reached, l.since = nil, time.Time{} // it made progress
	}
	if l.reached == nil {
		if b := s.d.Barrier(); !b() {
			l.reached, l.since = b, now
		}
		return ""
	}
	if stalled := now.Sub(l.since); stalled > s.opts.LivenessStall {
		return fmt.Sprintf("stuck: the dispatcher has not finished a batch for %s", stalled.Round(time.Second))
	}
	return ""
}
