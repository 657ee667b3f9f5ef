// Package session is the graphql-transport-ws protocol state machine of
// one client connection: connection_init and its acknowledgement (token
// verification included), ping and pong, subscribe and complete, queries
// and subscriptions, the per-connection and per-identity limits, the
// errors and close codes the protocol defines, and the audit records of
// all of it.
//
// A Session knows nothing of sockets, event loops or framing: it reads
// whole messages the transport hands it (OnMessage) and answers through a
// small Conn interface (send a message, close with a code). The WebSocket
// adapter on the gnet engine (server/) is one transport; a net/http
// handler, SSE or the legacy graphql-ws dialect reuse the Session as is.
//
// Goroutines: the transport calls OnMessage, ControlAllowed and End from
// the one goroutine that reads the connection's input (the gnet event loop
// for the WebSocket adapter), one call at a time. Token verification and
// queries run on goroutines of their own, started by the Session, which
// only call Conn.Send, Conn.Close and Conn.Initialised. ExpireInit,
// ExpireToken, Acked and Identity are safe from any goroutine (the
// housekeeper calls them).
package session

import (
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/gobwas/ws"

	"github.com/fraised/fraised/audit"
	"github.com/fraised/fraised/auth"
	"github.com/fraised/fraised/dispatch"
	"github.com/fraised/fraised/gql"
	"github.com/fraised/fraised/history"
	"github.com/fraised/fraised/internal/outbox"
	"github.com/fraised/fraised/proto"
	"github.com/fraised/fraised/ratelimit"
	"github.com/fraised/fraised/resolve"
)

// Conn is the transport a Session speaks over. Its methods are safe for
// concurrent use: the Session calls them from the input goroutine, from
// its token-verification goroutines and from its query goroutines.
type Conn interface {
	// Send queues one whole server message (its JSON text, unframed)
	// behind the output already queued, framing it as the transport does.
	// msg is valid until Send returns. A connection whose unsent output
	// passes its cap is cut off as a slow consumer by the transport.
	Send(msg []byte)
	// Close queues a close with code and reason behind the output already
	// queued, as the last output, and stops the handling of input: the
	// transport calls no more Session methods for input that follows.
	// Later calls are no-ops. reason is at most codec.MaxCloseReason bytes.
	Close(code ws.StatusCode, reason string)
	// Output is where the dispatcher appends the frames of the session's
	// subscriptions. (dispatch.Subscription holds the descriptor outbox
	// concretely on the delivery hot path; a transport with another Sink
	// needs the dispatcher's member output to become an interface first.)
	Output() *outbox.Outbox
	// Initialised tells the transport that connection_init was
	// acknowledged, so its initialisation deadline no longer applies.
	// Called once.
	Initialised()
}

// Peer is who is at the other end of a connection, as the transport knows
// it when the session starts.
type Peer struct {
	ID     uint64 // the connection's id in audit records
	Remote string // the client's address (forwarded by a trusted proxy, or the TCP peer)
	// Token is the bearer token the upgrade request carried in its
	// Authorization header or cookie, or "": the connection_init payload's
	// token takes precedence.
	Token string
}

// Dispatcher registers and removes subscriptions; *dispatch.Dispatcher
// implements it. Safe for concurrent use.
type Dispatcher interface {
	// QueueAdd queues s for registration; false means the queue is full
	// (nothing was registered; the client may retry).
	QueueAdd(s *dispatch.Subscription) bool
	// QueueRemove queues the removal of s, after s.Remove returned true.
	QueueRemove(s *dispatch.Subscription)
}

var _ Dispatcher = (*dispatch.Dispatcher)(nil)

// Limits are a session's rate limits (token buckets, O(1) per check) and
// caps. A zero Limit or cap means unlimited.
type Limits struct {
	MessagesPerConn       ratelimit.Limit // inbound messages per connection; past it: close 4429
	SubscribesPerConn     ratelimit.Limit // subscribe operations per connection
	SubscribesPerIdentity ratelimit.Limit // subscribe operations per identity (subject)
	MaxSubsPerIdentity    int             // active operations per identity
	MaxConnsPerIdentity   int             // open connections per identity
	MaxOperations         int             // active operations per connection (--max-subscriptions)
}

// Config is what every session of one server shares. It is set before
// the first session starts and never written afterwards.
type Config struct {
	Schema     *gql.Schema
	Dispatcher Dispatcher
	// Auth is off, optional (anonymous allowed) or required.
	Auth auth.Mode
	// Verifier checks tokens; required unless Auth is off.
	Verifier auth.Verifier
	// InitKey is the connection_init payload key holding the token.
	InitKey string
	// Leeway is how long past its token's exp an open session is closed.
	Leeway time.Duration
	Limits Limits
	// MaxMessage bounds a message; a pong's echo never exceeds it.
	MaxMessage int
	// Audit receives the audit trail; nil disables it.
	Audit *audit.Log
	Log   *slog.Logger
	// Refused logs a refusal of kind from remote, throttled per kind: why,
	// and what the operator can change to allow it. Safe for concurrent use.
	Refused func(kind, remote, reason, fix string)
	// Queries runs the resolvers of queries with --resolver-timeout
	// (RESOLVER_TIMEOUT past it); nil: resolve.NewQueries with the
	// default timeout.
	Queries *resolve.Queries
}

// Shared is Config with the state all sessions of a server share: the
// per-identity limits and the counters. Safe for concurrent use.
type Shared struct {
	Config
	subsPerIdent *ratelimit.Keyed   // subscribe rate per identity
	identSubs    *ratelimit.Counter // active operations per identity
	identConns   *ratelimit.Counter // open connections per identity
	rateTrips    atomic.Uint64
	authFailures atomic.Uint64
}

// NewShared returns the shared state of sessions configured by cfg.
func NewShared(cfg Config) *Shared {
	if cfg.InitKey == "" {
		cfg.InitKey = auth.DefaultInitKey
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	if cfg.Refused == nil {
		cfg.Refused = func(kind, remote, reason, fix string) {}
	}
	if cfg.Queries == nil {
		cfg.Queries = resolve.NewQueries(0, cfg.Log)
	}
	return &Shared{
		Config:       cfg,
		subsPerIdent: ratelimit.NewKeyed(cfg.Limits.SubscribesPerIdentity),
		identSubs:    ratelimit.NewCounter(cfg.Limits.MaxSubsPerIdentity),
		identConns:   ratelimit.NewCounter(cfg.Limits.MaxConnsPerIdentity),
	}
}

// Sweep forgets idle per-identity rate buckets (now in unix nanoseconds).
// The housekeeper calls it about once a second.
func (h *Shared) Sweep(now int64) { h.subsPerIdent.Sweep(now) }

// RateTrips returns how many times a session limit refused something.
func (h *Shared) RateTrips() uint64 { return h.rateTrips.Load() }

// AuthFailures returns how many tokens were missing or refused.
func (h *Shared) AuthFailures() uint64 { return h.authFailures.Load() }

// Initialisation states (connection_init).
const (
	initNone uint32 = iota
	initAcked
)

// Session is one connection's graphql-transport-ws state. Fields not
// marked atomic are owned by the input goroutine. The zero value is
// unusable: call Init.
type Session struct {
	h       *Shared
	conn    Conn
	peer    Peer
	subs    []*subscription
	queries []*query // running or answered; a query is never registered with the dispatcher

	initPayload []byte
	resumes     map[string]history.Position // connection_init's fraised.resume, by operation id (resume.go)
	msgBucket   ratelimit.Bucket
	subBucket   ratelimit.Bucket
	now         int64 // arrival of the message being handled (unix nanoseconds): "now" for the rate limits
	initSeen    bool

	init          atomic.Uint32
	identity      atomic.Pointer[auth.Identity]
	holdsConnSlot atomic.Bool            // counted against the identity's connection cap
	renewal       atomic.Pointer[string] // newest token to renew with; non-nil while renewLoop runs (auth.go)
	ended         atomic.Bool            // End ran: the connection is closing
}

// subscription is an active subscription of a session: the dispatcher's
// part (output, id, operation) and the session's.
type subscription struct {
	dispatch.Subscription
	key     string // unescaped id
	subject string // identity counted against its cap, if any
	// failed: the dispatcher ended it with an error message (a resume
	// position it could not serve); the input goroutine drops it
	// (pruneFailed) before it looks an id up.
	failed atomic.Bool
}

// Query states.
const (
	queryRunning  uint32 = iota
	queryAnswered        // its next and complete were sent
	queryEnded           // completed by the client or the connection closed: its answer is dropped
)

// query is a query operation of a session, run once off the input
// goroutine (runQuery); complete or a close before it answers drops its
// answer.
type query struct {
	id    []byte // JSON string literal, owned
	key   string // unescaped id
	state atomic.Uint32
}

// Init prepares s for a connection over conn from peer. Called once, on
// the input goroutine, before any other method.
func (s *Session) Init(h *Shared, conn Conn, peer Peer) {
	s.h, s.conn, s.peer = h, conn, peer
}

// Acked reports whether connection_init was acknowledged. Safe for
// concurrent use.
func (s *Session) Acked() bool { return s.init.Load() == initAcked }

// Identity returns the verified identity, or nil (anonymous, or not yet
// verified). Safe for concurrent use.
func (s *Session) Identity() *auth.Identity { return s.identity.Load() }

// ExpireInit closes a session that has not acknowledged connection_init
// (4408); the transport calls it at its initialisation deadline. Safe for
// concurrent use.
func (s *Session) ExpireInit() {
	if !s.Acked() {
		s.conn.Close(proto.CloseInitTimeout, "Connection initialisation timeout")
	}
}

// End releases the session when its connection closes: it removes its
// subscriptions, drops the answers of running queries and gives back its
// identity's connection slot. Called on the input goroutine, once; no
// other input method is called after it.
func (s *Session) End() {
	s.ended.Store(true)
	for _, sub := range s.subs {
		s.unsubscribe(sub)
	}
	s.subs = nil
	for _, q := range s.queries {
		q.state.CompareAndSwap(queryRunning, queryEnded)
	}
	s.queries = nil
	if s.holdsConnSlot.Swap(false) {
		s.h.identConns.Release(s.identity.Load().Subject)
	}
}

// audit writes a record about this session; it never blocks.
func (s *Session) audit(event string, r audit.Record) {
	if s.h.Audit == nil {
		return
	}
	r.Event = event
	r.Remote, r.ConnID = s.peer.Remote, s.peer.ID
	if id := s.identity.Load(); id != nil && r.Subject == "" {
		r.Subject = id.Subject
	}
	s.h.Audit.Write(r)
}

// refused logs a refusal of kind for this session's peer.
func (s *Session) refused(kind, reason, fix string) {
	s.h.Refused(kind, s.peer.Remote, reason, fix)
}
