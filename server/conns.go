package server

import (
	"fmt"
	"slices"
	"time"
	"unsafe"

	"github.com/fraised/fraised/auth"
	"github.com/fraised/fraised/codec"
	"github.com/fraised/fraised/internal/outbox"
	"github.com/fraised/fraised/internal/shard"
)

// connShards spreads a connection set over independent locks so
// connects and disconnects on different loops do not contend.
const connShards = 32

// ptrSet is a set of *T (connections of one kind) sharded by address
// over connShards locks. Safe for concurrent use.
type ptrSet[T any] struct {
	m shard.Map[*T, struct{}]
}

func newPtrSet[T any]() *ptrSet[T] {
	s := &ptrSet[T]{}
	s.init()
	return s
}

func (s *ptrSet[T]) init() { s.m.Init(connShards, ptrHash[T]) }

// ptrHash picks a connection's shard by its address: a connection struct
// is larger than 64 bytes, so the bits above the sixth vary.
func ptrHash[T any](c *T) uint64 { return uint64(uintptr(unsafe.Pointer(c)) >> 6) }

func (s *ptrSet[T]) add(c *T) { s.m.Set(c, struct{}{}) }

func (s *ptrSet[T]) remove(c *T) { s.m.Delete(c) }

// snapshot appends the set's connections to dst.
func (s *ptrSet[T]) snapshot(dst []*T) []*T { return s.m.AppendKeys(dst) }

// any reports whether f holds for a connection of the set; f runs with
// the connection's shard locked and must not call back into the set.
func (s *ptrSet[T]) any(f func(*T) bool) bool {
	return !s.m.Range(func(c *T, _ struct{}) bool { return !f(c) })
}

// len returns the number of connections in the set.
func (s *ptrSet[T]) len() int { return s.m.Len() }

// connSet is the set of open WebSocket connections, for keep-alive, the
// init timeout and draining. It is not on the delivery path.
type connSet struct {
	all     ptrSet[wsConn]
	pending ptrSet[wsConn] // not yet initialised
	closing ptrSet[conn]   // close frame (or last HTTP response) queued: linger deadline
}

func newConnSet() *connSet {
	s := &connSet{}
	s.all.init()
	s.pending.init()
	s.closing.init()
	return s
}

// add registers a freshly upgraded connection, awaiting connection_init.
func (s *connSet) add(c *wsConn) {
	s.all.add(c)
	if !c.sess.Acked() {
		s.pending.add(c)
	}
}

// acked records that c completed initialisation.
func (s *connSet) acked(c *wsConn) { s.pending.remove(c) }

// remove forgets a WebSocket that closed (release takes it out of the
// closing set).
func (s *connSet) remove(c *wsConn) {
	s.all.remove(c)
	s.pending.remove(c)
}

// addClosing records that c queued its close frame, for the linger sweep.
// A connection that closed meanwhile is dropped by the sweep.
func (s *connSet) addClosing(c *conn) { s.closing.add(c) }

// doneClosing stops watching c's linger deadline.
func (s *connSet) doneClosing(c *conn) { s.closing.remove(c) }

// snapshotClosing appends the closing connections to dst.
func (s *connSet) snapshotClosing(dst []*conn) []*conn { return s.closing.snapshot(dst) }

// snapshot appends the connections of one set (pending or all) to dst.
func (s *connSet) snapshot(dst []*wsConn, pendingOnly bool) []*wsConn {
	if pendingOnly {
		return s.pending.snapshot(dst)
	}
	return s.all.snapshot(dst)
}

// any reports whether f holds for an open connection; f runs with the
// connection's shard locked and must not call back into the set.
func (s *connSet) any(f func(*wsConn) bool) bool { return s.all.any(f) }

// len returns the number of open WebSocket connections.
func (s *connSet) len() int { return s.all.len() }

// housekeep closes connections that miss the init deadline and sends
// keep-alive pings, until done is closed.
func (srv *Server) housekeep(done <-chan struct{}) {
	tick := time.NewTicker(min(srv.opts.InitTimeout/4, 250*time.Millisecond))
	defer tick.Stop()
	var scratch []*wsConn
	var closing []*conn
	var https []*httpConn
	var boxes []*outbox.Outbox
	lastPing, lastSweep := time.Now(), time.Now()
	for {
		select {
		case <-done:
			return
		case now := <-tick.C:
			closing = srv.sweepClosing(closing[:0], now)
			clear(closing)
			boxes = srv.sweepStalls(boxes[:0], now)
			clear(boxes)
			srv.enforceBudget()
			scratch = srv.expireInits(scratch[:0], now)
			https = srv.expireHTTP(https[:0], now)
			clear(https)
			if srv.opts.KeepAlive > 0 && now.Sub(lastPing) >= srv.opts.KeepAlive {
				scratch = srv.ping(scratch[:0], lastPing)
				lastPing = now
			}
			if now.Sub(lastSweep) >= time.Second {
				if srv.guard.Auth != auth.ModeOff {
					scratch = srv.expireTokens(scratch[:0], now)
				}
				srv.guard.connsPerIP.Sweep(now.UnixNano())
				srv.sess.Sweep(now.UnixNano())
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
		if !c.sess.Acked() && c.openedAt <= deadline {
			srv.conns.acked(c) // stop checking it
			c.sess.ExpireInit()
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

// sweepClosing enforces the linger deadline: a connection whose close
// frame was written lingerTimeout ago without the peer's close frame or
// EOF is closed now.
func (srv *Server) sweepClosing(scratch []*conn, now time.Time) []*conn {
	scratch = srv.conns.snapshotClosing(scratch)
	expired := now.Add(-lingerTimeout).UnixNano()
	for _, c := range scratch {
		switch st := c.out.State(); {
		case st.Closed: // closed meanwhile; OnClose may not have run yet
			srv.conns.doneClosing(c)
		case st.Shut && st.ShutAt <= expired:
			srv.conns.doneClosing(c)
			c.Hangup()
		case !st.Ended && c.httpEndAt.Load() != 0 && now.UnixNano()-c.httpEndAt.Load() > int64(srv.opts.HTTPReadTimeout):
			// An HTTP connection's last publish reply never came (a
			// stalled dispatcher): do not wait for it forever.
			srv.conns.doneClosing(c)
			c.Hangup()
		}
	}
	return scratch
}

// expireHTTP closes connections in the HTTP phase that are past their
// deadline (--http-read-timeout for a request, --http-idle-timeout
// between requests): 408 when part of a request arrived, a plain close
// when nothing did. It also wakes connections that stopped reading
// requests while responses were unsent, once those are sent.
func (srv *Server) expireHTTP(scratch []*httpConn, now time.Time) []*httpConn {
	scratch = srv.httpConns.snapshot(scratch)
	nowNs := now.UnixNano()
	for _, c := range scratch {
		d := c.edge.deadline.Load()
		if d > 0 && d&^1 <= nowNs && c.edge.deadline.CompareAndSwap(d, deadlineExpired) {
			srv.httpConns.remove(c)
			srv.httpTimedOut(c, d&1 == 1)
			continue
		}
		if c.edge.paused.Load() && !c.out.HasPending() {
			c.edge.paused.Store(false)
			_ = c.gc.Wake(nil)
		}
	}
	return scratch
}

// sweepStalls cuts sockets that took no byte for --write-timeout while
// output waited: a connection still sending frames is cut as a slow
// consumer (its close frame gets a timeout of its own); one whose close
// frame cannot be written either is closed.
func (srv *Server) sweepStalls(scratch []*outbox.Outbox, now time.Time) []*outbox.Outbox {
	scratch = srv.w.Snapshot(scratch)
	stalledBefore := now.Add(-srv.opts.WriteTimeout).UnixNano()
	for _, o := range scratch {
		c := o.Owner()
		if c == nil {
			continue // publishers have their own deadlines
		}
		st := o.State()
		if !st.Blocked || st.ProgressAt == 0 || st.ProgressAt > stalledBefore {
			continue
		}
		srv.stats.writeStalls.Add(1)
		if st.Ended {
			c.Hangup()
			continue
		}
		c.CutSlow("write stall: the socket took no byte for --write-timeout")
	}
	return scratch
}

// budgetLowWater is the fraction of --max-outbound-total the budget sweep
// brings the total back under (7/8): cutting a little more than the excess
// keeps the sweep from firing again at once for the next burst.
const budgetLowWaterNum, budgetLowWaterDen = 7, 8

// budgetRetry is how long enforceBudget waits before scanning again
// after a scan found nothing it could cut: short next to a burst, long
// next to a scan of every blocked connection.
const budgetRetry = 10 * time.Millisecond

// enforceBudget keeps the bytes held by all outboxes under
// --max-outbound-total: past it, the WebSocket connections holding the
// most are cut as slow consumers first, until the total is back under
// the low-water mark. Nobody else waits: connections that keep up hold
// nothing and are never chosen. Called by the dispatcher after a flush
// that left the total past the budget, and by the housekeeper (output
// queued by event loops: pongs, replies). Safe for concurrent use.
func (srv *Server) enforceBudget() {
	limit := int64(srv.opts.MaxOutboundTotal)
	if srv.w.Held() <= limit {
		return
	}
	now := time.Now().UnixNano()
	if now < srv.budgetRetryAt.Load() {
		return
	}
	srv.budgetMu.Lock()
	defer srv.budgetMu.Unlock()
	total := srv.w.Held()
	if total <= limit {
		return
	}
	scratch := srv.appendNetOutboxes(srv.w.Snapshot(srv.budgetBuf[:0]))
	defer func() { clear(scratch); srv.budgetBuf = scratch[:0] }()
	held := make(map[*outbox.Outbox]int, len(scratch))
	for _, o := range scratch {
		if st := o.State(); !st.Ended && o.Owner() != nil {
			held[o] = st.Held
		}
	}
	slices.SortFunc(scratch, func(a, b *outbox.Outbox) int { return held[b] - held[a] })
	target := limit / budgetLowWaterDen * budgetLowWaterNum
	cut := 0
	for _, o := range scratch {
		if total <= target || held[o] == 0 {
			break
		}
		o.Owner().CutSlow("global outbound budget (--max-outbound-total) exceeded; this connection held the most")
		total -= int64(held[o])
		cut++
	}
	if cut == 0 {
		// Only connections already closing hold output (the rest of a
		// partly written frame, a close frame): the write timeout ends
		// them. Do not rescan at every flush meanwhile.
		srv.budgetRetryAt.Store(now + int64(budgetRetry))
		return
	}
	srv.refusals.note("outbound_budget", "", fmt.Sprintf("outbound memory budget of %d bytes exceeded: cut the %d connections holding the most (%d bytes held now)", limit, cut, srv.w.Held()),
		"raise --max-outbound-total (or GOMEMLIMIT) if the host has the memory, or lower --max-outbound")
}
