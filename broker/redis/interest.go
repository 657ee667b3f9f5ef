package redis

import (
	"context"
	"fmt"
	"sync"

	goredis "github.com/redis/go-redis/v9"
)

// subscribeBatch is the most channels one SUBSCRIBE or UNSUBSCRIBE
// carries: a reconnect with 100,000 topics sends 100 commands, each small
// enough (~30 KiB) that Redis answers it without stalling other clients.
const subscribeBatch = 1000

// interestQueue carries the dispatcher's interest changes to the interest
// goroutine without ever blocking the dispatcher: a map of each changed
// topic's latest wanted state (so a topic that comes and goes between two
// drains costs one entry) and a one-slot wake-up channel. It is bounded by
// the topics: at most one entry per topic the registry holds or has just
// dropped, which the subscription caps bound.
type interestQueue struct {
	mu      sync.Mutex
	pending map[string]bool
	spare   map[string]bool
	wake    chan struct{}
}

func (q *interestQueue) init() {
	q.pending, q.spare = map[string]bool{}, map[string]bool{}
	q.wake = make(chan struct{}, 1)
}

// push records that topic is now wanted (on) or not. Called by the
// dispatcher goroutine; takes the queue's lock for a map write.
func (q *interestQueue) push(topic string, on bool) {
	q.mu.Lock()
	q.pending[topic] = on
	q.mu.Unlock()
	q.wakeUp()
}

func (q *interestQueue) wakeUp() {
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// take swaps out the pending changes; the caller clears the map and hands
// it back with done.
func (q *interestQueue) take() map[string]bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	m := q.pending
	q.pending, q.spare = q.spare, nil
	return m
}

func (q *interestQueue) done(m map[string]bool) {
	clear(m)
	q.mu.Lock()
	q.spare = m
	q.mu.Unlock()
}

// TopicAdded subscribes this node to topic at Redis (batched, on the
// interest goroutine). Called by the dispatcher goroutine; never blocks.
func (b *Broker) TopicAdded(topic string) { b.interest.push(topic, true) }

// TopicRemoved unsubscribes this node from topic. Called by the
// dispatcher goroutine; never blocks.
func (b *Broker) TopicRemoved(topic string) { b.interest.push(topic, false) }

// applyInterest is the interest goroutine: it folds the queued changes
// into the wanted set and sends them, batched, on the current pub/sub
// connection. (A reconnect subscribes the whole wanted set itself: the
// swap of the connection and the snapshot of the set happen under b.mu,
// as do the update of the set and the read of the connection here, so
// every change reaches the connection it must.)
func (b *Broker) applyInterest() {
	defer b.wg.Done()
	var subs, unsubs []string
	for {
		select {
		case <-b.stop:
			return
		case <-b.interest.wake:
		}
		fills := b.takeFills() // first: their topics' changes are then in changes
		changes := b.interest.take()
		subs, unsubs = subs[:0], unsubs[:0]
		b.mu.Lock()
		for t, on := range changes {
			switch {
			case on && !b.wanted[t]:
				b.wanted[t] = true
				subs = append(subs, channelPrefix+t)
			case !on && b.wanted[t]:
				delete(b.wanted, t)
				delete(b.baselines, t)
				unsubs = append(unsubs, channelPrefix+t)
			}
		}
		ps := b.ps
		b.mu.Unlock()
		b.interest.done(changes)
		if fills > 0 {
			b.handFills(fills)
		}
		if ps != nil {
			b.readBaselines(subs)
			if err := b.sendInterest(ps, subs, unsubs); err != nil {
				b.cfg.Log.Warn("cluster: cannot change pub/sub subscriptions; reconnecting", "err", err)
				_ = ps.Close() // the receiver reconnects and resubscribes everything
				continue
			}
			if fills > 0 {
				ctx, cancel := context.WithTimeout(context.Background(), commandTimeout)
				b.pingForFills(ctx, ps)
				cancel()
			}
		}
	}
}

// sendInterest sends the SUBSCRIBE and UNSUBSCRIBE commands, in batches.
func (b *Broker) sendInterest(ps *goredis.PubSub, subs, unsubs []string) error {
	for len(subs) > 0 || len(unsubs) > 0 {
		ctx, cancel := context.WithTimeout(context.Background(), commandTimeout)
		var err error
		if len(subs) > 0 {
			n := min(len(subs), subscribeBatch)
			err, subs = ps.Subscribe(ctx, subs[:n]...), subs[n:]
		} else {
			n := min(len(unsubs), subscribeBatch)
			err, unsubs = ps.Unsubscribe(ctx, unsubs[:n]...), unsubs[n:]
		}
		cancel()
		if err != nil {
			return err
		}
	}
	return nil
}

// readBaselines reads, in one pipeline, the position in Redis of each
// topic about to be subscribed to (channels), for the receiver to start
// from. A failed read leaves no baseline: the receiver reads one itself
// when the subscription is confirmed.
func (b *Broker) readBaselines(channels []string) {
	if len(channels) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), commandTimeout)
	defer cancel()
	cmds := make([]*goredis.Cmd, len(channels))
	_, _ = b.rdb.Pipelined(ctx, func(p goredis.Pipeliner) error {
		for i, c := range channels {
			cmds[i] = fcallRead(ctx, p, c[len(channelPrefix):], 1, 0)
		}
		return nil
	})
	b.mu.Lock()
	defer b.mu.Unlock()
	for i, c := range channels {
		if pos, err := baseline(cmds[i]); err == nil && b.wanted[c[len(channelPrefix):]] {
			b.baselines[c[len(channelPrefix):]] = pos
		}
	}
}

// readBaseline reads one topic's position in Redis now.
func (b *Broker) readBaseline(topic string) (position, error) {
	res, err := b.readStream(topic, 1, 0)
	if err != nil {
		return position{}, fmt.Errorf("read the position of %q: %w", topic, err)
	}
	return position{epoch: res.epoch, last: res.latest}, nil
}

// takeBaseline returns and forgets the baseline read for topic.
func (b *Broker) takeBaseline(topic string) (position, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	pos, ok := b.baselines[topic]
	delete(b.baselines, topic)
	return pos, ok
}

// baseline reads fraised_read's {epoch, last} as a starting position.
func baseline(cmd *goredis.Cmd) (position, error) {
	res, err := parseRead(cmd)
	if err != nil {
		return position{}, err
	}
	return position{epoch: res.epoch, last: res.latest}, nil
}
