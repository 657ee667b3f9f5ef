package redis

import (
	"context"
	"errors"
	"fmt"

	"github.com/fraised/fraised/broker"
	"github.com/fraised/fraised/dispatch"
	"github.com/fraised/fraised/history"
)

// Fills (dispatch.HistoryFiller): a resume this node's history cannot
// serve is filled from the topic's Redis stream. The dispatcher holds the
// topic first (so this node subscribes to it), then asks; the receiver
// serves the request (handed over by the interest goroutine once the topic
// is wanted) when the topic's subscription is confirmed on its
// connection, between two pub/sub messages: it reads the range after the
// client's position up to the topic's last offset it delivered (first
// delivering, as a repair, what the client has and this node has not
// received yet), stages it through the inlet and ends with that offset.
// Everything up to it has then been handed to the dispatcher, nothing
// after it, so the dispatcher merges the range by offset. The requests
// wait in a bounded queue; the interest goroutine wakes the receiver with
// a PING on the pub/sub connection, so a fill of a quiet topic is served
// at once instead of at the next read timeout.

// maxQueuedFills bounds the fill requests waiting for the receiver, as
// the dispatcher's control queue bounds subscribes (65,536): a reconnect
// storm of that many resumes at once is already far past what one node
// serves; past it a resume ends with reason "unavailable".
const maxQueuedFills = 1 << 16

var _ dispatch.HistoryFiller = (*Broker)(nil)

// errStopping ends the receiver when the node shuts down mid-delivery.
var errStopping = errors.New("stopping")

// FillHistory queues req and wakes the interest goroutine, which hands
// it to the receiver once the topic is wanted. Called by the dispatcher
// goroutine (after it added the topic); never blocks; false when the
// queue is full.
func (b *Broker) FillHistory(req dispatch.FillRequest) bool {
	b.fillMu.Lock()
	if len(b.fillQ)+len(b.fillReady) >= maxQueuedFills {
		b.fillMu.Unlock()
		return false
	}
	b.fillQ = append(b.fillQ, req)
	b.fillMu.Unlock()
	b.interest.wakeUp()
	return true
}

// takeFills returns the queued requests. Called by the interest
// goroutine before it takes the interest changes: a request taken was
// queued after its topic's TopicAdded, which is then among the changes.
func (b *Broker) takeFills() int {
	b.fillMu.Lock()
	defer b.fillMu.Unlock()
	return len(b.fillQ)
}

// handFills moves the first n queued requests to the receiver, after the
// interest goroutine put their topics in wanted.
func (b *Broker) handFills(n int) {
	b.fillMu.Lock()
	b.fillReady = append(b.fillReady, b.fillQ[:n]...)
	m := copy(b.fillQ, b.fillQ[n:])
	clear(b.fillQ[m:])
	b.fillQ = b.fillQ[:m]
	b.fillN.Store(int32(len(b.fillReady)))
	b.fillMu.Unlock()
}

// pingForFills wakes the receiver for the fills just handed to it: the
// PING's answer is a pub/sub message. Called by the interest goroutine
// after it sent its subscriptions (so their confirmations come first).
func (b *Broker) pingForFills(ctx context.Context, ps interface {
	Ping(context.Context, ...string) error
}) {
	_ = ps.Ping(ctx, "fill") // a broken connection is the receiver's to notice
}

// serveFills serves the fill requests whose topic is confirmed on this
// connection, drops those whose topic is no longer wanted (the dispatcher
// gave up on them: a request reaches the receiver only after its topic
// was wanted) and keeps the others. On an error the unserved ones
// stay for the next connection. Called by the receiver.
func (r *receiver) serveFills() error {
	b := r.b
	if b.fillN.Load() > 0 {
		b.fillMu.Lock()
		r.fills = append(r.fills, b.fillReady...)
		clear(b.fillReady)
		b.fillReady = b.fillReady[:0]
		b.fillN.Store(0)
		b.fillMu.Unlock()
	}
	if len(r.fills) == 0 {
		return nil
	}
	in, ok := b.in.(broker.HistoryInlet)
	if !ok {
		clear(r.fills)
		r.fills = r.fills[:0]
		return nil
	}
	keep := r.fills[:0]
	for i, req := range r.fills {
		p := r.track[req.Topic]
		switch {
		case !b.isWanted(req.Topic):
			continue
		case p == nil || r.awaiting[channelPrefix+req.Topic]:
			keep = append(keep, req) // not confirmed on this connection yet
			continue
		}
		if err := r.serveFill(in, req, p); err != nil {
			keep = append(keep, r.fills[i:]...)
			clear(r.fills[len(keep):])
			r.fills = keep
			return err
		}
	}
	clear(r.fills[len(keep):])
	r.fills = keep
	return nil
}

func (b *Broker) isWanted(topic string) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.wanted[topic]
}

// serveFill answers one request for a topic tracked at p.
func (r *receiver) serveFill(in broker.HistoryInlet, req dispatch.FillRequest, p *position) error {
	after := req.After
	same := p.epoch != "" && after.Epoch == p.epoch
	if same && after.Offset > p.last {
		// The client has seen events this node has not received yet:
		// deliver them first, as a repair (their live copies are dropped).
		if err := r.repair(req.Topic, p, after.Offset); err != nil {
			return err
		}
	}
	if same && after.Offset < p.last {
		from := after.Offset + 1
		if req.Max > 0 && p.last-after.Offset > uint64(req.Max) {
			from = p.last - uint64(req.Max) + 1 // older ones would not be kept
		}
		if err := r.readFill(in, req.Topic, p, from); err != nil {
			return err
		}
	}
	if !in.Filled(req.ID, bytesOf(req.Topic), broker.Position{Offset: p.last, Epoch: p.epoch}, r.b.stop) {
		return errStopping
	}
	r.b.stats.fills.Add(1)
	return nil
}

// readFill stages topic's stream from offset from up to p.last, in
// chunks. It stops early when the stream holds no more (trimmed or
// expired: the dispatcher then refuses what is missing) or has moved to
// another epoch (the live path reports that).
func (r *receiver) readFill(in broker.HistoryInlet, topic string, p *position, from uint64) error {
	b := r.b
	for from <= p.last {
		res, err := b.readStream(topic, from, min(uint64(repairChunk), p.last-from+1))
		if err != nil {
			return fmt.Errorf("fill %q from the stream: %w", topic, err)
		}
		if res.epoch != p.epoch || len(res.entries) == 0 {
			return nil
		}
		for _, e := range res.entries {
			if e.off > p.last {
				return nil
			}
			if !in.Stage(bytesOf(topic), bytesOf(e.payload), broker.Position{Offset: e.off, Epoch: p.epoch}, b.stop) {
				return errStopping
			}
			from = e.off + 1
		}
	}
	return nil
}

// reportLoss hands a loss to the dispatcher, in the order of the events:
// the topic's history subscriptions end with the resume error.
func (r *receiver) reportLoss(l Loss) {
	in, ok := r.b.in.(broker.HistoryInlet)
	if !ok {
		return
	}
	why := history.EpochChanged // epoch_changed, and offset_regressed: the epoch was rotated
	if l.Reason == "trimmed" {
		why = history.Trimmed
	}
	in.Lost(bytesOf(l.Topic), why, broker.Position{Offset: l.Now, Epoch: l.NewEpoch}, r.b.stop)
}
