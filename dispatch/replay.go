package dispatch

import (
	"slices"
	"sync/atomic"

	"github.com/fraised/fraised/codec"
	"github.com/fraised/fraised/gql"
	"github.com/fraised/fraised/history"
	"github.com/fraised/fraised/internal/outbox"
)

// This file is resume's replay: a subscribe with a position sends the
// retained events after it, then joins its group when it reaches the
// stream's latest event. Events published meanwhile are recorded in the
// stream and reach it through the replay, so there is no gap and no
// duplicate. A replay overtaken by trimming ends with the resume error
// (never a silent gap).
//
// Pacing is per connection, not per replay: the replays of one
// connection (a client that comes back re-sends all its subscriptions)
// take turns appending at most replayChunk bytes in all, flushed, and
// append more only once the socket has taken everything
// (Outbox.NotifyDrained, one notice per connection). So however many
// replays a connection has, they hold at most replayChunk beside its
// live output, far below --max-outbound.
//
// Fairness: one dispatcher turn reads at most replayTurnScan retained
// events and appends at most replayTurnBytes for all replays, taking the
// connections round robin; the rest waits for the next turn, after the
// live batch. A resume storm slows the catch-ups, never the live
// subscribers or the dispatcher.

const (
	// replayChunk is what one connection's replays append per drain of
	// its socket: the flush size (flushAt), far below --max-outbound, so
	// a catch-up of any length never looks like a slow consumer.
	replayChunk = flushAt
	// replayTurnScan bounds the retained events all replays read in one
	// dispatcher turn (filters may drop most of them): about four live
	// batches (dispatchBatch) of one delivery each, so a live event waits
	// for at most that much replay work.
	replayTurnScan = 4 * dispatchBatch
	// replayTurnBytes bounds what all replays append in one turn: the
	// live batch's budget (batchBudget) before the outboxes are flushed.
	replayTurnBytes = batchBudget
)

// replay is a resume in progress.
type replay struct {
	sub   *Subscription
	op    *gql.Operation
	st    *history.Stream
	epoch string
	next  uint64         // the next offset to send
	res   *replayResolve // a resolver field's calls (replayresolve.go)
	ended bool           // over: answers still out are dropped
}

// replayConn is a connection with replays in progress: they share one
// pacing (one drain notice, one chunk per drain).
type replayConn struct {
	out     *outbox.Outbox
	replays []*replay // in the order they started
	first   int       // the replay that goes first in the next chunk
	ready   atomic.Bool
	parked  bool   // its replays all wait for resolver calls: woken by an answer, not a drain
	onDrain func() // built once: marks rc ready and wakes the dispatcher
}

// replayState is the dispatcher's part of resume, owned by Run.
type replayState struct {
	replayConns []*replayConn                  // round robin from replayNext
	replayOf    map[*outbox.Outbox]*replayConn // the same, by connection
	replayNext  int                            // where the next turn starts
	replayBuf   []byte                         // a payload spanning chunks
	replayWake  atomic.Bool                    // a connection drained, or the last turn ran out of budget
	replayEnded atomic.Bool                    // EndReplays was called
	replayCalls replayCalls                    // resolver calls of replays (replayresolve.go)
}

// EndReplays abandons every replay in progress, and every resume that
// comes later: the server calls it when it starts draining, so that its
// close (1001) follows the frames already queued instead of waiting
// behind more replay, and a client that reads slowly still gets it. Each
// client then resumes elsewhere from the last offset it got, and is
// served or told explicitly (the resume error) that it cannot be. Safe
// for concurrent use.
func (d *Dispatcher) EndReplays() {
	d.replayEnded.Store(true)
	d.replayWake.Store(true)
	d.Notify()
}

// resume handles a subscribe with a resume position: it checks the
// position and queues the replay (pumpReplays sends it); it reports
// false when the subscription has nothing to catch up and must be
// registered now.
//
// In a cluster (a HistoryFiller), a position this node's stream cannot
// serve is first filled from the authority (fill.go), once: the answer
// after the fill is final. A cluster node keeps listening to the topic
// of a replay until it ends (hold).
func (d *Dispatcher) resume(s *Subscription) bool {
	if d.replayEnded.Load() {
		return true // draining: the connection's close follows
	}
	topic := []byte(s.Op.Topic)
	var spec history.Spec
	isHist := false
	if d.hist != nil {
		spec, isHist = d.histOf.HistoryOf(topic)
	}
	if !isHist {
		d.failResume(s, history.EpochChanged, *s.Resume, nil)
		return true
	}
	st := d.hist.Lookup(topic)
	if st == nil && d.filler == nil {
		st = d.hist.Open(s.Op.Topic, spec, d.now)
	}
	why := history.EpochChanged
	var from uint64
	if st != nil {
		d.hist.ExpireStream(st, d.now)
		from, why = st.ResumeFrom(*s.Resume)
		if why == "" && d.filler != nil && !s.filled && s.Resume.Offset == 0 && st.First() > 1 {
			// "From the oldest retained" means the authority's oldest:
			// this node's stream may begin later (it began listening, or
			// was filled, after offset 1), so it cannot answer alone.
			why = history.Trimmed
		}
	}
	if why != "" {
		switch {
		case d.filler != nil && !s.filled:
			if !d.startFill(s, spec) {
				d.failResume(s, history.Unavailable, *s.Resume, st)
			}
		default:
			d.failResume(s, why, *s.Resume, st)
		}
		return true
	}
	if from > st.Last() {
		return false
	}
	rc := d.replayConn(s.Out)
	// Forget the completed ones first: a client that completes and
	// resubscribes while its socket does not drain keeps at most its
	// active operations here (--max-subscriptions).
	rc.replays = slices.DeleteFunc(rc.replays, func(rp *replay) bool {
		if rp.sub.Removed() {
			d.endReplay(rp)
			return true
		}
		return false
	})
	d.hold(st.Topic())
	rc.replays = append(rc.replays, &replay{sub: s, op: s.Op, st: st, epoch: st.Epoch(), next: from})
	return true
}

// replayConn returns out's replayConn, starting one (ready: its first
// chunk goes in the next pumpReplays) when out has none.
func (d *Dispatcher) replayConn(out *outbox.Outbox) *replayConn {
	if rc := d.replayOf[out]; rc != nil {
		return rc
	}
	if d.replayOf == nil {
		d.replayOf = map[*outbox.Outbox]*replayConn{}
	}
	rc := &replayConn{out: out}
	rc.onDrain = func() {
		rc.ready.Store(true)
		d.replayWake.Store(true)
		d.Notify()
	}
	rc.ready.Store(true)
	d.replayWake.Store(true)
	d.replayOf[out] = rc
	d.replayConns = append(d.replayConns, rc)
	return rc
}

// pumpReplays sends the next chunk of every connection whose socket
// drained, round robin, within the turn's budgets; connections left
// for lack of budget go first in the next turn. Called by Run after the
// queued subscribes.
func (d *Dispatcher) pumpReplays() {
	if !d.replayWake.Swap(false) {
		return
	}
	if d.replayEnded.Load() {
		d.dropReplays()
		return
	}
	n := len(d.replayConns)
	scan, room := replayTurnScan, replayTurnBytes
	visited := 0
	for ; visited < n && scan > 0 && room > 0; visited++ {
		rc := d.replayConns[(d.replayNext+visited)%n]
		if !rc.ready.Load() {
			continue
		}
		before := d.batchBytes
		scan = d.pumpConn(rc, scan)
		room -= d.batchBytes - before
		if d.batchBytes > batchBudget {
			d.flushDirty()
		}
	}
	if visited < n {
		d.replayWake.Store(true) // out of budget: the rest next turn
	}
	d.dropIdleReplayConns((d.replayNext + visited) % max(n, 1))
}

// dropReplays forgets every replay (EndReplays). A drain notice still
// pending finds its connection forgotten and does nothing.
func (d *Dispatcher) dropReplays() {
	for _, rc := range d.replayConns {
		for _, rp := range rc.replays {
			d.endReplay(rp)
		}
	}
	clear(d.replayConns)
	d.replayConns = d.replayConns[:0]
	clear(d.replayOf)
	d.replayNext = 0
}

// dropIdleReplayConns forgets the connections whose replays are all
// over and sets where the next turn starts: at next, the first
// connection this turn did not visit (or the one after it, when next
// was dropped).
func (d *Dispatcher) dropIdleReplayConns(next int) {
	keep := d.replayConns[:0]
	d.replayNext = 0
	for i, rc := range d.replayConns {
		if i == next {
			d.replayNext = len(keep)
		}
		if len(rc.replays) == 0 {
			delete(d.replayOf, rc.out)
			continue
		}
		keep = append(keep, rc)
	}
	clear(d.replayConns[len(keep):])
	d.replayConns = keep
	if d.replayNext >= len(keep) {
		d.replayNext = 0
	}
}

// pumpConn sends rc's next chunk: its replays in turn, from rc.first,
// until replayChunk bytes are appended or scan retained events read; it
// returns the scan budget left. Unless every replay of rc is over, it
// asks for the socket's drain notice before the next chunk.
func (d *Dispatcher) pumpConn(rc *replayConn, scan int) int {
	rc.ready.Store(false)
	start := d.batchBytes
	if rc.first >= len(rc.replays) {
		rc.first = 0
	}
	waiting := 0 // replays in a row that wait for their resolver calls
	for i := rc.first; len(rc.replays) > 0 && scan > 0 && d.batchBytes-start < replayChunk && waiting < len(rc.replays); {
		rp := rc.replays[i]
		var over bool
		scan, over = d.pumpOne(rp, replayChunk-(d.batchBytes-start), scan)
		switch {
		case over:
			d.endReplay(rp)
			rc.replays = slices.Delete(rc.replays, i, i+1)
			waiting = 0
		case rp.waiting():
			waiting++
			i++
		default:
			waiting = 0
			i++
		}
		if i >= len(rc.replays) {
			i = 0
		}
	}
	if len(rc.replays) == 0 {
		return scan
	}
	if d.batchBytes == start && waiting >= len(rc.replays) {
		rc.parked = true // an answer wakes it (replayresolve.go)
		return scan
	}
	rc.first++ // the next chunk starts with the next replay
	rc.out.NotifyDrained(rc.onDrain)
	return scan
}

// pumpOne sends rp's next events until room bytes are appended or scan
// retained events read; it returns the scan budget left and whether rp
// is over (caught up and registered, failed, completed or
// disconnected).
func (d *Dispatcher) pumpOne(rp *replay, room, scan int) (int, bool) {
	s, st := rp.sub, rp.st
	if s.removed.Load() {
		return scan, true
	}
	requested := history.Position{Offset: rp.next - 1, Epoch: rp.epoch}
	switch {
	case st.Removed() || st.Epoch() != rp.epoch:
		d.failResume(s, history.EpochChanged, requested, d.hist.Lookup([]byte(st.Topic())))
		return scan, true
	case rp.next < st.First():
		d.failResume(s, history.Trimmed, requested, st)
		return scan, true
	case rp.op.ResolverKey() != "":
		return d.pumpResolved(rp, room, scan)
	}
	start, delivered := d.batchBytes, 0
	for ; rp.next <= st.Last() && d.batchBytes-start < room && scan > 0; scan-- {
		payload, _ := st.Read(rp.next, &d.replayBuf)
		if rp.op.Match(payload) {
			d.scratch = appendExt(rp.op.AppendResult(d.scratch[:0], payload), st.AppendExt(d.ext[:0], rp.next))
			if !d.deliver(s.Out, s.ID, d.scratch) {
				d.delivered.Add(uint64(delivered))
				return scan, true // the connection's output ended
			}
			delivered++
		}
		rp.next++
	}
	d.delivered.Add(uint64(delivered))
	if rp.next > st.Last() {
		d.goLive(rp)
		return scan, true
	}
	return scan, false
}

// failResume ends s with the resume error: the session drops it and
// sends the error message (Subscription.Fail). st is the topic's stream
// now, if any.
func (d *Dispatcher) failResume(s *Subscription, why history.Reason, requested history.Position, st *history.Stream) {
	failWith(s, appendResumeError(nil, why, requested, st))
}

// failWith ends s with the error message errs (a JSON array): through
// s.Fail when the session gave one, else by sending the message itself.
func failWith(s *Subscription, errs []byte) {
	if s.Fail != nil {
		s.Fail(errs)
		return
	}
	s.Out.Send(codec.AppendError(nil, s.ID, errs))
}

// endReplay marks rp over and releases its hold of its topic.
func (d *Dispatcher) endReplay(rp *replay) {
	rp.end()
	d.release(rp.st.Topic())
}

// goLive registers rp's subscription, which caught up with its stream:
// the live events follow the replayed ones.
func (d *Dispatcher) goLive(rp *replay) {
	rp.sub.Op = rp.op
	d.register(rp.sub)
	d.countRegistry()
}
