package dispatch

import (
	"strconv"

	"github.com/fraised/fraised/history"
	"github.com/fraised/fraised/internal/outbox"
	"github.com/fraised/fraised/resp"
)

// This file is the dispatcher's work on one batch: registering queued
// subscribers, fanning each event out (one projection per group, one frame
// per member), answering publishers, flushing every connection touched,
// cutting slow consumers and waking waiting publishers. All of it runs on
// the dispatcher's goroutine.

// subscribe registers s: it joins the group of its operation's identity,
// or starts one.
func (d *Dispatcher) subscribe(s *Subscription) {
	if s.removed.Load() {
		return
	}
	if s.Resume != nil && d.resume(s) {
		return // replaying (registered when it catches up) or refused
	}
	d.register(s)
}

// register adds s to the registry.
func (d *Dispatcher) register(s *Subscription) {
	op := s.Op
	same := func(g group) bool { return g.op.SameGroup(op) }
	d.noteAdded(op.Topic)
	s.handle = d.reg.Add(op.Topic, op.GroupKey, same, func() group { return d.newGroupData(op) }, member{out: s.Out, id: s.ID, sub: s})
	s.Op = nil // the group keeps the operation it needs
}

func (d *Dispatcher) dispatch(ev *event) {
	switch ev.kind {
	case evPublish:
		var pos *history.Position // nil: not a history topic
		var ext []byte
		if d.hist != nil {
			if st, p := d.record(ev); st != nil {
				pos, ext = &p, d.ext
			}
		}
		n := d.fanOut(ev.topic, ev.payload, ext)
		d.published.Add(1)
		if ev.from != nil {
			d.replyCount(ev.from, ev.replyKind, n, pos)
		}
	case evReply:
		d.queueReply(ev.from, ev.data)
	case evStage, evFilled, evLost:
		d.fillEvent(ev)
	}
	if ev.from != nil {
		// Every event a publisher pushed was counted in flight
		// (Publisher.tryPush): answered or not, it is settled here, once,
		// after its reply (if any) is queued.
		ev.from.settle()
	}
	ev.release()
}

// fanOut delivers payload to every matching subscriber of topic and
// returns how many subscriptions it reached; ext, when set, ends every
// group's payload (the event's position, history.go).
func (d *Dispatcher) fanOut(topic, payload, ext []byte) int {
	t := d.reg.Lookup(topic)
	if t == nil {
		return 0
	}
	count, later := 0, 0
	for _, g := range t.Groups() {
		op := g.Data.op
		if !op.Match(payload) {
			continue
		}
		if g.Data.rq != nil {
			later += d.resolveLater(g, payload, ext) // counted as delivered when resolved
			continue
		}
		d.scratch = withExt(op.AppendResult(d.scratch[:0], payload), ext)
		count += d.deliverGroup(g, d.scratch)
	}
	d.delivered.Add(uint64(count))
	return count + later
}

// deliver appends one next frame to o.
func (d *Dispatcher) deliver(o *outbox.Outbox, id, payload []byte) bool {
	n, pending, ok := o.Deliver(id, payload, flushAt)
	if !ok {
		return false
	}
	d.batchBytes += n
	if pending > d.maxOutbound {
		d.slow = append(d.slow, o)
		return true
	}
	if o.MarkDirty() {
		d.dirty = append(d.dirty, o)
	}
	return true
}

func (d *Dispatcher) replyCount(p *Publisher, rk ReplyKind, n int, pos *history.Position) {
	switch {
	case rk == ReplyRESP:
		d.reply = resp.AppendInt(d.reply[:0], int64(n))
	case rk == ReplyRESPPosition:
		d.reply = appendRESPPosition(d.reply[:0], n, pos)
	case rk == ReplyHTTP && pos != nil:
		d.reply = appendHTTPPosition(d.reply[:0], n, pos)
	case rk == ReplyHTTP:
		d.reply = appendHTTPDelivered(d.reply[:0], n)
	default: // ReplyNone: no answer (dispatch settles the event)
		return
	}
	d.queueReply(p, d.reply)
}

// queueReply appends a reply to p's output, after every earlier reply;
// the batch's flush writes it. It never blocks (a RESP publisher's reply
// buffer is bounded by its reader, which stops reading past the cap).
func (d *Dispatcher) queueReply(p *Publisher, b []byte) {
	r := p.replies
	r.Append(b)
	if r.MarkDirty() {
		d.dirtyReplies = append(d.dirtyReplies, r)
	}
}

func (d *Dispatcher) flushDirty() {
	d.batchBytes = 0
	for i, o := range d.dirty {
		o.ClearDirty()
		o.Flush()
		d.dirty[i] = nil
	}
	d.dirty = d.dirty[:0]
	for i, r := range d.dirtyReplies {
		r.ClearDirty()
		r.Flush()
		d.dirtyReplies[i] = nil
	}
	d.dirtyReplies = d.dirtyReplies[:0]
	for i, o := range d.slow {
		if owner := o.Owner(); owner != nil {
			owner.CutSlow("outbound buffer cap (--max-outbound) exceeded")
		}
		d.slow[i] = nil
	}
	d.slow = d.slow[:0]
	if d.maxTotal > 0 && d.w.Held() > d.maxTotal {
		d.overBudget()
	}
}

// resumePaused wakes waiting publishers in FIFO order, one per publishQuantum slots
// free (at least one), each with a turn of publishQuantum events; the
// rest stay at the head of the queue for the next batch.
func (d *Dispatcher) resumePaused() {
	free := d.ring.Cap() - d.ring.Len()
	if d.pausedN.Load() == 0 || free == 0 {
		// A publisher woken into a full ring would fail its push and
		// queue again at the tail, losing its turn: wait for the next
		// batch to make room.
		return
	}
	wake := max(1, free/publishQuantum)
	d.pausedMu.Lock()
	wake = min(wake, len(d.paused))
	woken := append(d.wokenScratch[:0], d.paused[:wake]...)
	n := copy(d.paused, d.paused[wake:])
	clear(d.paused[n:])
	d.paused = d.paused[:n]
	d.pausedN.Store(int32(n))
	d.pausedMu.Unlock()
	for i, p := range woken {
		p.resume(publishQuantum)
		woken[i] = nil
	}
	d.wokenScratch = woken[:0]
}

// batchSize returns the bytes the events of a batch hold against the
// ring's byte budget.
func batchSize(batch []*event) int64 {
	var n int64
	for _, ev := range batch {
		n += ev.size()
	}
	return n
}

func appendHTTPDelivered(dst []byte, n int) []byte {
	var num [20]byte
	body := strconv.AppendInt(num[:0], int64(n), 10)
	dst = append(dst, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: "...)
	dst = strconv.AppendInt(dst, int64(len(body)+len(`{"delivered":}`)), 10)
	dst = append(dst, "\r\n\r\n{\"delivered\":"...)
	dst = append(dst, body...)
	return append(dst, '}')
}
