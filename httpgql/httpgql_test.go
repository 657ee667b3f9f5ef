package httpgql

import (
	"context"
	"encoding/json"
	"errors"
	"net/url"
	"strings"
	"testing"

	"github.com/fraised/fraised/gql"
)

const testSDL = `
type Event { seq: Int! body: String }
type Secret @auth(requires: ["role:admin"]) { code: String }
type Query {
  serverTime: String
  failing: String
  required: String!
  echo(n: Int!): Int
  secret: Secret
}
type Mutation { noop: Boolean }
type Subscription { events(topic: String!): Event! @topic(name: "{topic}") }
`

func testSchema(t testing.TB, opts gql.Options) *gql.Schema {
	t.Helper()
	opts.Resolvers = map[string]gql.ResolverFunc{
		"Query.serverTime": func(context.Context, gql.ResolveParams) (any, error) { return "2026-12-01T00:00:00Z", nil },
		"Query.failing":    func(context.Context, gql.ResolveParams) (any, error) { return nil, errors.New("backend down") },
		"Query.required":   func(context.Context, gql.ResolveParams) (any, error) { return nil, nil },
		"Query.echo":       func(_ context.Context, p gql.ResolveParams) (any, error) { return p.Args["n"], nil },
		"Query.secret":     func(context.Context, gql.ResolveParams) (any, error) { return map[string]any{"code": "42"}, nil },
	}
	s, err := gql.LoadSchema("test.graphql", testSDL, opts)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// post is a POST with a JSON body and the Accept header accept.
func post(accept, body string) *Request {
	return &Request{Method: "POST", ContentType: "application/json", Accept: accept, Body: []byte(body), Host: "api.example:4000"}
}

// get is a GET with the given URL query parameters.
func get(accept string, kv ...string) *Request {
	v := url.Values{}
	for i := 0; i+1 < len(kv); i += 2 {
		v.Add(kv[i], kv[i+1])
	}
	return &Request{Method: "GET", RawQuery: v.Encode(), Accept: accept, Host: "api.example:4000"}
}

const gqlResp = MediaGraphQLResponse

// check serves req and compares status, media type and body (body: a
// substring, or the exact JSON when it starts with "=").
func check(t *testing.T, h *Handler, req *Request, env gql.Env, status int, media, body string) Response {
	t.Helper()
	r := h.Serve(context.Background(), req, env)
	if r.Status != status {
		t.Errorf("status %d, want %d (body %s)", r.Status, status, r.Body)
	}
	if want := media + "; charset=utf-8"; r.ContentType != want {
		t.Errorf("content type %q, want %q", r.ContentType, want)
	}
	if !json.Valid(r.Body) {
		t.Errorf("body is not JSON: %s", r.Body)
	}
	if exact, ok := strings.CutPrefix(body, "="); ok {
		if string(r.Body) != exact {
			t.Errorf("body %s\nwant %s", r.Body, exact)
		}
	} else if !strings.Contains(string(r.Body), body) {
		t.Errorf("body %s\nwant it to contain %s", r.Body, body)
	}
	return r
}

func header(r Response, name string) string {
	for _, kv := range r.Header {
		if kv[0] == name {
			return kv[1]
		}
	}
	return ""
}

func TestQueryPOST(t *testing.T) {
	h := New(testSchema(t, gql.Options{}), Options{})
	q := `{"query":"{ serverTime }"}`
	want := `={"data":{"serverTime":"2026-12-01T00:00:00Z"}}`
	check(t, h, post(gqlResp, q), gql.Env{}, 200, gqlResp, want)
	r := check(t, h, post("", q), gql.Env{}, 200, MediaJSON, want) // no Accept: application/json
	if header(r, "Vary") != "Accept" || header(r, "Cache-Control") != "no-store" {
		t.Errorf("headers %v", r.Header)
	}
	check(t, h, post("application/json", q), gql.Env{}, 200, MediaJSON, want)
	check(t, h, post("*/*", q), gql.Env{}, 200, MediaJSON, want)
	check(t, h, post("application/*", q), gql.Env{}, 200, MediaJSON, want)
	check(t, h, post("application/graphql-response+json, application/json;q=0.9", q), gql.Env{}, 200, gqlResp, want)
	check(t, h, post("application/json, application/graphql-response+json", q), gql.Env{}, 200, gqlResp, want)
	check(t, h, post("application/graphql-response+json;q=0.5, application/json", q), gql.Env{}, 200, MediaJSON, want)
	check(t, h, post("application/graphql-response+json;q=0, */*", q), gql.Env{}, 200, MediaJSON, want)
	check(t, h, post("text/html, */*;q=0.1", q), gql.Env{}, 200, MediaJSON, want)
	check(t, h, post("application/graphql-response+json; charset=utf-8", q), gql.Env{}, 200, gqlResp, want)

	req := post(gqlResp, `{"query":"query Q($n: Int!) { echo(n: $n) }","variables":{"n":7},"operationName":"Q","extensions":{"x":1}}`)
	req.ContentType = "application/json; charset=UTF-8"
	check(t, h, req, gql.Env{}, 200, gqlResp, `={"data":{"echo":7}}`)
	check(t, h, post(gqlResp, `{"query":"{ serverTime }","variables":null,"operationName":null,"extensions":null}`), gql.Env{}, 200, gqlResp, want)
}

func TestNotAcceptable(t *testing.T) {
	h := New(testSchema(t, gql.Options{}), Options{})
	for _, accept := range []string{"text/html", "application/xml, text/plain", "application/json;q=0, application/graphql-response+json;q=0", "application/json; charset=latin1"} {
		check(t, h, post(accept, `{"query":"{ serverTime }"}`), gql.Env{}, 406, MediaJSON, CodeNotAcceptable)
	}
}

// TestRequestErrors: a request that does not execute is 200 with
// application/json and 400 with application/graphql-response+json, and
// has no data.
func TestRequestErrors(t *testing.T) {
	h := New(testSchema(t, gql.Options{}), Options{})
	for _, tc := range []struct{ name, body, want string }{
		{"parse", `{"query":"{ serverTime "}`, `Expected Name`},
		{"validation", `{"query":"{ nope }"}`, `Cannot query field`},
		{"variable type", `{"query":"query($n: Int!) { echo(n: $n) }","variables":{"n":"x"}}`, `cannot use string as Int`},
		{"missing variable", `{"query":"query($n: Int!) { echo(n: $n) }"}`, `must be defined`},
		{"unknown operation", `{"query":"query A { serverTime }","operationName":"B"}`, `Unknown operation named`},
		{"mutation", `{"query":"mutation { noop }"}`, `mutations are not supported`},
		{"forbidden", `{"query":"{ secret { code } }"}`, `forbidden: type \"Secret\" requires role:admin`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, media := range []string{gqlResp, MediaJSON} {
				status := 400
				if media == MediaJSON {
					status = 200
				}
				r := check(t, h, post(media, tc.body), gql.Env{}, status, media, tc.want)
				if strings.Contains(string(r.Body), `"data"`) {
					t.Errorf("request error has data: %s", r.Body)
				}
			}
		})
	}
	check(t, h, post(gqlResp, `{"query":"{ secret { code } }"}`), gql.Env{Roles: []string{"admin"}}, 200, gqlResp, `={"data":{"secret":{"code":"42"}}}`)
}

// TestFieldErrors: once execution started the status is 200 for both
// types, with data (null when the error reaches the root).
func TestFieldErrors(t *testing.T) {
	h := New(testSchema(t, gql.Options{}), Options{})
	for _, media := range []string{gqlResp, MediaJSON} {
		check(t, h, post(media, `{"query":"{ serverTime failing }"}`), gql.Env{}, 200, media,
			`={"data":{"serverTime":"2026-12-01T00:00:00Z","failing":null},"errors":[{"message":"backend down","locations":[{"line":1,"column":14}],"path":["failing"]}]}`)
		check(t, h, post(media, `{"query":"{ required }"}`), gql.Env{}, 200, media, `{"data":null,"errors":[{"message":"Cannot return null for non-nullable field Query.required."`)
	}
}

func TestGET(t *testing.T) {
	h := New(testSchema(t, gql.Options{}), Options{})
	check(t, h, get(gqlResp, "query", "{ serverTime }"), gql.Env{}, 200, gqlResp, `={"data":{"serverTime":"2026-12-01T00:00:00Z"}}`)
	check(t, h, get(gqlResp, "query", "query Q($n: Int!) { echo(n: $n) } query R { serverTime }", "operationName", "Q", "variables", `{"n":3}`, "extensions", `{}`),
		gql.Env{}, 200, gqlResp, `={"data":{"echo":3}}`)
	r := check(t, h, get(gqlResp, "query", "mutation { noop }"), gql.Env{}, 405, gqlResp, CodeMethodNotAllowed)
	if header(r, "Allow") != "POST" {
		t.Errorf("Allow %q", header(r, "Allow"))
	}
	check(t, h, get(MediaJSON, "query", "mutation { noop }"), gql.Env{}, 405, MediaJSON, "cannot be sent with GET")
	check(t, h, get(gqlResp), gql.Env{}, 400, gqlResp, `no \"query\" parameter`)
	check(t, h, get(MediaJSON), gql.Env{}, 400, MediaJSON, `no \"query\" parameter`)
	check(t, h, get(gqlResp, "query", "{ serverTime }", "variables", `[1]`), gql.Env{}, 400, gqlResp, `\"variables\" parameter must be a JSON object`)
	check(t, h, get(gqlResp, "query", "{ serverTime }", "variables", `{`), gql.Env{}, 400, gqlResp, `must be a JSON object`)
	check(t, h, get(gqlResp, "query", "{ serverTime }", "extensions", `"x"`), gql.Env{}, 400, gqlResp, `\"extensions\" parameter`)
	check(t, h, get(gqlResp, "query", "{ serverTime }", "query", "{ serverTime }"), gql.Env{}, 400, gqlResp, `given 2 times`)
	check(t, h, &Request{Method: "GET", RawQuery: "query=%zz", Accept: gqlResp}, gql.Env{}, 400, gqlResp, `cannot parse the URL query`)
	check(t, h, &Request{Method: "GET", RawQuery: "query=%ff", Accept: gqlResp}, gql.Env{}, 400, gqlResp, `valid UTF-8`)
	check(t, h, get(gqlResp, "query", "{ nope }"), gql.Env{}, 400, gqlResp, `Cannot query field`)
}

func TestMethodsAndMediaTypes(t *testing.T) {
	h := New(testSchema(t, gql.Options{}), Options{})
	for _, m := range []string{"PUT", "DELETE", "HEAD", "PATCH", "OPTIONS"} {
		req := post(gqlResp, `{"query":"{ serverTime }"}`)
		req.Method = m
		r := check(t, h, req, gql.Env{}, 405, gqlResp, CodeMethodNotAllowed)
		if header(r, "Allow") != "GET, POST" {
			t.Errorf("%s: Allow %q", m, header(r, "Allow"))
		}
	}
	for _, ct := range []string{"", "text/plain", "application/graphql", "application/x-www-form-urlencoded", "application/json; charset=latin1", "application/json; ;;"} {
		req := post(gqlResp, `{"query":"{ serverTime }"}`)
		req.ContentType = ct
		check(t, h, req, gql.Env{}, 415, gqlResp, CodeUnsupportedMedia)
	}
}

func TestBadBodies(t *testing.T) {
	h := New(testSchema(t, gql.Options{}), Options{MaxBodyBytes: 200})
	for _, tc := range []struct{ body, want string }{
		{`{"query":`, `must be a JSON object`},
		{``, `must be a JSON object`},
		{`"{ serverTime }"`, `must be a JSON object`},
		{`[{"query":"{ serverTime }"}]`, `batched requests`},
		{`{"query":"{ serverTime }"} {}`, `data after its JSON object`},
		{`{}`, `\"query\" must be a non-empty string`},
		{`{"query":null}`, `\"query\" must be a non-empty string`},
		{`{"query":""}`, `\"query\" must be a non-empty string`},
		{`{"query":1}`, `\"query\" must be a non-empty string`},
		{`{"query":"{ serverTime }","operationName":2}`, `\"operationName\" must be a string or null`},
		{`{"query":"{ serverTime }","variables":[]}`, `\"variables\" must be a JSON object or null: got an array`},
		{`{"query":"{ serverTime }","variables":"{}"}`, `got a string`},
		{`{"query":"{ serverTime }","extensions":1}`, `\"extensions\" must be a JSON object`},
		{"{\"query\":\"{ serverTime }\xff\"}", `valid UTF-8`},
	} {
		for _, media := range []string{gqlResp, MediaJSON} {
			check(t, h, post(media, tc.body), gql.Env{}, 400, media, tc.want)
		}
	}
	big := `{"query":"{ serverTime }","variables":{"pad":"` + strings.Repeat("x", 200) + `"}}`
	check(t, h, post(gqlResp, big), gql.Env{}, 413, gqlResp, "more than the limit of 200")
	check(t, h, get(gqlResp, "query", "{ serverTime }"+strings.Repeat(" ", 200)), gql.Env{}, 413, gqlResp, CodeRequestTooLarge)
}

func TestSubscriptionOverHTTP(t *testing.T) {
	h := New(testSchema(t, gql.Options{}), Options{})
	q := `{"query":"subscription { events(topic: \"a\") { seq } }"}`
	check(t, h, post(gqlResp, q), gql.Env{}, 400, gqlResp,
		`subscribe over WebSocket at ws://api.example:4000/graphql with the graphql-transport-ws protocol`)
	check(t, h, post(MediaJSON, q), gql.Env{}, 200, MediaJSON, CodeSubscriptionOverWS)
	req := post(gqlResp, q)
	req.TLS, req.Host = true, "api.example"
	check(t, h, req, gql.Env{}, 400, gqlResp, `wss://api.example/graphql`)
	req.Host = "evil\"/x"
	check(t, h, req, gql.Env{}, 400, gqlResp, `wss://HOST/graphql`)
	check(t, h, get(gqlResp, "query", `subscription { events(topic: "a") { seq } }`), gql.Env{}, 400, gqlResp, CodeSubscriptionOverWS)
}

func TestIntrospectionOverHTTP(t *testing.T) {
	h := New(testSchema(t, gql.Options{}), Options{})
	check(t, h, get(gqlResp, "query", "{ __schema { queryType { name } subscriptionType { name } } }"), gql.Env{}, 200, gqlResp,
		`={"data":{"__schema":{"queryType":{"name":"Query"},"subscriptionType":{"name":"Subscription"}}}}`)
	off := New(testSchema(t, gql.Options{DisableIntrospection: true}), Options{})
	check(t, off, get(gqlResp, "query", "{ __schema { queryType { name } } }"), gql.Env{}, 400, gqlResp, `"extensions":{"code":"INTROSPECTION_DISABLED"}`)
	check(t, off, get(MediaJSON, "query", "{ __typename }"), gql.Env{}, 200, MediaJSON, `={"data":{"__typename":"Query"}}`)
}

func TestRefuse(t *testing.T) {
	h := New(testSchema(t, gql.Options{}), Options{})
	r := h.Refuse(gqlResp, 401, "UNAUTHENTICATED", "no valid token: send Authorization: Bearer <jwt>")
	if r.Status != 401 || r.ContentType != gqlResp+"; charset=utf-8" ||
		string(r.Body) != `{"errors":[{"message":"no valid token: send Authorization: Bearer \u003cjwt\u003e","extensions":{"code":"UNAUTHENTICATED"}}]}` &&
			string(r.Body) != `{"errors":[{"message":"no valid token: send Authorization: Bearer <jwt>","extensions":{"code":"UNAUTHENTICATED"}}]}` {
		t.Errorf("%d %s %s", r.Status, r.ContentType, r.Body)
	}
	if r := h.Refuse("text/html", 429, "RATE_LIMITED", "slow down"); r.Status != 429 || r.ContentType != MediaJSON+"; charset=utf-8" {
		t.Errorf("%d %s", r.Status, r.ContentType)
	}
}

// BenchmarkServePOST answers a small POST query with a resolver (the
// compiled operation is cached after the first request).
func BenchmarkServePOST(b *testing.B) {
	h := New(testSchema(b, gql.Options{}), Options{})
	req := post(gqlResp, `{"query":"query Q($n: Int!) { echo(n: $n) serverTime }","variables":{"n":7}}`)
	b.ReportAllocs()
	for b.Loop() {
		if r := h.Serve(context.Background(), req, gql.Env{}); r.Status != 200 {
			b.Fatal(r.Status)
		}
	}
}

// TestResponseNamesTheOperation: a response says what became of the
// request's operation (for the server's audit trail): the compiled
// operation when it ran, the first error when it was refused, nothing
// when the request named no operation.
func TestResponseNamesTheOperation(t *testing.T) {
	h := New(testSchema(t, gql.Options{}), Options{})
	for _, tt := range []struct {
		name    string
		req     *Request
		ran     bool
		refused string // substring of Operation.Refused; "-": no Operation
	}{
		{"ran", post(gqlResp, `{"query":"query Q { serverTime }","operationName":"Q"}`), true, ""},
		{"compile error", post(gqlResp, `{"query":"{ nope }"}`), false, "nope"},
		{"subscription", post(gqlResp, `{"query":"subscription { events(topic: \"x\") { seq } }"}`), false, "not served over HTTP"},
		{"mutation over GET", get(gqlResp, "query", "mutation { noop }"), false, "GET"},
		{"malformed", post(gqlResp, `{"query":`), false, "-"},
		{"not acceptable", post("text/html", `{"query":"{ serverTime }"}`), false, "-"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			op := h.Serve(context.Background(), tt.req, gql.Env{}).Operation
			switch {
			case tt.refused == "-":
				if op != nil {
					t.Fatalf("operation %+v for a request that named none", op)
				}
			case op == nil:
				t.Fatal("no operation")
			case tt.ran && (op.Compiled == nil || op.Refused != "" || op.Name != "Q"):
				t.Fatalf("ran: %+v", op)
			case !tt.ran && (op.Compiled != nil || !strings.Contains(op.Refused, tt.refused) || op.Query == ""):
				t.Fatalf("refused: %+v, want %q", op, tt.refused)
			}
		})
	}
}
