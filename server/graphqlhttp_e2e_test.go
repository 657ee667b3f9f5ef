package server_test

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/fraised/fraised/audit"
	"github.com/fraised/fraised/auth"
	"github.com/fraised/fraised/gql"
	"github.com/fraised/fraised/ratelimit"
	"github.com/fraised/fraised/server"
)

// httpDo sends a request to the server and returns the response with its
// body read.
func httpDo(t *testing.T, method, u, body string, hdr map[string]string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, u, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if body == "" {
		req.Body = nil
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	c := &http.Client{Timeout: 10 * time.Second}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, u, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(b)
}

const jsonCT = "application/json"

func TestGraphQLOverHTTPQueries(t *testing.T) {
	s := startServer(t, func(o *server.Options) {
		o.Schema = loadSchema(t, map[string]gql.ResolverFunc{
			"Query.serverTime": func(context.Context, gql.ResolveParams) (any, error) { return "noon", nil },
		})
	})
	base := "http://" + s.opts.Listen + "/graphql"
	f := func(method, u, body string, hdr map[string]string, wantStatus int, wantCT, wantBody string) {
		t.Helper()
		resp, got := httpDo(t, method, u, body, hdr)
		if resp.StatusCode != wantStatus || !strings.HasPrefix(resp.Header.Get("Content-Type"), wantCT) || !strings.Contains(got, wantBody) {
			t.Errorf("%s %s %q: got %d %q %s; want %d %q containing %s", method, u, body, resp.StatusCode,
				resp.Header.Get("Content-Type"), got, wantStatus, wantCT, wantBody)
		}
	}
	ct := map[string]string{"Content-Type": jsonCT}
	f("POST", base, `{"query":"{ serverTime }"}`, ct, 200, jsonCT, `{"data":{"serverTime":"noon"}}`)
	f("GET", base+"?query="+url.QueryEscape("{ serverTime __typename }"), "", nil, 200, jsonCT, `"__typename":"Query"`)
	gr := map[string]string{"Content-Type": jsonCT, "Accept": "application/graphql-response+json"}
	f("POST", base, `{"query":"{ nope }"}`, gr, 400, "application/graphql-response+json", `Cannot query field`)
	f("POST", base, `{"query":"subscription { events(topic: \"a\") { seq } }"}`, ct, 200, jsonCT,
		`subscribe over WebSocket at ws://`+s.opts.Listen+`/graphql with the graphql-transport-ws protocol`)
	f("PUT", base, `{}`, ct, 405, jsonCT, "METHOD_NOT_ALLOWED")
	f("POST", base, `{"query":"{ __schema { queryType { name } } }"}`, ct, 200, jsonCT, `{"data":{"__schema":{"queryType":{"name":"Query"}}}}`)
	f("POST", base, `not json`, ct, 400, jsonCT, "BAD_REQUEST")
	f("POST", base, `{"query":"{ serverTime }"}`, map[string]string{"Content-Type": jsonCT, "Origin": "https://evil.example"}, 403, jsonCT, "ORIGIN_NOT_ALLOWED")
	big := `{"query":"{ serverTime }","variables":{"x":"` + strings.Repeat("a", server.DefaultMaxMessage) + `"}}`
	f("POST", base, big, ct, 413, jsonCT, "--max-message")
}

func TestGraphQLOverHTTPIntrospectionDisabled(t *testing.T) {
	s := startServer(t, func(o *server.Options) {
		sch, err := gql.LoadSchemaFile("../examples/schema.graphql", gql.Options{DisableIntrospection: true})
		if err != nil {
			t.Fatal(err)
		}
		o.Schema = sch
	})
	resp, body := httpDo(t, "POST", "http://"+s.opts.Listen+"/graphql", `{"query":"{ __schema { types { name } } }"}`,
		map[string]string{"Content-Type": jsonCT})
	if resp.StatusCode != 200 || !strings.Contains(body, gql.IntrospectionDisabledCode) {
		t.Fatalf("got %d %s; want the INTROSPECTION_DISABLED error", resp.StatusCode, body)
	}
}

func TestGraphQLOverHTTPAuthorization(t *testing.T) {
	s, sink := startSecure(t, auth.ModeRequired, nil)
	base := "http://" + s.opts.Listen + "/graphql"
	q := `{"query":"{ __typename }"}`
	resp, body := httpDo(t, "POST", base, q, map[string]string{"Content-Type": jsonCT})
	if resp.StatusCode != 401 || resp.Header.Get("WWW-Authenticate") != "Bearer" || !strings.Contains(body, "UNAUTHENTICATED") {
		t.Errorf("without a token: %d %v %s; want 401 UNAUTHENTICATED with WWW-Authenticate", resp.StatusCode, resp.Header, body)
	}
	resp, body = httpDo(t, "POST", base, q, map[string]string{"Content-Type": jsonCT, "Authorization": "Bearer " + mintWith(t, jwt.SigningMethodHS256, otherSecret, nil)})
	if resp.StatusCode != 401 || !strings.Contains(body, "token refused") {
		t.Errorf("with a forged token: %d %s; want 401 token refused", resp.StatusCode, body)
	}
	resp, body = httpDo(t, "POST", base, q, map[string]string{"Content-Type": jsonCT, "Authorization": "Bearer " + mint(t, nil)})
	if resp.StatusCode != 200 || body != `{"data":{"__typename":"Query"}}` {
		t.Errorf("with a valid token: %d %s", resp.StatusCode, body)
	}
	resp, body = httpDo(t, "GET", base+"?query="+url.QueryEscape("{ __typename }"), "", map[string]string{"Cookie": cookieName + "=" + mint(t, nil)})
	if resp.StatusCode != 200 || body != `{"data":{"__typename":"Query"}}` {
		t.Errorf("with the token in the --auth-cookie cookie: %d %s", resp.StatusCode, body)
	}
	sink.wait(t, audit.EventAuthFailed, func(r auditRec) bool { return strings.Contains(r.Reason, "GraphQL over HTTP") })
}

// TestGraphQLOverHTTPUnauthenticatedBodyUnread: with --auth required, a
// POST without a token is answered from its head (401, Connection:
// close) before its body arrives, so fraised buffers none of it.
func TestGraphQLOverHTTPUnauthenticatedBodyUnread(t *testing.T) {
	s, _ := startSecure(t, auth.ModeRequired, nil)
	conn, err := net.Dial("tcp", s.opts.Listen)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_, _ = conn.Write([]byte("POST /graphql HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 60000\r\n\r\n"))
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 401 || !resp.Close {
		t.Fatalf("got %d close=%v; want 401 with Connection: close", resp.StatusCode, resp.Close)
	}
}

// TestGraphQLOverHTTPPipelined sends three requests in one write on a
// keep-alive connection, the first a query whose resolver blocks: the
// answers come back in request order.
func TestGraphQLOverHTTPPipelined(t *testing.T) {
	release := make(chan struct{})
	var calls atomic.Int32
	s := startServer(t, func(o *server.Options) {
		o.Schema = loadSchema(t, map[string]gql.ResolverFunc{
			"Query.serverTime": func(ctx context.Context, _ gql.ResolveParams) (any, error) {
				if calls.Add(1) == 1 {
					select {
					case <-release:
					case <-ctx.Done():
					}
					return "first", nil
				}
				return "second", nil
			},
		})
	})
	conn, err := net.Dial("tcp", s.opts.Listen)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	post := func(body string) string {
		return "POST /graphql HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: " +
			itoa(len(body)) + "\r\n\r\n" + body
	}
	q := `{"query":"{ serverTime }"}`
	_, _ = conn.Write([]byte(post(q) + "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n" + post(q)))
	// The first query is running: the later requests (all in the server's
	// input) must not be answered before it.
	for deadline := time.Now().Add(10 * time.Second); calls.Load() == 0; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the first query's resolver was not called within 10s")
		}
	}
	close(release)
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReader(conn)
	for i, want := range []string{`{"data":{"serverTime":"first"}}`, "ok\n", `{"data":{"serverTime":"second"}}`} {
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("response %d: %v", i, err)
		}
		b, _ := io.ReadAll(resp.Body)
		if string(b) != want {
			t.Fatalf("response %d: %q, want %q", i, b, want)
		}
	}
}

func itoa(n int) string { b, _ := json.Marshal(n); return string(b) }

func TestGraphiQLServed(t *testing.T) {
	s := startServer(t, nil)
	base := "http://" + s.opts.Listen
	for _, path := range []string{"/graphiql", "/"} {
		resp, body := httpDo(t, "GET", base+path, "", nil)
		if resp.StatusCode != 200 || !strings.Contains(body, `<div id="graphiql">`) {
			t.Fatalf("GET %s: %d %.200s", path, resp.StatusCode, body)
		}
		if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") || !strings.Contains(csp, "script-src 'self'") {
			t.Errorf("GET %s: CSP %q", path, csp)
		}
		if resp.Header.Get("Cache-Control") != "no-cache" || resp.Header.Get("ETag") == "" {
			t.Errorf("GET %s: the page must be revalidated by ETag: %v", path, resp.Header)
		}
		resp, _ = httpDo(t, "GET", base+path, "", map[string]string{"If-None-Match": resp.Header.Get("ETag")})
		if resp.StatusCode != http.StatusNotModified {
			t.Errorf("GET %s with its ETag: %d, want 304", path, resp.StatusCode)
		}
	}
	_, page := httpDo(t, "GET", base+"/graphiql", "", nil)
	i := strings.Index(page, `<script src="`)
	if i < 0 {
		t.Fatalf("no script in the page: %s", page)
	}
	script := page[i+len(`<script src="`):]
	script = script[:strings.IndexByte(script, '"')]
	resp, body := httpDo(t, "GET", base+script, "", map[string]string{"Accept-Encoding": "gzip"})
	if resp.StatusCode != 200 || resp.Header.Get("Cache-Control") != "public, max-age=31536000, immutable" ||
		resp.Header.Get("Content-Encoding") != "gzip" || len(body) < 100_000 {
		t.Errorf("GET %s: %d %v, %d bytes; want the gzipped bundle, immutable", script, resp.StatusCode, resp.Header, len(body))
	}
	resp, body = httpDo(t, "HEAD", base+script, "", nil)
	if resp.StatusCode != 200 || body != "" || resp.ContentLength < 1_000_000 {
		t.Errorf("HEAD %s: %d, Content-Length %d, body %d bytes", script, resp.StatusCode, resp.ContentLength, len(body))
	}
	if resp, _ := httpDo(t, "GET", base+"/graphiql/assets/nope.js", "", nil); resp.StatusCode != 404 {
		t.Errorf("unknown asset: %d, want 404", resp.StatusCode)
	}
}

func TestGraphiQLDisabled(t *testing.T) {
	notRoot := startServer(t, func(o *server.Options) { o.DisableGraphiQLRoot = true })
	if resp, _ := httpDo(t, "GET", "http://"+notRoot.opts.Listen+"/", "", nil); resp.StatusCode != 404 {
		t.Errorf("DisableGraphiQLRoot: GET / answered %d, want 404", resp.StatusCode)
	}
	if resp, _ := httpDo(t, "GET", "http://"+notRoot.opts.Listen+"/graphiql", "", nil); resp.StatusCode != 200 {
		t.Errorf("DisableGraphiQLRoot: GET /graphiql answered %d, want 200", resp.StatusCode)
	}
	off := startServer(t, func(o *server.Options) { o.DisableGraphiQL = true })
	for _, path := range []string{"/", "/graphiql"} {
		if resp, _ := httpDo(t, "GET", "http://"+off.opts.Listen+path, "", nil); resp.StatusCode != 404 {
			t.Errorf("DisableGraphiQL: GET %s answered %d, want 404", path, resp.StatusCode)
		}
	}
}

// TestGraphQLOverHTTPRateLimited: --limit-messages applies to the
// requests of one connection (429 with Retry-After); a new connection
// has its own bucket.
func TestGraphQLOverHTTPRateLimited(t *testing.T) {
	s := startServer(t, func(o *server.Options) {
		o.Security.Limits.MessagesPerConn = ratelimit.Limit{Rate: 0.01, Burst: 2}
	})
	conn, err := net.Dial("tcp", s.opts.Listen)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReader(conn)
	for i, want := range []int{200, 200, 429} {
		_, _ = conn.Write([]byte("GET /graphql?query=%7B__typename%7D HTTP/1.1\r\nHost: x\r\n\r\n"))
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != want {
			t.Fatalf("request %d: %d %s, want %d", i, resp.StatusCode, b, want)
		}
		if want == 429 && (resp.Header.Get("Retry-After") == "" || !strings.Contains(string(b), "RATE_LIMITED")) {
			t.Fatalf("429 without Retry-After or RATE_LIMITED: %v %s", resp.Header, b)
		}
	}
	if resp, _ := httpDo(t, "GET", "http://"+s.opts.Listen+"/graphql?query=%7B__typename%7D", "", nil); resp.StatusCode != 200 {
		t.Fatalf("a new connection was refused too: %d", resp.StatusCode)
	}
}

// TestGraphQLOverHTTPBusy: with every query slot taken by a resolver that
// blocks, one more query gets 503 SERVER_BUSY at once, and the server
// answers again once the resolvers return.
func TestGraphQLOverHTTPBusy(t *testing.T) {
	release := make(chan struct{})
	var entered atomic.Int32
	s := startServer(t, func(o *server.Options) {
		o.Schema = loadSchema(t, map[string]gql.ResolverFunc{
			"Query.serverTime": func(ctx context.Context, _ gql.ResolveParams) (any, error) {
				entered.Add(1)
				select {
				case <-release:
				case <-ctx.Done():
				}
				return "late", nil
			},
		})
	})
	u := "http://" + s.opts.Listen + "/graphql?query=%7BserverTime%7D"
	n := server.MaxHTTPQueries
	done := make(chan int, n)
	for range n {
		go func() {
			resp, err := (&http.Client{Timeout: 20 * time.Second}).Get(u)
			if err != nil {
				done <- 0
				return
			}
			resp.Body.Close()
			done <- resp.StatusCode
		}()
	}
	for deadline := time.Now().Add(15 * time.Second); entered.Load() < int32(n); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			close(release)
			t.Fatalf("only %d of %d queries started", entered.Load(), n)
		}
	}
	resp, body := httpDo(t, "GET", u, "", nil)
	close(release)
	if resp.StatusCode != 503 || !strings.Contains(body, "SERVER_BUSY") || resp.Header.Get("Retry-After") == "" {
		t.Errorf("query past the cap: %d %v %s; want 503 SERVER_BUSY with Retry-After", resp.StatusCode, resp.Header, body)
	}
	for range n {
		if status := <-done; status != 200 {
			t.Fatalf("a query holding a slot answered %d", status)
		}
	}
	if resp, body := httpDo(t, "GET", u, "", nil); resp.StatusCode != 200 {
		t.Errorf("after the slots were freed: %d %s", resp.StatusCode, body)
	}
}

// TestGraphQLOverHTTPQueryDeadline: a query's resolvers get a context
// that ends at the query deadline (here shorter than --resolver-timeout),
// and the answer (RESOLVER_TIMEOUT at the field) goes out then.
func TestGraphQLOverHTTPQueryDeadline(t *testing.T) {
	s := startServer(t, func(o *server.Options) {
		o.Schema = loadSchema(t, map[string]gql.ResolverFunc{
			"Query.serverTime": func(ctx context.Context, _ gql.ResolveParams) (any, error) {
				<-ctx.Done()
				return nil, ctx.Err()
			},
		})
	})
	server.SetHTTPQueryTimeout(s.Server, 200*time.Millisecond)
	start := time.Now()
	resp, body := httpDo(t, "GET", "http://"+s.opts.Listen+"/graphql?query=%7BserverTime%7D", "", nil)
	if resp.StatusCode != 200 || !strings.Contains(body, `"code":"`+gql.CodeResolverTimeout+`"`) {
		t.Fatalf("got %d %s; want RESOLVER_TIMEOUT", resp.StatusCode, body)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("answered after %v", d)
	}
}

// TestGraphQLOverHTTPQueryOutlivesHTTPTimeouts: a query that takes longer
// than --http-read-timeout and --http-idle-timeout (but less than its own
// deadline) is answered, and so is the request pipelined behind it, or it
// is the connection's last (Connection: close): the client's HTTP
// deadlines do not run while the server works on its query.
func TestGraphQLOverHTTPQueryOutlivesHTTPTimeouts(t *testing.T) {
	body := `{"query":"{ serverTime }"}`
	post := func(hdr string) string {
		return "POST /graphql HTTP/1.1\r\nHost: x\r\n" + hdr + "Content-Type: application/json\r\nContent-Length: " +
			itoa(len(body)) + "\r\n\r\n" + body
	}
	t.Run("pipelined", func(t *testing.T) {
		slowQueryOutlivesHTTPTimeouts(t, post("")+"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n", `{"data":{"serverTime":"slow"}}`, "ok\n")
	})
	t.Run("last", func(t *testing.T) {
		slowQueryOutlivesHTTPTimeouts(t, post("Connection: close\r\n"), `{"data":{"serverTime":"slow"}}`)
	})
}

// slowQueryOutlivesHTTPTimeouts sends requests, whose first is a query
// that runs past the HTTP timeouts, and expects the answers want.
func slowQueryOutlivesHTTPTimeouts(t *testing.T, requests string, want ...string) {
	const httpTimeout = 300 * time.Millisecond
	release := make(chan struct{})
	var calls atomic.Int32
	s := startServer(t, func(o *server.Options) {
		o.HTTPReadTimeout, o.HTTPIdleTimeout = httpTimeout, httpTimeout
		o.Schema = loadSchema(t, map[string]gql.ResolverFunc{
			"Query.serverTime": func(ctx context.Context, _ gql.ResolveParams) (any, error) {
				calls.Add(1)
				select {
				case <-release:
				case <-ctx.Done():
				}
				return "slow", nil
			},
		})
	})
	conn, err := net.Dial("tcp", s.opts.Listen)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_, _ = conn.Write([]byte(requests))
	for deadline := time.Now().Add(10 * time.Second); calls.Load() == 0; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the query's resolver was not called within 10s")
		}
	}
	// Let the HTTP deadlines pass several housekeeper ticks over while
	// the query runs (its own deadline is 10 s).
	time.Sleep(4 * httpTimeout)
	close(release)
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReader(conn)
	for i, w := range want {
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("response %d: %v", i, err)
		}
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 || string(b) != w {
			t.Fatalf("response %d: %d %q, want 200 %q", i, resp.StatusCode, b, w)
		}
	}
}
