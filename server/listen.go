package server

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/panjf2000/gnet/v2"

	"github.com/fraised/fraised/audit"
	"github.com/fraised/fraised/edge"
	"github.com/fraised/fraised/session"
)

// The HTTP/WebSocket listener is served by an accept goroutine of ours,
// not by gnet's acceptor: gnet stops the whole engine when accept fails
// (EMFILE), while edge.Acceptor backs off and keeps serving, and refuses
// connections over the caps before they reach an event loop. Admitted
// connections are handed to gnet with Engine.Register, which dups the
// descriptor onto a loop.

// maxEnrolling bounds connections handed to gnet whose registration has
// not completed. Each holds two descriptors for a moment (gnet dups the
// accepted one) and one of gnet's pool goroutines (an 8 KiB stack), so
// the bound is part of the descriptor headroom and of the memory a
// connect flood costs; 64 keeps the accept loop ahead of the event loops
// (a registration is one loop round trip; 16 measured 20 % slower
// connects in S1-1k) without queueing a flood.
const maxEnrolling = 64

// fdReserveFixed is the descriptors reserved for everything that is not a
// client or publisher connection: stdio, listeners, the epoll and eventfd
// of every event loop and of the writer, the audit file, pprof and
// resolver sockets, with margin.
const fdReserveFixed = 128

// MaxConnectionsFor returns the default connection cap for an open-files
// limit: the limit minus the descriptors other uses need (publishers, at
// most Options.MaxPublishers of them; hand-offs in flight; fdReserveFixed).
// At least 1.
func MaxConnectionsFor(nofile uint64, publishers int) int {
	reserve := uint64(fdReserveFixed + maxEnrolling + max(publishers, 0))
	const ceiling = 1 << 30
	if nofile <= reserve {
		return 1
	}
	return int(min(nofile-reserve, ceiling))
}

// openFilesLimit returns the process's RLIMIT_NOFILE soft limit (Go
// raises it to the hard limit at start).
func openFilesLimit() (uint64, error) {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		return 0, fmt.Errorf("cannot read the open-files limit: %w", err)
	}
	return rl.Cur, nil
}

// enrolling is a connection handed to gnet, awaiting its registration.
type enrolling struct {
	res    <-chan gnet.RegisteredResult
	ticket *edge.Ticket
}

// listenHTTP binds the HTTP/WebSocket listener.
func (s *Server) listenHTTP() (net.Listener, error) {
	ln, err := net.Listen("tcp", s.opts.Listen)
	if err != nil {
		return nil, fmt.Errorf("cannot listen on %s (--listen): %w", s.opts.Listen, err)
	}
	return ln, nil
}

// serveHTTP accepts on ln once the engine is up, until ln is closed.
func (s *Server) serveHTTP(ln net.Listener) {
	select {
	case <-s.loopsUp:
	case <-s.done:
		return
	}
	queue := make(chan enrolling, maxEnrolling)
	go s.reapEnrolls(queue)
	a := &edge.Acceptor{
		Gate:    s.gate,
		Trusted: s.opts.TrustedProxies,
		Admit: func(conn net.Conn, t *edge.Ticket) error {
			res, err := s.register(conn, t)
			if err != nil {
				return err
			}
			select {
			case queue <- enrolling{res: res, ticket: t}:
				return nil
			case <-s.done: // shutting down: the reaper is gone
				return net.ErrClosed
			}
		},
		Refused: func(peer netip.AddrPort, r edge.Reason) {
			s.refuseAtAccept(peer.String(), r.String())
		},
		AcceptFailed: func(err error, pause time.Duration) {
			s.refusals.note("accept", "", fmt.Sprintf("accept failed: %v; retrying in %v", err, pause),
				acceptFix(err))
		},
	}
	if err := a.Serve(ln, s.done); err != nil && !s.stopAsked.Load() {
		s.fail(fmt.Errorf("the HTTP listener %s failed: %w", s.opts.Listen, err))
	}
	close(queue)
}

// register hands conn to gnet.
func (s *Server) register(conn net.Conn, t *edge.Ticket) (<-chan gnet.RegisteredResult, error) {
	return s.eng.Register(gnet.NewNetConnContext(gnet.NewContext(context.Background(), t), conn))
}

// OnTick runs once, on the engine's ticker goroutine, which gnet starts
// after its event loops exist (OnBoot runs before they do, and Register
// fails until then): it opens the HTTP listener's hand-off.
func (s *Server) OnTick() (time.Duration, gnet.Action) {
	s.loopsUpOnce.Do(func() { close(s.loopsUp) })
	return tickIdle, gnet.None
}

// tickIdle is the ticker's period after its first tick; nothing else
// uses it.
const tickIdle = time.Hour

// acceptFix tells the operator what to change after an accept error.
func acceptFix(err error) string {
	if errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE) {
		return "the process is out of file descriptors: raise the open-files limit (ulimit -n, LimitNOFILE) or lower --max-connections below it"
	}
	return "check the host's network resources"
}

// refuseAtAccept logs and audits a connection refused at a cap.
func (s *Server) refuseAtAccept(remote, reason string) {
	s.guard.refusedConns.Add(1)
	s.refusals.note("connection_cap", remote, reason,
		"raise --max-connections (and the open-files limit) or --max-ip-connections; behind a proxy set --trusted-proxies")
	if s.guard.Audit != nil {
		s.guard.Audit.Write(audit.Record{Event: audit.EventConnRefused, Remote: remote, Reason: reason})
	}
}

// reapEnrolls waits for each registration and releases the ticket of a
// connection that never opened (gnet failed to register it).
func (s *Server) reapEnrolls(queue <-chan enrolling) {
	for e := range queue {
		select {
		case r := <-e.res:
			if r.Err != nil || !e.ticket.Opened() {
				e.ticket.Release()
			}
		case <-s.done:
			return
		}
	}
}

// newAnchor returns a gnet address the engine can hold as its listener
// without anyone reaching it: gnet's Register needs an engine with a
// listener, so it gets a Unix socket in a private directory, which OnBoot
// unlinks. The returned function removes what is left.
func newAnchor() (string, func(), error) {
	dir, err := os.MkdirTemp("", "fraised-")
	if err != nil {
		return "", nil, fmt.Errorf("cannot create a private directory for the engine's socket (check TMPDIR): %w", err)
	}
	path := filepath.Join(dir, "engine.sock")
	if len(path) >= maxUnixPath {
		_ = os.RemoveAll(dir)
		return "", nil, fmt.Errorf("temporary directory %q is too long for a Unix socket path; set TMPDIR to a shorter directory such as /tmp", dir)
	}
	return path, func() { _ = os.RemoveAll(dir) }, nil
}

// maxUnixPath is the size of sockaddr_un.sun_path on Linux, NUL included.
const maxUnixPath = 108

// openHTTP sets up a connection admitted by the HTTP listener. Called by
// OnOpen on the connection's event loop.
func (s *Server) openHTTP(gc gnet.Conn, t *edge.Ticket) gnet.Action {
	t.MarkOpened()
	if s.draining.Load() {
		return gnet.Close // OnClose releases the ticket
	}
	s.stats.connections.Add(1)
	if s.opts.SendBuffer > 0 {
		_ = gc.SetWriteBuffer(s.opts.SendBuffer) // best effort: the kernel caps it at net.core.wmem_max
	}
	c := newHTTPConn(s, gc)
	c.edge.ticket = t
	c.edge.client = t.Peer.Addr()
	c.remoteAddr = t.Peer.String()
	c.edge.awaitProxy = t.Proxy && s.opts.ProxyProtocol
	s.httpConns.add(c)
	c.edge.deadline.Store(deadlineAt(c.openedAt+int64(s.opts.HTTPReadTimeout), false))
	if !t.Proxy && !s.allowConnFrom(c.edge.client) {
		c.refuseRate()
	}
	return gnet.None
}

// refuseConnRate counts, logs and audits a connection refused by the
// per-address connection rate (allowConnFrom is false), on the listener
// and Handler alike; the caller answers 429.
func (s *Server) refuseConnRate(peer session.Peer) {
	s.guard.refusedConns.Add(1)
	s.guard.rateTrips.Add(1)
	s.refusals.note("ip_connections", peer.Remote, "too many new connections per second from this address (HTTP 429)",
		"raise --limit-ip-connections; behind a proxy set --trusted-proxies")
	s.audit(audit.EventConnRefused, peer, audit.Record{Reason: "rate limit: connections per IP"})
}

// allowConnFrom applies the per-address connection rate to a.
func (s *Server) allowConnFrom(a netip.Addr) bool {
	g := s.guard
	if g.Limits.ConnsPerIP.Unlimited() || !a.IsValid() {
		return true // unlimited, or no address to count (a Unix-socket peer)
	}
	return g.connsPerIP.Allow(a.String(), time.Now().UnixNano())
}

// warnIfOverLimit warns when the connection cap leaves too few
// descriptors for everything else: accept would then fail with EMFILE
// (the server backs off and keeps serving, but new clients wait).
func (s *Server) warnIfOverLimit() {
	nofile, err := openFilesLimit()
	if err != nil {
		return
	}
	if safe := MaxConnectionsFor(nofile, s.opts.MaxPublishers); s.opts.MaxConnections > safe {
		s.log.Warn("--max-connections is above what the open-files limit allows; accepts will fail with EMFILE and back off",
			"max_connections", s.opts.MaxConnections, "open_files_limit", nofile, "safe_max", safe,
			"fix", "raise the open-files limit (ulimit -n, LimitNOFILE) or lower --max-connections")
	}
}
