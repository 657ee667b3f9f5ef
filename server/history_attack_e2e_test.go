package server_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/golang-jwt/jwt/v5"
	"github.com/tidwall/gjson"

	"github.com/fraised/fraised/auth"
	"github.com/fraised/fraised/gql"
	"github.com/fraised/fraised/proto"
	"github.com/fraised/fraised/server"
)

// subscribeWithResume sends a subscribe of feed(room: "r") whose
// extensions.fraised.resume is the raw JSON resume.
func (c *client) subscribeWithResume(id, resume string) {
	c.t.Helper()
	c.send(fmt.Sprintf(`{"id":%q,"type":"subscribe","payload":{"query":%q,"variables":{"room":"r"},"extensions":{"fraised":{"resume":%s}}}}`, id, feedDoc, resume))
}

// TestResumeHostileInputs: positions an attacker (or a buggy client)
// sends get the protocol's own errors, one per operation, and leave the
// connection working: an offset past the latest (up to the largest
// uint64) is "ahead" and quoted back exactly; anything that is not a
// uint64 offset with a string epoch is FRAISED_RESUME_INVALID.
func TestResumeHostileInputs(t *testing.T) {
	s := startHistory(t, nil)
	pub := dialPublisher(t, "tcp", s.opts.PublishListen)
	pub.publishN("feed.r", 1, 3, "")
	c := connect(t, s.opts.Listen)
	epoch := probeEpoch(t, c, "r")
	c.subscribeWithResume("max", fmt.Sprintf(`{"epoch":%q,"offset":18446744073709551615}`, epoch))
	m := c.next()
	if e := gjson.Get(m, "payload.0.extensions"); e.Get("reason").String() != "ahead" || e.Get("requested.offset").Raw != "18446744073709551615" ||
		e.Get("available.last").Uint() != 3 {
		t.Fatalf("the largest offset: %s", m)
	}
	for _, r := range []string{
		fmt.Sprintf(`{"epoch":%q,"offset":18446744073709551616}`, epoch), // past uint64
		fmt.Sprintf(`{"epoch":%q,"offset":"2"}`, epoch),
		fmt.Sprintf(`{"epoch":%q,"offset":2e0}`, epoch),
		fmt.Sprintf(`{"epoch":%q,"offset":null}`, epoch),
		`{"epoch":123,"offset":1}`,
		`{"epoch":null,"offset":1}`,
		`{"epoch":true,"offset":1}`,
		`{"epoch":["a"],"offset":1}`,
		`{"epoch":{"e":"a"},"offset":1}`,
		fmt.Sprintf(`{"epoch":%q,"offset":1}`, strings.Repeat("a", 65)), // past MaxEpochLen
		`{"epoch":"caf\u00e9","offset":1}`,
		`[{"epoch":"a","offset":1}]`,
		`17`,
	} {
		c.subscribeWithResume("bad", r)
		m := c.next()
		if gjson.Get(m, "type").String() != "error" || gjson.Get(m, "id").String() != "bad" ||
			gjson.Get(m, "payload.0.extensions.code").String() != "FRAISED_RESUME_INVALID" {
			t.Fatalf("resume %s: got %s", r, m)
		}
	}
	c.subscribeWithResume("ok", fmt.Sprintf(`{"epoch":%q,"offset":2}`, epoch)) // still usable
	if p := c.nextPos("ok"); p.offset != 3 {
		t.Fatalf("after the refusals: %+v", p)
	}
}

// TestInitWithTenThousandResumes: connection_init's fraised.resume is
// bounded twice: by --max-message (a 10,000-entry payload is closed 1009
// before it is parsed) and, when the message fits, by
// --max-subscriptions (close 4400 naming the flag); 100 entries are fine.
func TestInitWithTenThousandResumes(t *testing.T) {
	entries := func(n int) string {
		var b strings.Builder
		for i := 0; i < n; i++ {
			if i > 0 {
				b.WriteByte(',')
			}
			fmt.Fprintf(&b, `"%d":{"epoch":"e","offset":%d}`, i, i)
		}
		return `{"type":"connection_init","payload":{"fraised":{"resume":{` + b.String() + `}}}}`
	}
	s := startHistory(t, nil)
	c := dial(t, s.opts.Listen)
	c.send(entries(10_000))
	c.expectClose(proto.CloseMessageTooBig)

	big := startHistory(t, func(o *server.Options) { o.MaxMessage = 1 << 20 })
	c = dial(t, big.opts.Listen)
	c.send(entries(10_000))
	if reason := c.expectClose(proto.CloseBadRequest); !strings.Contains(reason, "--max-subscriptions") {
		t.Fatalf("reason %q", reason)
	}
	c = dial(t, big.opts.Listen)
	c.send(entries(server.DefaultMaxSubsPerConn))
	c.expect(`{"type":"connection_ack"}`)
}

// authHistorySDL keeps history on a field only admins may subscribe to.
const authHistorySDL = `
type Event { seq: Int! }
type Query { a: String }
type Subscription {
  adminFeed(room: String!): Event! @topic(name: "af.{room}") @auth(requires: ["role:admin"]) @history(size: 100, ttl: "1m")
}
`

// TestResumeAfterLosingAuth: a client that comes back with a token that
// no longer passes the field's @auth gets the forbidden error for its
// resume, by subscribe extensions or by connection_init, and no
// replayed event; an admin resumes as usual.
func TestResumeAfterLosingAuth(t *testing.T) {
	path := filepath.Join(t.TempDir(), "auth.graphql")
	if err := os.WriteFile(path, []byte(authHistorySDL), 0o600); err != nil {
		t.Fatal(err)
	}
	schema, err := gql.LoadSchemaFile(path, gql.Options{})
	if err != nil {
		t.Fatal(err)
	}
	s := startServer(t, func(o *server.Options) {
		o.Schema = schema
		o.Security = server.Security{Auth: auth.ModeRequired, Verifier: testVerifier(t)}
	})
	pub := dialPublisher(t, "tcp", s.opts.PublishListen)
	for i := 1; i <= 3; i++ {
		pub.publish("af.r", fmt.Sprintf(`{"seq":%d}`, i))
	}
	const doc = `subscription { adminFeed(room: \"r\") { seq } }`
	admin := connectAs(t, s.opts.Listen, mint(t, jwt.MapClaims{"sub": "root", "roles": []string{"admin"}}))
	admin.send(`{"id":"p","type":"subscribe","payload":{"query":"` + doc + `","extensions":{"fraised":{"resume":{"epoch":"probe0000000","offset":0}}}}}`)
	epoch := gjson.Get(admin.next(), "payload.0.extensions.available.epoch").String()
	resume := fmt.Sprintf(`{"epoch":%q,"offset":1}`, epoch)

	user := connectAs(t, s.opts.Listen, mint(t, jwt.MapClaims{"sub": "demoted", "roles": []string{"user"}}))
	user.send(`{"id":"a","type":"subscribe","payload":{"query":"` + doc + `","extensions":{"fraised":{"resume":` + resume + `}}}}`)
	user.expectError("a", `forbidden: field \"Subscription.adminFeed\" requires role:admin`)
	byInit := dial(t, s.opts.Listen)
	byInit.send(`{"type":"connection_init","payload":{"authorization":"Bearer ` + mint(t, jwt.MapClaims{"sub": "demoted"}) + `","fraised":{"resume":{"b":` + resume + `}}}}`)
	byInit.expect(`{"type":"connection_ack"}`)
	byInit.send(`{"id":"b","type":"subscribe","payload":{"query":"` + doc + `"}}`)
	byInit.expectError("b", `forbidden: field \"Subscription.adminFeed\" requires role:admin`)
	user.pingPong()
	byInit.pingPong() // nothing was replayed

	admin.send(`{"id":"a","type":"subscribe","payload":{"query":"` + doc + `","extensions":{"fraised":{"resume":` + resume + `}}}}`)
	for i := 2; i <= 3; i++ {
		if p := admin.nextPos("a"); p.offset != uint64(i) {
			t.Fatalf("admin replay %+v, want %d", p, i)
		}
	}
}
