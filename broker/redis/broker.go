// Package redis is the Redis broker: a Redis server (7 or later) is the
// ordering authority of a fraised cluster. A publish on any node runs the
// fraised_publish function (fraised.lua), which numbers the event in its
// topic (epoch, offset), keeps it in the topic's repair stream and
// PUBLISHes it with a small header; every node SUBSCRIBEs to the topics
// its clients listen to, checks each topic's offsets, and repairs a gap
// from the stream before delivering newer events, so every node delivers
// one order per topic.
//
// Goroutines: the receiver (receive.go) owns the pub/sub connection's
// reading, the per-topic positions and the liveness probe; the interest
// goroutine (interest.go) applies the dispatcher's interest changes as
// batched SUBSCRIBE and UNSUBSCRIBE commands; Publish runs on the caller's
// goroutine over go-redis' connection pool.
package redis

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/fraised/fraised/broker"
	"github.com/fraised/fraised/dispatch"
)

//go:embed fraised.lua
var library string

// Broker is the Redis broker. Create it with New; the server calls Start.
type Broker struct {
	cfg  Config
	rdb  *goredis.Client
	node string // this node's name: its probe channel

	in   broker.Inlet
	stop chan struct{}
	wg   sync.WaitGroup

	// state is what Ready reports: nil when connected, subscribed and
	// the probe passes. down: publishes fail at once.
	state atomic.Pointer[error]
	down  atomic.Bool

	interest interestQueue

	mu     sync.Mutex
	wanted map[string]bool // topics with local interest (interest goroutine; receiver snapshots it)
	// baselines are the positions read just before a topic's SUBSCRIBE
	// (interest goroutine), taken by the receiver at its confirmation.
	baselines map[string]position
	ps        *goredis.PubSub // current pub/sub connection, nil while reconnecting
	stats     stats

	// Fill requests (fill.go): from the dispatcher (fillQ) through the
	// interest goroutine (once their topics are in wanted) to the
	// receiver (fillReady).
	fillMu    sync.Mutex
	fillQ     []dispatch.FillRequest
	fillReady []dispatch.FillRequest
	fillN     atomic.Int32 // len(fillReady)
}

type stats struct {
	repaired    atomic.Uint64 // events delivered from the repair stream
	lost        atomic.Uint64 // events reported lost (trimmed or epoch changed)
	duplicates  atomic.Uint64 // live events dropped as already delivered by a repair
	reconnects  atomic.Uint64 // pub/sub connections re-established
	probesFail  atomic.Uint64
	foreign     atomic.Uint64 // messages without a fraised header
	resubscribe atomic.Int64  // topics still to be confirmed after a (re)connect
	fills       atomic.Uint64 // fill requests answered (fill.go)
}

// Stats is a snapshot of the broker's counters.
type Stats struct {
	Repaired, Lost, Duplicates, Reconnects, ProbeFailures, Foreign uint64
	// Fills is the resumes whose range was read from Redis (fill.go).
	Fills uint64
}

var _ broker.Broker = (*Broker)(nil)

var (
	errNotStarted = errors.New("connecting to Redis")
)

// New checks cfg and prepares a broker; it does not connect yet.
func New(cfg Config) (*Broker, error) {
	opts, err := cfg.options()
	if err != nil {
		return nil, err
	}
	c := cfg.withDefaults()
	routeLogs.Do(func() { goredis.SetLogger(slogPrinter{c.Log}) })
	b := &Broker{cfg: c, rdb: goredis.NewClient(opts), node: randomName(), stop: make(chan struct{}), wanted: map[string]bool{},
		baselines: map[string]position{}}
	b.setState(errNotStarted, true)
	b.interest.init()
	return b, nil
}

// routeLogs sends go-redis' own log lines (dial failures while
// reconnecting) to the first broker's logger at debug level: the broker
// logs what matters itself, once per reconnect.
var routeLogs sync.Once

type slogPrinter struct{ l *slog.Logger }

func (p slogPrinter) Printf(_ context.Context, format string, v ...any) {
	p.l.Debug(fmt.Sprintf(format, v...), "component", "go-redis")
}

// Stats returns the counters. Safe for concurrent use.
func (b *Broker) Stats() Stats {
	s := &b.stats
	return Stats{Repaired: s.repaired.Load(), Lost: s.lost.Load(), Duplicates: s.duplicates.Load(),
		Reconnects: s.reconnects.Load(), ProbeFailures: s.probesFail.Load(), Foreign: s.foreign.Load(),
		Fills: s.fills.Load()}
}

// Node returns this node's name (its probe channel is fraised:probe:NAME).
func (b *Broker) Node() string { return b.node }

func (b *Broker) setState(err error, down bool) {
	if err == nil {
		b.state.Store(nil)
	} else {
		b.state.Store(&err)
	}
	b.down.Store(down)
}

// Ready is nil while the broker is connected to Redis, every topic's
// subscription is confirmed and the liveness probe passes; otherwise it
// says why not. Safe for concurrent use; does not block.
func (b *Broker) Ready() error {
	if p := b.state.Load(); p != nil {
		return fmt.Errorf("cluster: %w", *p)
	}
	if n := b.stats.resubscribe.Load(); n > 0 {
		return fmt.Errorf("cluster: resubscribing (%d topics to confirm)", n)
	}
	return nil
}

// Start loads the functions into Redis (a failure here is only logged:
// the receiver retries until Redis answers) and starts the receiver and
// interest goroutines, which deliver into in. Called once.
func (b *Broker) Start(in broker.Inlet) error {
	b.in = in
	ctx, cancel := context.WithTimeout(context.Background(), commandTimeout)
	defer cancel()
	if err := b.loadLibrary(ctx); err != nil {
		b.cfg.Log.Warn("cannot reach the cluster's Redis yet; retrying", "url", redact(b.cfg.URL), "err", err)
	}
	b.wg.Add(2)
	go b.receive()
	go b.applyInterest()
	return nil
}

// Stop ends the goroutines and closes the connections. Called once.
func (b *Broker) Stop() {
	close(b.stop)
	b.interest.wakeUp()
	b.mu.Lock()
	if b.ps != nil {
		_ = b.ps.Close() // ends a blocked receive
	}
	b.mu.Unlock()
	b.wg.Wait()
	_ = b.rdb.Close()
}

func (b *Broker) loadLibrary(ctx context.Context) error {
	if err := b.rdb.FunctionLoadReplace(ctx, library).Err(); err != nil {
		return fmt.Errorf("cannot load fraised's functions into Redis (FUNCTION LOAD needs Redis 7 or later): %w", err)
	}
	return nil
}

// Publish runs fraised_publish for the event. It fails at once with
// broker.ErrUnavailable while Redis is known to be unreachable, and
// reloads the functions once if Redis lost them (a restart without
// persistence). It is never retried after the command was sent: a
// timed-out publish may have happened. Safe for concurrent use.
func (b *Broker) Publish(ctx context.Context, topic, payload []byte) (broker.Receipt, error) {
	var r broker.Receipt
	err := b.call(ctx, func() (err error) {
		r, err = b.publish(ctx, topic, payload)
		return err
	})
	return r, err
}

// call runs fcall (one FCALL), failing at once while Redis is known to
// be unreachable, and once more after loading fraised's functions when
// Redis had lost them (then nothing ran). Its error wraps
// broker.ErrUnavailable or broker.ErrOutcomeUnknown (publishErr).
func (b *Broker) call(ctx context.Context, fcall func() error) error {
	if err := b.unavailable(); err != nil {
		return err
	}
	err := fcall()
	if err != nil && isNoFunction(err) {
		if err = b.loadLibrary(ctx); err == nil {
			err = fcall()
		}
	}
	return publishErr(err)
}

// publishErr is err, an FCALL's error (nil: none), wrapped in what it
// means for the event: broker.ErrUnavailable when Redis did not run it
// (it answered with an error, or no connection could be had, so the
// command was never sent), broker.ErrOutcomeUnknown when it was sent and
// no answer came (a timeout or a cut: it may have run).
func publishErr(err error) error {
	if err == nil {
		return nil
	}
	if notSent(err) {
		return fmt.Errorf("%w: publish to Redis: %w", broker.ErrUnavailable, err)
	}
	return fmt.Errorf("%w: publish to Redis: %w", broker.ErrOutcomeUnknown, err)
}

// notSent reports whether err, a command's error, shows the command did
// not run at Redis: an error reply (a Lua error aborts before fraised_publish's
// PUBLISH, which is its last write), a refused dial, a pool timeout or a
// closed client. Anything else (a read timeout, EOF, a reset) is unknown.
func notSent(err error) bool {
	var reply goredis.Error
	var op *net.OpError
	switch {
	case errors.As(err, &reply):
		return true
	case errors.As(err, &op) && op.Op == "dial":
		return true
	}
	return errors.Is(err, goredis.ErrPoolTimeout) || errors.Is(err, goredis.ErrPoolExhausted) || errors.Is(err, goredis.ErrClosed)
}

// unavailable is the error of a publish while Redis is known to be
// unreachable, nil otherwise.
func (b *Broker) unavailable() error {
	if !b.down.Load() {
		return nil
	}
	return fmt.Errorf("%w: %w", broker.ErrUnavailable, b.Ready())
}

func (b *Broker) publish(ctx context.Context, topic, payload []byte) (broker.Receipt, error) {
	return receipt(b.fcallPublish(ctx, b.rdb, topic, payload))
}

// fcallPublish queues (in a pipeline) or runs fraised_publish.
func (b *Broker) fcallPublish(ctx context.Context, c goredis.Cmdable, topic, payload []byte) *goredis.Cmd {
	t := string(topic)
	keys := []string{metaPrefix + t, streamPrefix + t}
	size, ttl := b.streamOf(topic)
	return c.FCall(ctx, "fraised_publish", keys, channelPrefix+t, payload,
		size, ttl.Milliseconds(), max(MetaTTL, 2*ttl).Milliseconds())
}

// streamOf returns what topic's Redis stream keeps: the repair window,
// or its @history when that is larger.
func (b *Broker) streamOf(topic []byte) (size int, ttl time.Duration) {
	size, ttl = b.cfg.RepairWindow, b.cfg.RepairTTL
	if b.cfg.History != nil {
		if spec, ok := b.cfg.History(topic); ok {
			size, ttl = max(size, spec.Size), max(ttl, spec.TTL)
		}
	}
	return size, ttl
}

// PublishBatch publishes evs in order in one pipeline (one round trip);
// out[i] is evs[i]'s receipt or error, as Publish would answer. Safe for
// concurrent use.
func (b *Broker) PublishBatch(ctx context.Context, evs []broker.Event, out []broker.Result) {
	if err := b.unavailable(); err != nil {
		for i := range evs {
			out[i] = broker.Result{Err: err}
		}
		return
	}
	for attempt := 0; attempt < 2; attempt++ {
		cmds := make([]*goredis.Cmd, len(evs))
		_, perr := b.rdb.Pipelined(ctx, func(p goredis.Pipeliner) error {
			for i, ev := range evs {
				if attempt == 0 || isNoFunction(out[i].Err) {
					cmds[i] = b.fcallPublish(ctx, p, ev.Topic, ev.Payload)
				}
			}
			return nil
		})
		missing := false
		for i, cmd := range cmds {
			if cmd == nil {
				continue
			}
			rc, err := receipt(cmd)
			if cmd.Err() == nil && cmd.Val() == nil && perr != nil {
				err = perr // the pipeline failed before this command had an answer (no connection: not sent)
			}
			out[i] = broker.Result{Receipt: rc, Err: err}
			missing = missing || (err != nil && isNoFunction(err))
		}
		if !missing || b.loadLibrary(ctx) != nil {
			break
		}
	}
	for i := range out[:len(evs)] {
		out[i].Err = publishErr(out[i].Err)
	}
}

var _ broker.Batcher = (*Broker)(nil)

// receipt reads fraised_publish's answer {receivers, offset, epoch}.
func receipt(cmd *goredis.Cmd) (broker.Receipt, error) {
	res, err := cmd.Slice()
	if err != nil {
		return broker.Receipt{}, err
	}
	if len(res) != 3 {
		return broker.Receipt{}, fmt.Errorf("fraised_publish answered %d values, want 3 (an older fraised.lua?)", len(res))
	}
	n, _ := res[0].(int64)
	off, _ := res[1].(int64)
	epoch, _ := res[2].(string)
	return broker.Receipt{Receivers: n, Pos: broker.Position{Offset: uint64(off), Epoch: epoch}}, nil
}

func isNoFunction(err error) bool {
	return strings.Contains(err.Error(), "Function not found")
}
