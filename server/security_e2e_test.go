package server_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"
	"github.com/golang-jwt/jwt/v5"
	"github.com/tidwall/gjson"

	"github.com/fraised/fraised/audit"
	"github.com/fraised/fraised/auth"
	"github.com/fraised/fraised/gql"
	"github.com/fraised/fraised/proto"
	"github.com/fraised/fraised/ratelimit"
	"github.com/fraised/fraised/resp"
	"github.com/fraised/fraised/server"
)

// secureSDL exercises every security directive; written to a temporary
// file so the example schema stays untouched.
const secureSDL = `
type Node { id: Int child: Node }
type Item { name: String }
type Event {
  seq: Int!
  tenant: String
  account: Int
  body: String
  tags: [String!]
  items: [Item!]
  node: Node
}
type Query { serverTime: String version: String uptime: String }
type Subscription {
  events(topic: String!): Event! @topic(name: "public.{topic}")
  tenantEvents: Event! @topic(name: "tenant.events") @filter(field: "tenant", claim: "tenant_id")
  accountEvents: Event! @topic(name: "account.events") @filter(field: "account", claim: "account_id")
  adminEvents: Event! @topic(name: "admin") @auth(requires: ["role:admin"])
  scopedEvents: Event! @topic(name: "scoped") @auth(requires: ["scope:events:read"])
}
`

// Validation limits of the secure schema, small enough to trip in tests.
var testLimits = gql.Limits{MaxDocumentBytes: 600, MaxDepth: 4, MaxAliases: 2, MaxRootFields: 2, MaxFragmentSpreads: 3, MaxComplexity: 25}

const (
	testAudience = "fraised"
	cookieName   = "fraised_token"
)

var (
	testSecret  = []byte("0123456789abcdef0123456789abcdef")
	otherSecret = []byte("fedcba9876543210fedcba9876543210")
)

func secureSchema(t testing.TB) *gql.Schema {
	t.Helper()
	path := filepath.Join(t.TempDir(), "secure.graphql")
	if err := os.WriteFile(path, []byte(secureSDL), 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := gql.LoadSchemaFile(path, gql.Options{Limits: testLimits})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func testVerifier(t testing.TB) *auth.JWTVerifier {
	t.Helper()
	v, err := auth.NewJWTVerifier(auth.JWTConfig{Secret: testSecret, Audience: testAudience})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// startSecure starts a server on the secure schema with authentication in
// mode, an audit log in memory, and tweak applied last.
func startSecure(t testing.TB, mode auth.Mode, tweak func(*server.Options)) (*testServer, *auditSink) {
	t.Helper()
	sink := &auditSink{}
	log := audit.New(sink, 0)
	t.Cleanup(func() { log.Close() })
	s := startServer(t, func(o *server.Options) {
		o.Schema = secureSchema(t)
		o.Security = server.Security{Auth: mode, Verifier: testVerifier(t), Cookie: cookieName, Audit: log}
		if tweak != nil {
			tweak(o)
		}
	})
	return s, sink
}

// mint signs claims with HS256 and testSecret. Standard valid claims are
// filled in unless claims sets them (a nil value deletes one).
func mint(t testing.TB, claims jwt.MapClaims) string {
	t.Helper()
	return mintWith(t, jwt.SigningMethodHS256, testSecret, claims)
}

func mintWith(t testing.TB, method jwt.SigningMethod, key any, over jwt.MapClaims) string {
	t.Helper()
	c := jwt.MapClaims{"sub": "alice", "aud": testAudience, "exp": time.Now().Add(time.Hour).Unix()}
	for k, v := range over {
		if v == nil {
			delete(c, k)
			continue
		}
		c[k] = v
	}
	s, err := jwt.NewWithClaims(method, c).SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// initWith sends connection_init carrying token ("" for none).
func (c *client) initWith(token string) {
	c.t.Helper()
	if token == "" {
		c.send(`{"type":"connection_init","payload":{}}`)
		return
	}
	c.send(`{"type":"connection_init","payload":{"authorization":"Bearer ` + token + `"}}`)
}

// connectAs dials and initialises with token in the init payload.
func connectAs(t testing.TB, addr, token string) *client {
	t.Helper()
	c := dial(t, addr)
	c.initWith(token)
	c.expect(`{"type":"connection_ack"}`)
	return c
}

// dialHeader opens a WebSocket whose upgrade request carries h.
func dialHeader(t testing.TB, addr string, h http.Header) *client {
	t.Helper()
	return dialWith(t, addr, ws.Dialer{Protocols: []string{proto.Subprotocol}, Timeout: 5 * time.Second, Header: ws.HandshakeHeaderHTTP(h)})
}

// upgradeStatus sends a raw WebSocket upgrade with extra header lines and
// returns the HTTP status the server answers with.
func upgradeStatus(t testing.TB, addr string, extra ...string) int {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	req := "GET /graphql HTTP/1.1\r\nHost: " + addr + "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: graphql-transport-ws\r\n"
	for _, h := range extra {
		req += h + "\r\n"
	}
	if _, err := conn.Write([]byte(req + "\r\n")); err != nil {
		t.Fatal(err)
	}
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	res, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("reading the upgrade response: %v", err)
	}
	res.Body.Close()
	return res.StatusCode
}

// expectError reads the next message and checks it is an error for id
// whose text contains want.
func (c *client) expectError(id, want string) {
	c.t.Helper()
	m := c.next()
	if !strings.Contains(m, `"id":"`+id+`","type":"error"`) || !strings.Contains(m, want) {
		c.t.Fatalf("got %s\nwant an error for %q containing %q", m, id, want)
	}
}

// pingPong sends a ping and expects the very next message to be the pong:
// nothing was queued for the client before it.
func (c *client) pingPong() {
	c.t.Helper()
	c.send(`{"type":"ping"}`)
	c.expect(`{"type":"pong"}`)
}

// untilPong sends a ping and returns the messages that arrive before its
// pong.
func (c *client) untilPong() []string {
	c.t.Helper()
	c.send(`{"type":"ping"}`)
	var before []string
	for m := c.next(); m != `{"type":"pong"}`; m = c.next() {
		before = append(before, m)
	}
	return before
}

// accepted subscribes and reports whether no error came back.
func (c *client) accepted(id, query string, vars map[string]any) bool {
	c.t.Helper()
	c.subscribe(id, query, vars)
	return len(c.untilPong()) == 0
}

// auditSink collects audit lines in memory. Safe for concurrent use.
type auditSink struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (s *auditSink) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.Write(p)
}

// auditRec is one parsed audit line.
type auditRec struct {
	Time      string `json:"time"`
	Event     string `json:"event"`
	ConnID    uint64 `json:"conn_id"`
	Remote    string `json:"remote"`
	Subject   string `json:"subject"`
	Reason    string `json:"reason"`
	Operation string `json:"operation"`
	Field     string `json:"field"`
	DocHash   string `json:"doc_hash"`
	Topic     string `json:"topic"`
}

func (s *auditSink) records(t testing.TB) []auditRec {
	t.Helper()
	s.mu.Lock()
	data := append([]byte(nil), s.buf.Bytes()...)
	s.mu.Unlock()
	var out []auditRec
	for _, line := range bytes.Split(data, []byte("\n")) {
		if len(line) == 0 {
			continue
		}
		var r auditRec
		if err := json.Unmarshal(line, &r); err != nil {
			t.Fatalf("audit line is not JSON: %q: %v", line, err)
		}
		out = append(out, r)
	}
	return out
}

// wait returns the first record with event for which match holds, waiting
// for the log's periodic flush.
func (s *auditSink) wait(t testing.TB, event string, match func(auditRec) bool) auditRec {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		for _, r := range s.records(t) {
			if r.Event == event && (match == nil || match(r)) {
				return r
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %s audit record matched; log:\n%s", event, s.dump())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (s *auditSink) dump() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.String()
}

// from matches records about c's connection.
func from(c *client) func(auditRec) bool {
	remote := c.conn.LocalAddr().String()
	return func(r auditRec) bool { return r.Remote == remote }
}

func fromWithReason(c *client, reason string) func(auditRec) bool {
	isFrom := from(c)
	return func(r auditRec) bool { return isFrom(r) && strings.Contains(r.Reason, reason) }
}

// TestTokenSources: every kind of bad token is refused with 4403 after the
// init, from each place a token can come from, and audited with its reason
// (never the token); a valid one is acknowledged.
func TestTokenSources(t *testing.T) {
	s, sink := startSecure(t, auth.ModeRequired, nil)
	now := time.Now()
	tokens := []struct {
		name, token, reason string // reason "" = valid
	}{
		{"valid", mint(t, jwt.MapClaims{"sub": "valid-user"}), ""},
		{"expired", mint(t, jwt.MapClaims{"exp": now.Add(-time.Minute).Unix()}), "expired"},
		{"not yet valid", mint(t, jwt.MapClaims{"nbf": now.Add(time.Hour).Unix()}), "not yet valid"},
		{"wrong audience", mint(t, jwt.MapClaims{"aud": "someone-else"}), "wrong audience"},
		{"wrong signature", mintWith(t, jwt.SigningMethodHS256, otherSecret, nil), "bad signature"},
		{"alg none", mintWith(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, nil), "bad alg"},
	}
	sources := []struct {
		name string
		open func(t *testing.T, token string) *client
	}{
		{"init payload", func(t *testing.T, token string) *client {
			c := dial(t, s.opts.Listen)
			c.initWith(token)
			return c
		}},
		{"authorization header", func(t *testing.T, token string) *client {
			c := dialHeader(t, s.opts.Listen, http.Header{"Authorization": {"Bearer " + token}})
			c.initWith("")
			return c
		}},
		{"cookie", func(t *testing.T, token string) *client {
			c := dialHeader(t, s.opts.Listen, http.Header{"Cookie": {"theme=dark; " + cookieName + "=" + token}})
			c.initWith("")
			return c
		}},
	}
	for _, src := range sources {
		for _, tok := range tokens {
			t.Run(src.name+"/"+tok.name, func(t *testing.T) {
				c := src.open(t, tok.token)
				if tok.reason == "" {
					c.expect(`{"type":"connection_ack"}`)
					r := sink.wait(t, audit.EventAuthOK, from(c))
					if r.Subject != "valid-user" {
						t.Fatalf("auth.ok subject %q", r.Subject)
					}
					return
				}
				if reason := c.expectClose(proto.CloseForbidden); reason != "Forbidden" {
					t.Fatalf("close reason %q", reason)
				}
				sink.wait(t, audit.EventAuthFailed, fromWithReason(c, tok.reason))
			})
		}
	}
	valid := tokens[0].token
	if strings.Contains(sink.dump(), valid[strings.LastIndex(valid, ".")+1:]) {
		t.Fatal("the audit log contains token text")
	}
}

// TestInitPayloadTokenWins: a token in connection_init overrides the one
// on the upgrade request.
func TestInitPayloadTokenWins(t *testing.T) {
	s, _ := startSecure(t, auth.ModeRequired, nil)
	c := dialHeader(t, s.opts.Listen, http.Header{"Authorization": {"Bearer " + mint(t, nil)}})
	c.initWith(mint(t, jwt.MapClaims{"exp": time.Now().Add(-time.Hour).Unix()}))
	c.expectClose(proto.CloseForbidden)
}

func TestRequiredMode(t *testing.T) {
	s, sink := startSecure(t, auth.ModeRequired, nil)
	c := dial(t, s.opts.Listen)
	c.initWith("")
	c.expectClose(proto.CloseForbidden)
	sink.wait(t, audit.EventAuthFailed, fromWithReason(c, "no token"))
	if s.Stats().AuthFailures == 0 {
		t.Fatal("auth failure not counted")
	}
}

// TestOptionalMode: without a token the connection is anonymous: no role,
// no claim; a bad token is still refused, never downgraded.
func TestOptionalMode(t *testing.T) {
	s, sink := startSecure(t, auth.ModeOptional, nil)
	anon := connectAs(t, s.opts.Listen, "")
	sink.wait(t, audit.EventAuthOK, fromWithReason(anon, "anonymous"))
	anon.subscribe("admin", `subscription { adminEvents { seq } }`, nil)
	anon.expectError("admin", `requires role:admin`)
	anon.subscribe("tenant", `subscription { tenantEvents { seq } }`, nil)
	s.waitSubs(t, 1)
	p := dialPublisher(t, "tcp", s.opts.PublishListen)
	if got := p.publish("tenant.events", `{"seq":1,"tenant":"acme"}`); got != ":0" {
		t.Fatalf("an anonymous subscriber received a tenant's event: %s", got)
	}
	anon.pingPong()

	bad := dial(t, s.opts.Listen)
	bad.initWith(mintWith(t, jwt.SigningMethodHS256, otherSecret, nil))
	bad.expectClose(proto.CloseForbidden)
}

// TestCustomVerifier: a compiled-in Verifier replaces the JWT one.
func TestCustomVerifier(t *testing.T) {
	v := verifierFunc(func(_ context.Context, token string) (*auth.Identity, error) {
		if token != "open-sesame" {
			return nil, &auth.InvalidTokenError{Reason: auth.ReasonRejected}
		}
		return &auth.Identity{Subject: "custom", Roles: []string{"admin"}}, nil
	})
	s, sink := startSecure(t, auth.ModeRequired, func(o *server.Options) { o.Security.Verifier = v })
	c := connectAs(t, s.opts.Listen, "open-sesame")
	c.subscribe("1", `subscription { adminEvents { seq } }`, nil)
	s.waitSubs(t, 1)
	bad := dial(t, s.opts.Listen)
	bad.initWith("nope")
	bad.expectClose(proto.CloseForbidden)
	sink.wait(t, audit.EventAuthFailed, fromWithReason(bad, "rejected"))
}

type verifierFunc func(ctx context.Context, token string) (*auth.Identity, error)

func (f verifierFunc) Verify(ctx context.Context, token string) (*auth.Identity, error) {
	return f(ctx, token)
}

// TestTokenExpiryClosesSocket: an open socket whose token expires is
// closed with 4403, and the expiry is audited.
func TestTokenExpiryClosesSocket(t *testing.T) {
	t.Parallel()
	s, sink := startSecure(t, auth.ModeRequired, nil)
	c := connectAs(t, s.opts.Listen, mint(t, jwt.MapClaims{"exp": time.Now().Add(2 * time.Second).Unix()}))
	c.subscribe("1", eventsQuery, map[string]any{"t": "x"})
	if reason := c.expectClose(proto.CloseForbidden); !strings.Contains(reason, "expired") {
		t.Fatalf("close reason %q", reason)
	}
	sink.wait(t, audit.EventTokenExpired, from(c))
	s.waitSubs(t, 0)
}

// TestTokenRenewalViaPing: a ping carrying a fresh token keeps the socket
// open past the first token's exp; a renewal for another subject or with
// a bad token closes it.
func TestTokenRenewalViaPing(t *testing.T) {
	t.Parallel()
	s, sink := startSecure(t, auth.ModeRequired, nil)
	firstExp := time.Now().Add(2 * time.Second)
	c := connectAs(t, s.opts.Listen, mint(t, jwt.MapClaims{"exp": firstExp.Unix()}))
	c.send(`{"type":"ping","payload":{"authorization":"Bearer ` + mint(t, nil) + `"}}`)
	c.expect(`{"type":"pong","payload":{}}`) // the token is never echoed
	sink.wait(t, audit.EventTokenRenewed, from(c))
	// Past the first exp plus a housekeeping round (1 s), the socket is open.
	time.Sleep(time.Until(firstExp.Truncate(time.Second).Add(2500 * time.Millisecond)))
	c.pingPong()

	other := connectAs(t, s.opts.Listen, mint(t, nil))
	other.send(`{"type":"ping","payload":{"authorization":"Bearer ` + mint(t, jwt.MapClaims{"sub": "mallory"}) + `"}}`)
	other.expect(`{"type":"pong","payload":{}}`)
	other.expectClose(proto.CloseForbidden)
	sink.wait(t, audit.EventAuthFailed, fromWithReason(other, "renewal: subject changed"))

	// A renewal may not change what the token grants: subscriptions already
	// running were admitted and filtered with the old claims and roles.
	for _, over := range []jwt.MapClaims{{"tenant_id": "globex"}, {"roles": []string{"admin"}}} {
		c := connectAs(t, s.opts.Listen, mint(t, jwt.MapClaims{"tenant_id": "acme"}))
		c.send(`{"type":"ping","payload":{"authorization":"Bearer ` + mint(t, over) + `"}}`)
		c.expect(`{"type":"pong","payload":{}}`)
		c.expectClose(proto.CloseForbidden)
		sink.wait(t, audit.EventAuthFailed, fromWithReason(c, "renewal: roles, scopes or claims changed"))
	}

	expired := connectAs(t, s.opts.Listen, mint(t, nil))
	expired.send(`{"type":"ping","payload":{"authorization":"Bearer ` + mint(t, jwt.MapClaims{"exp": time.Now().Add(-time.Hour).Unix()}) + `"}}`)
	expired.expect(`{"type":"pong","payload":{}}`)
	expired.expectClose(proto.CloseForbidden)
	sink.wait(t, audit.EventAuthFailed, fromWithReason(expired, "renewal: expired"))
}

// TestRoleAndScopeRefusals: a field the token does not allow yields an
// error message, the socket stays open, and the refusal is audited.
func TestRoleAndScopeRefusals(t *testing.T) {
	s, sink := startSecure(t, auth.ModeRequired, nil)
	user := connectAs(t, s.opts.Listen, mint(t, jwt.MapClaims{"sub": "user-1", "roles": []string{"user"}, "scope": "other:read"}))
	user.subscribe("a", `subscription Admin { adminEvents { seq } }`, nil)
	user.expectError("a", `forbidden: field \"Subscription.adminEvents\" requires role:admin`)
	user.subscribe("s", `subscription { scopedEvents { seq } }`, nil)
	user.expectError("s", `requires scope:events:read`)
	refused := sink.wait(t, audit.EventSubscribeRefused, fromWithReason(user, "requires role:admin"))
	if refused.Subject != "user-1" || refused.DocHash == "" {
		t.Fatalf("refusal record lacks subject or document hash: %+v", refused)
	}
	// Still open: a permitted subscription works.
	user.subscribe("ok", eventsQuery, map[string]any{"t": "news"})
	s.waitSubs(t, 1)

	admin := connectAs(t, s.opts.Listen, mint(t, jwt.MapClaims{"sub": "root", "roles": []string{"admin"}, "scope": "events:read other"}))
	admin.subscribe("a", `subscription Admin { adminEvents { seq } }`, nil)
	admin.subscribe("s", `subscription { scopedEvents { seq } }`, nil)
	s.waitSubs(t, 3)
	p := dialPublisher(t, "tcp", s.opts.PublishListen)
	if got := p.publish("admin", `{"seq":9}`); got != ":1" {
		t.Fatalf("publish reached %s", got)
	}
	admin.expect(`{"id":"a","type":"next","payload":{"data":{"adminEvents":{"seq":9}}}}`)
	acc := sink.wait(t, audit.EventSubscribeAccepted, func(r auditRec) bool { return r.Subject == "root" && r.Field == "adminEvents" })
	if acc.Operation != "Admin" || acc.Topic != "admin" || acc.DocHash != refused.DocHash {
		t.Fatalf("accepted record %+v: want operation Admin, topic admin, the refused document's hash %s", acc, refused.DocHash)
	}
}

// TestTenantIsolation: two tenants subscribe with the same document to
// the same topic; under concurrent publishers each subscriber gets every
// event of its tenant and none of the other's; a token without the claim
// gets nothing.
func TestTenantIsolation(t *testing.T) {
	s, _ := startSecure(t, auth.ModeRequired, nil)
	const perTenant, publishers, perPublisher = 8, 4, 50
	tenants := []string{"acme", "globex"}
	const doc = `subscription { tenantEvents { seq tenant } }`
	subs := map[string][]*client{}
	for i := 0; i < perTenant; i++ {
		for _, tn := range tenants {
			c := connectAs(t, s.opts.Listen, mint(t, jwt.MapClaims{"sub": fmt.Sprintf("%s-%d", tn, i), "tenant_id": tn}))
			c.subscribe("1", doc, nil)
			subs[tn] = append(subs[tn], c)
		}
	}
	noClaim := connectAs(t, s.opts.Listen, mint(t, jwt.MapClaims{"sub": "drifter"}))
	noClaim.subscribe("1", doc, nil)
	s.waitSubs(t, 2*perTenant+1)
	if g := s.Stats().Groups; g != 3 {
		t.Fatalf("%d groups, want 3 (one per tenant, one that matches nothing)", g)
	}

	var readers sync.WaitGroup
	for _, tn := range tenants {
		for _, c := range subs[tn] {
			readers.Add(1)
			go func() {
				defer readers.Done()
				readTenant(t, c, tn, publishers*perPublisher/len(tenants))
			}()
		}
	}
	var pubs sync.WaitGroup
	for p := 0; p < publishers; p++ {
		pub := dialPublisher(t, "tcp", s.opts.PublishListen)
		pubs.Add(1)
		go func() {
			defer pubs.Done()
			publishTenants(t, pub, p, perPublisher, tenants, perTenant)
		}()
	}
	pubs.Wait()
	readers.Wait()
	for _, tn := range tenants {
		for _, c := range subs[tn] {
			c.pingPong() // nothing more was queued
		}
	}
	noClaim.pingPong()
}

// publishTenants publishes n events alternating between tenants; each
// must reach exactly perTenant subscribers. Safe to run on its own goroutine.
func publishTenants(t *testing.T, pub *publisher, p, n int, tenants []string, perTenant int) {
	for i := 0; i < n; i++ {
		ev := fmt.Sprintf(`{"seq":%d,"tenant":%q}`, p*n+i, tenants[i%len(tenants)])
		if _, err := pub.conn.Write(resp.AppendArray(nil, []byte("PUBLISH"), []byte("tenant.events"), []byte(ev))); err != nil {
			t.Errorf("publish: %v", err)
			return
		}
		_ = pub.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		line, err := pub.r.ReadString('\n')
		if want := fmt.Sprintf(":%d\r\n", perTenant); err != nil || line != want {
			t.Errorf("publish %s replied %q %v, want %q", ev, line, err, want)
			return
		}
	}
}

// readTenant reads n events and checks they all belong to tenant and are
// distinct. Safe to run on its own goroutine.
func readTenant(t *testing.T, c *client, tenant string, n int) {
	seen := map[int64]bool{}
	for len(seen) < n {
		m, err := c.read()
		if err != nil {
			t.Errorf("tenant %s: %v after %d events", tenant, err, len(seen))
			return
		}
		if got := gjson.Get(m, "payload.data.tenantEvents.tenant").String(); got != tenant {
			t.Errorf("LEAK: a %s subscriber received %s", tenant, m)
			return
		}
		seq := gjson.Get(m, "payload.data.tenantEvents.seq").Int()
		if seen[seq] {
			t.Errorf("tenant %s: event %d twice", tenant, seq)
			return
		}
		seen[seq] = true
	}
}

// TestNumericTenantClaim: a claim holding a JSON number (json.Number in the
// identity) matches the same number in the event, not its string spelling.
func TestNumericTenantClaim(t *testing.T) {
	s, _ := startSecure(t, auth.ModeRequired, nil)
	c := connectAs(t, s.opts.Listen, mint(t, jwt.MapClaims{"account_id": 42}))
	c.subscribe("1", `subscription { accountEvents { seq account } }`, nil)
	s.waitSubs(t, 1)
	p := dialPublisher(t, "tcp", s.opts.PublishListen)
	for _, tt := range []struct{ event, want string }{
		{`{"seq":1,"account":43}`, ":0"},
		{`{"seq":2,"account":"42"}`, ":0"},
		{`{"seq":3,"account":42.0}`, ":1"},
		{`{"seq":4,"account":42}`, ":1"},
	} {
		if got := p.publish("account.events", tt.event); got != tt.want {
			t.Errorf("publish %s reached %s, want %s", tt.event, got, tt.want)
		}
	}
	c.expect(`{"id":"1","type":"next","payload":{"data":{"accountEvents":{"seq":3,"account":42}}}}`)
	c.expect(`{"id":"1","type":"next","payload":{"data":{"accountEvents":{"seq":4,"account":42}}}}`)
}

// TestLargeNumericClaimsDoNotShareAGroup: integer claims that differ only
// beyond float64 precision are different tenants.
func TestLargeNumericClaimsDoNotShareAGroup(t *testing.T) {
	s, _ := startSecure(t, auth.ModeRequired, nil)
	a := connectAs(t, s.opts.Listen, mint(t, jwt.MapClaims{"sub": "a", "account_id": json.Number("9007199254740992")}))
	a.subscribe("1", `subscription { accountEvents { seq } }`, nil)
	b := connectAs(t, s.opts.Listen, mint(t, jwt.MapClaims{"sub": "b", "account_id": json.Number("9007199254740993")}))
	b.subscribe("1", `subscription { accountEvents { seq } }`, nil)
	s.waitSubs(t, 2)
	p := dialPublisher(t, "tcp", s.opts.PublishListen)
	if got := p.publish("account.events", `{"seq":1,"account":9007199254740993}`); got != ":1" {
		t.Fatalf("publish reached %s, want :1", got)
	}
	b.expect(`{"id":"1","type":"next","payload":{"data":{"accountEvents":{"seq":1}}}}`)
	if got := p.publish("account.events", `{"seq":2,"account":9007199254740992}`); got != ":1" {
		t.Fatalf("publish reached %s, want :1", got)
	}
	a.expect(`{"id":"1","type":"next","payload":{"data":{"accountEvents":{"seq":2}}}}`)
	a.pingPong()
	b.pingPong()
}

// eventually retries try every 50 ms until it reports true (5 s at most).
func eventually(t testing.TB, what string, try func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !try() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: did not recover within 5s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestRateLimitConnectionsPerIP(t *testing.T) {
	t.Parallel()
	s, sink := startSecure(t, auth.ModeOff, func(o *server.Options) {
		o.Security.Limits.ConnsPerIP = ratelimit.Limit{Rate: 0.5, Burst: 2}
	})
	dial(t, s.opts.Listen)
	dial(t, s.opts.Listen)
	if code := upgradeStatus(t, s.opts.Listen); code != http.StatusTooManyRequests {
		t.Fatalf("third connection: status %d, want 429", code)
	}
	sink.wait(t, audit.EventConnRefused, func(r auditRec) bool { return strings.Contains(r.Reason, "connections per IP") })
	eventually(t, "connections per IP", func() bool { return upgradeStatus(t, s.opts.Listen) == http.StatusSwitchingProtocols })
	if st := s.Stats(); st.RefusedConns == 0 || st.RateLimited == 0 {
		t.Fatalf("refusal not counted: %+v", st)
	}
}

// TestRateLimitMessages: a client within its burst and refill is served;
// one that floods is closed with 4429.
func TestRateLimitMessages(t *testing.T) {
	t.Parallel()
	s, sink := startSecure(t, auth.ModeOff, func(o *server.Options) {
		o.Security.Limits.MessagesPerConn = ratelimit.Limit{Rate: 10, Burst: 4}
	})
	c := connectAs(t, s.opts.Listen, "") // 1 token
	for i := 0; i < 3; i++ {
		c.pingPong()
	}
	time.Sleep(500 * time.Millisecond) // refills the bucket
	for i := 0; i < 3; i++ {
		c.pingPong()
	}
	for i := 0; i < 30; i++ {
		// The server may close mid-flood; later writes then fail.
		_ = wsutil.WriteClientText(c.conn, []byte(`{"type":"ping"}`))
	}
	if reason := c.expectClose(proto.CloseTooManyInitRequests); reason != "Too many messages" {
		t.Fatalf("close reason %q", reason)
	}
	sink.wait(t, audit.EventRateLimit, fromWithReason(c, "too many messages"))
}

func TestRateLimitSubscribesPerConnection(t *testing.T) {
	t.Parallel()
	s, sink := startSecure(t, auth.ModeOff, func(o *server.Options) {
		o.Security.Limits.SubscribesPerConn = ratelimit.Limit{Rate: 0.5, Burst: 2}
	})
	c := connectAs(t, s.opts.Listen, "")
	c.subscribe("1", eventsQuery, map[string]any{"t": "a"})
	c.subscribe("2", eventsQuery, map[string]any{"t": "a"})
	c.subscribe("3", eventsQuery, map[string]any{"t": "a"})
	c.expectError("3", "rate limit exceeded: subscribe operations on this connection")
	sink.wait(t, audit.EventRateLimit, fromWithReason(c, "subscribe operations on this connection"))
	eventually(t, "subscribes per connection", func() bool { return c.accepted("3", eventsQuery, map[string]any{"t": "a"}) })
	s.waitSubs(t, 3)
}

func TestRateLimitSubscribesPerIdentity(t *testing.T) {
	t.Parallel()
	s, sink := startSecure(t, auth.ModeRequired, func(o *server.Options) {
		o.Security.Limits.SubscribesPerIdentity = ratelimit.Limit{Rate: 0.5, Burst: 2}
	})
	tok := mint(t, jwt.MapClaims{"sub": "busy"})
	a, b := connectAs(t, s.opts.Listen, tok), connectAs(t, s.opts.Listen, tok)
	a.subscribe("1", eventsQuery, map[string]any{"t": "a"})
	a.subscribe("2", eventsQuery, map[string]any{"t": "a"})
	a.pingPong() // both accepted (an error would come before the pong)
	b.subscribe("1", eventsQuery, map[string]any{"t": "a"})
	b.expectError("1", "rate limit exceeded: subscribe operations for this identity")
	sink.wait(t, audit.EventRateLimit, func(r auditRec) bool { return r.Subject == "busy" && strings.Contains(r.Reason, "for this identity") })
	eventually(t, "subscribes per identity", func() bool { return b.accepted("1", eventsQuery, map[string]any{"t": "a"}) })
	s.waitSubs(t, 3)
}

func TestMaxSubscriptionsPerIdentity(t *testing.T) {
	t.Parallel()
	s, sink := startSecure(t, auth.ModeRequired, func(o *server.Options) {
		o.Security.Limits.MaxSubsPerIdentity = 2
	})
	tok := mint(t, jwt.MapClaims{"sub": "hoarder"})
	a, b := connectAs(t, s.opts.Listen, tok), connectAs(t, s.opts.Listen, tok)
	a.subscribe("1", eventsQuery, map[string]any{"t": "a"})
	b.subscribe("1", eventsQuery, map[string]any{"t": "a"})
	s.waitSubs(t, 2)
	b.subscribe("2", eventsQuery, map[string]any{"t": "a"})
	b.expectError("2", "too many active operations for this identity")
	sink.wait(t, audit.EventRateLimit, func(r auditRec) bool {
		return r.Subject == "hoarder" && strings.Contains(r.Reason, "for this identity")
	})
	if s.Stats().RateLimited == 0 {
		t.Fatal("refusal not counted")
	}
	a.send(`{"id":"1","type":"complete"}`)
	eventually(t, "subscriptions per identity", func() bool { return b.accepted("2", eventsQuery, map[string]any{"t": "a"}) })
	s.waitSubs(t, 2)
}

func TestMaxConnectionsPerIdentity(t *testing.T) {
	t.Parallel()
	s, sink := startSecure(t, auth.ModeRequired, func(o *server.Options) {
		o.Security.Limits.MaxConnsPerIdentity = 1
	})
	tok := mint(t, jwt.MapClaims{"sub": "solo"})
	first := connectAs(t, s.opts.Listen, tok)
	second := dial(t, s.opts.Listen)
	second.initWith(tok)
	if reason := second.expectClose(proto.CloseTooManyInitRequests); reason != "too many connections for this identity" {
		t.Fatalf("close reason %q", reason)
	}
	sink.wait(t, audit.EventRateLimit, fromWithReason(second, "too many connections for this identity"))
	first.conn.Close()
	eventually(t, "connections per identity", func() bool {
		c := dial(t, s.opts.Listen)
		c.initWith(tok)
		_, err := c.read()
		return err == nil
	})
}

// TestIdentitySlotFreedWhenClosedDuringVerification: a client that closes
// while its token is being verified does not keep its identity's
// connection slot.
func TestIdentitySlotFreedWhenClosedDuringVerification(t *testing.T) {
	t.Parallel()
	slow := verifierFunc(func(_ context.Context, token string) (*auth.Identity, error) {
		time.Sleep(100 * time.Millisecond)
		return &auth.Identity{Subject: token}, nil
	})
	s, _ := startSecure(t, auth.ModeRequired, func(o *server.Options) {
		o.Security.Verifier = slow
		o.Security.Limits.MaxConnsPerIdentity = 1
	})
	for i := 0; i < 3; i++ {
		c := dial(t, s.opts.Listen)
		c.initWith("quitter")
		c.conn.Close()
		eventually(t, "connection closed during verification", func() bool { return s.Stats().Connections == 0 })
		time.Sleep(150 * time.Millisecond) // the verification finishes
	}
	connectAs(t, s.opts.Listen, "quitter")
}

func TestRateLimitPublishes(t *testing.T) {
	t.Parallel()
	s, sink := startSecure(t, auth.ModeOff, func(o *server.Options) {
		o.Security.Limits.PublishesPerConn = ratelimit.Limit{Rate: 0.5, Burst: 2}
	})
	p := dialPublisher(t, "tcp", s.opts.PublishListen)
	p.publish("t", `{"seq":1}`)
	p.publish("t", `{"seq":2}`)
	if got := p.publish("t", `{"seq":3}`); got != "-ERR rate limit exceeded: publish commands on this connection" {
		t.Fatalf("third publish replied %q", got)
	}
	sink.wait(t, audit.EventRateLimit, func(r auditRec) bool { return strings.Contains(r.Reason, "publish commands") })
	eventually(t, "publishes per connection", func() bool { return p.publish("t", `{"seq":4}`) == ":0" })
}

// TestValidationLimits: each document limit yields an error message and
// the socket stays open.
func TestValidationLimits(t *testing.T) {
	s, sink := startSecure(t, auth.ModeOff, nil)
	c := connectAs(t, s.opts.Listen, "")
	tests := []struct {
		name, query string
		vars        map[string]any
		want        string
	}{
		{"depth", `subscription { events(topic: "x") { node { child { child { id } } } } }`, nil, "depth is 5, more than the limit of 4"},
		{"aliases", `subscription { events(topic: "x") { a: seq b: seq c: seq } }`, nil, "alias count is 3, more than the limit of 2"},
		{"root fields", `{ serverTime version uptime }`, nil, "root field count is 3, more than the limit of 2"},
		{"fragment spreads", `subscription { events(topic: "x") { ...F ...F ...F ...F } } fragment F on Event { seq }`, nil,
			"fragment spread count is 4, more than the limit of 3"},
		{"complexity", `subscription { events(topic: "x") { tags items { name } } }`, nil, "complexity is 31, more than the limit of 25"},
		{"document size", `subscription { events(topic: "x") { seq } }` + strings.Repeat(" ", 600), nil, "more than the limit of 600"},
		{"variable of the wrong type", eventsQuery, map[string]any{"t": 5}, `$t`},
		{"missing variable", eventsQuery, nil, `must be defined","path":["variable","t"]`},
	}
	for i, tt := range tests {
		id := fmt.Sprint(i)
		c.subscribe(id, tt.query, tt.vars)
		m := c.next()
		if !strings.Contains(m, `"id":"`+id+`","type":"error"`) || !strings.Contains(m, tt.want) {
			t.Errorf("%s: got %s\nwant an error containing %q", tt.name, m, tt.want)
		}
	}
	c.pingPong()
	sink.wait(t, audit.EventSubscribeRefused, fromWithReason(c, "more than the limit"))
}

func TestMaxMessageSize(t *testing.T) {
	s, _ := startSecure(t, auth.ModeOff, func(o *server.Options) { o.MaxMessage = 1024 })
	c := connectAs(t, s.opts.Listen, "")
	c.send(`{"type":"ping","payload":{"x":"` + strings.Repeat("a", 2048) + `"}}`)
	c.expectClose(proto.CloseMessageTooBig)
}

// TestOriginAllowlist: browsers from other origins are refused with 403
// before the upgrade (cross-site WebSocket hijacking); clients without
// Origin are not browsers and pass.
func TestOriginAllowlist(t *testing.T) {
	type check struct {
		origin string // "" = no header; "SAME" = http://<listen address>
		want   int
	}
	tests := []struct {
		name    string
		allowed []string
		checks  []check
	}{
		{"listed", []string{"https://App.example/", "https://admin.example"}, []check{
			{"https://app.example", 101}, {"https://admin.example", 101}, {"https://evil.example", 403},
			{"SAME", 403}, {"null", 403}, {"", 101},
		}},
		{"default: same origin only", nil, []check{{"SAME", 101}, {"https://evil.example", 403}, {"", 101}}},
		{"any", []string{"*"}, []check{{"https://anything.example", 101}, {"SAME", 101}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, sink := startSecure(t, auth.ModeOff, func(o *server.Options) { o.Security.AllowedOrigins = tt.allowed })
			for _, ck := range tt.checks {
				var extra []string
				switch ck.origin {
				case "":
				case "SAME":
					extra = append(extra, "Origin: http://"+s.opts.Listen)
				default:
					extra = append(extra, "Origin: "+ck.origin)
				}
				if got := upgradeStatus(t, s.opts.Listen, extra...); got != ck.want {
					t.Errorf("Origin %q: status %d, want %d", ck.origin, got, ck.want)
				}
			}
			for _, ck := range tt.checks {
				if ck.want == 403 {
					sink.wait(t, audit.EventConnRefused, func(r auditRec) bool { return strings.HasPrefix(r.Reason, "origin not allowed") })
				}
			}
		})
	}
}
