// Package postgres is fraised's PostgreSQL event source: committed rows of
// the fraised.outbox table (mode outbox) or NOTIFYs on chosen channels (mode
// listen) become events handed to a source.Sink. See README.md here for the
// guarantees and the commit-order scheme.
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

const (
	// connectTimeout bounds connecting and the session's set-up queries
	// when the URL sets no connect_timeout.
	connectTimeout = 10 * time.Second
	// pruneEvery is how often an outbox source applies retention.
	pruneEvery = time.Minute
)

// serverKeepalives are the TCP keepalive settings fraised asks the server to
// use on its connection unless the URL sets them: the server then notices
// within about 25 s that a node vanished without closing (network drop)
// and releases the node's name lock, instead of after the 2-hour default.
var serverKeepalives = map[string]string{
	"tcp_keepalives_idle": "10", "tcp_keepalives_interval": "5", "tcp_keepalives_count": "3",
}

// Source is one --source. Create it with New; call Run once.
type Source struct {
	cfg    *Config
	log    *slog.Logger
	health healthCell
	// published is, per shard, the highest outbox id handed to the sink by
	// this process (touched only by the goroutine running Run). A session
	// that broke before storing its position resumes from here, so a
	// reconnect re-delivers nothing.
	published []int64
	// pruneEvery is the retention interval (pruneEvery; tests shorten it).
	pruneEvery time.Duration
	// now is the clock the position stores are timed by (storeEvery;
	// tests stop it).
	now func() time.Time
	// lastSkipLog and skipsSuppressed throttle the skipped-event warnings
	// (Run's goroutine only).
	lastSkipLog     time.Time
	skipsSuppressed int
	// tableReads counts the outbox's reads of the table (tests watch that
	// carried events are delivered without one).
	tableReads atomic.Int64
}

// skipLogEvery is how often a skipped event is logged at most: a table full
// of refused rows costs one line per interval, not one per row; the lines
// in between are counted in the next one.
const skipLogEvery = 5 * time.Second

// skipped logs a skipped event, throttled to one line per skipLogEvery.
func (s *Source) skipped(msg string, attrs ...any) {
	now := time.Now()
	if !s.lastSkipLog.IsZero() && now.Sub(s.lastSkipLog) < skipLogEvery {
		s.skipsSuppressed++
		return
	}
	s.log.Warn(msg, append(attrs, "suppressed_since_last", s.skipsSuppressed)...)
	s.lastSkipLog, s.skipsSuppressed = now, 0
}

var _ source.Source = (*Source)(nil)

// New returns a source reading as cfg says, logging to log (nil: the
// default logger). It does not connect: Run does.
func New(cfg *Config, log *slog.Logger) *Source {
	if log == nil {
		log = slog.Default()
	}
	s := &Source{cfg: cfg, log: log.With("source", cfg.String(), "mode", string(cfg.Mode)), pruneEvery: pruneEvery, now: time.Now}
	s.health.set(errors.New("not connected yet"))
	return s
}

// String names the source for logs: its URL without the password, and
// its mode.
func (s *Source) String() string { return s.cfg.String() + " (" + string(s.cfg.Mode) + ")" }

// Healthy is nil while the source is connected and reading; otherwise it
// says why not and since when. Safe from any goroutine.
func (s *Source) Healthy() error { return s.health.err("postgres source " + s.cfg.String()) }

// Run reads events and publishes them to sink until ctx ends, reconnecting
// with backoff when the connection breaks. It returns nil when ctx ends, or
// an error that retrying cannot fix (the fraised schema is missing or too
// new, another node reads under the same name). Call it once.
func (s *Source) Run(ctx context.Context, sink source.Sink) error {
	return reconnect(ctx, &s.health, s.log, "postgres source disconnected; reconnecting",
		func(ctx context.Context) error { return s.session(ctx, sink) })
}

// session connects, runs one mode's read loop until an error, and closes.
func (s *Source) session(ctx context.Context, sink source.Sink) error {
	conn, err := s.connect(ctx)
	if err != nil {
		return err
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		conn.Close(cctx)
	}()
	if s.cfg.Mode == ModeListen {
		return s.listen(ctx, conn, sink)
	}
	return s.outbox(ctx, conn, sink)
}

func (s *Source) connect(ctx context.Context) (*pgx.Conn, error) { return connectConfig(ctx, s.cfg) }

// connectConfig opens a connection as cfg says, with fraised's defaults
// (connect timeout, application_name, server keepalives) where the URL
// sets none.
func connectConfig(ctx context.Context, cfg *Config) (*pgx.Conn, error) {
	cc := cfg.Conn.Copy()
	if cc.ConnectTimeout == 0 {
		cc.ConnectTimeout = connectTimeout
	}
	if cc.RuntimeParams["application_name"] == "" {
		cc.RuntimeParams["application_name"] = "fraised"
	}
	for k, v := range serverKeepalives {
		if _, set := cc.RuntimeParams[k]; !set {
			cc.RuntimeParams[k] = v
		}
	}
	conn, err := pgx.ConnectConfig(ctx, cc)
	if err != nil {
		return nil, fmt.Errorf("connecting: %w", err)
	}
	return conn, nil
}

// connected marks the source healthy and logs it.
func (s *Source) connected(attrs ...any) {
	s.health.set(nil)
	s.log.Info("postgres source connected", attrs...)
}

// publish hands one event to sink: with an origin through PublishOnce
// when sink is a source.OnceSink (o non-nil only then). An event the
// server refuses as invalid is logged and skipped (nil); an error means
// the session must end.
func (s *Source) publish(ctx context.Context, sink source.Sink, topic string, payload []byte, o *source.Origin, attrs ...any) error {
	var err error
	if o != nil {
		err = sink.(source.OnceSink).PublishOnce(ctx, topic, payload, *o)
	} else {
		err = sink.Publish(ctx, topic, payload)
	}
	switch {
	case err == nil:
		return nil
	case errors.Is(err, source.ErrInvalid):
		s.skipped("postgres source: event refused, skipped", append(attrs, "topic", topic, "err", err)...)
		return nil
	default:
		return fmt.Errorf("publishing: %w", err)
	}
}
