package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/fraised/fraised/source"
)

// listen is one listen-mode session: LISTEN on every channel, then each
// notification's payload is published to its channel's topic. Nothing sent
// while the session is down is replayed (PostgreSQL queues notifications only
// for connected listeners).
func (s *Source) listen(ctx context.Context, conn *pgx.Conn, sink source.Sink) error {
	topics := make(map[string]string, len(s.cfg.Channels))
	sctx, cancel := context.WithTimeout(ctx, connectTimeout)
	defer cancel()
	for _, ch := range s.cfg.Channels {
		if _, err := conn.Exec(sctx, "LISTEN "+pgx.Identifier{ch.Name}.Sanitize()); err != nil {
			return fmt.Errorf("LISTEN %s: %w", ch.Name, err)
		}
		topics[ch.Name] = ch.Topic
	}
	s.connected("channels", len(topics))
	for {
		n, err := s.waitNotification(ctx, conn)
		if err != nil {
			return err
		}
		if n == nil {
			continue
		}
		topic, ok := topics[n.Channel]
		if !ok {
			continue // not ours (cannot happen: this connection LISTENs only on ours)
		}
		if err := s.publish(ctx, sink, topic, []byte(n.Payload), nil, "channel", n.Channel); err != nil {
			return err
		}
	}
}

// waitNotification returns the next notification, or nil after Poll without
// one (once the connection answered a ping, so a dead one is noticed).
func (s *Source) waitNotification(ctx context.Context, conn *pgx.Conn) (*pgconn.Notification, error) {
	wctx, cancel := context.WithTimeout(ctx, s.cfg.Poll)
	n, err := conn.WaitForNotification(wctx)
	timedOut := err != nil && wctx.Err() != nil && ctx.Err() == nil && !conn.IsClosed()
	cancel()
	if timedOut {
		pctx, cancel := context.WithTimeout(ctx, s.cfg.queryTimeout())
		defer cancel()
		if err := conn.Ping(pctx); err != nil {
			return nil, fmt.Errorf("ping: %w", err)
		}
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("waiting for notifications: %w", err)
	}
	return n, nil
}
