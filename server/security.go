package server

import (
	"context"
	"net"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"github.com/fraised/fraised/audit"
	"github.com/fraised/fraised/auth"
	"github.com/fraised/fraised/proto"
	"github.com/fraised/fraised/ratelimit"
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

// guard holds the shared state of the security modules.
type guard struct {
	Security
	connsPerIP   *ratelimit.Keyed
	subsPerIdent *ratelimit.Keyed
	identSubs    *ratelimit.Counter
	identConns   *ratelimit.Counter
	origins      map[string]bool
	anyOrigin    bool
	refusedConns atomic.Uint64
	rateTrips    atomic.Uint64
	authFailures atomic.Uint64
}

func newGuard(s Security) *guard {
	if s.InitKey == "" {
		s.InitKey = auth.DefaultInitKey
	}
	g := &guard{
		Security:     s,
		connsPerIP:   ratelimit.NewKeyed(s.Limits.ConnsPerIP),
		subsPerIdent: ratelimit.NewKeyed(s.Limits.SubscribesPerIdentity),
		identSubs:    ratelimit.NewCounter(s.Limits.MaxSubsPerIdentity),
		identConns:   ratelimit.NewCounter(s.Limits.MaxConnsPerIdentity),
		origins:      map[string]bool{},
	}
	for _, o := range s.AllowedOrigins {
		if o == "*" {
			g.anyOrigin = true
		}
		g.origins[strings.ToLower(strings.TrimRight(o, "/"))] = true
	}
	return g
}

// audit writes a record; it never blocks.
func (g *guard) audit(event string, c *wsConn, r audit.Record) {
	if g.Audit == nil {
		return
	}
	r.Event = event
	if c != nil {
		r.Remote = c.remoteAddr
		r.ConnID = c.id
		if id := c.identity.Load(); id != nil && r.Subject == "" {
			r.Subject = id.Subject
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

// tokenFor finds the connection's token: the init payload first, then
// the upgrade request's Authorization header or cookie.
func (g *guard) tokenFor(c *wsConn, initPayload []byte) string {
	if t, ok := auth.TokenFromInitPayload(initPayload, g.InitKey); ok {
		return t
	}
	return c.upgradeToken
}

// verifyTimeout bounds one token verification (a custom verifier may do
// I/O, a JWKS verifier never does): a stuck verifier costs the connection
// its init or renewal, never a goroutine forever.
const verifyTimeout = 10 * time.Second

// authenticate verifies token off the event loop and acks or closes the
// connection. Called on its own goroutine.
func (c *wsConn) authenticate(token string) {
	g := c.srv.guard
	ctx, cancel := context.WithTimeout(context.Background(), verifyTimeout)
	defer cancel()
	id, err := g.Verifier.Verify(ctx, token)
	if err != nil {
		g.authFailures.Add(1)
		reason := auth.ReasonOf(err).String()
		g.audit(audit.EventAuthFailed, c, audit.Record{Reason: reason})
		c.srv.refusals.note("auth", c.remoteAddr, "token refused (closed 4403): "+reason, authFix)
		c.sendClose(proto.CloseForbidden, "Forbidden")
		return
	}
	if !g.identConns.Acquire(id.Subject) {
		g.rateTrips.Add(1)
		g.audit(audit.EventRateLimit, c, audit.Record{Subject: id.Subject, Reason: "too many connections for this identity"})
		c.srv.refusals.note("identity_connections", c.remoteAddr, "too many connections for this identity (closed 4429)",
			"raise --max-identity-connections (FRAISED_MAX_IDENTITY_CONNECTIONS)")
		c.sendClose(proto.CloseTooManyInitRequests, "too many connections for this identity")
		return
	}
	c.identity.Store(id)
	c.holdsConnSlot.Store(true)
	if c.releaseIfClosed() {
		return
	}
	g.audit(audit.EventAuthOK, c, audit.Record{})
	c.ackInit()
}

// authFix is what an operator checks when tokens are refused.
const authFix = "check the client's token against the verifier: --jwt-secret-file/--jwt-public-key/--jwks, --jwt-audience, --jwt-issuer, --jwt-leeway"

// releaseIfClosed gives back the identity's connection slot when the
// connection closed while its token was being verified: onClose ran
// before the slot was taken and could not release it. onClose marks the
// outbox closed before it swaps holdsConnSlot, and this runs after the
// slot is marked held, so exactly one of them releases it.
func (c *wsConn) releaseIfClosed() bool {
	closed := c.out.Closed()
	if closed && c.holdsConnSlot.Swap(false) {
		c.srv.guard.identConns.Release(c.identity.Load().Subject)
	}
	return closed
}

// renew replaces the connection's token after a ping carrying a new one.
// The new token must keep the grants of the old one (auth.SameGrants):
// running subscriptions were admitted and filtered with them.
// Called on its own goroutine.
func (c *wsConn) renew(token string) {
	g := c.srv.guard
	old := c.identity.Load()
	ctx, cancel := context.WithTimeout(context.Background(), verifyTimeout)
	defer cancel()
	id, err := g.Verifier.Verify(ctx, token)
	if err != nil || old == nil || !auth.SameGrants(old, id) {
		reason := "subject changed"
		switch {
		case err != nil:
			reason = auth.ReasonOf(err).String()
		case old != nil && id.Subject == old.Subject:
			reason = "roles, scopes or claims changed (reconnect to change them)"
		}
		g.audit(audit.EventAuthFailed, c, audit.Record{Reason: "renewal: " + reason})
		c.srv.refusals.note("auth", c.remoteAddr, "token renewal refused (closed 4403): "+reason, authFix)
		c.sendClose(proto.CloseForbidden, "Forbidden")
		return
	}
	c.identity.Store(id)
	g.audit(audit.EventTokenRenewed, c, audit.Record{})
}

// expireTokens closes connections whose token expired (4403).
func (srv *Server) expireTokens(scratch []*wsConn, now time.Time) []*wsConn {
	scratch = srv.conns.snapshot(scratch, false)
	for _, c := range scratch {
		id := c.identity.Load()
		if id == nil || id.Expiry.IsZero() || now.Before(id.Expiry.Add(srv.guard.Leeway)) {
			continue
		}
		srv.guard.audit(audit.EventTokenExpired, c, audit.Record{})
		c.sendClose(proto.CloseForbidden, "Forbidden: token expired")
	}
	return scratch
}
