package server

import (
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
)

// This file is the readiness registry behind GET /readyz: named checker
// functions (the event sources', the cluster broker's, and any part that
// adds one with AddReadyCheck), read lock-free by the event loops.
//
//	GET /livez   503 when the dispatcher has held the same events for
//	             Options.LivenessStall (live.go), else 200, draining too:
//	             restart it only when this fails.
//	GET /readyz  503 while draining or while any check fails, else 200:
//	             send it traffic only while this succeeds.
//	GET /healthz 503 while draining, else 200 (unchanged; checks nothing else).

// readyCheck is one named readiness check.
type readyCheck struct {
	name  string
	check func() error
}

// readiness holds the checks; the event loops read them lock-free, adders
// copy the list under mu.
type readiness struct {
	mu     sync.Mutex
	checks atomic.Pointer[[]readyCheck]
}

func (r *readiness) add(name string, check func() error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var next []readyCheck
	if cur := r.checks.Load(); cur != nil {
		next = append(next, *cur...)
	}
	next = append(next, readyCheck{name: name, check: check})
	r.checks.Store(&next)
}

// failing appends the names of the failing checks to dst.
func (r *readiness) failing(dst []string) []string {
	cur := r.checks.Load()
	if cur == nil {
		return dst
	}
	for _, c := range *cur {
		if c.check() != nil {
			dst = append(dst, c.name)
		}
	}
	return dst
}

// AddReadyCheck adds a check to GET /readyz: while check returns an error,
// /readyz answers 503 naming the check (name only: /readyz is public, the
// error may name hosts; the part behind the check logs its errors).
// check is called on a gnet event loop for every /readyz request, so it
// must return at once: read an atomic, never do I/O or take a lock that
// I/O holds. Safe for concurrent use, before or after Run. The event
// sources of Options.Sources and the cluster broker are checked without
// being added (addOptionChecks).
func (s *Server) AddReadyCheck(name string, check func() error) {
	s.ready.add(name, check)
}

// addOptionChecks registers the checks Options implies: each event
// source's Healthy ("source N") and, in cluster mode, the broker's Ready
// ("cluster"). Called once, by New.
func (s *Server) addOptionChecks() {
	for i, src := range s.opts.Sources {
		s.ready.add(sourceName(i), src.Healthy)
	}
	if s.opts.Cluster != nil {
		s.ready.add("cluster", s.opts.Cluster.Ready)
	}
}

// notReady lists why the server is not ready (nil: it is).
func (s *Server) notReady() []string {
	var why []string
	if s.draining.Load() {
		why = append(why, "draining")
	}
	return s.ready.failing(why)
}

// respondReady answers GET /readyz.
func (c *httpConn) respondReady() bool {
	why := c.srv.notReady()
	if len(why) == 0 {
		return c.respond(http.StatusOK, "ok\n")
	}
	return c.respond(http.StatusServiceUnavailable, "not ready: "+strings.Join(why, ", ")+"\n")
}
