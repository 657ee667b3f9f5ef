package broker

import (
	"context"
	"fmt"
	"sync"

	"github.com/fraised/fraised/dispatch"
	"github.com/fraised/fraised/history"
)

// Memory is the single-node broker: this node's dispatcher is the
// ordering authority, and a publish is a push into its ring through a
// dispatch.Feed (the RESP and HTTP publishers keep their own direct
// dispatch.Publisher: the hot path has no broker call in it). Interest
// changes need no action: every event is already local.
type Memory struct {
	mu   sync.Mutex
	in   Inlet
	stop chan struct{}
}

var _ Broker = (*Memory)(nil)

// NewMemory returns a memory broker; Start gives it the inlet.
func NewMemory() *Memory { return &Memory{stop: make(chan struct{})} }

// Publish pushes the event into the dispatcher, waiting while its ring is
// full, until ctx ends. Safe for concurrent use.
func (m *Memory) Publish(ctx context.Context, topic, payload []byte) (Receipt, error) {
	m.mu.Lock()
	in := m.in
	m.mu.Unlock()
	if in == nil {
		return Receipt{}, fmt.Errorf("%w: not started", ErrUnavailable)
	}
	stop := make(chan struct{})
	done := context.AfterFunc(ctx, func() { close(stop) })
	defer done()
	select {
	case <-m.stop:
		return Receipt{}, fmt.Errorf("%w: stopped", ErrUnavailable)
	default:
	}
	if !in.Deliver(topic, payload, Position{}, stop) {
		return Receipt{}, ctx.Err()
	}
	return Receipt{Receivers: 1}, nil
}

// TopicAdded does nothing: every event is local. Called by the dispatcher.
func (*Memory) TopicAdded(string) {}

// TopicRemoved does nothing. Called by the dispatcher.
func (*Memory) TopicRemoved(string) {}

// Ready is always nil: the dispatcher is in this process.
func (*Memory) Ready() error { return nil }

// Start sets the inlet. Called once by the server.
func (m *Memory) Start(in Inlet) error {
	m.mu.Lock()
	m.in = in
	m.mu.Unlock()
	return nil
}

// Stop makes later publishes fail. Called once.
func (m *Memory) Stop() { close(m.stop) }

// FeedInlet is the Inlet over a dispatch.Feed: the broker's events enter
// the ring like any publish, with their position (history topics record
// and show the authority's offsets and epochs).
type FeedInlet struct{ Feed *dispatch.Feed }

var _ Inlet = FeedInlet{}

// Deliver pushes the event, waiting while the ring is full, until stop.
func (f FeedInlet) Deliver(topic, payload []byte, pos Position, stop <-chan struct{}) bool {
	return f.Feed.Push(topic, payload, pos, stop)
}

var _ HistoryInlet = FeedInlet{}

// Stage pushes an event read for a fill (dispatch.Feed.Stage).
func (f FeedInlet) Stage(topic, payload []byte, pos Position, stop <-chan struct{}) bool {
	return f.Feed.Stage(topic, payload, pos, stop)
}

// Filled ends a fill (dispatch.Feed.Filled).
func (f FeedInlet) Filled(id uint64, topic []byte, live Position, stop <-chan struct{}) bool {
	return f.Feed.Filled(id, topic, live, stop)
}

// Lost reports a loss (dispatch.Feed.Lost).
func (f FeedInlet) Lost(topic []byte, why history.Reason, next Position, stop <-chan struct{}) bool {
	return f.Feed.Lost(topic, why, next, stop)
}
