package dispatch

import (
	"strconv"
	"sync/atomic"
	"time"

	"github.com/fraised/fraised/codec"
	"github.com/fraised/fraised/gql"
	"github.com/fraised/fraised/history"
	"github.com/fraised/fraised/resp"
)

// This file is the dispatcher's history (package history): recording
// the events of history topics with their positions, the positions in
// every next of such a topic and in publish replies, and resume: a
// subscribe with a position is checked, replayed and registered by the
// dispatcher, which owns both the streams and the registry, so no event
// is missed or sent twice between the replay and the live events.
//
// Replay is paced by the connection's output: the dispatcher appends up
// to replayChunk bytes, flushes, and appends more only once the socket
// has taken everything (Outbox.NotifyDrained), so a long catch-up never
// counts against --max-outbound. The subscription joins its group only
// when the replay reaches the stream's latest event; events published
// meanwhile are recorded in the stream and reach it through the replay.
// A replay overtaken by trimming ends with the resume error (never a
// silent gap).
//
// For a clustered source (positions assigned elsewhere), Publisher.
// PublishAt hands an event over with its position: history records it
// as is (a new epoch starts the stream over), and it is delivered with
// that position.

// HistorySource says which topics keep a history: *gql.Schema.
type HistorySource interface {
	HistoryOf(topic []byte) (history.Spec, bool)
}

var _ HistorySource = (*gql.Schema)(nil)

// Resume error codes and message.
const (
	// ResumeUnavailableCode is the error extensions.code of a resume
	// position that cannot be served.
	ResumeUnavailableCode = "FRAISED_RESUME_UNAVAILABLE"
	resumeMessage         = "resume position not available"
)

const (
	// replayChunk is what one replay appends to its connection per
	// dispatcher turn before waiting for the socket to take it: the
	// flush size (flushAt), far below --max-outbound, so a catch-up of any
	// length never looks like a slow consumer.
	replayChunk = flushAt
	// replayScan bounds the events one replay turn reads (filters may
	// drop most of them), so a replay never holds up the batches.
	replayScan = 4096
	// sweepEvery is how often the streams' TTLs are applied to topics
	// nobody publishes to (a resume applies its stream's TTL itself).
	sweepEvery = time.Second
)

// replay is a resume in progress.
type replay struct {
	sub   *Subscription
	op    *gql.Operation
	st    *history.Stream
	epoch string
	next  uint64      // the next offset to send
	ready atomic.Bool // the connection drained: send more
}

// historyState is the dispatcher's part of history, owned by Run.
type historyState struct {
	hist       *history.Store // nil: no topic keeps history
	histOf     HistorySource
	now        int64            // unix nanoseconds, once per turn
	pos        history.Position // of the event being dispatched
	ext        []byte           // its extensions
	replays    []*replay
	replayBuf  []byte      // a payload spanning chunks
	replayWake atomic.Bool // a replay's connection drained
	sweepDue   atomic.Bool // the sweep ticker fired
	fillState
}

// initHistory sets up history from cfg.
func (d *Dispatcher) initHistory(cfg Config) {
	if cfg.History == nil {
		return
	}
	d.hist = history.New(cfg.HistoryMaxBytes)
	d.histOf = cfg.History
	if cfg.Interest != nil {
		d.filler = cfg.Filler
	}
}

// historyTurn runs at the start of every dispatcher turn: the clock, the
// TTL sweep when due, and the replays whose connections drained.
func (d *Dispatcher) historyTurn() {
	d.now = time.Now().UnixNano()
	if d.sweepDue.Swap(false) {
		d.hist.Expire(d.now)
		d.expireFills()
	}
	if d.replayWake.Swap(false) {
		d.pumpReplays()
	}
}

// historyWork reports whether history has work for the dispatcher,
// which must then not sleep.
func (d *Dispatcher) historyWork() bool {
	return d.hist != nil && (d.replayWake.Load() || d.sweepDue.Load())
}

// sweepTicker asks the dispatcher to apply the TTLs every sweepEvery,
// until it stops.
func (d *Dispatcher) sweepTicker() {
	t := time.NewTicker(sweepEvery)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			d.sweepDue.Store(true)
			d.Notify()
		case <-d.stopped:
			return
		}
	}
}

// record records a publish of a history topic and prepares the
// extensions of its next payloads; st is nil for other topics.
func (d *Dispatcher) record(ev *event) (st *history.Stream, pos history.Position) {
	if d.hist.Lookup(ev.topic) == nil {
		spec, ok := d.histOf.HistoryOf(ev.topic)
		if !ok || !d.listening(ev.topic) {
			// In a cluster an event in flight after the node stopped
			// listening must not start a stream: it would go stale.
			return nil, pos
		}
		d.hist.Open(string(ev.topic), spec, d.now)
	}
	if ev.hasPos {
		st, _ = d.hist.AppendAt(ev.topic, history.Spec{}, ev.payload, ev.pos, d.now)
		pos = ev.pos
	} else {
		st, pos = d.hist.Append(ev.topic, history.Spec{}, ev.payload, d.now)
	}
	d.ext = st.AppendExt(d.ext[:0], pos.Offset)
	return st, pos
}

// appendExt ends a group's payload (a JSON object) with the event's
// extensions.
func appendExt(payload, ext []byte) []byte {
	return append(payload[:len(payload)-1], ext...)
}

// resume handles a subscribe with a resume position; it reports false
// when the subscription has nothing to catch up and is registered now.
//
// In a cluster (a HistoryFiller), a position this node's stream cannot
// serve is first filled from the authority (fill.go), once: the answer
// after the fill is final.
func (d *Dispatcher) resume(s *Subscription) bool {
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
	rp := &replay{sub: s, op: s.Op, st: st, epoch: st.Epoch(), next: from}
	d.hold(st.Topic()) // a cluster node listens to the topic until the replay ends
	if d.pumpOne(rp) { // the first chunk in this very turn; more to come
		d.replays = append(d.replays, rp)
	} else {
		d.release(st.Topic())
	}
	return true
}

// pumpReplays continues every replay whose connection drained.
func (d *Dispatcher) pumpReplays() {
	keep := d.replays[:0]
	for _, rp := range d.replays {
		if !rp.ready.Load() || d.pumpOne(rp) {
			keep = append(keep, rp)
		} else {
			d.release(rp.st.Topic())
		}
	}
	clear(d.replays[len(keep):])
	d.replays = keep
	d.registryStats()
}

// pumpOne sends the next chunk of rp; it reports false when rp is over
// (caught up and registered, failed, completed or disconnected).
func (d *Dispatcher) pumpOne(rp *replay) bool {
	rp.ready.Store(false)
	s, st := rp.sub, rp.st
	if s.removed.Load() {
		return false
	}
	requested := history.Position{Offset: rp.next - 1, Epoch: rp.epoch}
	switch {
	case st.Removed() || st.Epoch() != rp.epoch:
		d.failResume(s, history.EpochChanged, requested, d.hist.Lookup([]byte(st.Topic())))
		return false
	case rp.next < st.First():
		d.failResume(s, history.Trimmed, requested, st)
		return false
	}
	start, delivered := d.batchBytes, 0
	for scanned := 0; rp.next <= st.Last() && d.batchBytes-start < replayChunk && scanned < replayScan; scanned++ {
		payload, _ := st.Read(rp.next, &d.replayBuf)
		if rp.op.Match(payload) {
			d.scratch = appendExt(rp.op.AppendResult(d.scratch[:0], payload), st.AppendExt(d.ext[:0], rp.next))
			if !d.deliver(s.Out, s.ID, d.scratch) {
				return false // the connection's output ended
			}
			delivered++
		}
		rp.next++
	}
	d.delivered.Add(uint64(delivered))
	if rp.next > st.Last() {
		s.Op = rp.op
		d.register(s)
		return false
	}
	s.Out.NotifyDrained(func() {
		rp.ready.Store(true)
		d.replayWake.Store(true)
		d.Notify()
	})
	return true
}

// failResume ends s with the resume error: the session drops it and
// sends the error message (Subscription.Fail). st is the topic's stream
// now, if any.
func (d *Dispatcher) failResume(s *Subscription, why history.Reason, requested history.Position, st *history.Stream) {
	errs := appendResumeError(nil, why, requested, st)
	if s.Fail != nil {
		s.Fail(errs)
		return
	}
	s.Out.Send(codec.AppendError(nil, s.ID, errs))
}

// appendResumeError appends the errors array of an unavailable resume
// position.
func appendResumeError(dst []byte, why history.Reason, requested history.Position, st *history.Stream) []byte {
	dst = append(dst, `[{"message":"`+resumeMessage+`","extensions":{"code":"`+ResumeUnavailableCode+`","reason":"`...)
	dst = append(dst, why...)
	dst = append(dst, `","requested":{"epoch":`...)
	dst = codec.AppendJSONString(dst, requested.Epoch)
	dst = append(dst, `,"offset":`...)
	dst = strconv.AppendUint(dst, requested.Offset, 10)
	dst = append(dst, `},"available":`...)
	if st == nil {
		dst = append(dst, "null"...)
	} else {
		dst = append(dst, `{"epoch":`...)
		dst = codec.AppendJSONString(dst, st.Epoch())
		dst = append(dst, `,"first":`...)
		dst = strconv.AppendUint(dst, st.First(), 10)
		dst = append(dst, `,"last":`...)
		dst = strconv.AppendUint(dst, st.Last(), 10)
		dst = append(dst, '}')
	}
	return append(dst, "}}]"...)
}

// appendRESPPosition appends FPUBLISH's reply: [delivered, offset,
// epoch], the position null for a topic without history.
func appendRESPPosition(dst []byte, n int, pos *history.Position) []byte {
	dst = append(dst, "*3\r\n"...)
	dst = resp.AppendInt(dst, int64(n))
	if pos == nil {
		return append(dst, "$-1\r\n$-1\r\n"...)
	}
	dst = resp.AppendInt(dst, int64(pos.Offset))
	return resp.AppendBulk(dst, []byte(pos.Epoch))
}

// appendHTTPPosition appends the HTTP reply of a publish to a history
// topic: {"delivered":n,"offset":k,"epoch":"E"}.
func appendHTTPPosition(dst []byte, n int, pos *history.Position) []byte {
	var body [128 + history.MaxEpochLen]byte
	b := strconv.AppendInt(append(body[:0], `{"delivered":`...), int64(n), 10)
	b = strconv.AppendUint(append(b, `,"offset":`...), pos.Offset, 10)
	b = append(codec.AppendJSONString(append(b, `,"epoch":`...), pos.Epoch), '}')
	dst = append(dst, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: "...)
	dst = strconv.AppendInt(dst, int64(len(b)), 10)
	dst = append(dst, "\r\n\r\n"...)
	return append(dst, b...)
}

// PublishAt is Publish for an event whose position in its topic's
// stream was assigned elsewhere (a clustered source ordering events in
// Redis): the dispatcher records it at pos as is (Store.AppendAt: a new
// epoch starts the stream over, a gap drops what is retained, an offset
// already recorded is not recorded again) and delivers it with pos. pos
// must have an offset of at least 1 and a history.ValidEpoch epoch; an
// invalid one, or a topic without history, is published as Publish
// would.
func (p *Publisher) PublishAt(topic, payload []byte, pos history.Position, rk ReplyKind) bool {
	return p.push(newPositionedEvent(topic, payload, p, rk, pos))
}

// PublishAtWait is PublishAt that waits like PublishWait.
func (p *Publisher) PublishAtWait(topic, payload []byte, pos history.Position, rk ReplyKind, woken, cancel <-chan struct{}) (waited, ok bool) {
	return p.pushWait(newPositionedEvent(topic, payload, p, rk, pos), woken, cancel)
}

func newPositionedEvent(topic, payload []byte, p *Publisher, rk ReplyKind, pos history.Position) *event {
	ev := newPublishEvent(topic, payload, p, rk)
	if pos.Offset > 0 && history.ValidEpoch(pos.Epoch) {
		ev.pos, ev.hasPos = pos, true
	}
	return ev
}
