package edge

import (
	"net/netip"
	"sync"
	"sync/atomic"

	"github.com/cespare/xxhash/v2"
)

// addrShards spreads the per-address counts over independent locks; a
// power of two so the shard is a mask. 64 shards keep two event loops and
// the accept loop from meeting on one lock even at 100k connections.
const addrShards = 64

// ipv6PrefixBits is how much of an IPv6 address identifies one client for
// the per-address cap: a /64 is what one subscriber or host is handed, and
// counting whole addresses would let one host open 2^64 "addresses".
const ipv6PrefixBits = 64

// Gate counts open connections, in total and per client address, against
// two caps. A zero or negative cap is unlimited. Safe for concurrent use.
type Gate struct {
	max, maxPerAddr int64
	open            atomic.Int64
	shards          [addrShards]addrShard
}

type addrShard struct {
	mu sync.Mutex
	n  map[netip.Addr]int64
	_  [40]byte // keep neighbouring shards' locks off one cache line
}

// NewGate returns a gate allowing max connections in total and
// maxPerAddr per client address (0 or less: unlimited).
func NewGate(max, maxPerAddr int) *Gate {
	g := &Gate{max: int64(max), maxPerAddr: int64(maxPerAddr)}
	for i := range g.shards {
		g.shards[i].n = make(map[netip.Addr]int64)
	}
	return g
}

// Max returns the global cap (0 or less: unlimited).
func (g *Gate) Max() int { return int(g.max) }

// MaxPerAddr returns the per-address cap (0 or less: unlimited).
func (g *Gate) MaxPerAddr() int { return int(g.maxPerAddr) }

// Open returns the number of connections holding a global slot.
func (g *Gate) Open() int64 { return g.open.Load() }

// acquire takes a global slot; false when the cap is reached.
func (g *Gate) acquire() bool {
	n := g.open.Add(1)
	if g.max > 0 && n > g.max {
		g.open.Add(-1)
		return false
	}
	return true
}

func (g *Gate) release() { g.open.Add(-1) }

// AddrKey is the key a client address is counted under: IPv4 (also
// IPv4-mapped IPv6) as is, IPv6 by its /64.
func AddrKey(a netip.Addr) netip.Addr {
	a = a.Unmap()
	if a.Is6() {
		if p, err := a.Prefix(ipv6PrefixBits); err == nil {
			return p.Addr()
		}
	}
	return a
}

func (g *Gate) shard(key netip.Addr) *addrShard {
	b := key.As16()
	return &g.shards[xxhash.Sum64(b[:])&(addrShards-1)]
}

// acquireAddr counts one more connection for key; false at the cap.
func (g *Gate) acquireAddr(key netip.Addr) bool {
	sh := g.shard(key)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	n := sh.n[key]
	if g.maxPerAddr > 0 && n >= g.maxPerAddr {
		return false
	}
	sh.n[key] = n + 1
	return true
}

func (g *Gate) releaseAddr(key netip.Addr) {
	sh := g.shard(key)
	sh.mu.Lock()
	if n := sh.n[key] - 1; n > 0 {
		sh.n[key] = n
	} else {
		delete(sh.n, key)
	}
	sh.mu.Unlock()
}

// AddrCount returns the open connections counted for a's key.
func (g *Gate) AddrCount(a netip.Addr) int {
	key := AddrKey(a)
	sh := g.shard(key)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	return int(sh.n[key])
}

// Ticket is one admitted connection's hold on a Gate: its global slot
// and, once charged, one slot of its client address. Release gives both
// back exactly once.
//
// ChargeAddr and Release are called by the connection's owner (its event
// loop); MarkOpened and Opened may be called from any goroutine.
type Ticket struct {
	gate *Gate
	// Peer is the TCP peer's address.
	Peer netip.AddrPort
	// Proxy reports that Peer is a trusted proxy: the connection is not
	// charged to Peer, and its client address comes from what the proxy says.
	Proxy bool

	key      netip.Addr
	charged  bool
	opened   atomic.Bool
	released atomic.Bool
}

// NewTicket returns a ticket of g for a connection from peer that holds
// no slot yet (the Acceptor takes the global slot; tests drive it).
func (g *Gate) NewTicket(peer netip.AddrPort, proxy bool) *Ticket {
	return &Ticket{gate: g, Peer: peer, Proxy: proxy}
}

// Admit takes a global slot for a new connection from peer and, unless
// proxy (a trusted proxy: its client is charged later, with ChargeAddr,
// from what the proxy says), one slot of peer's address. It returns the
// ticket holding them, or nil and the cap that refused the connection.
func (g *Gate) Admit(peer netip.AddrPort, proxy bool) (*Ticket, Reason) {
	t := g.NewTicket(peer, proxy)
	if !g.acquire() {
		return nil, ReasonGlobalCap
	}
	if !proxy && !t.ChargeAddr(peer.Addr()) {
		g.release()
		return nil, ReasonAddrCap
	}
	return t, 0
}

// ChargeAddr counts the connection against client address a's cap. It
// reports false (and charges nothing) when a is at the cap. A ticket is
// charged at most once; later calls report true. An invalid address (a
// peer on a Unix socket, with no forwarded one) is not counted: all such
// clients would share one count.
func (t *Ticket) ChargeAddr(a netip.Addr) bool {
	if t.charged || t.gate.maxPerAddr <= 0 || !a.IsValid() {
		return true // unlimited or unknown: nothing to count
	}
	key := AddrKey(a)
	if !t.gate.acquireAddr(key) {
		return false
	}
	t.key, t.charged = key, true
	return true
}

// MarkOpened records that the connection reached its server (for the
// hand-off: a ticket never opened is released by whoever handed it off).
func (t *Ticket) MarkOpened() { t.opened.Store(true) }

// Opened reports whether MarkOpened was called.
func (t *Ticket) Opened() bool { return t.opened.Load() }

// Release gives back the ticket's slots; later calls do nothing.
func (t *Ticket) Release() {
	if t.released.Swap(true) {
		return
	}
	if t.charged {
		t.gate.releaseAddr(t.key)
	}
	t.gate.release()
}
