package server

import (
	"net"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"github.com/fraised/fraised/audit"
	"github.com/fraised/fraised/auth"
	"github.com/fraised/fraised/dispatch"
	"github.com/fraised/fraised/ratelimit"
	"github.com/fraised/fraised/resolve"
	"github.com/fraised/fraised/session"
)

// Security configures the five security modules: authentication,
// authorization (via the schema's @auth and claim @filter directives,
// enforced by the compiler with the identity set here), rate limiting,
// audit, and validation (limits in Options and the schema's Limits).
type Security struct {
	// Auth is off (default), optional (anonymous allowed) or required.
	Auth auth.Mode
	// Verifier checks tokens; required unless Auth is off. A custom
	// compiled-in verifier may replace the JWT one.
	Verifier auth.Verifier
	// InitKey is the connection_init payload key holding the token.
	// Default "authorization".
	InitKey string
	// Cookie is the name of a cookie holding the token; empty disables.
	Cookie string
	// Leeway is how long past its token's exp an open connection is
	// closed (4403). Set it to the verifier's clock-skew leeway, so a token
	// the verifier just accepted within its leeway is not cut at once.
	// Default 0: closed at exp.
	Leeway time.Duration
	// AllowedOrigins lists the Origin values a browser may connect from;
	// "*" allows any. Empty (default): requests without Origin (non-browser
	// clients) and same-origin requests (Origin host == Host) only.
	AllowedOrigins []string
	// Limits are the rate and concurrency limits; zero values are unlimited.
	Limits Limits
	// Audit receives the audit trail; nil disables it.
	Audit *audit.Log
}

// Limits are the rate limits (token buckets, O(1) per check) and the
// concurrency caps. A zero Limit or cap means unlimited.
type Limits struct {
	ConnsPerIP            ratelimit.Limit // new WebSocket/HTTP connections per source IP
	MessagesPerConn       ratelimit.Limit // inbound messages per connection; past it: close 4429
	SubscribesPerConn     ratelimit.Limit // subscribe operations per connection
	SubscribesPerIdentity ratelimit.Limit // subscribe operations per identity (subject)
	PublishesPerConn      ratelimit.Limit // commands per publisher connection
	MaxSubsPerIdentity    int             // active operations per identity
	MaxConnsPerIdentity   int             // open connections per identity
}

// guard holds the shared state of the security modules at the edge (the
// Origin allowlist, the per-address connection rate) and the audit glue;
// what sessions share (the identity limits, the token checks) is in
// session.Shared.
type guard struct {
	Security
	connsPerIP   *ratelimit.Keyed
	origins      map[string]bool
	anyOrigin    bool
	refusedConns atomic.Uint64
	rateTrips    atomic.Uint64 // edge and publisher limits; sessions count their own
}

func newGuard(s Security) *guard {
	g := &guard{
		Security:   s,
		connsPerIP: ratelimit.NewKeyed(s.Limits.ConnsPerIP),
		origins:    map[string]bool{},
	}
	for _, o := range s.AllowedOrigins {
		if o == "*" {
			g.anyOrigin = true
		}
		g.origins[strings.ToLower(strings.TrimRight(o, "/"))] = true
	}
	return g
}

// sessionConfig is what the sessions of a server with opts share.
func sessionConfig(opts Options, d *dispatch.Dispatcher, refusals *refusalLog, q *resolve.Queries) session.Config {
	sec := opts.Security
	return session.Config{
		Schema:     opts.Schema,
		Dispatcher: d,
		Auth:       sec.Auth,
		Verifier:   sec.Verifier,
		InitKey:    sec.InitKey,
		Leeway:     sec.Leeway,
		Limits: session.Limits{
			MessagesPerConn:       sec.Limits.MessagesPerConn,
			SubscribesPerConn:     sec.Limits.SubscribesPerConn,
			SubscribesPerIdentity: sec.Limits.SubscribesPerIdentity,
			MaxSubsPerIdentity:    sec.Limits.MaxSubsPerIdentity,
			MaxConnsPerIdentity:   sec.Limits.MaxConnsPerIdentity,
			MaxOperations:         opts.MaxSubscriptionsPerConn,
		},
		MaxMessage: opts.MaxMessage,
		Audit:      sec.Audit,
		Log:        opts.Logger,
		Refused:    refusals.note,
		Queries:    q,
	}
}

// audit writes a record about connection c (nil: none); it never blocks.
func (g *guard) audit(event string, c connRef, r audit.Record) {
	if g.Audit == nil {
		return
	}
	r.Event = event
	if c != nil {
		b := c.base()
		r.Remote = b.remoteAddr
		r.ConnID = b.id
		if sess := b.sess.Load(); sess != nil && r.Subject == "" {
			if id := sess.Identity(); id != nil {
				r.Subject = id.Subject
			}
		}
	}
	g.Audit.Write(r)
}

// originAllowed applies the Origin allowlist (a defence against
// cross-site WebSocket hijacking).
func (g *guard) originAllowed(origin, host string) bool {
	if origin == "" || g.anyOrigin {
		return true
	}
	if g.origins[strings.ToLower(strings.TrimRight(origin, "/"))] {
		return true
	}
	if len(g.AllowedOrigins) > 0 {
		return false
	}
	u, err := url.Parse(origin)
	return err == nil && strings.EqualFold(u.Host, host)
}

// allowConn applies the per-IP connection rate to a new connection.
func (g *guard) allowConn(remote net.Addr) bool {
	if g.Limits.ConnsPerIP.Unlimited() {
		return true
	}
	return g.connsPerIP.Allow(ipOf(remote), time.Now().UnixNano())
}

func ipOf(a net.Addr) string {
	if t, ok := a.(*net.TCPAddr); ok {
		return t.IP.String()
	}
	return ""
}

// expireTokens closes WebSockets whose token expired (4403).
func (srv *Server) expireTokens(scratch []*wsConn, now time.Time) []*wsConn {
	scratch = srv.conns.snapshot(scratch, false)
	for _, c := range scratch {
		c.sess.ExpireToken(now)
	}
	return scratch
}
