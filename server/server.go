// Package server is fraised's network core: one gnet engine serving the
// HTTP/WebSocket listener, the Redis-protocol publish listeners (served
// off gnet, a reader and a writer goroutine per publisher, so that a
// publisher waiting for ring space is not read), and the WebSocket
// framing around each connection's graphql-transport-ws session
// (session/). The dispatcher (dispatch/) fans events out; each
// connection's output is an outbox (internal/outbox).
//
// Data flow: a publisher connection validates a PUBLISH and pushes it
// into the MPMC ring; the dispatcher goroutine pops batches,
// looks the topic up in the registry, projects the event once per group,
// appends each subscriber's frame to its connection's outbox and flushes
// every touched connection once per batch. Event loops never block and
// never run resolvers. ARCHITECTURE.md draws it.
package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/panjf2000/gnet/v2"

	"github.com/fraised/fraised/auth"
	"github.com/fraised/fraised/broker"
	"github.com/fraised/fraised/dispatch"
	"github.com/fraised/fraised/edge"
	"github.com/fraised/fraised/internal/outbox"
	"github.com/fraised/fraised/proto"
	"github.com/fraised/fraised/session"
)

// Server is a fraised server. Create it with New, start it with Run, stop
// it with Shutdown.
type Server struct {
	gnet.BuiltinEventEngine

	opts  Options
	log   *slog.Logger
	d     *dispatch.Dispatcher
	w     *outbox.Writer
	conns *connSet
	eng   gnet.Engine

	guard       *guard
	sess        *session.Shared // what every WebSocket session shares
	refusals    *refusalLog
	gate        *edge.Gate    // caps on HTTP/WebSocket connections, total and per address
	httpConns   *httpSet      // connections in the HTTP phase, for their deadlines
	httpLn      net.Listener  // the HTTP/WebSocket listener, served by serveHTTP
	anchor      string        // path of the engine's unreachable listener
	loopsUp     chan struct{} // closed once the event loops exist (first OnTick)
	loopsUpOnce sync.Once
	pubs        *pubListeners // the Redis-protocol publish listeners (off gnet)
	async       *broker.Async // cluster mode: HTTP publishes to the broker, off the event loops
	routes      *httpRoutes   // GraphQL over HTTP and GraphiQL (graphqlhttp.go)
	nextConnID  atomic.Uint64
	draining    atomic.Bool
	stopAsked   atomic.Bool           // Shutdown was called: an engine stop is expected
	failure     atomic.Pointer[error] // why the server stopped by itself (fail)
	budgetMu    sync.Mutex            // serialises enforceBudget (dispatcher and housekeeper)
	budgetBuf   []*outbox.Outbox      // enforceBudget's scratch, under budgetMu
	// budgetRetryAt is when enforceBudget may scan again after a scan
	// that found nothing to cut (unix nanoseconds).
	budgetRetryAt atomic.Int64
	booted        chan struct{}
	done          chan struct{}
	runErr        chan error
	engStopped    chan struct{} // closed when gnet.Rotate returns
	stopOnce      sync.Once
	clusterStop   sync.Once
	live          liveness
	drainOnce     sync.Once
	drainErr      error
	stats         stats
	netConns      ptrSet[netConn] // Handler's WebSockets (handler.go)
	sinkPubs      sinkPool        // Publish's publishers (sink.go)
	ready         readiness       // /readyz checks (ready.go)
	src           sources         // Options.Sources while they run (sources.go)
}

type stats struct {
	slowConsumers atomic.Uint64
	badCommands   atomic.Uint64
	deadPeers     atomic.Uint64
	writeStalls   atomic.Uint64
	httpTimeouts  atomic.Uint64
	connections   atomic.Int64
}

// Stats is a snapshot of the server's counters.
type Stats struct {
	Published, Delivered, SlowConsumers, DeadPeers        uint64
	WriteStalls                                           uint64 // sockets that took no byte for WriteTimeout
	OutboundHeld                                          int64  // bytes held by connections whose output waits (the MaxOutboundTotal budget)
	RateLimited, AuthFailures, RefusedConns, AuditDropped uint64
	HTTPTimeouts                                          uint64 // connections closed by an HTTP deadline
	Connections                                           int64
	HTTPConnections                                       int64 // connections in the HTTP phase (not upgraded)
	Subscriptions, Groups, Topics                         int64
}

// New validates opts and prepares a server.
func New(opts Options) (*Server, error) {
	if opts.Schema == nil {
		return nil, errors.New("server: Options.Schema is required")
	}
	if opts.Security.Auth != auth.ModeOff && opts.Security.Verifier == nil {
		return nil, errors.New("server: authentication is on but no verifier is configured (set a JWT secret, public key or JWKS)")
	}
	if opts.MaxOutboundTotal < 0 || opts.WriteTimeout < 0 {
		return nil, fmt.Errorf("server: --max-outbound-total (%d) and --write-timeout (%v) must not be negative (0 selects the default)", opts.MaxOutboundTotal, opts.WriteTimeout)
	}
	if err := opts.checkPublish(); err != nil {
		return nil, fmt.Errorf("server: %w", err)
	}
	if err := opts.setDefaults(); err != nil {
		return nil, err
	}
	w, err := outbox.NewWriter(opts.Logger)
	if err != nil {
		return nil, err
	}
	s := &Server{
		opts:       opts,
		log:        opts.Logger,
		w:          w,
		conns:      newConnSet(),
		booted:     make(chan struct{}),
		loopsUp:    make(chan struct{}),
		done:       make(chan struct{}),
		runErr:     make(chan error, 1),
		engStopped: make(chan struct{}),
		guard:      newGuard(opts.Security),
		gate:       edge.NewGate(opts.MaxConnections, opts.MaxConnectionsPerAddr),
	}
	s.httpConns = newHTTPSet()
	s.netConns.init()
	s.addOptionChecks()
	if s.routes, err = newHTTPRoutes(s); err != nil {
		return nil, err
	}
	s.refusals = newRefusalLog(opts.Logger)
	s.d = dispatch.New(dispatch.Config{RingSize: opts.RingSize, RingBytes: opts.RingBytes, MaxOutbound: opts.MaxOutbound,
		Writer: w, Log: opts.Logger, MaxOutboundTotal: int64(opts.MaxOutboundTotal), OverBudget: s.enforceBudget,
		Interest: s.clusterInterest(), Filler: s.clusterFiller(), Resolvers: opts.Resolvers, History: historySource(opts.Schema), HistoryMaxBytes: opts.HistoryMaxBytes})
	s.sess = session.NewShared(sessionConfig(opts, s.d, s.refusals, s.routes.queries))
	s.pubs = newPubListeners(s)
	if opts.PublishListen != "-" {
		if _, _, err := net.SplitHostPort(opts.PublishListen); err != nil {
			return nil, fmt.Errorf("invalid publish listen address %q: %w", opts.PublishListen, err)
		}
	}
	return s, nil
}

// addrs returns the gnet listen addresses besides the engine's anchor:
// none, since the HTTP/WebSocket listener is served by serveHTTP (see
// listen.go) and the publish listeners off gnet (see pubListeners).
func (s *Server) addrs() []string { return nil }

// ErrEngineStopped is returned by Run when the network engine stopped
// although Shutdown was not called.
var ErrEngineStopped = errors.New("server: the network engine stopped without Shutdown " +
	"(the cause follows, or is logged above by component=gnet)")

// Run serves until Shutdown. It returns the engine's error, or
// ErrEngineStopped when the engine stopped by itself (gnet stops it on
// an accept failure and reports no error): a supervisor must see that
// exit as a failure.
func (s *Server) Run() error {
	if err := s.pubs.listen(); err != nil {
		return err
	}
	ln, err := s.listenHTTP()
	if err != nil {
		return err
	}
	anchor, cleanup, err := newAnchor()
	if err != nil {
		ln.Close()
		return err
	}
	defer cleanup()
	s.anchor, s.httpLn = anchor, ln
	s.warnIfOverLimit()
	go s.w.Run()
	go s.d.Run()
	if err := s.startCluster(); err != nil {
		ln.Close()
		return err
	}
	go s.housekeep(s.done)
	go s.serveHTTP(ln)
	s.startSources()
	err = gnet.Rotate(s, append(s.addrs(), "unix://"+anchor),
		gnet.WithMulticore(true),
		gnet.WithNumEventLoop(s.opts.EventLoops),
		gnet.WithLoadBalancing(gnet.LeastConnections), // Register is called from our accept goroutine
		gnet.WithTicker(true),                         // the first OnTick says the loops are up
		gnet.WithTCPNoDelay(gnet.TCPNoDelay),
		gnet.WithReuseAddr(true),
		gnet.WithLogger(gnetLogger{s.log}),
	)
	ln.Close()
	close(s.engStopped)
	s.pubs.closeListeners()
	s.src.stop() // a no-op after Shutdown's stopSources
	if err != nil {
		s.stopOnce.Do(func() { close(s.done) })
		return fmt.Errorf("cannot serve on %s: %w", strings.Join(s.addrs(), ", "), err)
	}
	if !s.stopAsked.Load() {
		s.stopCluster()
		s.d.Stop()
		s.w.Stop()
		s.stopOnce.Do(func() { close(s.done) })
		if cause := s.failure.Load(); cause != nil {
			return fmt.Errorf("%w: %w", ErrEngineStopped, *cause)
		}
		return ErrEngineStopped
	}
	s.stopOnce.Do(func() { close(s.done) })
	return nil
}

// fail stops the engine because a part the server cannot run without
// (a listener) broke; Run then returns ErrEngineStopped wrapping err, and
// the process exits non-zero so a supervisor restarts it. Safe for
// concurrent use.
func (s *Server) fail(err error) {
	if !s.failure.CompareAndSwap(nil, &err) {
		return
	}
	s.log.Error("fraised cannot go on serving", "err", err)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), s.opts.DrainTimeout)
		defer cancel()
		_ = s.eng.Stop(ctx)
	}()
}

// removeStaleSocket removes a Unix socket file left by a previous run.
func removeStaleSocket(path string) error {
	fi, err := os.Lstat(path)
	if err != nil {
		return nil
	}
	if fi.Mode()&os.ModeSocket == 0 {
		return fmt.Errorf("publish socket path %q exists and is not a socket; remove it or choose another --publish-unix", path)
	}
	if c, err := net.Dial("unix", path); err == nil {
		c.Close()
		return fmt.Errorf("publish socket %q is in use by another process; stop it or choose another --publish-unix", path)
	}
	return os.Remove(path)
}

// Ready is closed once the listeners accept connections.
func (s *Server) Ready() <-chan struct{} { return s.loopsUp }

// OnBoot records the engine.
func (s *Server) OnBoot(eng gnet.Engine) gnet.Action {
	s.eng = eng
	_ = os.Remove(s.anchor) // nobody may connect to the engine's own listener
	close(s.booted)
	s.log.Info("fraised listening", "graphql", "ws://"+s.httpLn.Addr().String()+GraphQLPath,
		"graphiql", s.routes.pageURL(s.httpLn.Addr().String()), "publish", s.opts.PublishListen, "publish_unix", s.opts.PublishUnix,
		"max_connections", s.gate.Max(), "max_ip_connections", s.gate.MaxPerAddr())
	return gnet.None
}

// OnOpen sets up a connection according to the listener it arrived on.
func (s *Server) OnOpen(gc gnet.Conn) ([]byte, gnet.Action) {
	if t, ok := gc.Context().(*edge.Ticket); ok {
		return nil, s.openHTTP(gc, t)
	}
	// Only the HTTP listener's connections, which carry a ticket, are
	// served: the publish listeners are off gnet, and nobody may use the
	// engine's anchor listener.
	return nil, gnet.Close
}

// OnTraffic hands inbound bytes to the connection's handler.
func (s *Server) OnTraffic(gc gnet.Conn) gnet.Action {
	switch c := gc.Context().(type) {
	case *httpConn:
		return c.onTraffic(gc)
	case *wsConn:
		return c.onTraffic(gc)
	}
	return gnet.Close
}

// OnClose releases the connection's resources.
func (s *Server) OnClose(gc gnet.Conn, _ error) gnet.Action {
	switch c := gc.Context().(type) {
	case *httpConn:
		c.onClose()
	case *wsConn:
		c.onClose()
	case *edge.Ticket: // closed before it was set up (draining)
		c.Release()
	}
	return gnet.None
}

// Drain margins: the part of the drain deadline kept for closing and for
// stopping the engine.
const (
	// drainCloseShare: at most 1/drainCloseShare of the drain timeout is
	// kept for the close handshake (at most lingerTimeout plus a round
	// trip), the rest goes to delivering what was accepted.
	drainCloseShare = 4
	// drainCloseMax is the most kept for the close handshake.
	drainCloseMax = lingerTimeout + 500*time.Millisecond
	// drainStopMargin is kept for stopping the engine after the last close.
	drainStopMargin = 250 * time.Millisecond
)

// Shutdown drains the server, within ctx's deadline (or the configured
// DrainTimeout when ctx has none):
//
//  1. it stops accepting connections, WebSocket upgrades and publishes
//     (draining: /healthz answers 503, on open keep-alive connections too);
//  2. barrier: it waits until every event accepted before (every publish
//     that got its reply) has been dispatched, then until every WebSocket
//     has written its queued frames (a subscriber that keeps reading gets
//     all of them);
//  3. it queues close 1001 behind any frames still queued, lingers until
//     every client answered the close (or the linger deadline), and stops.
//
// Subscribers that could not take their output by the deadline are
// counted and logged. Safe for concurrent use; later calls wait for the
// first and return its result.
func (s *Server) Shutdown(ctx context.Context) error {
	s.drainOnce.Do(func() { s.drainErr = s.drain(ctx) })
	return s.drainErr
}

// drain is Shutdown's body.
func (s *Server) drain(ctx context.Context) error {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, s.opts.DrainTimeout)
		defer cancel()
	}
	s.stopAsked.Store(true)
	<-s.booted
	s.src.stop() // first: no source event may meet the draining refusal
	s.draining.Store(true)
	s.d.EndReplays()     // a replaying client gets its close soon and resumes elsewhere
	_ = s.httpLn.Close() // stop accepting
	s.pubs.closeListeners()
	deadline, _ := ctx.Deadline()
	closeMargin := min(time.Until(deadline)/drainCloseShare, drainCloseMax)
	deliverCtx, cancelDeliver := context.WithDeadline(ctx, deadline.Add(-closeMargin))
	defer cancelDeliver()
	s.stopSources(deliverCtx) // they store their positions; their events are in the ring
	s.waitFor(deliverCtx, s.d.Barrier())
	s.pubs.shutdown(deliverCtx) // their replies are queued: end them after those
	s.stopCluster()             // no more events in: the barrier below covers the last
	s.waitFor(deliverCtx, s.d.Barrier())
	s.waitFor(deliverCtx, s.outboxesFlushed)
	behind := 0
	for _, c := range s.conns.snapshot(nil, false) {
		if c.out.State().Pending > 0 {
			behind++
		}
		c.sendClose(proto.CloseGoingAway, "server shutting down")
	}
	behind += s.closeNetConns()
	lingerCtx, cancelLinger := context.WithDeadline(ctx, deadline.Add(-drainStopMargin))
	defer cancelLinger()
	s.waitFor(lingerCtx, func() bool { return s.conns.len()+s.netConns.len() == 0 })
	if left := s.conns.len() + s.netConns.len(); behind > 0 || left > 0 {
		s.log.Warn("drain deadline: some subscribers did not take all their output",
			"behind_at_close", behind, "still_open", left, "drain_timeout", s.opts.DrainTimeout,
			"fix", "these clients read too slowly; raise --drain-timeout to give them longer")
	}
	err := s.stopEngine(ctx)
	s.d.Stop()
	s.w.Stop()
	s.stopOnce.Do(func() { close(s.done) })
	return err
}

// stopEngine stops gnet and waits until it has, or until ctx ends.
// (Engine.Stop polls every 500 ms; waiting for Run's return instead keeps
// the exit within the drain deadline.)
func (s *Server) stopEngine(ctx context.Context) error {
	stopErr := make(chan error, 1)
	go func() { stopErr <- s.eng.Stop(ctx) }()
	select {
	case <-s.engStopped:
		return nil
	case err := <-stopErr:
		return err
	}
}

// outboxesFlushed reports whether no WebSocket connection has output
// waiting in its outbox.
func (s *Server) outboxesFlushed() bool {
	return !s.conns.any(func(c *wsConn) bool { return c.out.State().Pending > 0 }) &&
		!s.netConns.any(func(c *netConn) bool { return c.out.State().Pending > 0 })
}

// waitFor polls cond until it holds or ctx ends.
func (s *Server) waitFor(ctx context.Context, cond func() bool) {
	t := time.NewTicker(5 * time.Millisecond)
	defer t.Stop()
	for !cond() {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Stats returns a snapshot of the server's counters.
func (s *Server) Stats() Stats {
	ds := s.d.Stats()
	return Stats{
		Published:       ds.Published,
		Delivered:       ds.Delivered,
		SlowConsumers:   s.stats.slowConsumers.Load(),
		DeadPeers:       s.stats.deadPeers.Load(),
		WriteStalls:     s.stats.writeStalls.Load(),
		OutboundHeld:    s.w.Held(),
		RateLimited:     s.guard.rateTrips.Load() + s.sess.RateTrips(),
		AuthFailures:    s.sess.AuthFailures(),
		RefusedConns:    s.guard.refusedConns.Load(),
		AuditDropped:    s.guard.Audit.Dropped(),
		Connections:     s.stats.connections.Load(),
		HTTPTimeouts:    s.stats.httpTimeouts.Load(),
		HTTPConnections: int64(s.httpConns.len()),
		Subscriptions:   ds.Subscriptions,
		Groups:          ds.Groups,
		Topics:          ds.Topics,
	}
}

// gnetLogger routes gnet's logs through slog.
type gnetLogger struct{ l *slog.Logger }

func (g gnetLogger) Debugf(f string, a ...any) { g.l.Debug(fmt.Sprintf(f, a...), "component", "gnet") }
func (g gnetLogger) Infof(f string, a ...any)  { g.l.Debug(fmt.Sprintf(f, a...), "component", "gnet") }
func (g gnetLogger) Warnf(f string, a ...any)  { g.l.Warn(fmt.Sprintf(f, a...), "component", "gnet") }
func (g gnetLogger) Errorf(f string, a ...any) { g.l.Error(fmt.Sprintf(f, a...), "component", "gnet") }
func (g gnetLogger) Fatalf(f string, a ...any) { g.l.Error(fmt.Sprintf(f, a...), "component", "gnet") }
