package postgres

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/fraised/fraised/internal/backoff"
)

// Reconnect backoff: the first retry comes quickly (a restart of PostgreSQL
// or a terminated backend is usually over in a second), later ones spread
// out so that a long outage costs little, never more than maxBackoff apart
// so recovery is noticed within seconds.
const (
	minBackoff = 100 * time.Millisecond
	maxBackoff = 10 * time.Second
	// stableSession is how long a session must run before the backoff
	// starts again from minBackoff.
	stableSession = 30 * time.Second
)

// health is a snapshot of a healthCell.
type health struct {
	err   error
	since time.Time
}

// healthCell is the health of a Source or an Exclusive: nil while it
// works, otherwise why not and since when. Safe from any goroutine.
type healthCell struct{ p atomic.Pointer[health] }

// set records err (nil: healthy). While the cell stays unhealthy, since
// keeps the start of the outage.
func (c *healthCell) set(err error) {
	if old := c.p.Load(); old != nil && old.err != nil && err != nil {
		c.p.Store(&health{err: err, since: old.since})
		return
	}
	c.p.Store(&health{err: err, since: time.Now()})
}

// err is nil while healthy, otherwise the error prefixed with what and
// followed by since when.
func (c *healthCell) err(what string) error {
	h := c.p.Load()
	if h.err == nil {
		return nil
	}
	return fmt.Errorf("%s: %w (since %s)", what, h.err, h.since.UTC().Format(time.RFC3339))
}

// errStopped is the health of a source whose Run has returned.
var errStopped = errors.New("not running")

// fatalError is a session error that reconnecting cannot fix.
type fatalError struct{ err error }

func (e *fatalError) Error() string { return e.err.Error() }
func (e *fatalError) Unwrap() error { return e.err }

// reconnect runs session again and again, with backoff in between, until
// ctx ends (nil) or a session fails with a *fatalError (returned). h
// follows: each failure is recorded, errStopped once it returns; lost is
// the warning logged after each failed session.
func reconnect(ctx context.Context, h *healthCell, log *slog.Logger, lost string, session func(context.Context) error) error {
	b := backoff.Backoff{Min: minBackoff, Max: maxBackoff}
	for {
		start := time.Now()
		err := session(ctx)
		if ctx.Err() != nil {
			h.set(errStopped)
			return nil
		}
		var fatal *fatalError
		if errors.As(err, &fatal) {
			h.set(fmt.Errorf("stopped: %w", err))
			log.Error("postgres source stopped", "err", err)
			return err
		}
		h.set(err)
		wait := retryWait(&b, time.Since(start))
		log.Warn(lost, "err", err, "retry_in", wait.Round(time.Millisecond))
		if !backoff.Sleep(ctx.Done(), wait) {
			h.set(errStopped)
			return nil
		}
	}
}

// retryWait is the wait after a session that lasted lasted: b's next,
// from minBackoff again after a stable session.
func retryWait(b *backoff.Backoff, lasted time.Duration) time.Duration {
	if lasted > stableSession {
		b.Reset()
	}
	return b.Next()
}
