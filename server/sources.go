package server

import (
	"context"
	"strconv"
	"sync"
	"time"
)

// This file starts and stops the event sources of Options.Sources with
// the server: each runs on its own goroutine and publishes through
// Server.Publish, or in cluster mode through the broker (sourcesink.go).

// Source stop bounds: on Shutdown the sources stop reading, and each stores
// its position (source/postgres: one UPDATE) before the drain goes on.
const (
	// sourceStopShare: at most 1/sourceStopShare of the drain timeout is
	// given to the sources; the rest goes to delivering.
	sourceStopShare = 4
	// sourceStopMax bounds the wait: storing a position takes
	// milliseconds, a source that needs longer is behind an unreachable
	// database, and waiting longer would not help it (it re-reads at most
	// one batch after the restart instead).
	sourceStopMax = 5 * time.Second
)

// sources is the running state of Options.Sources.
type sources struct {
	stop context.CancelFunc // ends every source's Run; nil before startSources
	done chan struct{}      // closed once every Run returned
}

// sourceName is how /readyz and the logs call Options.Sources[i].
func sourceName(i int) string { return "source " + strconv.Itoa(i+1) }

// startSources starts every source's Run on its own goroutine. Called
// once, by Run, before the engine starts.
func (s *Server) startSources() {
	ctx, cancel := context.WithCancel(context.Background())
	s.src = sources{stop: cancel, done: make(chan struct{})}
	var wg sync.WaitGroup
	for i, src := range s.opts.Sources {
		wg.Go(func() {
			log := s.log.With("source", sourceName(i))
			log.Info("event source starting", "what", describe(src))
			if err := src.Run(ctx, s.sourceSink(log)); err != nil {
				log.Error("event source stopped for good: fix what the error says and restart fraised; /readyz answers 503 until then", "err", err)
			}
		})
	}
	go func() {
		wg.Wait()
		close(s.src.done)
	}()
}

// stopSources ends every source's Run and waits until they return (each
// stores its position), at most a share of ctx's deadline. Events the
// sources pushed before are in the ring: the drain's barrier delivers
// them.
func (s *Server) stopSources(ctx context.Context) {
	if s.src.stop == nil {
		return
	}
	s.src.stop()
	wait := sourceStopMax
	if deadline, ok := ctx.Deadline(); ok {
		wait = min(wait, time.Until(deadline)/sourceStopShare)
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-s.src.done:
	case <-t.C:
		s.log.Warn("event sources did not stop in time; they re-read what they had not stored after the restart",
			"waited", wait, "fix", "check the database connection; raise --drain-timeout to wait longer")
	}
}

// describe is what a source says it is (its String method, which must
// hold no secret), or its type.
func describe(src any) string {
	if st, ok := src.(interface{ String() string }); ok {
		return st.String()
	}
	return "(unnamed)"
}
