// Package httpgql answers GraphQL over HTTP (the GraphQL-over-HTTP
// specification, graphql.github.io/graphql-over-http) on fraised's /graphql
// endpoint, independently of the transport: the server hands it the
// method, the URL query, the Content-Type and Accept headers, the body and
// the connection's gql.Env, and gets back a status, a content type and a
// body.
//
// Queries run on the query path of package gql (compiled-in resolvers and
// introspection), with the schema's limits; GET is for queries only.
// Subscriptions get an error naming the WebSocket endpoint, and mutations
// are not supported. The response is application/graphql-response+json
// when the client accepts it, with the status codes the specification
// gives that type (4xx for a request error, 200 once execution started),
// and application/json otherwise, which is 200 for every well-formed
// request.
package httpgql

import (
	"context"
	"net/http"
	"strings"

	"github.com/fraised/fraised/gql"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"
	"github.com/vektah/gqlparser/v2/parser"
)

// Media types of GraphQL responses.
const (
	MediaGraphQLResponse = "application/graphql-response+json"
	MediaJSON            = "application/json"
)

const (
	// DefaultMaxBodyBytes bounds a request body (POST) or URL query (GET):
	// it holds a document (gql.DefaultMaxDocumentBytes, 32 KiB) and its
	// variables, and matches the default --max-message of a WebSocket
	// message carrying the same subscribe, so both transports accept the
	// same requests.
	DefaultMaxBodyBytes = 64 << 10
	// DefaultPath is the endpoint path named in the subscription error.
	DefaultPath = "/graphql"
	// WebSocketProtocol is the subprotocol subscriptions use.
	WebSocketProtocol = "graphql-transport-ws"
)

// Codes in extensions.code of the errors httpgql itself returns.
const (
	CodeBadRequest          = "BAD_REQUEST"
	CodeSubscriptionOverWS  = "SUBSCRIPTION_REQUIRES_WEBSOCKET"
	CodeMethodNotAllowed    = "METHOD_NOT_ALLOWED"
	CodeUnsupportedMedia    = "UNSUPPORTED_MEDIA_TYPE"
	CodeNotAcceptable       = "NOT_ACCEPTABLE"
	CodeRequestTooLarge     = "REQUEST_TOO_LARGE"
	CodeMutationUnsupported = "MUTATION_NOT_SUPPORTED"
)

// Request is an HTTP request to the GraphQL endpoint as the server parsed
// it. Serve reads it only during the call.
type Request struct {
	Method      string
	RawQuery    string // the URL's query string, still escaped, without "?"
	ContentType string // the Content-Type header
	Accept      string // the Accept header(s), joined with ","
	Body        []byte
	Host        string // the Host header, to name the WebSocket endpoint
	TLS         bool   // whether the request came over TLS (wss:// then)
}

// Response is the answer: Status, the Content-Type, extra headers (Allow,
// Vary, Cache-Control) and the body.
type Response struct {
	Status      int
	ContentType string
	Header      [][2]string
	Body        []byte
	// Operation is what the request asked the schema for, for the
	// server's audit trail; nil when the request was answered before it
	// named an operation (not acceptable, malformed, wrong method or
	// media type, or refused by Refuse).
	Operation *Operation
}

// Operation is the GraphQL operation of a request and what became of it.
type Operation struct {
	Query string // the document, as sent
	Name  string // the operation name, as sent
	// Compiled is the operation that ran; nil when it was refused.
	Compiled *gql.Operation
	// Refused says why the operation did not run (its first error);
	// empty when it ran.
	Refused string
}

// Options configures New. The zero value is valid.
type Options struct {
	MaxBodyBytes int    // 0 = DefaultMaxBodyBytes; the server should pass --max-message
	Path         string // endpoint path for the WebSocket URL in errors; "" = DefaultPath
	// Execute runs a query and appends its result (the server passes
	// resolve.Queries.Append: --resolver-timeout for its resolvers);
	// nil: gql.Operation.AppendQueryResult, resolvers bounded by ctx only.
	Execute func(ctx context.Context, dst []byte, op *gql.Operation) []byte
}

// Handler answers GraphQL-over-HTTP requests against one schema. It is
// immutable and safe for concurrent use.
type Handler struct {
	schema  *gql.Schema
	max     int
	path    string
	execute func(ctx context.Context, dst []byte, op *gql.Operation) []byte
}

// New returns a handler for schema.
func New(schema *gql.Schema, opts Options) *Handler {
	h := &Handler{schema: schema, max: opts.MaxBodyBytes, path: opts.Path, execute: opts.Execute}
	if h.execute == nil {
		h.execute = func(ctx context.Context, dst []byte, op *gql.Operation) []byte { return op.AppendQueryResult(ctx, dst) }
	}
	if h.max <= 0 {
		h.max = DefaultMaxBodyBytes
	}
	if h.path == "" {
		h.path = DefaultPath
	}
	return h
}

// Serve answers req for a client with env (its verified identity; the
// server authenticates the Authorization header first). Query resolvers
// run with ctx through Options.Execute and the call blocks until they
// answer or time out, so the caller must not be a network event loop. It is safe for concurrent use.
func (h *Handler) Serve(ctx context.Context, req *Request, env gql.Env) Response {
	media, ok := negotiate(req.Accept)
	if !ok {
		return h.fail(MediaJSON, http.StatusNotAcceptable, CodeNotAcceptable,
			"cannot answer in any type the Accept header lists: accept "+MediaGraphQLResponse+" or "+MediaJSON)
	}
	params, derr := h.decode(req)
	if derr != nil {
		r := h.fail(media, derr.status, derr.code, derr.msg)
		if derr.status == http.StatusMethodNotAllowed {
			r.Header = append(r.Header, [2]string{"Allow", derr.allow})
		}
		return r
	}
	op, errs := h.schema.Compile(gql.Request{Query: params.query, OperationName: params.operationName, Variables: params.variables}, env)
	asked := &Operation{Query: params.query, Name: params.operationName}
	var r Response
	switch {
	case len(errs) > 0 && req.Method == http.MethodGet && isMutation(params.query, params.operationName):
		r = h.fail(media, http.StatusMethodNotAllowed, CodeMethodNotAllowed, "mutations cannot be sent with GET (and fraised does not support mutations)")
		r.Header = append(r.Header, [2]string{"Allow", "POST"})
		asked.Refused = "mutations cannot be sent with GET"
	case len(errs) > 0:
		r = h.requestErrors(media, errs)
		asked.Refused = errs[0].Message
	case op.Kind == gql.KindSubscription:
		r = h.fail(media, requestErrorStatus(media, http.StatusBadRequest), CodeSubscriptionOverWS,
			"subscriptions are not served over HTTP: subscribe over WebSocket at "+h.wsURL(req)+" with the "+WebSocketProtocol+" protocol")
		asked.Refused = "subscriptions are not served over HTTP"
	default:
		asked.Compiled = op
		r = h.response(media, http.StatusOK, h.execute(ctx, make([]byte, 0, 512), op))
	}
	r.Operation = asked
	return r
}

// wsURL names the WebSocket endpoint for req.
func (h *Handler) wsURL(req *Request) string {
	scheme := "ws://"
	if req.TLS {
		scheme = "wss://"
	}
	host := req.Host
	if host == "" || strings.ContainsAny(host, " \t\r\n\"\\/") {
		host = "HOST"
	}
	return scheme + host + h.path
}

// isMutation reports whether the operation of query named opName is a
// mutation (the GET rule needs it; parsing again only happens on the
// error path, as gql refuses mutations).
func isMutation(query, opName string) bool {
	doc, err := parser.ParseQuery(&ast.Source{Input: query})
	if err != nil {
		return false
	}
	var op *ast.OperationDefinition
	switch {
	case opName != "":
		op = doc.Operations.ForName(opName)
	case len(doc.Operations) == 1:
		op = doc.Operations[0]
	}
	return op != nil && op.Operation == ast.Mutation
}

// requestErrorStatus is the status of a request error (no execution): 200
// for application/json, which answers every well-formed request with 200,
// else status.
func requestErrorStatus(media string, status int) int {
	if media == MediaJSON {
		return http.StatusOK
	}
	return status
}

// requestErrors answers the errors of a request that did not execute.
func (h *Handler) requestErrors(media string, errs gqlerror.List) Response {
	return h.response(media, requestErrorStatus(media, http.StatusBadRequest), errorsBody(errs))
}

// errorsBody is a response body holding only errs.
func errorsBody(errs gqlerror.List) []byte {
	body := append([]byte(`{"errors":`), gql.AppendErrors(nil, errs)...)
	return append(body, '}')
}

// fail answers one error with code in extensions.code. A request that is
// not well-formed (an HTTP-level error) keeps its status whatever the
// media type; callers pass requestErrorStatus for GraphQL request errors.
func (h *Handler) fail(media string, status int, code, msg string) Response {
	err := &gqlerror.Error{Message: msg, Extensions: map[string]any{"code": code}}
	return h.response(media, status, errorsBody(gqlerror.List{err}))
}

// Refuse answers a request the server refuses before it reaches Serve
// (401 without a valid token, 403, 429, 503) with one GraphQL error in
// the type the Accept header asks for; status is kept for both types.
func (h *Handler) Refuse(accept string, status int, code, msg string) Response {
	media, ok := negotiate(accept)
	if !ok {
		media = MediaJSON
	}
	return h.fail(media, status, code, msg)
}

// response builds a response of media type media.
func (h *Handler) response(media string, status int, body []byte) Response {
	return Response{
		Status:      status,
		ContentType: media + "; charset=utf-8",
		Header:      [][2]string{{"Vary", "Accept"}, {"Cache-Control", "no-store"}, {"X-Content-Type-Options", "nosniff"}},
		Body:        body,
	}
}
