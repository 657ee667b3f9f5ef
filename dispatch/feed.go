package dispatch

import (
	"sync"

	"github.com/fraised/fraised/history"
)

// Feed pushes events into the dispatcher for a goroutine that may block
// and wants no reply: a cluster broker's receiver (events the ordering
// authority already ordered) or an event source. It is a Publisher whose
// events are answered by nobody (ReplyNone), so it takes the ring with the
// same fairness and backpressure as any publisher.
//
// Push may be called from any goroutine; calls are serialised (one
// Publisher may push from one goroutine at a time), so events pushed by
// one goroutine keep their order.
type Feed struct {
	mu    sync.Mutex
	p     Publisher
	woken chan struct{} // signalled by the dispatcher when p may retry
}

// nopReplies is the reply output of a Feed: it has nothing to answer.
type nopReplies struct{}

func (nopReplies) Append([]byte) bool { return true }
func (nopReplies) Send([]byte) bool   { return true }
func (nopReplies) MarkDirty() bool    { return false }
func (nopReplies) ClearDirty()        {}
func (nopReplies) Flush()             {}

var _ Replies = nopReplies{}

// NewFeed returns a Feed into d.
func NewFeed(d *Dispatcher) *Feed {
	f := &Feed{woken: make(chan struct{}, 1)}
	f.p.Init(d, nopReplies{}, func() {
		select {
		case f.woken <- struct{}{}:
		default:
		}
	})
	return f
}

// Push queues one event (topic and payload are copied) at pos, the
// position its ordering authority gave it (history records it there; a
// zero pos: the dispatcher numbers history topics itself), waiting while
// the ring is full; it reports false, dropping the event, when cancel
// closes first. It wakes the dispatcher. Safe for concurrent use.
func (f *Feed) Push(topic, payload []byte, pos history.Position, cancel <-chan struct{}) bool {
	return f.pushEvent(newPositionedEvent(topic, payload, &f.p, ReplyNone, pos), cancel)
}

// Inflight returns how many pushed events the dispatcher has not
// dispatched yet. Safe for concurrent use.
func (f *Feed) Inflight() int64 { return f.p.Inflight() }

// Stage pushes an older event of topic at pos, read from the ordering
// authority for a fill (HistoryFiller): the dispatcher stages it in its
// history and delivers it to nobody. Same rules as Push.
func (f *Feed) Stage(topic, payload []byte, pos history.Position, cancel <-chan struct{}) bool {
	ev := newPublishEvent(topic, payload, &f.p, ReplyNone)
	ev.kind, ev.pos = evStage, pos
	return f.pushEvent(ev, cancel)
}

// Filled ends fill id of topic: live is the authority's position of topic
// after every event pushed before (HistoryFiller). Same rules as Push.
func (f *Feed) Filled(id uint64, topic []byte, live history.Position, cancel <-chan struct{}) bool {
	ev := newPublishEvent(topic, nil, &f.p, ReplyNone)
	ev.kind, ev.pos, ev.fillID = evFilled, live, id
	return f.pushEvent(ev, cancel)
}

// Lost reports that topic's events before next were lost on their way
// here (why: history.Trimmed or history.EpochChanged): the topic's history
// subscriptions end with the resume error after the events pushed before.
// Same rules as Push.
func (f *Feed) Lost(topic []byte, why history.Reason, next history.Position, cancel <-chan struct{}) bool {
	ev := newPublishEvent(topic, []byte(why), &f.p, ReplyNone)
	ev.kind, ev.pos = evLost, next
	return f.pushEvent(ev, cancel)
}

// pushEvent pushes ev (Push's rules) and wakes the dispatcher.
func (f *Feed) pushEvent(ev *event, cancel <-chan struct{}) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	_, ok := f.p.pushWait(ev, f.woken, cancel)
	if ok {
		f.p.d.Notify()
	}
	return ok
}
