package session

import (
	"context"
	"strings"
	"unicode/utf8"

	"github.com/tidwall/gjson"

	"github.com/fraised/fraised/audit"
	"github.com/fraised/fraised/auth"
	"github.com/fraised/fraised/codec"
	"github.com/fraised/fraised/gql"
	"github.com/fraised/fraised/internal/jsonx"
	"github.com/fraised/fraised/proto"
)

// OnMessage runs one graphql-transport-ws message that arrived at now
// (unix nanoseconds); b is one whole text message, valid UTF-8 (the
// transport checks it), valid until OnMessage returns. This is the
// protocol's state machine. Called on the input goroutine.
func (s *Session) OnMessage(b []byte, now int64) {
	defer s.recoverInternal()
	if testHookMessage != nil {
		testHookMessage()
	}
	s.now = now
	if !s.allowMessage(now) {
		return
	}
	m, err := proto.Decode(b)
	if err != nil {
		s.conn.Close(proto.CloseBadRequest, err.Error())
		return
	}
	switch m.Type {
	case proto.TypeConnectionInit:
		s.onInit(m)
	case proto.TypePing:
		s.onPing(m)
	case proto.TypePong:
	case proto.TypeSubscribe:
		s.onSubscribe(m)
	case proto.TypeComplete:
		s.onComplete(m.IDString)
	}
}

// ControlAllowed counts a transport-level message (a WebSocket ping
// control frame) that arrived at now against --limit-messages, so a peer
// cannot flood those for free; past the limit it closes the session with
// 4429 and reports false. Called on the input goroutine.
func (s *Session) ControlAllowed(now int64) bool { return s.allowMessage(now) }

// allowMessage takes a --limit-messages token for a message that arrived
// at now; past the limit it counts, audits and logs the refusal, closes
// the session with 4429 and reports false. Called on the input goroutine.
func (s *Session) allowMessage(now int64) bool {
	h := s.h
	if s.msgBucket.Allow(h.Limits.MessagesPerConn, now) {
		return true
	}
	h.rateTrips.Add(1)
	s.audit(audit.EventRateLimit, audit.Record{Reason: "too many messages"})
	s.refused("message_rate", "too many messages on one connection (closed 4429)",
		"raise --limit-messages (FRAISED_LIMIT_MESSAGES) if this client is legitimate")
	s.conn.Close(proto.CloseTooManyInitRequests, "Too many messages")
	return false
}

// testHookMessage, when set by a test, runs at the start of every message
// (to exercise the internal-error path).
var testHookMessage func()

// recoverInternal turns a panic while handling a message into close 4500,
// so one bad message costs one connection, never the server.
func (s *Session) recoverInternal() {
	if r := recover(); r != nil {
		s.h.Log.Error("BUG: panic while handling a message", "panic", r, "remote", s.peer.Remote)
		s.conn.Close(proto.CloseInternalError, "Internal server error")
	}
}

func (s *Session) onInit(m proto.Message) {
	if s.initSeen {
		s.conn.Close(proto.CloseTooManyInitRequests, "Too many initialisation requests")
		return
	}
	s.initSeen = true
	if !s.initResume(m.Payload) {
		return
	}
	s.initPayload = append([]byte{}, m.Payload...)
	if len(s.initPayload) == 0 {
		s.initPayload = []byte("{}")
	}
	h := s.h
	if h.Auth == auth.ModeOff {
		s.ackInit()
		return
	}
	token := s.tokenFor(s.initPayload)
	if token == "" {
		if h.Auth == auth.ModeRequired {
			h.authFailures.Add(1)
			s.audit(audit.EventAuthFailed, audit.Record{Reason: "no token"})
			s.refused("auth", "no token (closed 4403): --auth required and none in connection_init, Authorization or cookie",
				"send \"Bearer <jwt>\" in the connection_init payload key --auth-init-key, or run with --auth optional")
			s.conn.Close(proto.CloseForbidden, "Forbidden")
			return
		}
		s.audit(audit.EventAuthOK, audit.Record{Reason: "anonymous"})
		s.ackInit()
		return
	}
	go s.authenticate(token)
}

// ackInit completes initialisation. Safe for concurrent use.
func (s *Session) ackInit() {
	s.init.Store(initAcked)
	s.conn.Initialised()
	s.conn.Send(proto.MessageAck)
}

// onPing answers a ping with a pong echoing its payload, as the
// graphql-ws reference server does, less the token key (a token is never
// sent back); a ping whose payload carries a token renews the connection's
// identity without reconnecting.
func (s *Session) onPing(m proto.Message) {
	h := s.h
	if m.Payload == nil {
		s.conn.Send(proto.MessagePong)
	} else {
		s.conn.Send(appendPong(nil, m.Payload, h.InitKey, h.MaxMessage))
	}
	if h.Auth == auth.ModeOff || m.Payload == nil || s.identity.Load() == nil {
		return
	}
	if token, ok := auth.TokenFromInitPayload(m.Payload, h.InitKey); ok {
		s.queueRenewal(token)
	}
}

// pongPrefix starts a pong message with a payload.
const pongPrefix = `{"type":"pong","payload":`

// appendPong appends a pong message whose payload is the JSON object
// payload without its members named dropKey (in any case, as the token
// extractor matches it). The echo is never larger than the ping it
// answers; should it exceed maxMessage anyway, the pong goes without a
// payload.
func appendPong(dst, payload []byte, dropKey string, maxMessage int) []byte {
	body := make([]byte, 0, len(pongPrefix)+len(payload)+1)
	body = append(body, pongPrefix...)
	body = append(body, '{')
	first := true
	gjson.ParseBytes(payload).ForEach(func(k, v gjson.Result) bool {
		if strings.EqualFold(k.Str, dropKey) {
			return true
		}
		if !first {
			body = append(body, ',')
		}
		first = false
		body = append(body, k.Raw...)
		body = append(body, ':')
		body = append(body, v.Raw...)
		return true
	})
	body = append(body, "}}"...)
	if len(body) > maxMessage {
		return append(dst, proto.MessagePong...)
	}
	return append(dst, body...)
}

func (s *Session) onSubscribe(m proto.Message) {
	if s.init.Load() != initAcked {
		s.conn.Close(proto.CloseUnauthorized, "Unauthorized")
		return
	}
	s.pruneQueries()
	s.pruneFailed()
	if s.find(m.IDString) != nil || s.findQuery(m.IDString) != nil {
		s.conn.Close(proto.CloseSubscriberExists, existsReason(m.IDString))
		return
	}
	if reason, fix := s.admit(); reason != "" {
		s.refused("subscribe_limit", reason, fix)
		s.refuse(m, audit.EventRateLimit, reason, nil)
		return
	}
	req := gql.Request{
		Query:         strings.Clone(m.Query),
		OperationName: strings.Clone(m.OperationName),
		Variables:     append([]byte(nil), m.Variables...),
	}
	op, errs := s.h.Schema.Compile(req, s.env())
	if len(errs) > 0 {
		s.refuse(m, audit.EventSubscribeRefused, errs[0].Message, gql.AppendErrors(nil, errs))
		return
	}
	if op.Kind == gql.KindQuery {
		q := &query{id: append([]byte(nil), m.ID...), key: strings.Clone(m.IDString)}
		s.queries = append(s.queries, q)
		s.auditAccepted(op, m.Query)
		go s.runQuery(q, op)
		return
	}
	s.addSubscription(m, op)
}

// addSubscription registers a compiled subscription with the dispatcher,
// within the identity's cap.
func (s *Session) addSubscription(m proto.Message, op *gql.Operation) {
	sub := &subscription{key: strings.Clone(m.IDString)}
	sub.Out, sub.ID, sub.Op = s.conn.Output(), append([]byte(nil), m.ID...), op
	if !s.setResume(sub, m) {
		return
	}
	if id := s.identity.Load(); id != nil {
		if !s.h.identSubs.Acquire(id.Subject) {
			s.h.rateTrips.Add(1)
			s.refused("subscribe_limit", "too many active operations for this identity",
				"raise --max-identity-subscriptions (FRAISED_MAX_IDENTITY_SUBSCRIPTIONS)")
			s.refuse(m, audit.EventRateLimit, "too many active operations for this identity", nil)
			return
		}
		sub.subject = id.Subject
	}
	if !s.h.Dispatcher.QueueAdd(&sub.Subscription) {
		if sub.subject != "" {
			s.h.identSubs.Release(sub.subject)
		}
		s.refused("server_busy", reasonBusy,
			"the dispatcher is stalled (a slow resolver, or a burst of subscribes): check resolver latency and CPU")
		s.refuse(m, audit.EventSubscribeRefused, reasonBusy, nil)
		return
	}
	s.spendResume(sub.key)
	s.subs = append(s.subs, sub)
	s.auditAccepted(op, m.Query)
}

// auditAccepted audits an accepted subscribe message.
func (s *Session) auditAccepted(op *gql.Operation, query string) {
	if s.h.Audit != nil {
		s.audit(audit.EventSubscribeAccepted, AcceptedRecord(op, query))
	}
}

// reasonBusy answers a subscribe that finds the dispatcher's queue full
// (maxQueuedAdds): nothing was registered and the client may retry.
const reasonBusy = "server busy: too many subscribes are waiting to be registered; retry later"

// admit applies the per-connection and per-identity subscribe limits; it
// returns why a subscribe is refused and the setting that allows it, or "".
func (s *Session) admit() (reason, fix string) {
	h := s.h
	now := s.now // the subscribe's arrival
	switch {
	case len(s.subs)+len(s.queries) >= h.Limits.MaxOperations:
		return "too many active operations on this connection", "raise --max-subscriptions (FRAISED_MAX_SUBSCRIPTIONS)"
	case !s.subBucket.Allow(h.Limits.SubscribesPerConn, now):
		h.rateTrips.Add(1)
		return "rate limit exceeded: subscribe operations on this connection", "raise --limit-subscribes (FRAISED_LIMIT_SUBSCRIBES)"
	}
	if id := s.identity.Load(); id != nil && !h.Limits.SubscribesPerIdentity.Unlimited() && !h.subsPerIdent.Allow(id.Subject, now) {
		h.rateTrips.Add(1)
		return "rate limit exceeded: subscribe operations for this identity", "raise --limit-identity-subscribes (FRAISED_LIMIT_IDENTITY_SUBSCRIBES)"
	}
	return "", ""
}

// refuse answers a subscribe with an error message (the connection stays
// open) and audits it as event. errs is a JSON array, or nil to build one
// from reason.
func (s *Session) refuse(m proto.Message, event, reason string, errs []byte) {
	if errs == nil {
		errs = append(jsonx.AppendString([]byte(`[{"message":`), reason), "}]"...)
	}
	if s.h.Audit != nil {
		s.audit(event, RefusedRecord(m.Query, m.OperationName, reason))
	}
	s.sendErrors(m.ID, errs)
}

// env is what the compiler knows of the connection's identity.
func (s *Session) env() gql.Env {
	env := gql.Env{InitPayload: s.initPayload}
	if id := s.identity.Load(); id != nil {
		env.Claims, env.Roles, env.Scopes = id.Claims, id.Roles, id.Scopes
	}
	return env
}

// runQuery executes a query operation off the input goroutine (resolvers
// may block, up to --resolver-timeout: Config.Queries) and answers next
// then complete, unless it was completed or the connection closed
// meanwhile. Called on its own goroutine.
func (s *Session) runQuery(q *query, op *gql.Operation) {
	result := s.h.Queries.Append(context.Background(), nil, op)
	if !q.state.CompareAndSwap(queryRunning, queryAnswered) {
		return
	}
	s.conn.Send(proto.AppendNext(nil, q.id, result))
	s.conn.Send(proto.AppendComplete(nil, q.id))
}

func (s *Session) onComplete(id string) {
	s.pruneQueries()
	s.pruneFailed()
	if sub := s.find(id); sub != nil {
		s.subs = drop(s.subs, sub)
		s.unsubscribe(sub)
	} else if q := s.findQuery(id); q != nil {
		s.queries = drop(s.queries, q)
		q.state.CompareAndSwap(queryRunning, queryEnded)
	}
}

// pruneQueries forgets the queries that were answered: their ids are free
// again and they no longer count against the operations cap.
func (s *Session) pruneQueries() {
	for i := 0; i < len(s.queries); {
		if q := s.queries[i]; q.state.Load() != queryRunning {
			s.queries = drop(s.queries, q)
			continue
		}
		i++
	}
}

// find returns the active subscription with id, or nil. Connections hold
// few operations (capped), so a scan beats a map in time and memory.
func (s *Session) find(id string) *subscription {
	for _, sub := range s.subs {
		if sub.key == id {
			return sub
		}
	}
	return nil
}

// findQuery returns the running query with id, or nil.
func (s *Session) findQuery(id string) *query {
	for _, q := range s.queries {
		if q.key == id {
			return q
		}
	}
	return nil
}

// drop removes x from list (order is not kept) and returns the list.
func drop[T comparable](list []T, x T) []T {
	for i, y := range list {
		if y == x {
			last := len(list) - 1
			list[i] = list[last]
			var zero T
			list[last] = zero
			return list[:last]
		}
	}
	return list
}

// unsubscribe queues sub's removal from the registry and releases its
// identity slot.
func (s *Session) unsubscribe(sub *subscription) {
	if !sub.Remove() {
		return
	}
	if sub.subject != "" {
		s.h.identSubs.Release(sub.subject)
	}
	s.h.Dispatcher.QueueRemove(&sub.Subscription)
}

// sendErrors sends an error message for id; errs is a JSON array.
func (s *Session) sendErrors(id, errs []byte) {
	s.conn.Send(proto.AppendError(nil, id, errs))
}

// existsReason is the 4409 reason for id, as the graphql-ws reference
// server words it. The id is JSON-escaped (control characters and quotes
// never reach the client's logs raw; invalid UTF-8 becomes \ufffd) and cut
// between characters, never inside one or inside an escape, so that the
// whole reason fits the 123 bytes a close frame allows.
func existsReason(id string) string {
	const prefix, suffix = "Subscriber for ", " already exists"
	limit := codec.MaxCloseReason - len(suffix)
	b := make([]byte, 0, codec.MaxCloseReason)
	b = append(b, prefix...)
	var tmp [16]byte
	for i, w := 0, 0; i < len(id); i += w {
		_, w = utf8.DecodeRuneInString(id[i:])
		q := jsonx.AppendString(tmp[:0], id[i:i+w])
		if len(b)+len(q)-2 > limit {
			break
		}
		b = append(b, q[1:len(q)-1]...)
	}
	return string(append(b, suffix...))
}
