package server

import (
	"sync"
	"time"
	"unsafe"

	"github.com/fraised/fraised/auth"
	"github.com/fraised/fraised/codec"
	"github.com/fraised/fraised/proto"
)

// connShards spreads the connection set over independent locks so
// connects and disconnects on different loops do not contend.
const connShards = 32

// connSet is the set of open WebSocket connections, for keep-alive, the
// init timeout and draining. It is not on the delivery path.
type connSet struct {
	shards [connShards]struct {
		mu      sync.Mutex
		all     map[*wsConn]struct{}
		pending map[*wsConn]struct{} // not yet initialised
	}
}

func newConnSet() *connSet {
	s := &connSet{}
	for i := range s.shards {
		s.shards[i].all = make(map[*wsConn]struct{})
		s.shards[i].pending = make(map[*wsConn]struct{})
	}
	return s
}

func (s *connSet) shard(c *wsConn) int {
	return int(uintptr(unsafe.Pointer(c))>>6) & (connShards - 1)
}

// add registers a freshly upgraded connection, awaiting connection_init.
func (s *connSet) add(c *wsConn) {
	sh := &s.shards[s.shard(c)]
	sh.mu.Lock()
	sh.all[c] = struct{}{}
	if c.init.Load() == initNone {
		sh.pending[c] = struct{}{}
	}
	sh.mu.Unlock()
}

// acked records that c completed initialisation.
func (s *connSet) acked(c *wsConn) {
	sh := &s.shards[s.shard(c)]
	sh.mu.Lock()
	delete(sh.pending, c)
	sh.mu.Unlock()
}

func (s *connSet) remove(c *wsConn) {
	sh := &s.shards[s.shard(c)]
	sh.mu.Lock()
	delete(sh.all, c)
	delete(sh.pending, c)
	sh.mu.Unlock()
}

// snapshot appends the connections of one set (pending or all) to dst.
func (s *connSet) snapshot(dst []*wsConn, pendingOnly bool) []*wsConn {
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.Lock()
		m := sh.all
		if pendingOnly {
			m = sh.pending
		}
		for c := range m {
			dst = append(dst, c)
		}
		sh.mu.Unlock()
	}
	return dst
}

// len returns the number of open WebSocket connections.
func (s *connSet) len() int {
	n := 0
	for i := range s.shards {
		s.shards[i].mu.Lock()
		n += len(s.shards[i].all)
		s.shards[i].mu.Unlock()
	}
	return n
}

// housekeep closes connections that miss the init deadline and sends
// keep-alive pings, until done is closed.
func (srv *Server) housekeep(done <-chan struct{}) {
	tick := time.NewTicker(min(srv.opts.InitTimeout/4, 250*time.Millisecond))
	defer tick.Stop()
	var scratch []*wsConn
	lastPing, lastSweep := time.Now(), time.Now()
	for {
		select {
		case <-done:
			return
		case now := <-tick.C:
			scratch = srv.expireInits(scratch[:0], now)
			scratch = srv.expireHTTP(scratch[:0], now)
			if srv.opts.KeepAlive > 0 && now.Sub(lastPing) >= srv.opts.KeepAlive {
				scratch = srv.ping(scratch[:0], lastPing)
				lastPing = now
			}
			if now.Sub(lastSweep) >= time.Second {
				if srv.guard.Auth != auth.ModeOff {
					scratch = srv.expireTokens(scratch[:0], now)
				}
				srv.guard.connsPerIP.Sweep(now.UnixNano())
				srv.guard.subsPerIdent.Sweep(now.UnixNano())
				lastSweep = now
			}
			clear(scratch)
		}
	}
}

func (srv *Server) expireInits(scratch []*wsConn, now time.Time) []*wsConn {
	deadline := now.Add(-srv.opts.InitTimeout).UnixNano()
	scratch = srv.conns.snapshot(scratch, true)
	for _, c := range scratch {
		if c.init.Load() == initNone && c.openedAt <= deadline {
			srv.conns.acked(c) // stop checking it
			c.sendClose(proto.CloseInitTimeout, "Connection initialisation timeout")
		}
	}
	return scratch
}

// ping pings every connection and closes those silent since the last
// round (prevPing): their peer is gone without a FIN.
func (srv *Server) ping(scratch []*wsConn, prevPing time.Time) []*wsConn {
	scratch = srv.conns.snapshot(scratch, false)
	silentSince := prevPing.UnixNano()
	for _, c := range scratch {
		if c.lastRead.Load() < silentSince-int64(srv.opts.KeepAlive) {
			srv.stats.deadPeers.Add(1)
			_ = c.gc.Close()
			continue
		}
		c.send(codec.FrameControlPing)
	}
	return scratch
}

// expireHTTP closes connections in the HTTP phase that are past their
// deadline (--http-read-timeout for a request, --http-idle-timeout
// between requests): 408 when part of a request arrived, a plain close
// when nothing did. It also wakes connections that stopped reading
// requests while responses were unsent, once those are sent.
func (srv *Server) expireHTTP(scratch []*wsConn, now time.Time) []*wsConn {
	scratch = srv.httpConns.snapshot(scratch)
	nowNs := now.UnixNano()
	for _, c := range scratch {
		d := c.edge.deadline.Load()
		if d > 0 && d&^1 <= nowNs && c.edge.deadline.CompareAndSwap(d, deadlineExpired) {
			srv.httpConns.remove(c)
			srv.httpTimedOut(c, d&1 == 1)
			continue
		}
		if c.edge.paused.Load() && !c.out.hasPending() {
			c.edge.paused.Store(false)
			_ = c.gc.Wake(nil)
		}
	}
	return scratch
}
