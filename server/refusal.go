package server

import (
	"log/slog"
	"sync"
	"time"
)

// refusalLogEvery is how often one kind of refusal is logged at most: a
// flood of refused clients costs one log line per kind per interval, so it
// cannot fill the disk, while an operator still sees every kind at once.
const refusalLogEvery = 5 * time.Second

// refusalLog logs refusals (a refused Origin, a failed authentication, a
// rate limit, a connection cap), throttled per kind. Lines suppressed in an
// interval are counted and reported with the next line of that kind. It is
// safe for concurrent use; it is not on the delivery path.
type refusalLog struct {
	log   *slog.Logger
	mu    sync.Mutex
	kinds map[string]*refusalKind
}

type refusalKind struct {
	last       time.Time
	suppressed int
}

func newRefusalLog(log *slog.Logger) *refusalLog {
	return &refusalLog{log: log, kinds: map[string]*refusalKind{}}
}

// note logs one refusal of kind (a short stable name such as "origin" or
// "rate_limit") from remote, with why it was refused and what the
// operator can change to allow it, unless one of that kind was logged in
// the last refusalLogEvery.
func (r *refusalLog) note(kind, remote, reason, fix string) {
	now := time.Now()
	r.mu.Lock()
	k := r.kinds[kind]
	if k == nil {
		k = &refusalKind{}
		r.kinds[kind] = k
	}
	if !k.last.IsZero() && now.Sub(k.last) < refusalLogEvery {
		k.suppressed++
		r.mu.Unlock()
		return
	}
	suppressed := k.suppressed
	k.last, k.suppressed = now, 0
	r.mu.Unlock()
	r.log.Warn("refused", "kind", kind, "remote", remote, "reason", reason, "fix", fix, "suppressed_since_last", suppressed)
}
