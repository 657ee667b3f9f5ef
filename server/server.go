// Package server is fraised's network core: one gnet engine serving the
// HTTP/WebSocket listener, the Redis-protocol publish listeners (served
// off gnet, a reader and a writer goroutine per publisher, so that a
// publisher waiting for ring space is not read), the graphql-transport-ws
// state machine, and the dispatcher that fans events out to subscribers.
//
// Data flow: a publisher connection validates a PUBLISH and pushes it
// into the MPMC ring; the dispatcher goroutine pops batches,
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
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/panjf2000/gnet/v2"

	"github.com/fraised/fraised/audit"
	"github.com/fraised/fraised/auth"
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

	guard      *guard
	refusals   *refusalLog
	pubs       *pubListeners // the Redis-protocol publish listeners (off gnet)
	nextConnID atomic.Uint64
	draining   atomic.Bool
	booted     chan struct{}
	done       chan struct{}
	runErr     chan error
	stopOnce   sync.Once
	stats      stats
}

type stats struct {
	slowConsumers atomic.Uint64
	badCommands   atomic.Uint64
	deadPeers     atomic.Uint64
	connections   atomic.Int64
}

// Stats is a snapshot of the server's counters.
type Stats struct {
	Published, Delivered, SlowConsumers, DeadPeers        uint64
	RateLimited, AuthFailures, RefusedConns, AuditDropped uint64
	Connections                                           int64
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
	if err := opts.checkPublish(); err != nil {
		return nil, fmt.Errorf("server: %w", err)
	}
	opts.setDefaults()
	w, err := newWriter(opts.Logger)
	if err != nil {
		return nil, err
	}
	s := &Server{
		opts:   opts,
		log:    opts.Logger,
		w:      w,
		conns:  newConnSet(),
		booted: make(chan struct{}),
		done:   make(chan struct{}),
		runErr: make(chan error, 1),
		guard:  newGuard(opts.Security),
	}
	s.refusals = newRefusalLog(opts.Logger)
	s.d = newDispatcher(opts.RingSize, opts.MaxOutbound, w, opts.Logger)
	s.d.maxBytes = opts.RingBytes
	s.pubs = newPubListeners(s)
	if opts.PublishListen != "-" {
		if _, _, err := net.SplitHostPort(opts.PublishListen); err != nil {
			return nil, fmt.Errorf("invalid publish listen address %q: %w", opts.PublishListen, err)
		}
	}
	return s, nil
}

// addrs returns the gnet listen addresses. The publish listeners are
// served off gnet (see pubListeners).
func (s *Server) addrs() []string {
	return []string{"tcp://" + s.opts.Listen}
}

// Run serves until Shutdown; it returns the engine's error, if any.
func (s *Server) Run() error {
	if err := s.pubs.listen(); err != nil {
		return err
	}
	go s.w.run()
	go s.d.run()
	go s.housekeep(s.done)
	err := gnet.Rotate(s, s.addrs(),
		gnet.WithMulticore(true),
		gnet.WithNumEventLoop(s.opts.EventLoops),
		gnet.WithTCPNoDelay(gnet.TCPNoDelay),
		gnet.WithReuseAddr(true),
		gnet.WithLogger(gnetLogger{s.log}),
	)
	s.stopOnce.Do(func() { close(s.done) })
	s.pubs.closeListeners()
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
func (s *Server) Ready() <-chan struct{} { return s.booted }

// OnBoot records the engine.
func (s *Server) OnBoot(eng gnet.Engine) gnet.Action {
	s.eng = eng
	close(s.booted)
	s.log.Info("fraised listening", "graphql", "ws://"+s.opts.Listen+GraphQLPath,
		"publish", s.opts.PublishListen, "publish_unix", s.opts.PublishUnix)
	return gnet.None
}

// OnOpen sets up a connection according to the listener it arrived on.
func (s *Server) OnOpen(gc gnet.Conn) ([]byte, gnet.Action) {
	if s.draining.Load() {
		return nil, gnet.Close
	}
	s.stats.connections.Add(1)
	c := newWSConn(s, gc)
	gc.SetContext(c)
	if !s.guard.allowConn(gc.RemoteAddr()) {
		s.guard.refusedConns.Add(1)
		s.guard.rateTrips.Add(1)
		s.guard.audit(audit.EventConnRefused, c, audit.Record{Reason: "rate limit: connections per IP"})
		c.respondClose(http.StatusTooManyRequests, "too many connections from this address\n")
	}
	return nil, gnet.None
}

// OnTraffic hands inbound bytes to the connection's handler.
func (s *Server) OnTraffic(gc gnet.Conn) gnet.Action {
	switch c := gc.Context().(type) {
	case *wsConn:
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
	s.pubs.closeListeners()
	s.waitFor(ctx, func() bool { return s.d.ring.Len() == 0 })
	s.pubs.shutdown(ctx)
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
		Published:     s.d.published.Load(),
		Delivered:     s.d.delivered.Load(),
		SlowConsumers: s.stats.slowConsumers.Load(),
		DeadPeers:     s.stats.deadPeers.Load(),
		RateLimited:   s.guard.rateTrips.Load(),
		AuthFailures:  s.guard.authFailures.Load(),
		RefusedConns:  s.guard.refusedConns.Load(),
		AuditDropped:  s.guard.Audit.Dropped(),
		Connections:   s.stats.connections.Load(),
		Subscriptions: s.d.subs.Load(),
		Groups:        s.d.groups.Load(),
		Topics:        s.d.topics.Load(),
	}
}

// gnetLogger routes gnet's logs through slog.
type gnetLogger struct{ l *slog.Logger }

func (g gnetLogger) Debugf(f string, a ...any) { g.l.Debug(fmt.Sprintf(f, a...), "component", "gnet") }
func (g gnetLogger) Infof(f string, a ...any)  { g.l.Debug(fmt.Sprintf(f, a...), "component", "gnet") }
func (g gnetLogger) Warnf(f string, a ...any)  { g.l.Warn(fmt.Sprintf(f, a...), "component", "gnet") }
func (g gnetLogger) Errorf(f string, a ...any) { g.l.Error(fmt.Sprintf(f, a...), "component", "gnet") }
func (g gnetLogger) Fatalf(f string, a ...any) { g.l.Error(fmt.Sprintf(f, a...), "component", "gnet") }
