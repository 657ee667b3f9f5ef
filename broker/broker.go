// Package broker is the seam between fraised's publishers and the
// ordering authority of its events: the authority gives every event its
// place in its topic's one order and hands it to every node that listens.
//
// The memory broker (Memory) is the single-node path: the authority is
// this node's dispatcher, reached through the ring like any publish. The
// Redis broker (broker/redis) makes a Redis server the authority, so that
// several fraised nodes behind a load balancer deliver one order per topic.
//
// Who calls what: Publish is called by publisher goroutines (a RESP
// connection's reader, the Async workers for HTTP publishes on the event
// loops, a source), never by an event loop, since it may wait on the
// network; the dispatch.Interest methods by the dispatcher goroutine, which
// must never block; Ready by anyone (the /readyz handler on an event loop):
// it only loads state. Start and Stop by the server, once each.
package broker

import (
	"context"
	"errors"

	"github.com/fraised/fraised/dispatch"
	"github.com/fraised/fraised/history"
)

// Position is an event's place in its topic's stream: its offset (1, 2,
// 3, ... with no gap) within an epoch, the name of one unbroken run of the
// stream (a new epoch means the stream's history was lost). It is the
// history's position: the dispatcher records an event a broker ordered at
// that position (dispatch.Feed.Push).
type Position = history.Position

// Receipt is the authority's answer to a publish.
type Receipt struct {
	// Receivers is how many nodes the event was handed to (Redis'
	// PUBLISH answer: nodes with a local subscriber to the topic); the
	// memory broker answers 1, this node.
	Receivers int64
	// Pos is the event's position; zero from the memory broker, which
	// numbers nothing.
	Pos Position
}

// ErrUnavailable is returned by Publish when the authority cannot take
// the event now (unreachable, failing its liveness probe, too busy, or it
// refused the command): the event was not published, and the publisher
// may retry later or on another node. Errors wrap it with the reason.
var ErrUnavailable = errors.New("broker: the event broker is unavailable")

// ErrOutcomeUnknown is returned by Publish when the event was sent to the
// authority but no answer came back (a timeout, a connection cut while
// waiting): it may have been published or not. A publisher that sends it
// again may publish it twice; one that needs exactly once publishes with
// an origin (OncePublisher), whose retry the authority drops. Errors wrap
// it with the reason; it does not wrap ErrUnavailable.
var ErrOutcomeUnknown = errors.New("broker: no answer from the event broker; the event may have been published")

// Inlet is where a broker hands the events its authority ordered into this
// node's dispatcher. Deliver is called by the broker's receiving goroutine
// only, in the authority's order; it blocks while the dispatcher's ring is
// full (backpressure) and reports false when stop closed first (the event
// was dropped: the node is shutting down).
type Inlet interface {
	Deliver(topic, payload []byte, pos Position, stop <-chan struct{}) bool
}

// HistoryInlet is an Inlet that also takes what a broker reads for a
// fill of this node's history (dispatch.HistoryFiller: the events of the
// range, then the topic's position at that point) and the broker's loss
// reports (events of a topic that could not be delivered in order: its
// history subscriptions end with the resume error). Same rules as
// Deliver: the receiving goroutine only, in the authority's order, so a
// fill's end and a loss fall at their exact place among the events.
type HistoryInlet interface {
	Inlet
	Stage(topic, payload []byte, pos Position, stop <-chan struct{}) bool
	Filled(id uint64, topic []byte, live Position, stop <-chan struct{}) bool
	Lost(topic []byte, why history.Reason, next Position, stop <-chan struct{}) bool
}

// Event is one event of a batch.
type Event struct {
	Topic, Payload []byte
}

// Result is the outcome of one event of a batch.
type Result struct {
	Receipt
	Err error
}

// Batcher is a Broker that can publish several events in one round trip
// to its authority, in order (a RESP publisher's pipeline). PublishBatch
// fills out[i] for evs[i]; the events are valid only until it returns.
// Same goroutine rules as Publish.
type Batcher interface {
	PublishBatch(ctx context.Context, evs []Event, out []Result)
}

// Broker publishes into the ordering authority and learns of the topics
// this node listens to (it receives exactly those).
type Broker interface {
	dispatch.Interest
	// Publish hands one event to the authority and waits for its
	// receipt, within ctx. topic and payload are valid only until it
	// returns. It fails at once, with an error wrapping ErrUnavailable,
	// while the authority is known to be unreachable: an event is never
	// accepted and then dropped.
	Publish(ctx context.Context, topic, payload []byte) (Receipt, error)
	// Ready is nil while the broker is connected and receiving, or says
	// why not (it backs /readyz). It does not block.
	Ready() error
	// Start begins receiving into in; Stop ends it and waits for the
	// broker's goroutines.
	Start(in Inlet) error
	Stop()
}
