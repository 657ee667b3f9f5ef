package broker

import (
	"context"

	"github.com/fraised/fraised/source"
)

// Origin is where an event was read from (source.Origin: a source's
// stream, part and sequence), for a source that may read the same event
// again (an outbox source's new forwarder re-reads the rows the old one
// published but had not yet marked read).
type Origin = source.Origin

// OncePublisher is a Broker that publishes an event with an Origin at most
// once: it records the Origin with the event, atomically, and drops an
// event whose Seq is at or below the one recorded for its Stream and Part
// (dup true, nothing published). Same goroutine rules as Publish.
type OncePublisher interface {
	PublishOnce(ctx context.Context, topic, payload []byte, o Origin) (rc Receipt, dup bool, err error)
}
