package dispatch

import (
	"strconv"
	"sync/atomic"
	"time"

	"github.com/fraised/fraised/gql"
	"github.com/fraised/fraised/history"
	"github.com/fraised/fraised/internal/jsonx"
	"github.com/fraised/fraised/resp"
)

// This file is the dispatcher's history (package history): recording
// the events of history topics with their positions, the positions in
// every next of such a topic and in publish replies, and resume: a
// subscribe with a position is checked, replayed and registered by the
// dispatcher, which owns both the streams and the registry, so no event
// is missed or sent twice between the replay and the live events.
//
// Replay, its pacing and its fairness are in replay.go.
//
// For a clustered source (positions assigned elsewhere), Feed.Push
// hands an event over with its position: history records it as is (a new
// epoch starts the stream over), and it is delivered with that position.

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

// sweepEvery is how often the streams' TTLs are applied to topics
// nobody publishes to (a resume applies its stream's TTL itself).
const sweepEvery = time.Second

// historyState is the dispatcher's part of history, owned by Run.
type historyState struct {
	hist     *history.Store // nil: no topic keeps history
	histOf   HistorySource
	now      int64       // unix nanoseconds, once per turn
	ext      []byte      // the extensions of the event being dispatched
	sweepDue atomic.Bool // the sweep ticker fired
	replayState
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

// historyTurn runs at the start of every dispatcher turn, before the
// queued subscribes: the clock and the TTL sweep when due. (The replays
// run after the subscribes: pumpReplays.)
func (d *Dispatcher) historyTurn() {
	d.now = time.Now().UnixNano()
	if d.sweepDue.Swap(false) {
		d.hist.Expire(d.now)
		d.expireFills()
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
	if st = d.hist.Lookup(ev.topic); st == nil {
		spec, ok := d.histOf.HistoryOf(ev.topic)
		if !ok || !d.listening(ev.topic) {
			// In a cluster an event in flight after the node stopped
			// listening must not start a stream: it would go stale.
			return nil, pos
		}
		epoch := "" // a new one
		if ev.hasPos {
			epoch = ev.pos.Epoch // the source's: RecordAt keeps it
		}
		st = d.hist.OpenAt(string(ev.topic), spec, epoch, d.now)
	}
	if ev.hasPos {
		d.hist.RecordAt(st, ev.payload, ev.pos, d.now)
		pos = ev.pos
	} else {
		pos = d.hist.Record(st, ev.payload, d.now)
	}
	d.ext = st.AppendExt(d.ext[:0], pos.Offset)
	return st, pos
}

// appendExt ends a group's payload (a JSON object) with the event's
// extensions.
func appendExt(payload, ext []byte) []byte {
	return append(payload[:len(payload)-1], ext...)
}

// appendResumeError appends the errors array of an unavailable resume
// position.
func appendResumeError(dst []byte, why history.Reason, requested history.Position, st *history.Stream) []byte {
	dst = append(dst, `[{"message":"`+resumeMessage+`","extensions":{"code":"`+ResumeUnavailableCode+`","reason":"`...)
	dst = append(dst, why...)
	dst = append(dst, `","requested":{"epoch":`...)
	dst = jsonx.AppendString(dst, requested.Epoch)
	dst = append(dst, `,"offset":`...)
	dst = strconv.AppendUint(dst, requested.Offset, 10)
	dst = append(dst, `},"available":`...)
	if st == nil {
		dst = append(dst, "null"...)
	} else {
		dst = append(dst, `{"epoch":`...)
		dst = jsonx.AppendString(dst, st.Epoch())
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
	b = append(jsonx.AppendString(append(b, `,"epoch":`...), pos.Epoch), '}')
	dst = append(dst, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: "...)
	dst = strconv.AppendInt(dst, int64(len(b)), 10)
	dst = append(dst, "\r\n\r\n"...)
	return append(dst, b...)
}

// newPositionedEvent is newPublishEvent for an event whose position in
// its topic's stream was assigned elsewhere (a broker ordering events in
// Redis; Feed.Push): the dispatcher records it at pos as is
// (Store.RecordAt: a new epoch starts the stream over, a gap drops what is
// retained, an offset already recorded is not recorded again) and delivers
// it with pos. A pos without an offset of at least 1 and a
// history.ValidEpoch epoch is ignored: the event is published as any
// other.
func newPositionedEvent(topic, payload []byte, p *Publisher, rk ReplyKind, pos history.Position) *event {
	ev := newPublishEvent(topic, payload, p, rk)
	if pos.Offset > 0 && history.ValidEpoch(pos.Epoch) {
		ev.pos, ev.hasPos = pos, true
	}
	return ev
}
