// Package source defines the boundary between fraised and the systems that
// feed it events from outside the publish listeners (a PostgreSQL database,
// for now). A Source reads events and hands them to a Sink, which puts them
// into the same pipeline as a RESP publish: validation, limits, delivery.
package source

import (
	"context"
	"errors"
)

// ErrInvalid marks an event the server refuses for what it is (empty or
// over-long topic, payload too large or not a JSON object). A Sink wraps it
// in the error it returns; a Source then logs the event, skips it and moves
// on, because sending the same event again would be refused again.
var ErrInvalid = errors.New("source: event refused as invalid")

// Sink takes events from a Source into the server's pipeline.
//
// Publish is called from the Source's own goroutine (the one running
// Source.Run), never concurrently with itself for one Source. It blocks while
// the server applies backpressure and returns nil once the event is accepted
// (accepted means the server owns it: it will be delivered as a RESP publish
// would be). It returns an error wrapping ErrInvalid when the event itself is
// refused, ctx.Err() when ctx ends first, and any other error when the server
// cannot take events now (draining, shutting down); the Source then stops
// without acknowledging the event, so it is read again later. topic and
// payload are valid only until Publish returns: a Sink that keeps them must
// copy them.
type Sink interface {
	Publish(ctx context.Context, topic string, payload []byte) error
}

// Source reads events from an external system and publishes them to a Sink.
//
// Run is called once, from a goroutine the server starts for this Source; it
// reads, publishes, reconnects with backoff when the external system breaks,
// and returns only when ctx ends (returning nil) or on a configuration error
// that retrying cannot fix. Healthy is safe to call from any goroutine at any
// time (for /readyz and the logs): nil while the Source is connected and
// reading, otherwise an error saying what is wrong and since when.
type Source interface {
	Run(ctx context.Context, sink Sink) error
	Healthy() error
}

// Origin is where a Source read an event: Stream names what it reads (the
// same on every node reading the same data, different for two sources or
// two databases), Part one of its ordered parts, Seq the event's place in
// that part (increasing, never negative).
type Origin struct {
	Stream string
	Part   string
	Seq    int64
}

// OnceSink is a Sink that can publish an event at most once by its
// Origin (cluster mode: the mark is kept with the event in Redis). A
// Source that may read an event again after another node published it
// (an outbox source taking over from a killed forwarder) publishes
// through PublishOnce when its Sink has it. PublishOnce returns as Publish
// does; nil also when the event had already been published (nothing is
// published again).
type OnceSink interface {
	Sink
	PublishOnce(ctx context.Context, topic string, payload []byte, o Origin) error
}
