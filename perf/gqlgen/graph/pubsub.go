package graph

import (
	"sync"
	"sync/atomic"

	"github.com/fraised/fraised/perf/gqlgen/graph/model"
)

// SubscriberBuffer is the number of events queued per subscription before
// further events for it are dropped (and counted): an in-memory pub/sub of
// the usual gqlgen example shape, with a bounded channel per subscriber.
const SubscriberBuffer = 1024

// PubSub is an in-memory topic → subscribers map. All methods are safe for
// concurrent use.
type PubSub struct {
	mu      sync.RWMutex
	topics  map[string]map[chan *model.Event]struct{}
	dropped atomic.Int64
}

// NewPubSub returns an empty PubSub.
func NewPubSub() *PubSub {
	return &PubSub{topics: make(map[string]map[chan *model.Event]struct{})}
}

// Subscribe registers a new subscriber of topic and returns its channel and
// a function that unregisters it (the channel is never closed, so a
// concurrent Publish cannot panic).
func (p *PubSub) Subscribe(topic string) (<-chan *model.Event, func()) {
	ch := make(chan *model.Event, SubscriberBuffer)
	p.mu.Lock()
	subs := p.topics[topic]
	if subs == nil {
		subs = make(map[chan *model.Event]struct{})
		p.topics[topic] = subs
	}
	subs[ch] = struct{}{}
	p.mu.Unlock()
	return ch, func() {
		p.mu.Lock()
		delete(p.topics[topic], ch)
		if len(p.topics[topic]) == 0 {
			delete(p.topics, topic)
		}
		p.mu.Unlock()
	}
}

// Publish offers ev to every subscriber of topic without blocking and
// returns how many accepted it; ev must not be modified afterwards.
func (p *PubSub) Publish(topic string, ev *model.Event) int {
	n := 0
	p.mu.RLock()
	for ch := range p.topics[topic] {
		select {
		case ch <- ev:
			n++
		default:
			p.dropped.Add(1)
		}
	}
	p.mu.RUnlock()
	return n
}

// Dropped returns how many deliveries were dropped because a subscriber's
// buffer was full.
func (p *PubSub) Dropped() int64 { return p.dropped.Load() }
