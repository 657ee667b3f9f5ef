package server

import (
	"fmt"
	"sync"
	"time"
)

// notReady returns why GET /readyz must answer 503 (draining, or the
// first failing Options.ReadyChecks entry: the cluster broker while Redis
// is unreachable, its probe fails or it resubscribes), or "" when the
// server is ready. Called on an event loop: every check only loads state.
func (s *Server) notReady() string {
	if s.draining.Load() {
		return "draining"
	}
	for _, check := range s.opts.ReadyChecks {
		if err := check(); err != nil {
			return err.Error()
		}
	}
	if s.opts.Cluster != nil {
		if err := s.opts.Cluster.Ready(); err != nil {
			return err.Error()
		}
	}
	return ""
}

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

// notLive returns why GET /livez must answer 503 (draining, or the
// dispatcher has not finished the events it held at a probe for
// Options.LivenessStall), or "". Called on an event loop, at probe rate:
// it takes the liveness lock and reads the dispatcher's counters.
func (s *Server) notLive() string {
	if s.draining.Load() {
		return "draining"
	}
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
