package dispatch

import (
	"time"

	"github.com/fraised/fraised/history"
)

// This file is history across the nodes of a cluster: filling this
// node's history of a topic from the ordering authority before a resume
// is answered, and ending a topic's history subscriptions when the
// authority's events were lost on their way here.
//
// A fill: a resume this node's history cannot serve (it has not listened
// to the topic long enough, or at all, or is behind the client) is kept
// pending, with the topic held (so the node listens to it: the interest
// hook subscribes it at the authority, and its live events are recorded
// in its stream meanwhile, which is the bounded buffer of live events),
// and handed to the HistoryFiller. The filler reads the range from the
// authority on its own goroutine and answers through a Feed, in the
// order of the live events: the range's events (evStage, staged in
// history) and then the authority's position of the topic at that point
// (evFilled). Every event up to that position has then been dispatched
// here, none after it, so the staged events merge under the stream by
// offset (history.Store.Fill); the resume is then answered from the
// stream as on one node (replay, then live). Only what the authority no
// longer holds gets the resume error. A fill that takes longer than
// fillTimeout (the authority unreachable) ends with reason
// "unavailable".
//
// A loss (evLost): the authority's events of a topic could not reach
// this node in order (a gap past its repair window, an epoch that
// changed, offsets that went backwards). The topic's stream records it
// (history.Store.Reset), and every registered subscription of the topic
// ends with the resume error, right after the last event it got: never a
// silent gap. Replays of the topic end at their next turn (their stream
// no longer reaches them).

// HistoryFiller fills this node's history of a topic from the ordering
// authority (the cluster broker). FillHistory is called on the dispatcher
// goroutine and must not block: it queues req and reports false when it
// cannot take it (its queue is full). It answers through a Feed of this
// dispatcher, in the order of the topic's live events: Feed.Stage for
// each event after req.After (at most req.Max of the newest, in offset
// order) up to the topic's position at that point, then Feed.Filled with
// req.ID and that position. It must answer every request it took, unless
// the topic stops being wanted (then the dispatcher has given up on it).
type HistoryFiller interface {
	FillHistory(req FillRequest) bool
}

// FillRequest asks for a topic's events after a client's position.
type FillRequest struct {
	ID    uint64
	Topic string
	// After is the client's position: the events after it are wanted
	// (offset 0: from the oldest the authority holds), when it is in the
	// authority's epoch.
	After history.Position
	// Max is the topic's history size: older events than the newest Max
	// would not be kept.
	Max int
}

// fillTimeout bounds how long a resume waits for its fill: a few
// reconnects to the authority (their backoff is at most 2 s) and the
// reads. Past it the resume ends with reason "unavailable" and the client
// reloads, as it would for any other unavailable position.
const fillTimeout = 10 * time.Second

// pendingFill is a resume waiting for its fill.
type pendingFill struct {
	id       uint64
	topic    string
	sub      *Subscription
	deadline int64 // unix nanoseconds
}

// fillState is the dispatcher's part of fills and held topics, owned by
// Run.
type fillState struct {
	filler  HistoryFiller
	fills   map[uint64]*pendingFill
	fillSeq uint64
	held    map[string]int // topics held by fills and replays: the node listens to them
}

// startFill hands s's resume to the filler, holding its topic; false:
// the filler refused it.
func (d *Dispatcher) startFill(s *Subscription, spec history.Spec) bool {
	d.fillSeq++
	f := &pendingFill{id: d.fillSeq, topic: s.Op.Topic, sub: s, deadline: d.now + int64(fillTimeout)}
	d.hold(f.topic) // before the request: the filler serves listened topics
	if !d.filler.FillHistory(FillRequest{ID: f.id, Topic: f.topic, After: *s.Resume, Max: spec.Size}) {
		d.release(f.topic)
		return false
	}
	if d.fills == nil {
		d.fills = map[uint64]*pendingFill{}
	}
	d.fills[f.id] = f
	return true
}

// stage records an event read for a fill. One of a topic the node no
// longer listens to is dropped, as record drops a publish: its fill was
// given up (stopListening dropped its stage) and its answer may never
// come (the broker drops the request of a topic no longer wanted), so a
// stage it started would hold its share of the cap for good.
func (d *Dispatcher) stage(ev *event) {
	if d.hist == nil || !d.listening(ev.topic) {
		return
	}
	if spec, ok := d.histOf.HistoryOf(ev.topic); ok {
		d.hist.Stage(ev.topic, spec, ev.payload, ev.pos, d.now)
	}
}

// filled merges a fill's events into the topic's stream and answers the
// resume from it (for good: a resume is filled once).
func (d *Dispatcher) filled(ev *event) {
	if d.hist == nil {
		return
	}
	topic := string(ev.topic)
	f := d.fills[ev.fillID]
	spec, ok := d.histOf.HistoryOf(ev.topic)
	if f == nil || f.topic != topic || !ok {
		// A late answer to a fill given up (timed out): its staged
		// events go, unless another fill of the topic is staging into
		// the same stage (they merge at that one's Filled).
		if !d.filling(topic) {
			d.hist.DropStage(topic)
		}
		return
	}
	delete(d.fills, f.id)
	d.hist.Fill(topic, spec, ev.pos, d.now)
	s := f.sub
	s.filled = true
	d.subscribe(s) // replays and registers it, or refuses the position
	d.release(f.topic)
}

// filling reports whether a fill of topic is pending. It scans the
// pending fills: only a late answer asks.
func (d *Dispatcher) filling(topic string) bool {
	for _, f := range d.fills {
		if f.topic == topic {
			return true
		}
	}
	return false
}

// expireFills ends the fills past their deadline with reason
// "unavailable". Called once per sweep.
func (d *Dispatcher) expireFills() {
	for id, f := range d.fills {
		if d.now < f.deadline {
			continue
		}
		delete(d.fills, id)
		if !f.sub.removed.Load() {
			d.failResume(f.sub, history.Unavailable, *f.sub.Resume, d.hist.Lookup([]byte(f.topic)))
		}
		d.release(f.topic)
	}
}

// lost records a loss the authority reported for ev.topic and ends the
// topic's registered subscriptions with the resume error.
func (d *Dispatcher) lost(ev *event) {
	if d.hist == nil {
		return
	}
	if _, ok := d.histOf.HistoryOf(ev.topic); !ok {
		return // no positions were promised
	}
	had := history.Position{Epoch: ev.pos.Epoch}
	if st := d.hist.Lookup(ev.topic); st != nil {
		had = history.Position{Offset: st.Last(), Epoch: st.Epoch()}
	}
	st := d.hist.Reset(ev.topic, ev.pos)
	t := d.reg.Lookup(ev.topic)
	if t == nil {
		return
	}
	var victims []*Subscription // collected first: remove changes the groups
	for _, g := range t.Groups() {
		for _, m := range g.Subs() {
			victims = append(victims, m.Data.sub)
		}
	}
	why := history.Reason(ev.payload)
	errs := appendResumeError(nil, why, had, st)
	for _, s := range victims {
		d.remove(s)
		failWith(s, errs)
	}
	if d.log == nil {
		return
	}
	d.log.Warn("cluster: events of a history topic were lost on their way to this node; its subscriptions end with "+ResumeUnavailableCode,
		"topic", string(ev.topic), "reason", string(why), "subscriptions", len(victims),
		"after", had.Offset, "epoch", had.Epoch, "next", ev.pos.Offset, "next_epoch", ev.pos.Epoch)
}

// hold keeps the node listening to topic while a fill or a replay needs
// its events, registered or not. Called by the dispatcher goroutine.
func (d *Dispatcher) hold(topic string) {
	if d.interest == nil {
		return
	}
	if d.held == nil {
		d.held = map[string]int{}
	}
	if d.held[topic] == 0 && !d.reg.Has(topic) {
		d.interest.TopicAdded(topic)
	}
	d.held[topic]++
}

// release ends a hold of topic; the last one of a topic nobody is
// registered to stops listening to it.
func (d *Dispatcher) release(topic string) {
	if d.interest == nil {
		return
	}
	if n := d.held[topic] - 1; n > 0 {
		d.held[topic] = n
		return
	}
	delete(d.held, topic)
	if !d.reg.Has(topic) {
		d.stopListening(topic)
	}
}

// listening reports whether the node listens to topic (a subscriber or
// a hold), in cluster mode; it always does on one node.
func (d *Dispatcher) listening(topic []byte) bool {
	return d.interest == nil || d.reg.Lookup(topic) != nil || d.held[string(topic)] > 0
}

// fillEvent handles an event a HistoryFiller or a broker pushed through a
// Feed (evStage, evFilled, evLost).
func (d *Dispatcher) fillEvent(ev *event) {
	switch ev.kind {
	case evStage:
		d.stage(ev)
	case evFilled:
		d.filled(ev)
	case evLost:
		d.lost(ev)
	}
	if ev.kind != evStage {
		d.countRegistry()
	}
}
