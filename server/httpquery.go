package server

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/fraised/fraised/audit"
	"github.com/fraised/fraised/auth"
	"github.com/fraised/fraised/edge"
	"github.com/fraised/fraised/gql"
	"github.com/fraised/fraised/httpgql"
	"github.com/fraised/fraised/session"
)

// The rules of a GraphQL-over-HTTP query, shared by the gnet listener's
// /graphql (graphqlhttp.go) and Handler (handler.go): the refusals from
// the request's head, the cap on running queries, token verification and
// the identity's operation rate, and the audit records, which are a
// WebSocket operation's (subscribe.accepted, subscribe.refused,
// ratelimit, auth.failed) with the client's address (and, on the
// listener, its connection id).

// queryRefusal checks a GraphQL-over-HTTP request from its head alone:
// the drain, the Origin allowlist, the size cap and, with --auth
// required, that it carries a token. It returns the status, code and
// message of the refusal, or status 0. It has no side effect, so a caller
// may ask twice (the listener asks before reading the body, and again
// when routing).
func (s *Server) queryRefusal(req *http.Request) (int, string, string) {
	g := s.guard
	switch {
	case s.draining.Load():
		return http.StatusServiceUnavailable, CodeDraining, "server is draining (shutting down): retry on another instance"
	case !g.originAllowed(req.Header.Get("Origin"), req.Host):
		return http.StatusForbidden, CodeOriginNotAllowed, "origin not allowed: " + echoedOrigin(req.Header.Get("Origin"))
	case req.ContentLength > int64(s.opts.MaxMessage):
		return http.StatusRequestEntityTooLarge, httpgql.CodeRequestTooLarge,
			"request body is " + strconv.FormatInt(req.ContentLength, 10) + " bytes, more than the limit of " + strconv.Itoa(s.opts.MaxMessage) + " (--max-message)"
	case g.Auth == auth.ModeRequired && tokenOf(req, g.Cookie) == "":
		return http.StatusUnauthorized, CodeUnauthenticated, "authentication required: send Authorization: Bearer <token>"
	}
	return 0, "", ""
}

// echoedOrigin is an Origin as a refusal may quote it: valid UTF-8, at
// most maxEchoedOrigin bytes.
func echoedOrigin(origin string) string {
	return truncate(strings.ToValidUTF8(origin, "\uFFFD"), maxEchoedOrigin)
}

// noteOriginRefused logs the refusal of a request from remote whose
// Origin is not allowed, with the fix (allow it if pages on it may
// verb), and returns the Origin as the 403 quotes it. The listener's
// upgrades and queries and Handler's share it.
func (s *Server) noteOriginRefused(remote, origin, verb string) string {
	origin = echoedOrigin(origin)
	s.refusals.note("origin", remote, "origin not allowed: "+origin+" (HTTP 403)",
		"add "+strconv.Quote(origin)+" to --allowed-origins (FRAISED_ALLOWED_ORIGINS) if pages on it may "+verb)
	return origin
}

// refuseQuery answers a query refused before it ran (queryRefusal, a rate
// limit, the running-queries cap), logs an Origin refusal for the
// operator and audits the refusal: subscribe.refused, or ratelimit for
// 429.
func (s *Server) refuseQuery(h *httpgql.Handler, req *http.Request, peer session.Peer, status int, code, msg string) httpgql.Response {
	event := audit.EventSubscribeRefused
	switch status {
	case http.StatusForbidden:
		s.noteOriginRefused(peer.Remote, req.Header.Get("Origin"), "query")
	case http.StatusTooManyRequests:
		event = audit.EventRateLimit
	}
	s.audit(event, peer, audit.Record{Reason: "GraphQL over HTTP: " + msg})
	return refusal(h, strings.Join(req.Header.Values("Accept"), ","), status, code, msg)
}

// refusal is h's refusal with status, code and msg, told when to retry:
// Retry-After 1 for 429 (the rate buckets refill within a second), the
// edge's RetryAfterSeconds for 503.
func refusal(h *httpgql.Handler, accept string, status int, code, msg string) httpgql.Response {
	r := h.Refuse(accept, status, code, msg)
	switch status {
	case http.StatusTooManyRequests:
		r.Header = append(r.Header, [2]string{"Retry-After", "1"})
	case http.StatusServiceUnavailable:
		r.Header = append(r.Header, [2]string{"Retry-After", strconv.Itoa(edge.RetryAfterSeconds)})
	}
	return r
}

// startQuery takes one of the MaxHTTPQueries running-query tokens; false
// (refuse with 503) when every one is taken. endQuery gives it back.
func (s *Server) startQuery(peer session.Peer) bool {
	select {
	case s.routes.running <- struct{}{}:
		return true
	default:
		s.refusals.note("server_busy", peer.Remote, "too many GraphQL-over-HTTP queries running (HTTP 503)",
			"queries wait on slow resolvers: check resolver latency")
		return false
	}
}

// endQuery gives back a token of startQuery.
func (s *Server) endQuery() { <-s.routes.running }

// busyMessage answers a query past MaxHTTPQueries.
const busyMessage = "server busy: too many queries running; retry later"

// answerQuery verifies token (when the server authenticates and the
// request carries one), applies the identity's operation rate, runs the
// query through h and audits what became of it. It blocks while the
// resolvers run: call it off any event loop.
func (s *Server) answerQuery(ctx context.Context, h *httpgql.Handler, req *httpgql.Request, token string, peer session.Peer) (resp httpgql.Response) {
	defer func() {
		if r := recover(); r != nil {
			s.log.Error("BUG: panic while answering a GraphQL-over-HTTP request", "panic", r, "remote", peer.Remote)
			resp = h.Refuse(req.Accept, http.StatusInternalServerError, "INTERNAL_SERVER_ERROR", "internal server error")
		}
	}()
	var env gql.Env
	subject := ""
	if token != "" && s.guard.Auth != auth.ModeOff {
		id, err := s.guard.Verifier.Verify(ctx, token)
		if err != nil {
			s.sess.CountAuthFailure()
			reason := auth.ReasonOf(err).String()
			s.audit(audit.EventAuthFailed, peer, audit.Record{Reason: "GraphQL over HTTP: " + reason})
			s.refusals.note("auth", peer.Remote, "token refused (HTTP 401): "+reason, httpAuthFix)
			return h.Refuse(req.Accept, http.StatusUnauthorized, CodeUnauthenticated, "token refused: "+reason)
		}
		subject = id.Subject
		if !s.sess.AllowOperation(subject, time.Now().UnixNano()) {
			s.audit(audit.EventRateLimit, peer, audit.Record{Subject: subject, Reason: "GraphQL over HTTP: too many operations for this identity"})
			return refusal(h, req.Accept, http.StatusTooManyRequests, CodeRateLimited, "rate limit exceeded: operations for this identity")
		}
		env.Claims, env.Roles, env.Scopes = id.Claims, id.Roles, id.Scopes
	}
	resp = h.Serve(ctx, req, env)
	s.auditOperation(peer, subject, resp.Operation)
	return resp
}

// auditOperation writes the record of a query's operation, as a
// WebSocket subscribe message's: subscribe.accepted when it ran,
// subscribe.refused with the first error when it did not. A request that
// named no operation (malformed) writes none, as a malformed WebSocket
// message does.
func (s *Server) auditOperation(peer session.Peer, subject string, op *httpgql.Operation) {
	if s.guard.Audit == nil || op == nil {
		return
	}
	event, r := audit.EventSubscribeAccepted, audit.Record{}
	if op.Compiled != nil {
		r = session.AcceptedRecord(op.Compiled, op.Query)
	} else {
		event, r = audit.EventSubscribeRefused, session.RefusedRecord(op.Query, op.Name, "GraphQL over HTTP: "+op.Refused)
	}
	r.Subject = subject
	s.audit(event, peer, r)
}
