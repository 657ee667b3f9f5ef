package redis

import (
	"context"
	crand "crypto/rand"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"
	"unsafe"

	goredis "github.com/redis/go-redis/v9"

	"github.com/fraised/fraised/broker"
	"github.com/fraised/fraised/dispatch"
	"github.com/fraised/fraised/internal/backoff"
)

// Receiver timing.
const (
	// receivePoll is how long one read of the pub/sub connection waits
	// before the receiver looks at its probe: short enough to judge the
	// probe within a fraction of its timeout.
	receivePoll = 250 * time.Millisecond
	// backoffBase and backoffMax bound the wait between reconnects
	// (internal/backoff: doubling from base to max, each wait jittered
	// into [d/2, d]), so a fleet that lost Redis does not reconnect in
	// lockstep.
	backoffBase = 50 * time.Millisecond
	backoffMax  = 2 * time.Second
	// repairChunk is the most stream entries one repair read returns:
	// ~1 MiB of 1 KiB events per round trip.
	repairChunk = 1000
)

// position is the receiver's view of one subscribed topic: the epoch and
// the last offset delivered, and dupTo, the last offset a repair
// delivered ahead of the live messages (live ones up to it are duplicates,
// not a regression).
//
// A topic just subscribed to starts from its position in Redis read just
// before its SUBSCRIBE was sent (the interest goroutine's baseline), so
// every later event either arrives or shows up as a gap, even one lost
// before the topic's first live event. An empty epoch means Redis had
// none yet: the first event's is adopted.
type position struct {
	epoch string
	last  uint64
	dupTo uint64
}

// receiver is the state of the receiver goroutine.
type receiver struct {
	b        *Broker
	track    map[string]*position
	awaiting map[string]bool // channels whose subscription a reconnect waits for
	probeCh  string
	heardAt  time.Time // last byte of pub/sub traffic
	probeAt  time.Time // when the outstanding probe was sent (zero: none)
	sessions int       // connections that got subscribed
	// repairedBefore is the repaired count when this connection began.
	repairedBefore uint64
	fills          []dispatch.FillRequest // taken from the queue, not served yet (fill.go)
}

// receive is the receiver goroutine: it keeps a pub/sub connection,
// reconnecting with backoff, until Stop.
func (b *Broker) receive() {
	defer b.wg.Done()
	r := &receiver{b: b, track: map[string]*position{}, probeCh: probePrefix + b.node}
	wait := backoff.Backoff{Min: backoffBase, Max: backoffMax}
	for attempt := 0; ; attempt++ {
		ready, err := r.session()
		if b.stopped() {
			return
		}
		if ready {
			attempt = 0
			wait.Reset()
		}
		b.setState(err, isUnreachable(err))
		b.cfg.Log.Warn("cluster: pub/sub connection to Redis lost; reconnecting", "err", err, "attempt", attempt+1)
		if !backoff.Sleep(b.stop, wait.Next()) {
			return
		}
	}
}

func (b *Broker) stopped() bool {
	select {
	case <-b.stop:
		return true
	default:
		return false
	}
}

// errProbe marks a liveness probe that did not come back.
var errProbe = errors.New("pub/sub probe not received")

// isUnreachable reports whether err means Redis does not answer at all
// (publishes then fail at once), as opposed to a pub/sub connection that
// broke or went silent.
func isUnreachable(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) || errors.Is(err, errUnreachable)
}

var errUnreachable = errors.New("Redis unreachable")

// session connects, subscribes to the wanted topics, repairs what was
// missed and reads until the connection fails; ready says it got that far.
func (r *receiver) session() (ready bool, err error) {
	b := r.b
	ctx, cancel := context.WithTimeout(context.Background(), commandTimeout)
	err = b.rdb.Ping(ctx).Err()
	if err == nil {
		err = b.loadLibrary(ctx)
	}
	cancel()
	if err != nil {
		return false, fmt.Errorf("%w: %w", errUnreachable, err)
	}
	ps := b.rdb.Subscribe(context.Background())
	defer func() {
		b.mu.Lock()
		if b.ps == ps {
			b.ps = nil
		}
		b.mu.Unlock()
		_ = ps.Close()
		b.stats.resubscribe.Store(0)
	}()
	channels := r.resubscribeSet(ps)
	b.stats.resubscribe.Store(int64(len(channels)))
	if err := b.sendInterest(ps, channels, nil); err != nil {
		return false, err
	}
	b.setState(nil, false)
	if r.sessions++; r.sessions > 1 {
		b.stats.reconnects.Add(1)
	}
	r.heardAt, r.probeAt = time.Now(), time.Time{}
	r.repairedBefore = b.stats.repaired.Load()
	for !b.stopped() {
		msg, err := ps.ReceiveTimeout(context.Background(), receivePoll)
		if err != nil {
			if isTimeout(err) {
				if err := r.checkProbe(); err != nil {
					return true, err
				}
				if err := r.serveFills(); err != nil {
					return true, err
				}
				continue
			}
			return true, err
		}
		r.heardAt = time.Now()
		if err := r.handle(msg); err != nil {
			return true, err
		}
		if err := r.serveFills(); err != nil {
			return true, err
		}
	}
	return true, nil
}

// resubscribeSet installs ps as the current connection and returns every
// channel it must subscribe to: the probe's and each wanted topic's. It
// forgets the positions of topics no longer wanted.
func (r *receiver) resubscribeSet(ps *goredis.PubSub) []string {
	b := r.b
	b.mu.Lock()
	b.ps = ps
	channels := make([]string, 0, len(b.wanted)+1)
	channels = append(channels, r.probeCh)
	for t := range b.wanted {
		channels = append(channels, channelPrefix+t)
	}
	for t := range r.track {
		if !b.wanted[t] {
			delete(r.track, t)
		}
	}
	b.mu.Unlock()
	r.awaiting = make(map[string]bool, len(channels))
	for _, c := range channels {
		r.awaiting[c] = true
	}
	return channels
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// checkProbe publishes a probe after ProbeIdle of silence and fails the
// connection when it has not come back within ProbeTimeout. Called only
// after a read timed out, so a probe waiting unread behind a backlog is
// never judged lost.
func (r *receiver) checkProbe() error {
	b := r.b
	now := time.Now()
	if !r.probeAt.IsZero() {
		if now.Sub(r.probeAt) > b.cfg.ProbeTimeout {
			b.stats.probesFail.Add(1)
			return fmt.Errorf("%w within %s (the connection carries nothing)", errProbe, b.cfg.ProbeTimeout)
		}
		return nil
	}
	if now.Sub(r.heardAt) < b.cfg.ProbeIdle {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), commandTimeout)
	defer cancel()
	r.probeAt = now
	if err := b.rdb.Publish(ctx, r.probeCh, "p").Err(); err != nil {
		b.stats.probesFail.Add(1)
		return fmt.Errorf("%w: probe: %w", errUnreachable, err)
	}
	return nil
}

// handle processes one pub/sub message.
func (r *receiver) handle(msg any) error {
	b := r.b
	switch m := msg.(type) {
	case *goredis.Subscription:
		t, isTopic := strings.CutPrefix(m.Channel, channelPrefix)
		switch m.Kind {
		case "subscribe":
			if isTopic {
				if err := r.subscribed(t); err != nil {
					return err
				}
			}
			if r.awaiting[m.Channel] {
				delete(r.awaiting, m.Channel)
				if b.stats.resubscribe.Add(-1) == 0 && r.sessions > 1 {
					b.cfg.Log.Info("cluster: resubscribed after a reconnect", "topics", len(r.track),
						"repaired", b.stats.repaired.Load()-r.repairedBefore, "reconnects", b.stats.reconnects.Load())
				}
			}
		case "unsubscribe":
			if isTopic {
				delete(r.track, t)
			}
		}
	case *goredis.Message:
		if m.Channel == r.probeCh {
			r.probeAt = time.Time{}
			return nil
		}
		if t, ok := strings.CutPrefix(m.Channel, channelPrefix); ok {
			return r.event(t, m.Payload)
		}
	}
	return nil
}

// subscribed handles the confirmation of topic's subscription: a topic
// the node tracks (a resubscribe) is repaired from its stream; a new one
// starts from the baseline read before its SUBSCRIBE, and is repaired
// from there (events lost between the two, or during a reconnect before
// its first event).
func (r *receiver) subscribed(topic string) error {
	p := r.track[topic]
	if p == nil {
		base, ok := r.b.takeBaseline(topic)
		if !ok {
			// Subscribed without a baseline (a resubscribe raced the
			// interest goroutine): start from now.
			var err error
			if base, err = r.b.readBaseline(topic); err != nil {
				return err
			}
		}
		p = &base
		r.track[topic] = p
	}
	return r.repair(topic, p, 0)
}

// event delivers one live event of topic in order: a gap is repaired from
// the stream first, a duplicate of a repaired event dropped, a change of
// epoch or a regression reported.
func (r *receiver) event(topic, msg string) error {
	b := r.b
	off, epoch, payload, ok := parseMessage(msg)
	if !ok {
		b.stats.foreign.Add(1)
		return nil
	}
	p := r.track[topic]
	switch {
	case p == nil: // not confirmed yet: cannot happen (Redis confirms first)
		p = &position{epoch: epoch, last: off - 1}
		r.track[topic] = p
	case p.epoch == "":
		p.epoch = epoch // the topic's first epoch since the node subscribed
	case epoch != p.epoch:
		r.lost(topic, p, "epoch_changed", epoch, 0)
		p.epoch, p.last, p.dupTo = epoch, 0, 0
	case off <= p.dupTo:
		b.stats.duplicates.Add(1)
		return nil
	case off <= p.last:
		if err := r.regressed(topic, p); err != nil {
			return err
		}
		return r.deliver(topic, payload, off, epoch)
	}
	if off > p.last+1 {
		if err := r.repair(topic, p, off-1); err != nil {
			return err
		}
		if off <= p.last { // the repair read it already
			return nil
		}
		if off > p.last+1 {
			r.lost(topic, p, "trimmed", epoch, off-1)
		}
	}
	p.last, p.dupTo = off, 0
	return r.deliver(topic, payload, off, epoch)
}

// regressed handles an offset at or below one already delivered in the
// same epoch, not explained by a repair: Redis lost writes (a replica
// promoted, a restore). The epoch is rotated in Redis so the reused
// offsets are never mistaken for the lost ones, and the loss is reported;
// the caller delivers the event that showed it.
func (r *receiver) regressed(topic string, p *position) error {
	b := r.b
	ctx, cancel := context.WithTimeout(context.Background(), commandTimeout)
	defer cancel()
	epoch, err := b.rdb.FCall(ctx, "fraised_rotate", []string{metaPrefix + topic, streamPrefix + topic}, p.epoch).Text()
	if err != nil {
		return fmt.Errorf("rotate the epoch of %q: %w", topic, err)
	}
	r.lost(topic, p, "offset_regressed", epoch, 0)
	p.epoch, p.last, p.dupTo = epoch, 0, 0
	return nil
}

// repair reads topic's stream from p.last+1 and delivers what it holds,
// up to upTo (0: up to the latest). It reports what the stream no longer
// holds.
func (r *receiver) repair(topic string, p *position, upTo uint64) error {
	b := r.b
	for upTo == 0 || p.last < upTo {
		res, err := b.readStream(topic, p.last+1, repairChunk)
		if err != nil {
			return fmt.Errorf("repair %q from the stream: %w", topic, err)
		}
		switch epoch := res.epoch; {
		case p.epoch == "" && epoch != "":
			p.epoch = epoch // its first epoch since the node subscribed
			continue
		case epoch == "":
			// Redis holds nothing of the topic (restarted without its
			// data, or the topic idle past MetaTTL): the next event
			// comes in a new epoch, and is reported then.
			return nil
		case epoch != p.epoch:
			r.lost(topic, p, "epoch_changed", epoch, 0)
			p.epoch, p.last, p.dupTo = epoch, 0, 0
			continue
		case res.latest < p.last:
			return r.regressed(topic, p)
		}
		if len(res.entries) == 0 {
			target := res.latest
			if upTo > 0 {
				target = min(target, upTo)
			}
			if target > p.last {
				r.lost(topic, p, "trimmed", res.epoch, target)
			}
			return nil
		}
		for _, e := range res.entries {
			if upTo > 0 && e.off > upTo {
				return nil
			}
			if e.off > p.last+1 {
				r.lost(topic, p, "trimmed", res.epoch, e.off-1)
			}
			p.last, p.dupTo = e.off, e.off
			b.stats.repaired.Add(1)
			if err := r.deliver(topic, e.payload, e.off, res.epoch); err != nil {
				return err
			}
		}
		if len(res.entries) < repairChunk {
			return nil
		}
	}
	return nil
}

// lost reports that topic's events after p.last (in p.epoch) up to upTo
// are lost (upTo 0: an unknown number, the epoch changed), and moves p
// past them.
func (r *receiver) lost(topic string, p *position, reason, newEpoch string, upTo uint64) {
	b := r.b
	n := uint64(1)
	if upTo > p.last {
		n = upTo - p.last
	}
	b.stats.lost.Add(n)
	l := Loss{Topic: topic, Reason: reason, Epoch: p.epoch, After: p.last, Now: upTo + 1, NewEpoch: newEpoch}
	b.cfg.Log.Warn("cluster: events could not be delivered in order", "topic", topic, "reason", reason,
		"epoch", p.epoch, "after", p.last, "new_epoch", newEpoch,
		"fix", "raise --cluster-repair-window or --cluster-repair-ttl, or give Redis persistence (see README, Scaling out)")
	if upTo > p.last {
		p.last = upTo
	}
	if b.cfg.OnLoss != nil {
		b.cfg.OnLoss(l)
	}
	r.reportLoss(l)
}

// deliver hands one event to the dispatcher, waiting while its ring is
// full.
func (r *receiver) deliver(topic, payload string, off uint64, epoch string) error {
	if !r.b.in.Deliver(bytesOf(topic), bytesOf(payload), broker.Position{Offset: off, Epoch: epoch}, r.b.stop) {
		return errStopping
	}
	return nil
}

// bytesOf views s as bytes without copying; the Inlet copies them.
func bytesOf(s string) []byte { return unsafe.Slice(unsafe.StringData(s), len(s)) }

// randomName returns 12 random characters of [0-9A-Za-z].
func randomName() string {
	var b [12]byte
	_, _ = crand.Read(b[:])
	for i, c := range b {
		b[i] = digits62[int(c)%len(digits62)]
	}
	return string(b[:])
}

const digits62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
