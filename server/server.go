// Package server is fraised's network core: one gnet engine serving the
// HTTP/WebSocket listener and the Redis-protocol publish listeners, the
// graphql-transport-ws state machine, and the dispatcher that fans events
// out to subscribers.
//
// Data flow: a publisher connection (event loop) validates a PUBLISH and
// pushes it into the MPMC ring; the dispatcher goroutine pops batches,
// looks the topic up in the registry, projects the event once per group,
// appends each subscriber's frame to its connection's outbox and flushes
// every touched connection once per batch. Event loops never block and
// never run resolvers.
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
	"github.com/fraised/fraised/edge"
	"github.com/fraised/fraised/proto"
)

// Server is a fraised server. Create it with New, start it with Run, stop
// it with Shutdown.
type Server struct {
	gnet.BuiltinEventEngine

	opts  Options
	log   *slog.Logger
	d     *dispatcher
	w     *writer
	conns *connSet
	eng   gnet.Engine

	guard       *guard
	refusals    *refusalLog
	gate        *edge.Gate    // caps on HTTP/WebSocket connections, total and per address
	httpConns   *httpSet      // connections in the HTTP phase, for their deadlines
	httpLn      net.Listener  // the HTTP/WebSocket listener, served by serveHTTP
	anchor      string        // path of the engine's unreachable listener
	loopsUp     chan struct{} // closed once the event loops exist (first OnTick)
	loopsUpOnce sync.Once
	publishPort int // port of the TCP publish listener; 0 when disabled
	nextConnID  atomic.Uint64
	draining    atomic.Bool
	booted      chan struct{}
	done        chan struct{}
	runErr      chan error
	stopOnce    sync.Once
	stats       stats
}

type stats struct {
	slowConsumers atomic.Uint64
	badCommands   atomic.Uint64
	deadPeers     atomic.Uint64
	httpTimeouts  atomic.Uint64
	connections   atomic.Int64
}

// Stats is a snapshot of the server's counters.
type Stats struct {
	Published, Delivered, SlowConsumers, DeadPeers        uint64
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
	if err := opts.setDefaults(); err != nil {
		return nil, err
	}
	w, err := newWriter(opts.Logger)
	if err != nil {
		return nil, err
	}
	s := &Server{
		opts:    opts,
		log:     opts.Logger,
		w:       w,
		conns:   newConnSet(),
		booted:  make(chan struct{}),
		loopsUp: make(chan struct{}),
		done:    make(chan struct{}),
		runErr:  make(chan error, 1),
		guard:   newGuard(opts.Security),
		gate:    edge.NewGate(opts.MaxConnections, opts.MaxConnectionsPerAddr),
	}
	s.httpConns = newHTTPSet()
	s.refusals = newRefusalLog(opts.Logger)
	s.d = newDispatcher(opts.RingSize, opts.MaxOutbound, w, opts.Logger)
	if opts.PublishListen != "-" {
		_, port, err := net.SplitHostPort(opts.PublishListen)
		if err != nil {
			return nil, fmt.Errorf("invalid publish listen address %q: %w", opts.PublishListen, err)
		}
		if s.publishPort, err = net.LookupPort("tcp", port); err != nil {
			return nil, fmt.Errorf("invalid publish listen address %q: %w", opts.PublishListen, err)
		}
	}
	return s, nil
}

// addrs returns the gnet listen addresses (the HTTP/WebSocket listener
// is served by serveHTTP, see listen.go).
func (s *Server) addrs() []string {
	var addrs []string
	if s.opts.PublishListen != "-" {
		addrs = append(addrs, "tcp://"+s.opts.PublishListen)
	}
	if s.opts.PublishUnix != "" {
		addrs = append(addrs, "unix://"+s.opts.PublishUnix)
	}
	return addrs
}

// Run serves until Shutdown; it returns the engine's error, if any.
func (s *Server) Run() error {
	if s.opts.PublishUnix != "" {
		if err := removeStaleSocket(s.opts.PublishUnix); err != nil {
			return err
		}
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
	go s.w.run()
	go s.d.run()
	go s.housekeep(s.done)
	go s.serveHTTP(ln)
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
	s.stopOnce.Do(func() { close(s.done) })
	if err != nil {
		err = fmt.Errorf("cannot serve on %s: %w", strings.Join(s.addrs(), ", "), err)
	}
	return err
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
		"publish", s.opts.PublishListen, "publish_unix", s.opts.PublishUnix,
		"max_connections", s.gate.Max(), "max_ip_connections", s.gate.MaxPerAddr())
	return gnet.None
}

// OnOpen sets up a connection according to the listener it arrived on.
func (s *Server) OnOpen(gc gnet.Conn) ([]byte, gnet.Action) {
	if t, ok := gc.Context().(*edge.Ticket); ok {
		return nil, s.openHTTP(gc, t)
	}
	if s.draining.Load() || s.isAnchor(gc) || !s.isPublishConn(gc) {
		return nil, gnet.Close // the HTTP listener's connections carry a ticket
	}
	s.stats.connections.Add(1)
	gc.SetContext(newPubConn(s, gc))
	return nil, gnet.None
}

func (s *Server) isPublishConn(gc gnet.Conn) bool {
	switch a := gc.LocalAddr().(type) {
	case *net.UnixAddr:
		return true
	case *net.TCPAddr:
		return s.publishPort != 0 && a.Port == s.publishPort
	}
	return false
}

// OnTraffic hands inbound bytes to the connection's handler.
func (s *Server) OnTraffic(gc gnet.Conn) gnet.Action {
	switch c := gc.Context().(type) {
	case *wsConn:
		return c.onTraffic(gc)
	case *pubConn:
		return c.onTraffic(gc)
	}
	return gnet.Close
}

// OnClose releases the connection's resources.
func (s *Server) OnClose(gc gnet.Conn, _ error) gnet.Action {
	switch c := gc.Context().(type) {
	case *wsConn:
		s.stats.connections.Add(-1)
		c.onClose()
		s.closeHTTP(c)
	case *edge.Ticket: // closed before it was set up (draining)
		c.Release()
	case *pubConn:
		s.stats.connections.Add(-1)
		c.onClose()
	}
	return gnet.None
}

// Shutdown drains the server: it stops accepting connections, delivers
// events already accepted, sends close 1001 to every WebSocket client,
// flushes their output and stops, within ctx's deadline (or the
// configured DrainTimeout).
func (s *Server) Shutdown(ctx context.Context) error {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, s.opts.DrainTimeout)
		defer cancel()
	}
	<-s.booted
	s.draining.Store(true)
	_ = s.httpLn.Close() // stop accepting
	s.waitFor(ctx, func() bool { return s.d.ring.Len() == 0 })
	for _, c := range s.conns.snapshot(nil, false) {
		c.sendClose(proto.CloseGoingAway, "server shutting down")
	}
	s.waitFor(ctx, func() bool { return s.conns.len() == 0 })
	err := s.eng.Stop(ctx)
	s.d.stop()
	s.w.stop()
	s.stopOnce.Do(func() { close(s.done) })
	return err
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
	return Stats{
		Published:       s.d.published.Load(),
		Delivered:       s.d.delivered.Load(),
		SlowConsumers:   s.stats.slowConsumers.Load(),
		DeadPeers:       s.stats.deadPeers.Load(),
		RateLimited:     s.guard.rateTrips.Load(),
		AuthFailures:    s.guard.authFailures.Load(),
		RefusedConns:    s.guard.refusedConns.Load(),
		AuditDropped:    s.guard.Audit.Dropped(),
		Connections:     s.stats.connections.Load(),
		HTTPTimeouts:    s.stats.httpTimeouts.Load(),
		HTTPConnections: int64(s.httpConns.len()),
		Subscriptions:   s.d.subs.Load(),
		Groups:          s.d.groups.Load(),
		Topics:          s.d.topics.Load(),
	}
}

// gnetLogger routes gnet's logs through slog.
type gnetLogger struct{ l *slog.Logger }

func (g gnetLogger) Debugf(f string, a ...any) { g.l.Debug(fmt.Sprintf(f, a...), "component", "gnet") }
func (g gnetLogger) Infof(f string, a ...any)  { g.l.Debug(fmt.Sprintf(f, a...), "component", "gnet") }
func (g gnetLogger) Warnf(f string, a ...any)  { g.l.Warn(fmt.Sprintf(f, a...), "component", "gnet") }
func (g gnetLogger) Errorf(f string, a ...any) { g.l.Error(fmt.Sprintf(f, a...), "component", "gnet") }
func (g gnetLogger) Fatalf(f string, a ...any) { g.l.Error(fmt.Sprintf(f, a...), "component", "gnet") }
