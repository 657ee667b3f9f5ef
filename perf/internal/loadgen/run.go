package loadgen

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/netip"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/fraised/fraised/perf/internal/hist"
	"github.com/fraised/fraised/perf/internal/pace"
)

// Target is a running server to measure.
type Target struct {
	Name        string
	WS          string // host:port of the WebSocket listener (/graphql)
	PublishTCP  string // RESP publishing over TCP, or
	PublishUnix string // RESP publishing over a Unix socket, or
	PublishHTTP string // base URL for POST /publish/{topic}
	Token       string // bearer token for PublishHTTP
	PublishPG   string // database URL the PG scenarios commit rows to (fraised reads it with --source)
	PID         int    // server process for /proc sampling; 0 = none
	SourceIPs   []netip.Addr
	Receivers   int // epoll goroutines; 0 means 2
	// Profile, if set, is called when the measured phase starts with its
	// expected length and returns a function called when it ends.
	Profile func(d time.Duration) (end func())
}

const (
	// handshakeWindow bounds connections between connect and ready, so the
	// server's accept backlog never overflows.
	handshakeWindow = 512
	warmupTimeout   = 30 * time.Second
	maxBatch        = 4096
	// noisyPct is the CPU share of one core, used outside the server and
	// the harness, past which a phase is flagged as noisy.
	noisyPct = 25
)

// run is the state of one Run call.
type run struct {
	t      Target
	sc     Scenario
	log    *slog.Logger
	sh     *shared
	recv   []*receiver
	sink   sink
	seq    int64
	rng    uint64
	perTop []int64 // normal subscriptions per topic
	sent   int64   // events the last paced call handed to the sink
	res    Result
}

// Run measures sc against t and returns the result; it stops by itself
// within the scenario's bounds (or when ctx ends).
func Run(ctx context.Context, t Target, sc Scenario, log *slog.Logger) (Result, error) {
	if t.Receivers == 0 {
		t.Receivers = 2
	}
	r := &run{t: t, sc: sc, log: log, rng: 0x9E3779B97F4A7C15}
	r.res = Result{Time: time.Now().UTC().Format(time.RFC3339), Target: t.Name, Scenario: sc.Name, Machine: machine(),
		Conns: sc.Conns, Subs: sc.SubsPerConn, Topics: sc.Topics, Rate: sc.Rate, SlowConns: sc.Slow}
	if err := r.setup(); err != nil {
		return r.res, err
	}
	defer r.teardown()
	if err := r.connect(ctx); err != nil {
		return r.res, err
	}
	if err := r.warmup(ctx); err != nil {
		return r.res, err
	}
	if sc.Slow > 0 {
		for _, rc := range r.recv {
			rc.do(rc.pauseSlow)
		}
	}
	r.measure(ctx)
	if sc.Slow > 0 {
		r.slowOutcome(ctx)
	}
	r.finish()
	return r.res, nil
}

func (r *run) setup() error {
	sc := r.sc
	if sc.Conns <= 0 || sc.SubsPerConn <= 0 || sc.Topics <= 0 {
		return errors.New("loadgen: a scenario needs conns, subs per conn and topics")
	}
	total := r.totalEvents()
	if len(sc.Steps) > 0 {
		total *= 2 // each step may be retried once
	}
	r.sh = &shared{base: time.Now(), host: r.t.WS, sendNs: make([]int64, total),
		subGot:  make([]uint32, sc.allSubs()),
		subWarm: make([]uint32, sc.allSubs())}
	for i := range sc.Topics {
		r.sh.topics = append(r.sh.topics, []byte("bench."+strconv.Itoa(i)))
	}
	r.perTop = make([]int64, sc.Topics)
	for k := range sc.totalSubs() {
		r.perTop[sc.topicOf(k)]++
	}
	for range r.t.Receivers {
		rc, err := newReceiver(r.sh)
		if err != nil {
			return fmt.Errorf("cannot start an epoll receiver: %w", err)
		}
		r.recv = append(r.recv, rc)
		go rc.run()
	}
	var err error
	switch {
	case r.sc.Source != "":
		if r.t.PublishPG == "" {
			return fmt.Errorf("loadgen: scenario %s publishes through PostgreSQL: give the database URL (--publish-pg)", r.sc.Name)
		}
		r.sink, err = dialPG(r.sh, r.t.PublishPG, r.sc.Source)
	case r.t.PublishHTTP != "":
		r.sink = newHTTPSink(r.sh, r.t.PublishHTTP, r.t.Token)
	case r.t.PublishUnix != "":
		r.sink, err = dialRESP(r.sh, "unix", r.t.PublishUnix)
	case r.t.PublishTCP != "":
		r.sink, err = dialRESP(r.sh, "tcp", r.t.PublishTCP)
	default:
		err = errors.New("loadgen: no publish address: set a TCP, Unix or HTTP publish target")
	}
	return err
}

// totalEvents is the number of measured events over every step.
func (r *run) totalEvents() int64 {
	var n int64
	for _, rate := range r.rates() {
		n += r.eventsAt(rate)
	}
	return n
}

func (r *run) rates() []float64 {
	if len(r.sc.Steps) > 0 {
		return r.sc.Steps
	}
	return []float64{r.sc.Rate}
}

func (r *run) eventsAt(rate float64) int64 {
	if r.sc.Events > 0 {
		return r.sc.Events
	}
	return int64(math.Round(rate * r.sc.Duration.Seconds()))
}

func (r *run) teardown() {
	if r.sink != nil {
		_ = r.sink.close()
	}
	for _, rc := range r.recv {
		rc.shutdown()
	}
}

func (r *run) sample() procSample {
	if r.t.PID == 0 {
		return procSample{}
	}
	s, err := readProc(r.t.PID)
	if err != nil {
		r.note(err.Error())
	}
	return s
}

func (r *run) note(s string) {
	r.res.Notes = append(r.res.Notes, s)
	r.log.Warn(s, "target", r.t.Name, "scenario", r.sc.Name)
}

// connect opens every connection and waits until each has acked, sent its
// subscriptions and received the pong that follows them.
func (r *run) connect(ctx context.Context) error {
	ap, err := netip.ParseAddrPort(r.t.WS)
	if err != nil {
		return fmt.Errorf("cannot parse the WebSocket address %q (want 127.0.0.1:PORT): %w", r.t.WS, err)
	}
	d, err := newDialer(ap, r.t.SourceIPs)
	if err != nil {
		return err
	}
	r.res.RSSBeforeKB = r.sample().rssKB
	n := r.sc.Conns + r.sc.Slow
	start := time.Now()
	deadline := start.Add(30*time.Second + time.Duration(n)*2*time.Millisecond)
	for i := 0; i < n; i++ {
		for int64(i)-r.sh.ready.Load()-r.sh.failed.Load() >= handshakeWindow {
			if time.Now().After(deadline) || ctx.Err() != nil {
				return fmt.Errorf("connecting timed out with %d of %d ready (%s)", r.sh.ready.Load(), n, r.sh.firstErr)
			}
			time.Sleep(time.Millisecond)
		}
		rcvbuf := 0
		if i >= r.sc.Conns {
			rcvbuf = 4096
		}
		fd, err := d.dial(rcvbuf)
		if err != nil {
			return err
		}
		c := &conn{fd: fd, firstSub: int32(i * r.sc.SubsPerConn), nsubs: int32(r.sc.SubsPerConn), mask: uint32(i)}
		if i >= r.sc.Conns {
			c.slow, c.nsubs = true, int32(r.sc.slowSubs())
			c.firstSub = int32(r.sc.totalSubs() + (i-r.sc.Conns)*r.sc.slowSubs())
		}
		r.recv[i%len(r.recv)].add(c)
	}
	for r.sh.ready.Load()+r.sh.failed.Load() < int64(n) {
		if time.Now().After(deadline) || ctx.Err() != nil {
			r.note(fmt.Sprintf("connect+subscribe timed out: %d of %d ready", r.sh.ready.Load(), n))
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	r.res.ConnectS = time.Since(start).Seconds()
	r.res.ConnFailed = r.sh.failed.Load()
	if r.res.ConnFailed > 0 {
		r.note(fmt.Sprintf("LOSS: %d connections failed: %s", r.res.ConnFailed, r.sh.firstErr))
	}
	if r.sh.ready.Load() == 0 {
		return fmt.Errorf("no connection got ready: %s", r.sh.firstErr)
	}
	r.log.Info("connected", "scenario", r.sc.Name, "ready", r.sh.ready.Load(), "seconds", r.res.ConnectS)
	return nil
}

// warmup publishes seq -1 events to every topic that still has a
// subscription without one, until all have one: only then is every
// subscription known to be registered.
func (r *run) warmup(ctx context.Context) error {
	want := int64(r.sc.allSubs())
	if r.sh.ready.Load() < int64(r.sc.Conns+r.sc.Slow) {
		want = r.sh.ready.Load() * int64(r.sc.SubsPerConn) // some failed: best effort
	}
	// Slow servers need time per delivery: allow 0.2 ms per subscription.
	deadline := time.Now().Add(warmupTimeout + time.Duration(want)*200*time.Microsecond)
	var seqs []int64
	var topics []int32
	for r.sh.warmed.Load() < want {
		if time.Now().After(deadline) || ctx.Err() != nil {
			r.note(fmt.Sprintf("warm-up timed out: %d of %d subscriptions got an event", r.sh.warmed.Load(), want))
			break
		}
		seqs, topics = seqs[:0], topics[:0]
		seen := make(map[int32]bool)
		for k := range r.sh.subWarm {
			if atomic.LoadUint32(&r.sh.subWarm[k]) == 0 {
				t := int32(r.sc.topicOf(k))
				if !seen[t] {
					seen[t] = true
					seqs, topics = append(seqs, -1), append(topics, t)
				}
			}
		}
		for i := 0; i < len(seqs); i += maxBatch {
			j := min(i+maxBatch, len(seqs))
			if err := r.sink.send(seqs[i:j], topics[i:j]); err != nil {
				return err
			}
		}
		r.waitQuiet(&r.sh.warmDelivered, 300*time.Millisecond, 15*time.Second)
	}
	r.waitQuiet(&r.sh.warmDelivered, 300*time.Millisecond, 10*time.Second)
	return nil
}

// waitQuiet waits until counter stops moving for quiet, at most limit.
func (r *run) waitQuiet(counter *atomic.Int64, quiet, limit time.Duration) {
	end := time.Now().Add(limit)
	last, since := counter.Load(), time.Now()
	for time.Now().Before(end) {
		time.Sleep(20 * time.Millisecond)
		if v := counter.Load(); v != last {
			last, since = v, time.Now()
		} else if time.Since(since) >= quiet {
			return
		}
	}
}

// pick returns the topic of the next event.
func (r *run) pick(i int64) int32 {
	if r.sc.Topics == 1 {
		return 0
	}
	if !r.sc.Random {
		return int32(i % int64(r.sc.Topics))
	}
	r.rng ^= r.rng << 13
	r.rng ^= r.rng >> 7
	r.rng ^= r.rng << 17
	return int32(r.rng % uint64(r.sc.Topics))
}

// paced publishes n events at rate and returns the expected deliveries and
// the largest lag behind schedule. Publishing may overrun its schedule by
// half plus 5 s, then it stops with errPublishDeadline: a server that cannot
// absorb the events must not stretch the run. r.sent says how many went.
func (r *run) paced(ctx context.Context, rate float64, n int64) (expected int64, lag time.Duration, err error) {
	if r.seq+n > int64(len(r.sh.sendNs)) {
		panic("BUG: the send-time table is smaller than the events to publish")
	}
	seqs := make([]int64, 0, maxBatch)
	topics := make([]int32, 0, maxBatch)
	p := pace.New(rate, n, time.Now())
	deadline := p.At(n).Add(p.At(n).Sub(p.At(0))/2 + 5*time.Second)
	batch := int64(maxBatch)
	if qs, ok := r.sink.(queuedSink); ok {
		batch = 1 // so a send cut short by the deadline loses no accounting
		qs.setDeadline(&deadline)
		defer qs.setDeadline(nil)
	}
	if rs, ok := r.sink.(*respSink); ok {
		_ = rs.nc.SetWriteDeadline(deadline)
		defer func() { _ = rs.nc.SetWriteDeadline(time.Time{}) }()
	}
	var sent int64
	defer func() { r.sent = sent }()
	for sent < n && ctx.Err() == nil {
		if time.Now().After(deadline) {
			return expected, lag, errPublishDeadline
		}
		due := min(p.Due(time.Now()), sent+batch)
		if due > sent {
			lag = max(lag, p.Lag(sent, time.Now()))
			seqs, topics = seqs[:0], topics[:0]
			for i := sent; i < due; i++ {
				t := r.pick(i)
				seqs, topics = append(seqs, r.seq), append(topics, t)
				expected += r.perTop[t]
				r.seq++
			}
			if err := r.sink.send(seqs, topics); err != nil {
				if batch == 1 {
					expected -= r.perTop[topics[0]]
				}
				return expected, lag, err
			}
			sent = due
			continue
		}
		if wait := time.Until(p.At(sent)); wait > 0 {
			time.Sleep(wait)
		}
	}
	return expected, lag, ctx.Err()
}

// phase is one measured publishing run at one rate.
type phase struct {
	rate                float64
	published, expected int64
	delivered, acked    int64
	scheduled           int64
	wall                time.Duration
	serverCPU, selfCPU  time.Duration
	otherCPU            time.Duration // the machine's busy time outside both processes
	lag                 time.Duration
	h                   hist.Histogram
	hk                  hist.Histogram // to the kernel's receive timestamps
}

func (r *run) runPhase(ctx context.Context, rate float64) (*phase, error) {
	ph := &phase{rate: rate}
	for _, rc := range r.recv {
		rc.snapshot(&ph.h, &ph.hk, true) // drop anything before the phase
	}
	ph.h.Reset()
	ph.hk.Reset()
	d0 := r.sh.delivered.Load()
	s0, c0, m0, t0 := r.sample(), selfCPU(), machineBusy(), time.Now()
	n := r.eventsAt(rate)
	ph.scheduled = n
	a0, _, _ := r.sink.acked()
	if qs, ok := r.sink.(queuedSink); ok {
		qs.queueLag()
	}
	expected, lag, err := r.paced(ctx, rate, n)
	if err != nil {
		r.note(fmt.Sprintf("PUBLISHER STOPPED at %d of %d events at %.0f/s: %v", r.sent, n, rate, err))
		n = r.sent
	}
	if qs, ok := r.sink.(queuedSink); ok {
		lag = max(lag, qs.queueLag())
	}
	ph.published, ph.expected, ph.lag = n, expected, lag
	// Wait for every delivery, or until the drain limit.
	end := time.Now().Add(r.sc.Drain)
	for r.sh.delivered.Load()-d0 < expected && time.Now().Before(end) && ctx.Err() == nil {
		time.Sleep(2 * time.Millisecond)
	}
	ph.wall = time.Since(t0)
	ph.selfCPU = selfCPU() - c0
	ph.serverCPU = r.sample().cpu - s0.cpu
	ph.otherCPU = machineBusy() - m0 - ph.selfCPU - ph.serverCPU
	ph.delivered = r.sh.delivered.Load() - d0
	a1, _, _ := r.sink.acked()
	ph.acked = a1 - a0
	for _, rc := range r.recv {
		rc.snapshot(&ph.h, &ph.hk, true)
	}
	return ph, err
}

// measure runs the phase (or S2's steps) and fills the result.
func (r *run) measure(ctx context.Context) {
	if r.sc.Settle > 0 {
		time.Sleep(r.sc.Settle)
	}
	after := r.sample()
	r.res.RSSAfterKB = after.rssKB
	if r.sc.Capacity && r.t.PID != 0 {
		r.res.RSSPerConnB = float64(after.rssKB-r.res.RSSBeforeKB) * 1024 / float64(r.sh.ready.Load())
	}
	var watch *rssWatch
	if r.t.PID != 0 {
		watch = watchRSS(r.t.PID)
	}
	if r.t.Profile != nil {
		var d time.Duration
		for _, rate := range r.rates() {
			d += time.Duration(float64(r.eventsAt(rate)) / rate * float64(time.Second))
		}
		defer r.t.Profile(d)()
	}
	if len(r.sc.Steps) > 0 {
		r.steps(ctx)
	} else {
		ph, _ := r.runPhase(ctx, r.sc.Rate)
		r.fill(ph)
	}
	if watch != nil {
		r.res.RSSMaxKB = watch.end()
	}
}

// steps raises the rate until a step fails twice in a row: a miss of any
// delivery, a p99 over MaxP99 or the publisher more than MaxP99 behind.
// A failing step is retried once, so one noisy moment on a shared machine
// does not end the search; the ceiling is the best passing step.
func (r *run) steps(ctx context.Context) {
	var best *phase
	bestDPS := 0.0
	var last *phase
	for _, rate := range r.sc.Steps {
		pass := false
		for try := 0; try < 2 && !pass && ctx.Err() == nil; try++ {
			ph, err := r.runPhase(ctx, rate)
			last = ph
			st := Step{Rate: rate, Expected: ph.expected, Delivered: ph.delivered,
				DeliveriesS: float64(ph.delivered) / (float64(ph.published) / rate),
				P99Us:       us(ph.h.Quantile(0.99)), LagMaxMs: ph.lag.Seconds() * 1000, HarnessSat: r.saturated(ph)}
			maxLag := r.sc.MaxLag
			if maxLag == 0 {
				maxLag = r.sc.MaxP99
			}
			st.Pass = err == nil && ph.delivered >= ph.expected && ph.h.Quantile(0.99) <= int64(r.sc.MaxP99) && ph.lag <= maxLag
			r.res.Steps = append(r.res.Steps, st)
			r.log.Info("S2 step", "target", r.t.Name, "rate", rate, "deliveries_per_s", st.DeliveriesS, "p99_us", st.P99Us, "pass", st.Pass)
			pass = st.Pass
			if pass && st.DeliveriesS > bestDPS {
				best, bestDPS = ph, st.DeliveriesS
			}
			r.waitQuiet(&r.sh.delivered, 200*time.Millisecond, time.Second)
		}
		if !pass {
			r.res.CeilingBy = "server"
			if last != nil && r.saturated(last) {
				r.res.CeilingBy = "harness (saturated)"
			}
			break
		}
	}
	if r.res.CeilingBy == "" {
		r.res.CeilingBy = "last step passed (raise the steps)"
	}
	r.res.CeilingDPS = bestDPS
	if best == nil {
		best = last
	}
	if best != nil {
		r.fill(best) // report the best passing step's numbers
	}
}

func (r *run) saturated(ph *phase) bool {
	return ph.selfCPU.Seconds() > 0.9*ph.wall.Seconds()*float64(allowedCPUs())
}

func us(ns int64) float64 { return float64(ns) / 1000 }

func (r *run) fill(ph *phase) {
	res := &r.res
	res.Rate = ph.rate
	res.DurationS = ph.wall.Seconds()
	res.Published, res.Expected, res.Delivered = ph.published, ph.expected, ph.delivered
	res.PublishAcked, res.Scheduled = ph.acked, ph.scheduled
	if ph.acked < ph.published {
		r.note(fmt.Sprintf("the server acknowledged %d of %d publishes by the end of the drain", ph.acked, ph.published))
	}
	if ph.expected > 0 {
		res.LossPct = 100 * float64(ph.expected-min(ph.delivered, ph.expected)) / float64(ph.expected)
	}
	res.P50Us, res.P90Us = us(ph.h.Quantile(0.5)), us(ph.h.Quantile(0.9))
	res.P99Us, res.P999Us = us(ph.h.Quantile(0.99)), us(ph.h.Quantile(0.999))
	res.MaxUs, res.MeanUs = us(ph.h.Max()), ph.h.Mean()/1000
	res.KernelP50Us, res.KernelP99Us = us(ph.hk.Quantile(0.5)), us(ph.hk.Quantile(0.99))
	res.KernelP999Us = us(ph.hk.Quantile(0.999))
	if ph.delivered > 0 {
		res.ServerCPUUs = float64(ph.serverCPU.Microseconds()) / float64(ph.delivered)
		res.HarnessCPUUs = float64(ph.selfCPU.Microseconds()) / float64(ph.delivered)
	}
	res.ServerCPUPct = 100 * ph.serverCPU.Seconds() / ph.wall.Seconds()
	res.HarnessPct = 100 * ph.selfCPU.Seconds() / ph.wall.Seconds()
	res.HarnessSat = r.saturated(ph)
	res.OtherCPUPct = 100 * ph.otherCPU.Seconds() / ph.wall.Seconds()
	if res.OtherCPUPct > noisyPct {
		r.note(fmt.Sprintf("NOISY: the machine spent %.0f%% of a core outside the server and the harness (other processes, or kernel softirq not charged to them); timings are suspect", res.OtherCPUPct))
	}
	res.LagMaxMs = ph.lag.Seconds() * 1000
	if res.HarnessSat {
		r.note("HARNESS SATURATED: its CPU was the bottleneck; the numbers bound the server from below")
	}
}

// slowOutcome reads the slow connections again and counts which the
// server cut off.
func (r *run) slowOutcome(ctx context.Context) {
	for _, rc := range r.recv {
		rc.do(rc.resumeSlow)
	}
	r.waitQuiet(&r.sh.slowDelivered, 500*time.Millisecond, 10*time.Second)
	for _, rc := range r.recv {
		rc.do(func() {
			cut, open := rc.slowStats()
			r.res.SlowCut += cut
			r.res.SlowOpen += open
		})
	}
	r.res.SlowDelivered = r.sh.slowDelivered.Load()
}

// finish records the loss accounting.
func (r *run) finish() {
	res := &r.res
	res.ConnCut = r.sh.dropped.Load()
	res.Unknown = r.sh.unknown.Load() + r.sh.protoErrors.Load()
	res.ServerErrors = r.sh.serverErrors.Load()
	_, _, res.PublishErrors = r.sink.acked()
	if len(r.sc.Steps) == 0 {
		per := r.eventsAt(r.sc.Rate)
		for k := range r.sc.totalSubs() {
			if r.sc.Topics == 1 && int64(atomic.LoadUint32(&r.sh.subGot[k])) < per {
				res.SubsShort++
			}
		}
	}
	if res.Delivered < res.Expected {
		r.note(fmt.Sprintf("LOSS: %d of %d deliveries missing (%.3f%%)", res.Expected-res.Delivered, res.Expected, res.LossPct))
	}
	if res.Delivered > res.Expected {
		r.note(fmt.Sprintf("DUPLICATES: %d more deliveries than expected", res.Delivered-res.Expected))
	}
	for _, c := range []struct {
		n    int64
		what string
	}{{res.ConnCut, "connections closed by the server"}, {res.Unknown, "unparsable frames"},
		{res.ServerErrors, "server error/complete messages"}, {res.PublishErrors, "publish errors"}} {
		if c.n > 0 {
			r.note(fmt.Sprintf("%d %s (first error: %s)", c.n, c.what, r.sh.firstErr))
		}
	}
}
