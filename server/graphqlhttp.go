package server

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/fraised/fraised/auth"
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

// routeGraphQL answers a GraphQL-over-HTTP request: refusals from the
// head and the rate limits on the event loop, the query itself (token
// verification and resolvers, which may block) on its own goroutine
// (httpquery.go has the rules both transports share). body is valid
// until it returns. false means retry later.
func (c *httpConn) routeGraphQL(req *http.Request, body []byte) bool {
	s := c.srv
	h := s.routes.gql
	peer := session.Peer{ID: c.id, Remote: c.remoteAddr}
	if status, code, msg := s.queryRefusal(req); status != 0 {
		return c.respondGQL(s.refuseQuery(h, req, peer, status, code, msg))
	}
	if c.pub != nil && c.pub.Inflight() > 0 {
		// Publish replies are in flight ahead of this request: it waits
		// for them (the housekeeper wakes the connection), so responses
		// leave in request order.
		c.edge.paused.Store(true)
		return false
	}
	g, now := s.guard, time.Now().UnixNano()
	if !c.gql.msgBucket.Allow(g.Limits.MessagesPerConn, now) || !c.gql.subBucket.Allow(g.Limits.SubscribesPerConn, now) {
		g.rateTrips.Add(1)
		s.refusals.note("message_rate", c.remoteAddr, "too many GraphQL-over-HTTP requests on one connection (HTTP 429)",
			"raise --limit-messages / --limit-subscribes if this client is legitimate")
		return c.respondGQL(s.refuseQuery(h, req, peer, http.StatusTooManyRequests, CodeRateLimited, "rate limit exceeded: too many requests on this connection"))
	}
	if !s.startQuery(peer) {
		return c.respondGQL(s.refuseQuery(h, req, peer, http.StatusServiceUnavailable, CodeServerBusy, busyMessage))
	}
	hreq := &httpgql.Request{
		Method:      req.Method,
		RawQuery:    req.URL.RawQuery,
		ContentType: req.Header.Get("Content-Type"),
		Accept:      strings.Join(req.Header.Values("Accept"), ","),
		Body:        append([]byte(nil), body...),
		Host:        req.Host,
	}
	token := ""
	if g.Auth != auth.ModeOff {
		token = tokenOf(req, g.Cookie)
	}
	c.gql.state.Store(gqlRunning)
	go c.runHTTPQuery(hreq, token, peer, c.edge.closeAfter || req.Close)
	return true
}

// runHTTPQuery answers the query (answerQuery) and queues the answer,
// then lets the event loop read the next request (or ends the connection
// when it was the last). Called on its own goroutine.
func (c *httpConn) runHTTPQuery(req *httpgql.Request, token string, peer session.Peer, last bool) {
	defer c.srv.endQuery()
	ctx, cancel := context.WithTimeout(context.Background(), time.Duration(c.srv.routes.timeout.Load()))
	defer cancel()
	resp := c.srv.answerQuery(ctx, c.srv.routes.gql, req, token, peer)
	c.send(appendHTTP(nil, resp.Status, withContentType(resp), resp.Body, last))
	if c.gql.state.Swap(gqlIdle) == gqlEndAfter {
		c.out.End()
		return
	}
	_ = c.gc.Wake(nil) // read the requests that waited for this answer
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
