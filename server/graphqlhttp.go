package server

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/fraised/fraised/audit"
	"github.com/fraised/fraised/auth"
	"github.com/fraised/fraised/edge"
	"github.com/fraised/fraised/gql"
	"github.com/fraised/fraised/graphiql"
	"github.com/fraised/fraised/httpgql"
	"github.com/fraised/fraised/ratelimit"
	"github.com/fraised/fraised/resolve"
	"github.com/fraised/fraised/session"
)

// GraphiQLPath is where the embedded GraphiQL page is served (and at /
// unless Options.DisableGraphiQLRoot).
const GraphiQLPath = graphiql.DefaultPrefix

// MaxHTTPQueries caps the GraphQL-over-HTTP queries running at once
// across the server: each holds a goroutine and its request (at most
// --max-message, 64 KiB by default), so 256 of them hold at most 16 MiB,
// while queries (compiled-in resolvers, introspection) take milliseconds
// and a few hundred in flight serve thousands per second. Past it a
// request gets 503 with Retry-After.
const MaxHTTPQueries = 256

// httpQueryTimeout bounds one GraphQL-over-HTTP query, token
// verification included: the resolvers' context ends then, and the
// answer (a field error from a resolver that honours it) goes out. It
// matches DefaultHTTPReadTimeout, the time a client is given to send a
// request.
const httpQueryTimeout = 10 * time.Second

// httpAuthFix is what an operator checks when tokens are refused.
const httpAuthFix = "check the client's token against the verifier: --jwt-secret-file/--jwt-public-key/--jwks, --jwt-audience, --jwt-issuer, --jwt-leeway"

// Codes in extensions.code of the GraphQL-over-HTTP refusals the server
// itself answers (before the request reaches httpgql).
const (
	CodeUnauthenticated  = "UNAUTHENTICATED"
	CodeOriginNotAllowed = "ORIGIN_NOT_ALLOWED"
	CodeRateLimited      = "RATE_LIMITED"
	CodeServerBusy       = "SERVER_BUSY"
	CodeDraining         = "SERVER_DRAINING"
)

// httpQueries is a connection's GraphQL-over-HTTP state: its rate
// buckets (--limit-messages, --limit-subscribes, as a WebSocket's) and
// whether a query runs. The buckets are the event loop's; state is shared
// with the query's goroutine.
type httpQueries struct {
	msgBucket, subBucket ratelimit.Bucket
	state                atomic.Int32 // gqlIdle, gqlRunning, gqlEndAfter
}

// States of a connection's GraphQL-over-HTTP query (httpQueries.state).
const (
	gqlIdle     int32 = iota
	gqlRunning        // a query runs off the loop: further requests wait
	gqlEndAfter       // running, and the connection ends after its answer
)

// httpRoutes are the GraphQL-over-HTTP endpoint and the GraphiQL page on
// the main listener. Immutable after newHTTPRoutes; safe for concurrent
// use.
type httpRoutes struct {
	gql     *httpgql.Handler
	ui      *graphiql.Handler // nil: GraphiQL disabled
	atRoot  bool              // the page is also served at /
	running chan struct{}     // one token per running query (MaxHTTPQueries)
	timeout atomic.Int64      // a query's deadline (httpQueryTimeout; tests shorten it)
	queries *resolve.Queries  // runs the resolvers of queries, HTTP and WebSocket (queries.go)
}

func newHTTPRoutes(s *Server) (*httpRoutes, error) {
	q := queryRunner(s.opts)
	r := &httpRoutes{
		gql:     httpgql.New(s.opts.Schema, httpgql.Options{MaxBodyBytes: s.opts.MaxMessage, Path: GraphQLPath, Execute: q.Append}),
		running: make(chan struct{}, MaxHTTPQueries),
		queries: q,
	}
	r.timeout.Store(int64(httpQueryTimeout))
	if s.opts.DisableGraphiQL {
		return r, nil
	}
	ui, err := graphiql.New(graphiql.Options{Prefix: GraphiQLPath, Endpoint: GraphQLPath, InitKey: s.guard.InitKey})
	if err != nil {
		return nil, err
	}
	r.ui, r.atRoot = ui, !s.opts.DisableGraphiQLRoot
	return r, nil
}

// pageURL is the GraphiQL page's URL on addr, or "off".
func (r *httpRoutes) pageURL(addr string) string {
	if r.ui == nil {
		return "off"
	}
	return "http://" + addr + r.ui.PagePath()
}

// servesPage reports whether path is the GraphiQL page or an asset.
func (r *httpRoutes) servesPage(path string) bool {
	return r.ui != nil && (r.ui.Handles(path) || (r.atRoot && path == "/"))
}

// serveGraphiQL answers a request for the page or one of its assets.
// Called on the event loop (a map lookup, no I/O).
func (c *httpConn) serveGraphiQL(req *http.Request) bool {
	ui := c.srv.routes.ui
	path := req.URL.Path
	if path == "/" {
		path = ui.PagePath()
	}
	r := ui.Serve(req.Method, path, req.Header.Get("If-None-Match"), strings.Join(req.Header.Values("Accept-Encoding"), ","))
	return c.respondRaw(appendHTTP(nil, r.Status, r.Header, r.Body, c.edge.closeAfter))
}

// graphqlRefusal checks a request to /graphql from its head alone: the
// drain, the Origin allowlist, the size cap and, with --auth required,
// that it carries a token. It returns the status, code and message of the
// refusal, or status 0. It takes no rate-limit token, so wantsBody and
// route may both ask.
func (c *httpConn) graphqlRefusal(req *http.Request) (int, string, string) {
	g := c.srv.guard
	switch {
	case c.srv.draining.Load():
		return http.StatusServiceUnavailable, CodeDraining, "server is draining (shutting down): retry on another instance"
	case !g.originAllowed(req.Header.Get("Origin"), req.Host):
		origin := truncate(strings.ToValidUTF8(req.Header.Get("Origin"), "\uFFFD"), maxEchoedOrigin)
		c.srv.refusals.note("origin", c.remoteAddr, "origin not allowed: "+origin+" (HTTP 403)",
			"add "+strconv.Quote(origin)+" to --allowed-origins (FRAISED_ALLOWED_ORIGINS) if pages on it may query")
		return http.StatusForbidden, CodeOriginNotAllowed, "origin not allowed: " + origin
	case req.ContentLength > int64(c.srv.opts.MaxMessage):
		return http.StatusRequestEntityTooLarge, httpgql.CodeRequestTooLarge,
			"request body is " + strconv.FormatInt(req.ContentLength, 10) + " bytes, more than the limit of " + strconv.Itoa(c.srv.opts.MaxMessage) + " (--max-message)"
	case g.Auth == auth.ModeRequired && c.httpToken(req) == "":
		return http.StatusUnauthorized, CodeUnauthenticated, "authentication required: send Authorization: Bearer <token>"
	}
	return 0, "", ""
}

// httpToken is the bearer token of a plain HTTP request: its
// Authorization header, else the --auth-cookie cookie.
func (c *httpConn) httpToken(req *http.Request) string {
	if t, ok := auth.TokenFromHeader(req.Header.Get("Authorization")); ok {
		return t
	}
	if name := c.srv.guard.Cookie; name != "" {
		if t, ok := auth.TokenFromCookie(req.Header.Get("Cookie"), name); ok {
			return t
		}
	}
	return ""
}

// routeGraphQL answers a GraphQL-over-HTTP request: refusals from the
// head and the rate limits on the event loop, the query itself (token
// verification and resolvers, which may block) on its own goroutine.
// body is valid until it returns. false means retry later.
func (c *httpConn) routeGraphQL(req *http.Request, body []byte) bool {
	h := c.srv.routes.gql
	accept := strings.Join(req.Header.Values("Accept"), ",")
	if status, code, msg := c.graphqlRefusal(req); status != 0 {
		return c.respondGQL(h.Refuse(accept, status, code, msg))
	}
	if c.pub != nil && c.pub.Inflight() > 0 {
		// Publish replies are in flight ahead of this request: it waits
		// for them (the housekeeper wakes the connection), so responses
		// leave in request order.
		c.edge.paused.Store(true)
		return false
	}
	g, now := c.srv.guard, time.Now().UnixNano()
	if !c.gql.msgBucket.Allow(g.Limits.MessagesPerConn, now) || !c.gql.subBucket.Allow(g.Limits.SubscribesPerConn, now) {
		g.rateTrips.Add(1)
		g.audit(audit.EventRateLimit, c, audit.Record{Reason: "too many GraphQL-over-HTTP requests"})
		c.srv.refusals.note("message_rate", c.remoteAddr, "too many GraphQL-over-HTTP requests on one connection (HTTP 429)",
			"raise --limit-messages / --limit-subscribes if this client is legitimate")
		r := h.Refuse(accept, http.StatusTooManyRequests, CodeRateLimited, "rate limit exceeded: too many requests on this connection")
		r.Header = append(r.Header, [2]string{"Retry-After", "1"})
		return c.respondGQL(r)
	}
	select {
	case c.srv.routes.running <- struct{}{}:
	default:
		c.srv.refusals.note("server_busy", c.remoteAddr, "too many GraphQL-over-HTTP queries running (HTTP 503)",
			"queries wait on slow resolvers: check resolver latency")
		r := h.Refuse(accept, http.StatusServiceUnavailable, CodeServerBusy,
			"server busy: too many queries running; retry later")
		r.Header = append(r.Header, [2]string{"Retry-After", strconv.Itoa(edge.RetryAfterSeconds)})
		return c.respondGQL(r)
	}
	hreq := &httpgql.Request{
		Method:      req.Method,
		RawQuery:    req.URL.RawQuery,
		ContentType: req.Header.Get("Content-Type"),
		Accept:      accept,
		Body:        append([]byte(nil), body...),
		Host:        req.Host,
	}
	token := ""
	if g.Auth != auth.ModeOff {
		token = c.httpToken(req)
	}
	c.gql.state.Store(gqlRunning)
	go c.runHTTPQuery(hreq, token, c.edge.closeAfter || req.Close)
	return true
}

// runHTTPQuery verifies the request's token, runs the query and queues
// the answer, then lets the event loop read the next request (or ends
// the connection when it was the last). Called on its own goroutine.
func (c *httpConn) runHTTPQuery(req *httpgql.Request, token string, last bool) {
	defer func() { <-c.srv.routes.running }()
	ctx, cancel := context.WithTimeout(context.Background(), time.Duration(c.srv.routes.timeout.Load()))
	defer cancel()
	resp := c.answerHTTPQuery(ctx, req, token)
	c.send(appendHTTP(nil, resp.Status, withContentType(resp), resp.Body, last))
	if c.gql.state.Swap(gqlIdle) == gqlEndAfter {
		c.out.End()
		return
	}
	_ = c.gc.Wake(nil) // read the requests that waited for this answer
}

// answerHTTPQuery is runHTTPQuery's answer: a refusal of the token, or
// httpgql's response for the verified identity.
func (c *httpConn) answerHTTPQuery(ctx context.Context, req *httpgql.Request, token string) (resp httpgql.Response) {
	h := c.srv.routes.gql
	defer func() {
		if r := recover(); r != nil {
			c.srv.log.Error("BUG: panic while answering a GraphQL-over-HTTP request", "panic", r, "remote", c.remoteAddr)
			resp = h.Refuse(req.Accept, http.StatusInternalServerError, "INTERNAL_SERVER_ERROR", "internal server error")
		}
	}()
	env, refusal := c.srv.queryEnv(ctx, h, req.Accept, token, session.Peer{ID: c.id, Remote: c.remoteAddr})
	if refusal != nil {
		return *refusal
	}
	return h.Serve(ctx, req, env)
}

// queryEnv verifies a GraphQL-over-HTTP request's token ("": anonymous)
// and applies the identity's operation rate, for the listener's and
// Handler's queries alike; it returns the compiler's environment, or the
// refusal to answer (accept is the request's Accept). It may block on
// the verifier, up to ctx: never call it on an event loop.
func (s *Server) queryEnv(ctx context.Context, h *httpgql.Handler, accept, token string, peer session.Peer) (gql.Env, *httpgql.Response) {
	var env gql.Env
	g := s.guard
	if token == "" || g.Auth == auth.ModeOff {
		return env, nil
	}
	id, err := g.Verifier.Verify(ctx, token)
	if err != nil {
		s.sess.CountAuthFailure()
		reason := auth.ReasonOf(err).String()
		s.audit(audit.EventAuthFailed, peer, audit.Record{Reason: "GraphQL over HTTP: " + reason})
		s.refusals.note("auth", peer.Remote, "token refused (HTTP 401): "+reason, httpAuthFix)
		r := h.Refuse(accept, http.StatusUnauthorized, CodeUnauthenticated, "token refused: "+reason)
		return env, &r
	}
	if !s.sess.AllowOperation(id.Subject, time.Now().UnixNano()) {
		s.audit(audit.EventRateLimit, peer, audit.Record{Subject: id.Subject, Reason: "too many operations for this identity"})
		r := h.Refuse(accept, http.StatusTooManyRequests, CodeRateLimited, "rate limit exceeded: operations for this identity")
		r.Header = append(r.Header, [2]string{"Retry-After", "1"})
		return env, &r
	}
	env.Claims, env.Roles, env.Scopes = id.Claims, id.Roles, id.Scopes
	return env, nil
}

// withContentType is resp's headers with its Content-Type first.
func withContentType(resp httpgql.Response) [][2]string {
	hdr := make([][2]string, 0, len(resp.Header)+2)
	hdr = append(hdr, [2]string{"Content-Type", resp.ContentType})
	hdr = append(hdr, resp.Header...)
	if resp.Status == http.StatusUnauthorized {
		hdr = append(hdr, [2]string{"WWW-Authenticate", "Bearer"})
	}
	return hdr
}

// respondGQL answers with a GraphQL-over-HTTP response built on the loop.
func (c *httpConn) respondGQL(r httpgql.Response) bool {
	return c.respondRaw(appendHTTP(nil, r.Status, withContentType(r), r.Body, c.edge.closeAfter))
}

// respondRaw queues a whole response, in order behind any publish
// replies still in flight. Called on the event loop.
func (c *httpConn) respondRaw(r []byte) bool {
	if c.pub != nil {
		return c.pub.Reply(r)
	}
	c.send(r)
	return true
}

// endAfterQuery hands the end of the connection's output to the running
// query, which ends it after its answer; false when no query runs.
func (c *httpConn) endAfterQuery() bool {
	return c.gql.state.CompareAndSwap(gqlRunning, gqlEndAfter)
}

// queryRunning reports whether a GraphQL-over-HTTP query of the
// connection is running.
func (c *httpConn) queryRunning() bool { return c.gql.state.Load() != gqlIdle }

// appendHTTP appends an HTTP/1.1 response with headers hdr (a
// Content-Length is added unless hdr has one) and body; with last, it
// says Connection: close.
func appendHTTP(dst []byte, status int, hdr [][2]string, body []byte, last bool) []byte {
	dst = append(dst, "HTTP/1.1 "...)
	dst = strconv.AppendInt(dst, int64(status), 10)
	dst = append(dst, ' ')
	dst = append(dst, http.StatusText(status)...)
	hasLength := false
	for _, kv := range hdr {
		hasLength = hasLength || strings.EqualFold(kv[0], "Content-Length")
		dst = append(dst, "\r\n"...)
		dst = append(dst, kv[0]...)
		dst = append(dst, ": "...)
		dst = append(dst, kv[1]...)
	}
	if !hasLength && status != http.StatusNotModified {
		dst = append(dst, "\r\nContent-Length: "...)
		dst = strconv.AppendInt(dst, int64(len(body)), 10)
	}
	if last {
		dst = append(dst, "\r\nConnection: close"...)
	}
	dst = append(dst, "\r\n\r\n"...)
	return append(dst, body...)
}
