package server_test

import (
	"testing"

	"github.com/golang-jwt/jwt/v5"

	"github.com/fraised/fraised/auth"
	"github.com/fraised/fraised/gql"
	"github.com/fraised/fraised/server"
)

// TestSecureExampleDelivers runs examples/secure.graphql, whose fields
// share topics only with fields guarded alike, and checks that each field
// still delivers to exactly the subscribers its guards admit.
func TestSecureExampleDelivers(t *testing.T) {
	schema, err := gql.LoadSchemaFile("../examples/secure.graphql", gql.Options{})
	if err != nil {
		t.Fatal(err)
	}
	s := startServer(t, func(o *server.Options) {
		o.Schema = schema
		o.Security = server.Security{Auth: auth.ModeRequired, Verifier: testVerifier(t)}
	})
	alice := connectAs(t, s.opts.Listen, mint(t, jwt.MapClaims{"sub": "alice", "tenant_id": "acme", "roles": []string{"support"}, "scope": "orders:read"}))
	carol := connectAs(t, s.opts.Listen, mint(t, jwt.MapClaims{"sub": "carol", "tenant_id": "acme"}))
	bob := connectAs(t, s.opts.Listen, mint(t, jwt.MapClaims{"sub": "bob", "tenant_id": "globex"}))

	alice.subscribe("paid", `subscription { ordersByStatus(status: PAID) { id status } }`, nil)
	alice.subscribe("esc", `subscription { escalations { id } }`, nil)
	alice.subscribe("audit", `subscription { auditTrail { seq } }`, nil)
	alice.expectError("audit", `forbidden: type \"AuditEntry\" requires role:admin`)
	carol.subscribe("esc", `subscription { escalations { id } }`, nil)
	carol.expectError("esc", `forbidden: field \"Subscription.escalations\" requires role:support`)
	carol.subscribe("all", `subscription { orders { id } }`, nil)
	bob.subscribe("all", `subscription { orders { id } }`, nil)
	s.waitSubs(t, 4)

	p := dialPublisher(t, "tcp", s.opts.PublishListen)
	if got := p.publish("orders", `{"id":"o2","tenant":"globex","status":"PAID"}`); got != ":1" {
		t.Fatalf("globex order reached %s subscriptions, want :1 (bob)", got)
	}
	bob.expect(`{"id":"all","type":"next","payload":{"data":{"orders":{"id":"o2"}}}}`)
	if got := p.publish("orders", `{"id":"o1","tenant":"acme","status":"PAID"}`); got != ":2" {
		t.Fatalf("acme order reached %s subscriptions, want :2 (alice by status, carol)", got)
	}
	alice.expect(`{"id":"paid","type":"next","payload":{"data":{"ordersByStatus":{"id":"o1","status":"PAID"}}}}`)
	carol.expect(`{"id":"all","type":"next","payload":{"data":{"orders":{"id":"o1"}}}}`)
	if got := p.publish("orders.escalated", `{"id":"o3","tenant":"acme","status":"PENDING"}`); got != ":1" {
		t.Fatalf("escalation reached %s subscriptions, want :1 (alice)", got)
	}
	alice.expect(`{"id":"esc","type":"next","payload":{"data":{"escalations":{"id":"o3"}}}}`)
	for _, c := range []*client{alice, bob, carol} {
		if extra := c.untilPong(); len(extra) > 0 {
			t.Fatalf("unexpected messages: %v", extra)
		}
	}
}

// TestExampleSchemaDelivers: examples/schema.graphql keeps its free
// events(topic:) field (no field there has guards) and delivers on it.
func TestExampleSchemaDelivers(t *testing.T) {
	s := startServer(t, nil)
	c := connect(t, s.opts.Listen)
	c.subscribe("1", eventsQuery, map[string]any{"t": "events.demo"})
	c.subscribe("2", `subscription { orderUpdated(customerId: 42) { id status } }`, nil)
	s.waitSubs(t, 2)
	p := dialPublisher(t, "tcp", s.opts.PublishListen)
	if got := p.publish("events.demo", `{"seq":1,"body":"hello"}`); got != ":1" {
		t.Fatalf("events.demo reached %s subscriptions, want :1", got)
	}
	c.expect(`{"id":"1","type":"next","payload":{"data":{"events":{"seq":1,"body":"hello"}}}}`)
	if got := p.publish("orders.42", `{"id":"o1","status":"PAID"}`); got != ":1" {
		t.Fatalf("orders.42 reached %s subscriptions, want :1", got)
	}
	c.expect(`{"id":"2","type":"next","payload":{"data":{"orderUpdated":{"id":"o1","status":"PAID"}}}}`)
}
