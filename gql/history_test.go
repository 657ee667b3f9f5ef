package gql

import (
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/fraised/fraised/history"
)

func TestHistorySchemaErrors(t *testing.T) {
	const base = "type Query { a: String }\n"
	tests := []struct{ name, src, want string }{
		{"size zero", base + "type Subscription {\n  x: String @history(size: 0, ttl: \"5m\")\n}",
			"s.graphql:3:28: @history on x: size 0 is out of range: use 1 to 1000000 events"},
		{"size too large", base + "type Subscription {\n  x: String @history(size: 1000001, ttl: \"5m\")\n}",
			"s.graphql:3:28: @history on x: size 1000001 is out of range"},
		{"ttl not a duration", base + "type Subscription {\n  x: String @history(size: 10, ttl: \"5 minutes\")\n}",
			"s.graphql:3:38: @history(ttl:) must be a Go duration string"},
		{"ttl too short", base + "type Subscription {\n  x: String @history(size: 10, ttl: \"10ms\")\n}",
			"s.graphql:3:38: @history on x: ttl 10ms is out of range: use 1s to 168h0m0s"},
		{"ttl too long", base + "type Subscription {\n  x: String @history(size: 10, ttl: \"200h\")\n}",
			"s.graphql:3:38: @history on x: ttl 200h0m0s is out of range"},
		{"missing ttl", base + "type Subscription {\n  x: String @history(size: 10)\n}",
			"s.graphql:3:14: Argument ttl for directive history cannot be null."},
		{"not on a subscription field", "type Query { a: String @history(size: 1, ttl: \"1m\") }\n",
			"s.graphql:1:25: @history is only allowed on fields of the subscription type, not on Query.a"},
		{"two histories on one topic", base + "type Subscription {\n  a(id: ID!): String @topic(name: \"o.{id}\") @history(size: 10, ttl: \"1m\")\n  b(n: Int!): String @topic(name: \"o.{n}\") @history(size: 20, ttl: \"1m\")\n}",
			`s.graphql:4:3: Subscription.b keeps @history(size: 20, ttl: "1m0s") but Subscription.a (s.graphql:3:3) keeps @history(size: 10, ttl: "1m0s"), and both can subscribe to topic "o.0"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := LoadSchema("s.graphql", tt.src, Options{})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v\nwant it to contain %s", err, tt.want)
			}
		})
	}
}

func TestHistoryOf(t *testing.T) {
	s, err := LoadSchema("s.graphql", `type Query { a: String }
enum Kind { A B }
type Subscription {
  orders(id: ID!): String @topic(name: "orders.{id}") @history(size: 100, ttl: "5m")
  counts(n: Int!, k: Kind!): String @topic(name: "c.{n}.{k}.x") @history(size: 5, ttl: "1s")
  same(id: ID!): String @topic(name: "orders.{id}") @history(size: 100, ttl: "5m")
  free(topic: String!): String @topic(name: "{topic}")
}`, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if !s.HasHistory() {
		t.Fatal("HasHistory false")
	}
	for _, c := range []struct {
		topic string
		spec  history.Spec
		ok    bool
	}{
		{"orders.42", history.Spec{Size: 100, TTL: 5 * time.Minute}, true},
		{"orders.", history.Spec{Size: 100, TTL: 5 * time.Minute}, true}, // an empty ID is accepted
		{"c.12.B.x", history.Spec{Size: 5, TTL: time.Second}, true},
		{"c.-3.A.x", history.Spec{Size: 5, TTL: time.Second}, true},
		{"c.012.A.x", history.Spec{}, false},
		{"c.1.C.x", history.Spec{}, false},
		{"c.1.A.y", history.Spec{}, false},
		{"order.1", history.Spec{}, false},
		{"events.demo", history.Spec{}, false},
	} {
		spec, ok := s.HistoryOf([]byte(c.topic))
		if ok != c.ok || spec != c.spec {
			t.Errorf("%q: got %+v %v, want %+v %v", c.topic, spec, ok, c.spec, c.ok)
		}
	}
	plain, err := LoadSchemaFile("../examples/schema.graphql", Options{})
	if err != nil {
		t.Fatal(err)
	}
	if plain.HasHistory() {
		t.Fatal("a schema without @history has history")
	}
	if allocs := testing.AllocsPerRun(100, func() { s.HistoryOf([]byte("c.12.B.x")) }); allocs != 0 {
		t.Fatalf("HistoryOf allocates %v", allocs)
	}
}

// FuzzHistoryOf checks the automaton match of HistoryOf against
// regular expressions of the same templates.
func FuzzHistoryOf(f *testing.F) {
	s, err := LoadSchema("s.graphql", `type Query { a: String }
enum Kind { A BB }
type Subscription {
  s(x: String!): String @topic(name: "a.{x}.b") @history(size: 1, ttl: "1s")
  n(n: Int!, k: Kind!): String @topic(name: "c.{n}-{k}") @history(size: 2, ttl: "1s")
}`, Options{})
	if err != nil {
		f.Fatal(err)
	}
	refS := regexp.MustCompile(`(?s)^a\..*\.b$`)
	refN := regexp.MustCompile(`^c\.(0|-?[1-9][0-9]*)-(A|BB)$`)
	for _, seed := range []string{"a..b", "a.x.b", "a.b", "c.0-A", "c.-12-BB", "c.01-A", "c.1-C", "c.1-A\n", "a.\xff.b"} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, topic string) {
		spec, ok := s.HistoryOf([]byte(topic))
		wantS, wantN := refS.MatchString(topic), refN.MatchString(topic)
		switch {
		case wantS && (!ok || spec.Size != 1):
			t.Fatalf("%q: got %v %+v, want the s field", topic, ok, spec)
		case !wantS && wantN && (!ok || spec.Size != 2):
			t.Fatalf("%q: got %v %+v, want the n field", topic, ok, spec)
		case !wantS && !wantN && ok:
			t.Fatalf("%q matched %+v", topic, spec)
		}
	})
}
