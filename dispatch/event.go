package dispatch

import (
	"sync"

	"github.com/fraised/fraised/history"
)

// eventKind says what the dispatcher does with an event.
type eventKind uint8

const (
	// evPublish dispatches payload to topic's subscribers and replies with
	// the delivery count.
	evPublish eventKind = iota
	// evReply only writes reply bytes to the publisher, keeping replies in
	// command order behind publishes still in flight.
	evReply
	// evStage is an older event of topic read from the ordering authority
	// for a fill (fill.go): staged in history, delivered to nobody.
	evStage
	// evFilled ends fill fillID of topic: pos is the authority's position
	// of topic at this point of the event order (fill.go).
	evFilled
	// evLost reports that events of topic before pos are lost (payload:
	// the reason, a history.Reason): its history subscriptions end with
	// the resume error (fill.go).
	evLost
)

// ReplyKind is how a publish's delivery count is answered.
type ReplyKind uint8

// Reply kinds.
const (
	ReplyNone         ReplyKind = iota // no answer
	ReplyRESP                          // a RESP integer
	ReplyHTTP                          // an HTTP/1.1 200 response with {"delivered":n} (and "offset", "epoch" for a history topic)
	ReplyRESPPosition                  // FPUBLISH: a RESP array [delivered, offset, epoch] (nulls without history)
)

// event is one item of the ring. Events are pooled: the dispatcher puts
// them back after use, and nothing may hold one afterwards.
type event struct {
	kind      eventKind
	replyKind ReplyKind
	topic     []byte // sub-slice of data
	payload   []byte // sub-slice of data
	data      []byte // owned storage; the reply itself for evReply
	from      *Publisher
	pos       history.Position // assigned elsewhere (Feed.Push), when hasPos
	hasPos    bool
	fillID    uint64 // evFilled
}

var eventPool = sync.Pool{New: func() any { return new(event) }}

// maxPooledEvent is the largest event buffer kept for reuse; bigger
// payloads are rare and left to the GC.
const maxPooledEvent = 64 << 10

// newPublishEvent returns a publish event holding a copy of topic and
// payload.
func newPublishEvent(topic, payload []byte, from *Publisher, rk ReplyKind) *event {
	ev := eventPool.Get().(*event)
	ev.kind, ev.replyKind, ev.from = evPublish, rk, from
	n := len(topic) + len(payload)
	if cap(ev.data) < n {
		ev.data = make([]byte, 0, max(n, 512))
	}
	ev.data = append(append(ev.data[:0], topic...), payload...)
	ev.topic = ev.data[:len(topic):len(topic)]
	ev.payload = ev.data[len(topic):]
	return ev
}

// newReplyEvent returns a reply-only event holding a copy of reply.
func newReplyEvent(reply []byte, from *Publisher) *event {
	ev := eventPool.Get().(*event)
	ev.kind, ev.from = evReply, from
	ev.data = append(ev.data[:0], reply...)
	return ev
}

// eventOverhead is what an event costs besides its bytes (the struct, its
// pool entry and ring slot), counted against the ring's byte budget so that
// many tiny events are not free.
const eventOverhead = 128

// size is what ev counts against the ring's byte budget.
func (ev *event) size() int64 {
	return int64(len(ev.data)) + eventOverhead
}

// release puts ev back in the pool; nothing may use it afterwards.
func (ev *event) release() {
	ev.topic, ev.payload, ev.from = nil, nil, nil
	ev.pos, ev.hasPos, ev.fillID = history.Position{}, false, 0
	if cap(ev.data) > maxPooledEvent {
		ev.data = nil
	}
	eventPool.Put(ev)
}
