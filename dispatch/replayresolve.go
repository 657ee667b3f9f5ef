package dispatch

import (
	"github.com/fraised/fraised/resolve"
)

// This file is the replay of a subscription whose field has a resolver.
// A replaying subscription is in no group yet, so its retained events
// cannot wait in a group's FIFO (resolve.go): the replay keeps its own
// ordered window of calls instead. pumpResolved reads the retained events
// as any replay does, hands each matching one to the field's backend
// (resolve.Router, with the same deadline), and delivers the answers in
// offset order, as they return, in later pumps; the dispatcher never
// waits for a resolver. The replay registers (goes live) only once every
// call it started has been delivered, so live results (through the
// group's FIFO) always follow the replayed ones: no gap, no duplicate, in
// order, then live.
//
// Pacing and fairness stay replay.go's: delivering the answers counts
// against the connection's chunk and the turn's budgets, and a connection
// whose replays all wait for their calls is parked (no drain notice, so
// no busy turns) until an answer or a timeout wakes it.
//
// Bounds: replayWindow calls per replay, maxReplayCalls calls of all
// replays, and the dispatcher's caps on pending calls and bytes
// (resolving.admit), shared with the live groups. A replay past a bound
// waits for its calls (or, with none in flight, for any call) to return;
// it never sends RESOLVER_OVERLOADED, since its events are retained and
// can wait.

const (
	// replayWindow bounds one replay's calls in flight: enough to fill a
	// socket resolver's frame with a useful batch and keep a few Go
	// workers busy, while the answers that may arrive at once stay a
	// small part of a chunk (replayChunk).
	replayWindow = 16
	// maxReplayCalls bounds the calls of all replays in flight: a resume
	// storm queues at most this many calls ahead of the live groups'
	// calls on a backend (a 32-worker pool drains them in 32 call times),
	// far below the pending cap (resolve.MaxPending), which stays the
	// live groups'.
	maxReplayCalls = 1024
)

// replayResolve is a resolver replay's window of calls, in offset order.
type replayResolve struct {
	backend resolve.Backend
	window  []replayItem // from head, in offset order
	head    int
	blocked bool // pumping again does nothing until a call returns
	starved bool // blocked by the global bounds, with no call of its own in flight
	listed  bool // in replayCalls.starved
}

// replayItem is a call of a replay and, once it returned, its result.
type replayItem struct {
	call   *resolve.Call
	result []byte // the next payload, the position at its end
	ready  bool
}

// replayCalls counts the calls of all replays in flight (maxReplayCalls).
type replayCalls struct {
	n       int
	starved []*replay // replays waiting for any call to return
}

// pumpResolved is pumpOne for rp, whose field has a resolver (checked by
// pumpOne): it delivers the answers at the head of rp's window, then
// starts calls for the next retained events, until room bytes are
// appended or scan events read. It returns the scan budget left and
// whether rp is over.
func (d *Dispatcher) pumpResolved(rp *replay, room, scan int) (int, bool) {
	s, st := rp.sub, rp.st
	if rp.res == nil {
		rp.res = &replayResolve{backend: d.res.router.Backend(rp.op.ResolverKey())}
	}
	rr := rp.res
	rr.blocked = false
	start, delivered := d.batchBytes, 0
	for rr.head < len(rr.window) && rr.window[rr.head].ready && d.batchBytes-start < room {
		it := rr.window[rr.head]
		rr.window[rr.head] = replayItem{}
		rr.head++
		if !d.deliver(s.Out, s.ID, it.result) {
			d.delivered.Add(uint64(delivered))
			d.dropWindow(rp)
			return scan, true // the connection's output ended
		}
		delivered++
	}
	d.delivered.Add(uint64(delivered))
	d.compactWindow(rr)
	for ; rp.next <= st.Last() && scan > 0; scan-- {
		if len(rr.window)-rr.head >= replayWindow {
			rr.blocked = !rr.headReady()
			return scan, false
		}
		payload, _ := st.Read(rp.next, &d.replayBuf)
		if rp.op.Match(payload) && !d.startReplayCall(rp, payload) {
			rr.blocked = !rr.headReady()
			if rr.head == len(rr.window) {
				d.starve(rp)
			}
			return scan, false
		}
		rp.next++
	}
	if rp.next > st.Last() && rr.head == len(rr.window) {
		d.goLive(rp)
		return scan, true
	}
	// Caught up with calls still out, or out of budget with answers
	// ready: the next pump comes with an answer, or goes on now.
	rr.blocked = rp.next > st.Last() && !rr.headReady()
	return scan, false
}

// headReady reports whether the oldest call of rr's window has returned.
func (rr *replayResolve) headReady() bool {
	return rr.head < len(rr.window) && rr.window[rr.head].ready
}

// starve lists rp, which no bound lets start a call and which has none
// out, to be woken when any call returns.
func (d *Dispatcher) starve(rp *replay) {
	rp.res.starved = true
	if !rp.res.listed {
		rp.res.listed = true
		d.replayCalls.starved = append(d.replayCalls.starved, rp)
	}
}

// startReplayCall hands the retained event payload, at rp.next, to rp's
// backend; false means a bound refused it (nothing started).
func (d *Dispatcher) startReplayCall(rp *replay, payload []byte) bool {
	if d.replayCalls.n >= maxReplayCalls || !d.res.admit(len(payload)) {
		return false
	}
	d.replayCalls.n++
	c := d.res.start(rp.res.backend, rp.op, clone(payload), clone(rp.st.AppendExt(d.ext[:0], rp.next)), rp)
	rp.res.window = append(rp.res.window, replayItem{call: c})
	return true
}

// replayAnswered records payload, the result of c (a call of rp), in
// rp's window, and wakes rp's connection when it was parked waiting for
// the head of the window (a completed subscription's replay then ends in
// pumpOne). A call of a replay that is over is dropped.
func (d *Dispatcher) replayAnswered(rp *replay, c *resolve.Call, payload []byte) {
	d.res.release(len(c.Event))
	d.replayCalls.n--
	d.wakeStarved()
	if rp.ended {
		return
	}
	rr := rp.res
	for i := rr.head; i < len(rr.window); i++ {
		if it := &rr.window[i]; it.call == c {
			it.result, it.ready, it.call = withExt(payload, c.Ext), true, nil
			break
		}
	}
	if rr.headReady() || rp.sub.Removed() {
		d.wakeReplay(rp) // an answer behind the head changes nothing yet
	}
}

// replayExpired answers c, a call of rp past its deadline, with
// RESOLVER_TIMEOUT.
func (d *Dispatcher) replayExpired(rp *replay, c *resolve.Call, wasRunning bool) {
	rp.res.backend.Abandon(c, wasRunning)
	d.replayAnswered(rp, c, rp.op.AppendResolved(nil, nil, errTimeout))
}

// wakeReplay makes rp's connection pump again in this turn when rp was
// blocked and its connection parked; a connection waiting for its drain
// notice pumps when the notice comes.
func (d *Dispatcher) wakeReplay(rp *replay) {
	rp.res.blocked, rp.res.starved = false, false
	rc := d.replayOf[rp.sub.Out]
	if rc == nil || !rc.parked {
		return
	}
	rc.parked = false
	rc.ready.Store(true)
	d.replayWake.Store(true)
}

// wakeStarved wakes the replays that waited for any call to return.
func (d *Dispatcher) wakeStarved() {
	st := d.replayCalls.starved
	if len(st) == 0 {
		return
	}
	for i, rp := range st {
		rp.res.listed = false
		if rp.res.starved && !rp.ended {
			d.wakeReplay(rp)
		}
		st[i] = nil
	}
	d.replayCalls.starved = st[:0]
}

// waiting reports whether rp can do nothing until one of its calls (or,
// starved, any call) returns.
func (rp *replay) waiting() bool { return rp.res != nil && rp.res.blocked }

// dropWindow forgets rp's answers not delivered; its calls still out are
// dropped when they return (replayAnswered).
func (d *Dispatcher) dropWindow(rp *replay) {
	rr := rp.res
	clear(rr.window)
	rr.window, rr.head = rr.window[:0], 0
}

// compactWindow reclaims the delivered head of rr's window.
func (d *Dispatcher) compactWindow(rr *replayResolve) {
	if rr.head == 0 {
		return
	}
	n := copy(rr.window, rr.window[rr.head:])
	clear(rr.window[n:])
	rr.window, rr.head = rr.window[:n], 0
}

// end marks rp over (done, failed or dropped): answers of its calls
// still out are then dropped.
func (rp *replay) end() { rp.ended = true }
