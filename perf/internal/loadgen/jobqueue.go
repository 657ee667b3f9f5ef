package loadgen

import (
	"sync/atomic"
	"time"
)

// queuedJob is one event waiting for a free worker of a queuedSink.
type queuedJob struct {
	seq    int64
	topic  int32
	queued int64 // ns since base
}

// jobQueue is what the queued sinks (HTTP, the PostgreSQL writers) share:
// the jobs their workers take, the deadline send gives up at, and the
// longest an event waited for a worker.
type jobQueue struct {
	sh         *shared
	jobs       chan queuedJob
	maxQueueNs atomic.Int64
	deadline   atomic.Pointer[time.Time] // send gives up past it
}

// send queues events seqs[i] on topics[i] for the workers; it gives up
// with errPublishDeadline at the deadline.
func (q *jobQueue) send(seqs []int64, topics []int32) error {
	var deadline <-chan time.Time
	if d := q.deadline.Load(); d != nil {
		t := time.NewTimer(time.Until(*d))
		defer t.Stop()
		deadline = t.C
	}
	for i, seq := range seqs {
		select {
		case q.jobs <- queuedJob{seq: seq, topic: topics[i], queued: q.sh.nowNs()}:
		case <-deadline:
			return errPublishDeadline
		}
	}
	return nil
}

// leaving records, for an event with a seq, its send time (now) and how
// long it waited in the queue.
func (q *jobQueue) leaving(j queuedJob) {
	if j.seq < 0 {
		return
	}
	now := q.sh.nowNs()
	q.sh.sent(j.seq, now)
	for lag := now - j.queued; lag > q.maxQueueNs.Load(); {
		if q.maxQueueNs.CompareAndSwap(q.maxQueueNs.Load(), lag) {
			break
		}
	}
}

func (q *jobQueue) setDeadline(d *time.Time) { q.deadline.Store(d) }

// queueLag returns the longest an event waited for a free worker (for the
// PostgreSQL writers, also for its own BEGIN and publish) and resets it.
func (q *jobQueue) queueLag() time.Duration { return time.Duration(q.maxQueueNs.Swap(0)) }
