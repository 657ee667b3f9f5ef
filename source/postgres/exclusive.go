package postgres

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/fraised/fraised/source"
)

// Exclusive runs a source on one node of several: the seam for fraised
// --cluster (issue 13, "several nodes"), where exactly one node forwards a
// database's events into the cluster's broker so each event is published
// once. Every node wraps the same source in an Exclusive with the same
// key; each holds a connection of its own on which it takes a
// session-level advisory lock (pg_try_advisory_lock(lockForward,
// hashtext(key))). The node holding the lock runs the inner source; the
// others stand by and try again every standbyPoll. PostgreSQL releases the
// lock when the holder's session ends (a stop, a crash: the kernel closes
// the socket; a vanished host: the server's TCP keepalives, about 25 s), so
// another node takes over within about standbyPoll of that.
//
// Order on a graceful stop: the inner source stops first (an outbox source
// stores its position), then the lock connection closes; the next holder
// resumes from that position. The holder pings its lock connection every
// holderPing and stops forwarding when a ping fails within
// holderPingTimeout: after a network partition the old holder may forward
// for up to that long while a new one already does, which can duplicate
// events (never lose them) in outbox mode.
//
// For an outbox source every node uses the same name= (one position, kept by
// whoever forwards). Without --cluster there is no need for Exclusive: each
// node reads under its own name and delivers locally.
type Exclusive struct {
	cfg     *Config
	key     string
	inner   source.Source
	log     *slog.Logger
	leading atomic.Bool
	health  healthCell
}

// Election timing, each with its reason.
const (
	// standbyPoll is how often a standby tries the lock: the takeover
	// delay after the holder's session ends. A try is one round trip.
	standbyPoll = time.Second
	// holderPing is how often the holder checks its lock connection.
	holderPing = time.Second
	// holderPingTimeout bounds that check: past it the holder assumes it
	// may have lost the lock and stops forwarding.
	holderPingTimeout = 2 * time.Second
)

var _ source.Source = (*Exclusive)(nil)

// NewExclusive returns inner wrapped so that it runs only while this node
// holds the forwarding lock named key on cfg's database (cfg is the inner
// source's configuration: the lock connection goes to the same server).
func NewExclusive(cfg *Config, key string, inner source.Source, log *slog.Logger) *Exclusive {
	if log == nil {
		log = slog.Default()
	}
	e := &Exclusive{cfg: cfg, key: key, inner: inner, log: log.With("source", cfg.String(), "election", key)}
	e.health.set(errors.New("not connected yet"))
	return e
}

// Leading reports whether this node holds the lock and runs the inner
// source. Safe from any goroutine.
func (e *Exclusive) Leading() bool { return e.leading.Load() }

// String names the wrapped source for logs.
func (e *Exclusive) String() string {
	return fmt.Sprintf("%v, forwarded by one node (election %q)", e.inner, e.key)
}

// Healthy is nil while this node stands by with a working connection, or
// leads and the inner source is healthy. Safe from any goroutine.
func (e *Exclusive) Healthy() error {
	if e.leading.Load() {
		return e.inner.Healthy()
	}
	return e.health.err("postgres source " + e.cfg.String() + ", forwarder election")
}

// Run stands by, leads when it gets the lock, and reconnects with backoff
// when its connection breaks, until ctx ends (nil) or the inner source
// stops with an error retrying cannot fix.
func (e *Exclusive) Run(ctx context.Context, sink source.Sink) error {
	return reconnect(ctx, &e.health, e.log, "forwarder election: connection lost; reconnecting",
		func(ctx context.Context) error { return e.session(ctx, sink) })
}

// session connects, stands by until it holds the lock, then leads until
// the connection breaks or ctx ends; closing the connection releases the
// lock.
func (e *Exclusive) session(ctx context.Context, sink source.Sink) error {
	conn, err := connectConfig(ctx, e.cfg)
	if err != nil {
		return err
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		conn.Close(cctx)
	}()
	e.health.set(nil)
	e.log.Info("forwarder election: standing by")
	for {
		got, err := e.tryLock(ctx, conn)
		if err != nil || ctx.Err() != nil {
			return err
		}
		if got {
			break
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(standbyPoll):
		}
	}
	e.log.Info("forwarder election: this node forwards the source")
	e.leading.Store(true)
	defer e.leading.Store(false)
	return e.lead(ctx, conn, sink)
}

func (e *Exclusive) tryLock(ctx context.Context, conn *pgx.Conn) (bool, error) {
	qctx, cancel := context.WithTimeout(ctx, holderPingTimeout)
	defer cancel()
	var got bool
	if err := conn.QueryRow(qctx, "SELECT pg_try_advisory_lock($1, hashtext($2))", lockForward, e.key).Scan(&got); err != nil {
		return false, fmt.Errorf("trying the forwarder lock: %w", err)
	}
	return got, nil
}

// lead runs the inner source while the lock connection answers pings. It
// returns once the inner source has stopped, so the lock is released only
// after (the caller closes the connection).
func (e *Exclusive) lead(ctx context.Context, conn *pgx.Conn, sink source.Sink) error {
	ictx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- e.inner.Run(ictx, sink) }()
	stop := func() error {
		cancel()
		return <-done
	}
	t := time.NewTicker(holderPing)
	defer t.Stop()
	for {
		select {
		case err := <-done:
			cancel()
			if err != nil {
				return &fatalError{err}
			}
			return errors.New("the source stopped by itself")
		case <-ctx.Done():
			return stop()
		case <-t.C:
			pctx, pcancel := context.WithTimeout(ctx, holderPingTimeout)
			err := conn.Ping(pctx)
			pcancel()
			if err != nil && ctx.Err() == nil {
				e.log.Warn("forwarder election: the lock connection failed; this node stops forwarding", "err", err)
				_ = stop()
				return fmt.Errorf("the forwarder lock's connection: %w", err)
			}
		}
	}
}

// ElectionKey is the forwarder-election key of cfg's source (NewExclusive's
// key): the same on every node that reads the same source, different for
// two sources of one database. An outbox source is its name= (its stored
// position: nodes forwarding under one name share it, two names are two
// sources); a listen source its channel→topic mapping. The host is left
// out on purpose: nodes may reach one database under different addresses,
// and advisory locks are scoped to the database already.
func (c *Config) ElectionKey() string {
	if c.Mode == ModeListen {
		k := "listen"
		for _, ch := range c.Channels {
			k += " " + ch.Name + ":" + ch.Topic
		}
		return k
	}
	return "outbox " + c.Name
}

// Key is the election key this Exclusive was made with.
func (e *Exclusive) Key() string { return e.key }
