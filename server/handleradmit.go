package server

import (
	"net/http"
	"net/netip"
	"strconv"
	"strings"

	"github.com/fraised/fraised/edge"
	"github.com/fraised/fraised/session"
)

// Handler WebSockets count against the listener's connection caps: a
// slot of --max-connections and one of --max-ip-connections for their
// client, the same edge.Gate the accept loop charges, so the limits an
// operator sets hold whichever way clients connect, and the descriptors
// they guard (--max-connections is derived from the open-files limit)
// are counted once. The host's plain HTTP requests (GraphQL over HTTP)
// are not counted: the host's http.Server owns those connections. A peer
// with no IP address (the host serves a Unix socket, a reverse proxy's
// usually) names no client: its WebSockets take only a slot of
// --max-connections, since charging them all to one unknown address
// would cap every client together at --max-ip-connections and
// --limit-ip-connections.

// admitNet admits a Handler WebSocket before its upgrade, charging its
// client address (the forwarded one when the TCP peer is in
// --trusted-proxies): it returns the ticket the connection holds until
// it ends, or nil after answering the refusal (503 with Retry-After at a cap, 429 past
// the per-address connection rate), logged and audited as the accept
// loop's.
func (s *Server) admitNet(w http.ResponseWriter, r *http.Request) *edge.Ticket {
	peer, _ := netip.ParseAddrPort(r.RemoteAddr)
	peer = netip.AddrPortFrom(peer.Addr().Unmap(), peer.Port())
	proxy := s.opts.TrustedProxies.Contains(peer.Addr())
	client := peer.Addr()
	if proxy {
		h := s.opts.ForwardedHeader
		if a, ok := edge.ClientAddr(h, []byte(strings.Join(r.Header.Values(h.Name()), ", ")), s.opts.TrustedProxies); ok {
			client = a
		}
	}
	t, why := s.gate.Admit(peer, proxy)
	if t != nil && !t.ChargeAddr(client) {
		t.Release()
		t, why = nil, edge.ReasonAddrCap
	}
	if t == nil {
		s.refuseAtAccept(r.RemoteAddr, why.String())
		w.Header().Set("Retry-After", strconv.Itoa(edge.RetryAfterSeconds))
		w.Header().Set("Connection", "close")
		http.Error(w, why.String(), http.StatusServiceUnavailable)
		return nil
	}
	if !s.allowConnFrom(client) {
		t.Release()
		s.refuseConnRate(session.Peer{Remote: r.RemoteAddr})
		w.Header().Set("Connection", "close")
		http.Error(w, "too many connections from this address", http.StatusTooManyRequests)
		return nil
	}
	return t
}
