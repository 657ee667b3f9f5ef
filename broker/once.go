package broker

import "context"

// Origin is where an event was read from, for a source that may read the
// same event again (an outbox source's new forwarder re-reads the rows the
// old one published but had not yet marked read): Stream names the source
// (the same on every node, different for two sources or two databases),
// Part one of its ordered parts (an outbox shard), and Seq the event's
// place in that part, increasing.
type Origin struct {
	Stream string
	Part   string
	Seq    int64
}

// OncePublisher is a Broker that publishes an event with an Origin at most
// once: it records the Origin with the event, atomically, and drops an
// event whose Seq is at or below the one recorded for its Stream and Part
// (dup true, nothing published). Same goroutine rules as Publish.
type OncePublisher interface {
	PublishOnce(ctx context.Context, topic, payload []byte, o Origin) (rc Receipt, dup bool, err error)
}
