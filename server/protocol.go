package server

import (
	"context"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/cespare/xxhash/v2"
	"github.com/gobwas/ws"
	"github.com/panjf2000/gnet/v2"
	"github.com/tidwall/gjson"

	"github.com/fraised/fraised/audit"
	"github.com/fraised/fraised/auth"
	"github.com/fraised/fraised/codec"
	"github.com/fraised/fraised/gql"
	"github.com/fraised/fraised/proto"
)

// onMessage runs one graphql-transport-ws message; b is valid until it
// returns. This is the protocol's state machine.
func (c *wsConn) onMessage(b []byte) {
	defer c.recoverInternal()
	if testHookMessage != nil {
		testHookMessage()
	}
	g := c.srv.guard
	if !c.msgBucket.Allow(g.Limits.MessagesPerConn, c.lastRead.Load()) {
		g.rateTrips.Add(1)
		g.audit(audit.EventRateLimit, c, audit.Record{Reason: "too many messages"})
		c.srv.refusals.note("message_rate", c.remoteAddr, "too many messages on one connection (closed 4429)",
			"raise --limit-messages (FRAISED_LIMIT_MESSAGES) if this client is legitimate")
		c.closeWith(proto.CloseTooManyInitRequests, "Too many messages")
		return
	}
	m, err := proto.Decode(b)
	if err != nil {
		c.closeWith(proto.CloseBadRequest, err.Error())
		return
	}
	switch m.Type {
	case proto.TypeConnectionInit:
		c.onInit(m)
	case proto.TypePing:
		c.onPing(m)
	case proto.TypePong:
	case proto.TypeSubscribe:
		c.onSubscribe(m)
	case proto.TypeComplete:
		c.onComplete(m.IDString)
	}
}

// testHookMessage, when set by a test, runs at the start of every message
// (to exercise the internal-error path).
var testHookMessage func()

// recoverInternal turns a panic while handling a message into close 4500,
// so one bad message costs one connection, never the server.
func (c *wsConn) recoverInternal() {
	if r := recover(); r != nil {
		c.srv.log.Error("BUG: panic while handling a message", "panic", r, "remote", c.remoteAddr)
		c.closeWith(proto.CloseInternalError, "Internal server error")
	}
}

func (c *wsConn) onInit(m proto.Message) {
	if c.initSeen {
		c.closeWith(proto.CloseTooManyInitRequests, "Too many initialisation requests")
		return
	}
	c.initSeen = true
	if !c.initResume(m.Payload) {
		return
	}
	c.initPayload = append([]byte{}, m.Payload...)
	if len(c.initPayload) == 0 {
		c.initPayload = []byte("{}")
	}
	g := c.srv.guard
	if g.Auth == auth.ModeOff {
		c.ackInit()
		return
	}
	token := g.tokenFor(c, c.initPayload)
	if token == "" {
		if g.Auth == auth.ModeRequired {
			g.authFailures.Add(1)
			g.audit(audit.EventAuthFailed, c, audit.Record{Reason: "no token"})
			c.srv.refusals.note("auth", c.remoteAddr, "no token (closed 4403): --auth required and none in connection_init, Authorization or cookie",
				"send \"Bearer <jwt>\" in the connection_init payload key --auth-init-key, or run with --auth optional")
			c.closeWith(proto.CloseForbidden, "Forbidden")
			return
		}
		g.audit(audit.EventAuthOK, c, audit.Record{Reason: "anonymous"})
		c.ackInit()
		return
	}
	go c.authenticate(token)
}

// ackInit completes initialisation. Safe for concurrent use.
func (c *wsConn) ackInit() {
	c.init.Store(initAcked)
	c.srv.conns.acked(c)
	c.send(codec.FrameAck)
}

// onPing answers a ping with a pong echoing its payload, as the
// graphql-ws reference server does, less the token key (a token is never
// sent back); a ping whose payload carries a token renews the connection's
// identity without reconnecting.
func (c *wsConn) onPing(m proto.Message) {
	g := c.srv.guard
	if m.Payload == nil {
		c.send(codec.FramePong)
	} else {
		c.send(appendPong(nil, m.Payload, g.InitKey, c.srv.opts.MaxMessage))
	}
	if g.Auth == auth.ModeOff || m.Payload == nil || c.identity.Load() == nil {
		return
	}
	if token, ok := auth.TokenFromInitPayload(m.Payload, g.InitKey); ok {
		go c.renew(token)
	}
}

// pongPrefix starts a pong message with a payload.
const pongPrefix = `{"type":"pong","payload":`

// appendPong appends a pong text frame whose payload is the JSON object
// payload without its members named dropKey (in any case, as the token
// extractor matches it). The echo is never larger than
// the ping it answers; should it exceed maxMessage anyway, the pong goes
// without a payload.
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
		return append(dst, codec.FramePong...)
	}
	return codec.AppendFrame(dst, ws.OpText, body)
}

func (c *wsConn) onSubscribe(m proto.Message) {
	if c.init.Load() != initAcked {
		c.closeWith(proto.CloseUnauthorized, "Unauthorized")
		return
	}
	if c.find(m.IDString) != nil || c.findQuery(m.IDString) != nil {
		c.closeWith(proto.CloseSubscriberExists, existsReason(m.IDString))
		return
	}
	if reason, fix := c.admit(); reason != "" {
		c.srv.refusals.note("subscribe_limit", c.remoteAddr, reason, fix)
		c.refuse(m, audit.EventRateLimit, reason, nil)
		return
	}
	req := gql.Request{
		Query:         strings.Clone(m.Query),
		OperationName: strings.Clone(m.OperationName),
		Variables:     append([]byte(nil), m.Variables...),
	}
	op, errs := c.srv.opts.Schema.Compile(req, c.env())
	if len(errs) > 0 {
		c.refuse(m, audit.EventSubscribeRefused, errs[0].Message, gql.AppendErrors(nil, errs))
		return
	}
	if op.Kind == gql.KindQuery {
		q := &query{id: append([]byte(nil), m.ID...), key: strings.Clone(m.IDString)}
		c.queries = append(c.queries, q)
		c.auditAccepted(op)
		go c.runQuery(q, op)
		return
	}
	s := &subscription{conn: c, key: strings.Clone(m.IDString)}
	s.Out, s.ID, s.Op = &c.out, append([]byte(nil), m.ID...), op
	if !c.setResume(s, m) {
		return
	}
	if id := c.identity.Load(); id != nil {
		if !c.srv.guard.identSubs.Acquire(id.Subject) {
			c.srv.guard.rateTrips.Add(1)
			c.srv.refusals.note("subscribe_limit", c.remoteAddr, "too many active operations for this identity",
				"raise --max-identity-subscriptions (FRAISED_MAX_IDENTITY_SUBSCRIPTIONS)")
			c.refuse(m, audit.EventRateLimit, "too many active operations for this identity", nil)
			return
		}
		s.subject = id.Subject
	}
	if !c.srv.d.QueueAdd(&s.Subscription) {
		if s.subject != "" {
			c.srv.guard.identSubs.Release(s.subject)
		}
		c.srv.refusals.note("server_busy", c.remoteAddr, reasonBusy,
			"the dispatcher is stalled (a slow resolver, or a burst of subscribes): check resolver latency and CPU")
		c.refuse(m, audit.EventSubscribeRefused, reasonBusy, nil)
		return
	}
	c.subs = append(c.subs, s)
	c.auditAccepted(op)
}

// auditAccepted audits an accepted subscribe message.
func (c *wsConn) auditAccepted(op *gql.Operation) {
	if c.srv.guard.Audit != nil {
		c.srv.guard.audit(audit.EventSubscribeAccepted, c, audit.Record{Operation: op.OperationName, Field: op.Field,
			DocHash: strconv.FormatUint(op.DocHash, 16), Topic: op.Topic})
	}
}

// reasonBusy answers a subscribe that finds the dispatcher's queue full
// (maxQueuedAdds): nothing was registered and the client may retry.
const reasonBusy = "server busy: too many subscribes are waiting to be registered; retry later"

// admit applies the per-connection and per-identity subscribe limits; it
// returns why a subscribe is refused and the setting that allows it, or "".
func (c *wsConn) admit() (reason, fix string) {
	g := c.srv.guard
	now := c.lastRead.Load() // the subscribe's arrival
	switch {
	case len(c.subs)+len(c.queries) >= c.srv.opts.MaxSubscriptionsPerConn:
		return "too many active operations on this connection", "raise --max-subscriptions (FRAISED_MAX_SUBSCRIPTIONS)"
	case !c.subBucket.Allow(g.Limits.SubscribesPerConn, now):
		g.rateTrips.Add(1)
		return "rate limit exceeded: subscribe operations on this connection", "raise --limit-subscribes (FRAISED_LIMIT_SUBSCRIBES)"
	}
	if id := c.identity.Load(); id != nil && !g.Limits.SubscribesPerIdentity.Unlimited() && !g.subsPerIdent.Allow(id.Subject, now) {
		g.rateTrips.Add(1)
		return "rate limit exceeded: subscribe operations for this identity", "raise --limit-identity-subscribes (FRAISED_LIMIT_IDENTITY_SUBSCRIBES)"
	}
	return "", ""
}

// refuse answers a subscribe with an error message (the socket stays
// open) and audits it as event. errs is a JSON array, or nil to build one
// from reason.
func (c *wsConn) refuse(m proto.Message, event, reason string, errs []byte) {
	if errs == nil {
		errs = append(codec.AppendJSONString([]byte(`[{"message":`), reason), "}]"...)
	}
	if c.srv.guard.Audit != nil {
		c.srv.guard.audit(event, c, audit.Record{Operation: m.OperationName, Reason: reason,
			Field: rootField(m.Query, m.OperationName), DocHash: strconv.FormatUint(xxhash.Sum64String(m.Query), 16)})
	}
	c.sendErrors(m.ID, errs)
}

// env is what the compiler knows of the connection's identity.
func (c *wsConn) env() gql.Env {
	env := gql.Env{InitPayload: c.initPayload}
	if id := c.identity.Load(); id != nil {
		env.Claims, env.Roles, env.Scopes = id.Claims, id.Roles, id.Scopes
	}
	return env
}

// runQuery executes a query operation off the event loop (resolvers may
// block) and answers next then complete, unless it was completed or the
// connection closed meanwhile.
func (c *wsConn) runQuery(q *query, op *gql.Operation) {
	result := op.AppendQueryResult(context.Background(), nil)
	if q.ended.Load() {
		return
	}
	frame := codec.AppendNext(nil, q.id, result)
	frame = codec.AppendComplete(frame, q.id)
	c.send(frame)
	_ = c.gc.Wake(func(gnet.Conn, error) error { c.queries = drop(c.queries, q); return nil })
}

func (c *wsConn) onComplete(id string) {
	if s := c.find(id); s != nil {
		c.subs = drop(c.subs, s)
		c.unsubscribe(s)
	} else if q := c.findQuery(id); q != nil {
		c.queries = drop(c.queries, q)
		q.ended.Store(true)
	}
}

// find returns the active subscription with id, or nil. Connections hold
// few operations (capped), so a scan beats a map in time and memory.
func (c *wsConn) find(id string) *subscription {
	for _, s := range c.subs {
		if s.key == id {
			return s
		}
	}
	return nil
}

// findQuery returns the running query with id, or nil.
func (c *wsConn) findQuery(id string) *query {
	for _, q := range c.queries {
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

// unsubscribe queues s's removal from the registry and releases its
// identity slot.
func (c *wsConn) unsubscribe(s *subscription) {
	if !s.Remove() {
		return
	}
	if s.subject != "" {
		c.srv.guard.identSubs.Release(s.subject)
	}
	c.srv.d.QueueRemove(&s.Subscription)
}

// sendErrors sends an error message for id; errs is a JSON array.
func (c *wsConn) sendErrors(id, errs []byte) {
	c.send(codec.AppendError(nil, id, errs))
}

// truncate cuts s to at most n bytes on a rune boundary, so a valid UTF-8
// string stays valid (close reasons and HTTP bodies must be UTF-8).
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
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
		q := codec.AppendJSONString(tmp[:0], id[i:i+w])
		if len(b)+len(q)-2 > limit {
			break
		}
		b = append(b, q[1:len(q)-1]...)
	}
	return string(append(b, suffix...))
}
