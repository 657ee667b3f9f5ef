package server

import (
	"context"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/fraised/fraised/edge"
)

var replyMaxClients = []byte("-ERR max number of clients reached\r\n")

// pubListeners serves the Redis-protocol publish listeners (TCP and Unix)
// off gnet: an accept goroutine per listener and a pubConn (two
// goroutines) per publisher.
type pubListeners struct {
	srv       *Server
	listeners []net.Listener

	mu     sync.Mutex
	conns  map[*pubConn]struct{}
	nextID int64
	closed bool
	wg     sync.WaitGroup // one per connection
}

func newPubListeners(s *Server) *pubListeners {
	return &pubListeners{srv: s, conns: map[*pubConn]struct{}{}}
}

// listen opens the configured publish listeners.
func (pl *pubListeners) listen() error {
	o := pl.srv.opts
	if o.PublishListen != "-" {
		l, err := net.Listen("tcp", o.PublishListen)
		if err != nil {
			return fmt.Errorf("cannot listen for publishers on %s: %w (change --publish-listen, or \"-\" to disable it)", o.PublishListen, err)
		}
		pl.listeners = append(pl.listeners, l)
	}
	if o.PublishUnix != "" {
		if err := removeStaleSocket(o.PublishUnix); err != nil {
			pl.closeListeners()
			return err
		}
		l, err := net.Listen("unix", o.PublishUnix)
		if err != nil {
			pl.closeListeners()
			return fmt.Errorf("cannot listen for publishers on %s: %w (change --publish-unix)", o.PublishUnix, err)
		}
		pl.listeners = append(pl.listeners, l)
	}
	for _, l := range pl.listeners {
		go pl.accept(l)
	}
	return nil
}

// accept accepts publishers until the listener is closed or the server
// stops, through edge.AcceptLoop: a passing accept error (EMFILE,
// ENFILE, ECONNABORTED...) backs off and retries, so the loop does not
// give up on a shortage; one no retry can mend (the listening socket
// itself is gone) stops the server, as it does for the HTTP listener.
func (pl *pubListeners) accept(l net.Listener) {
	s := pl.srv
	err := edge.AcceptLoop(l, s.done, func(err error, pause time.Duration) {
		s.refusals.note("publish_accept", l.Addr().String(),
			fmt.Sprintf("accept failed: %v; retrying in %v", err, pause),
			"raise the open-files limit (ulimit -n) or lower --max-publishers")
	}, pl.open)
	if err != nil && !s.stopAsked.Load() {
		s.fail(fmt.Errorf("the publish listener %s failed: %w", l.Addr(), err))
	}
}

// open starts serving conn, or refuses it past --max-publishers (or while
// shutting down) with edge.Refuse, as the HTTP listener refuses at its
// caps.
func (pl *pubListeners) open(conn net.Conn) {
	pl.mu.Lock()
	if pl.closed || len(pl.conns) >= pl.srv.opts.MaxPublishers {
		closed := pl.closed
		pl.mu.Unlock()
		reply := replyDraining
		if !closed {
			reply = replyMaxClients
			pl.srv.refusals.note("max_publishers", conn.RemoteAddr().String(), "too many publisher connections",
				"raise --max-publishers, or have publishers share connections")
		}
		edge.Refuse(conn, reply) // never blocks; reads what came first, so the close is a FIN
		return
	}
	pl.nextID++
	c := newPubConn(pl.srv, conn, pl.nextID)
	pl.conns[c] = struct{}{}
	pl.wg.Add(1)
	pl.mu.Unlock()
	pl.srv.stats.connections.Add(1)
	go func() {
		defer pl.remove(c)
		c.serve()
	}()
}

func (pl *pubListeners) remove(c *pubConn) {
	pl.srv.stats.connections.Add(-1)
	pl.mu.Lock()
	delete(pl.conns, c)
	pl.mu.Unlock()
	pl.wg.Done()
}

// count returns the number of publisher connections.
func (pl *pubListeners) count() int {
	pl.mu.Lock()
	defer pl.mu.Unlock()
	return len(pl.conns)
}

// closeListeners stops accepting publishers; later connections are refused
// by the kernel, so publishers fail over at once. Safe to call twice.
func (pl *pubListeners) closeListeners() {
	pl.mu.Lock()
	pl.closed = true
	pl.mu.Unlock()
	for _, l := range pl.listeners {
		_ = l.Close()
	}
}

// shutdown ends every publisher connection: reading stops (commands
// already received are answered, publishes with the draining error), the
// replies of events in flight are written, then the socket is closed. The
// dispatcher must still run. Connections left when ctx ends are cut.
func (pl *pubListeners) shutdown(ctx context.Context) {
	pl.closeListeners()
	pl.mu.Lock()
	for c := range pl.conns {
		c.shutdown.Store(true)
		closeRead(c.conn)
	}
	pl.mu.Unlock()
	done := make(chan struct{})
	go func() {
		pl.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		return
	case <-ctx.Done():
	}
	pl.mu.Lock()
	for c := range pl.conns {
		c.abort()
	}
	pl.mu.Unlock()
	<-done
}

// closeRead shuts the read side of a socket, so its reader sees EOF.
func closeRead(conn net.Conn) {
	if cr, ok := conn.(interface{ CloseRead() error }); ok && cr.CloseRead() == nil {
		return
	}
	_ = conn.SetReadDeadline(time.Now())
}
