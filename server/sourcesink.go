package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"
	"unsafe"

	"github.com/fraised/fraised/broker"
	"github.com/fraised/fraised/internal/backoff"
	"github.com/fraised/fraised/source"
)

// This file is the cluster-mode publish path of Server.Publish and of the
// event sources: an event goes to the cluster broker (Redis), which gives
// it its one position and hands it to every node with a subscriber, this
// one included; it never enters this node's dispatcher directly.

// Retry of a source's event while the broker is unavailable (Redis down,
// its probe failing): the source waits in Publish, reads nothing more and
// stores no position past the event, so nothing is skipped or lost.
const (
	// sourceRetryMin is the first wait: a Redis restart or a failover is
	// usually over within a second.
	sourceRetryMin = 50 * time.Millisecond
	// sourceRetryMax caps the wait (the broker's own reconnect backoff
	// is 2 s), so a source resumes within about that of Redis' return.
	sourceRetryMax = 2 * time.Second
)

// publishCluster hands one validated event to the cluster broker once,
// within clusterPublishTimeout and ctx. Its error wraps
// broker.ErrUnavailable when the broker did not take the event, and
// broker.ErrOutcomeUnknown when it was sent but no answer came (it may
// have been published).
func (s *Server) publishCluster(ctx context.Context, topic, payload []byte) error {
	pctx, cancel := context.WithTimeout(ctx, clusterPublishTimeout)
	defer cancel()
	if _, err := s.opts.Cluster.Publish(pctx, topic, payload); err != nil {
		return fmt.Errorf("cluster publish: %w", err)
	}
	return nil
}

// try publishes once: through the broker's PublishOnce when the event has
// an origin and the broker can, else through publishCluster.
func (c *clusterSink) try(ctx context.Context, topic, payload []byte, o *source.Origin) error {
	if !c.dedups(o) {
		return c.s.publishCluster(ctx, topic, payload)
	}
	op := c.s.opts.Cluster.(broker.OncePublisher)
	pctx, cancel := context.WithTimeout(ctx, clusterPublishTimeout)
	defer cancel()
	_, dup, err := op.PublishOnce(pctx, topic, payload, *o)
	if err != nil {
		return fmt.Errorf("cluster publish: %w", err)
	}
	if dup {
		c.log.Debug("event already published by another forwarder; not published again", "topic", topic,
			"stream", o.Stream, "part", o.Part, "seq", o.Seq)
	}
	return nil
}

// dedups reports whether a second publish of an event with origin o
// (nil: none) is dropped by the broker, so that retrying it is safe.
func (c *clusterSink) dedups(o *source.Origin) bool {
	_, ok := c.s.opts.Cluster.(broker.OncePublisher)
	return o != nil && ok
}

// sourceSink returns the Sink Options.Sources[i] publishes to: the server
// itself on one node; in cluster mode a clusterSink, which retries while
// Redis is unavailable instead of failing the source's session.
func (s *Server) sourceSink(log *slog.Logger) source.Sink {
	if s.opts.Cluster == nil {
		return s
	}
	return &clusterSink{s: s, log: log}
}

// clusterSink is a source's Sink in cluster mode. Publish is called from
// the source's goroutine only (source.Sink's contract), so its fields
// need no lock.
type clusterSink struct {
	s   *Server
	log *slog.Logger
}

// Publish validates the event as a PUBLISH is validated, then publishes it
// through the broker, waiting with backoff (internal/backoff:
// sourceRetryMin doubling to sourceRetryMax, jittered) for as long as the broker is unavailable. It
// returns nil once Redis took the event, an error wrapping
// source.ErrInvalid for an event the server refuses, ctx.Err() when ctx
// ends first, and ErrDraining once the server shuts down; the source then
// does not store the event's position, so it is read again later.
//
// A publish sent whose answer never came (broker.ErrOutcomeUnknown) may
// have run at Redis. Publish's event has no origin to tell a retry from a
// new event, so it is not sent again (at most once, as a LISTEN source
// promises): it is logged and Publish returns nil. PublishOnce retries it,
// since Redis drops a second publish of the same origin.
func (c *clusterSink) Publish(ctx context.Context, topic string, payload []byte) error {
	return c.publish(ctx, topic, payload, nil)
}

// PublishOnce is Publish for an event with an origin: when the broker
// can (broker.OncePublisher, the Redis broker), the event is published at
// most once per origin, its mark kept in Redis by the same call; a
// duplicate returns nil without being published. Otherwise it is Publish.
func (c *clusterSink) PublishOnce(ctx context.Context, topic string, payload []byte, o source.Origin) error {
	return c.publish(ctx, topic, payload, &o)
}

var _ source.OnceSink = (*clusterSink)(nil)

func (c *clusterSink) publish(ctx context.Context, topic string, payload []byte, o *source.Origin) error {
	t := unsafe.Slice(unsafe.StringData(topic), len(topic)) // read only
	if err := validatePublish(t, payload, c.s.opts.MaxPayload); err != nil {
		return fmt.Errorf("%w: %w", source.ErrInvalid, err)
	}
	wait := backoff.Backoff{Min: sourceRetryMin, Max: sourceRetryMax}
	retries, since := 0, time.Time{}
	for {
		if c.s.draining.Load() {
			return ErrDraining
		}
		err := c.try(ctx, t, payload, o)
		if err == nil {
			if retries > 0 {
				c.log.Info("cluster available again; the source goes on", "retries", retries, "waited", time.Since(since).Round(time.Millisecond))
			}
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if errors.Is(err, broker.ErrOutcomeUnknown) && !c.dedups(o) {
			c.log.Warn("cluster publish got no answer: the event may or may not have been published; not sent again (an event without an origin is published at most once)",
				"topic", topic, "err", err)
			return nil
		}
		if !errors.Is(err, broker.ErrUnavailable) && !errors.Is(err, broker.ErrOutcomeUnknown) {
			return err
		}
		if retries == 0 {
			since = time.Now()
			c.log.Warn("cluster unavailable: the source waits and retries its event (nothing is skipped; it reads on once Redis answers)",
				"topic", topic, "err", err)
		}
		retries++
		if !backoff.Sleep(ctx.Done(), wait.Next()) {
			return ctx.Err()
		}
	}
}
