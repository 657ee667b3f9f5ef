package gql

import (
	"errors"
	"strings"
	"testing"
)

func TestLoadExampleSchema(t *testing.T) {
	s, err := LoadSchemaFile("../examples/schema.graphql", Options{})
	if err != nil {
		t.Fatal(err)
	}
	op := mustCompile(t, s, `subscription { orderUpdated(customerId: 42) { id status total } }`, ``, Env{})
	if op.Topic != "orders.42" || op.Field != "orderUpdated" || op.Kind != KindSubscription {
		t.Fatalf("got topic %q field %q kind %v", op.Topic, op.Field, op.Kind)
	}
	got := string(op.AppendResult(nil, []byte(`{"id":7,"customerId":42,"status":"PAID","total":12.5}`)))
	if want := `{"data":{"orderUpdated":{"id":"7","status":"PAID","total":12.5}}}`; got != want {
		t.Errorf("got %s, want %s", got, want)
	}
}

func TestLoadSchemaFileMissing(t *testing.T) {
	_, err := LoadSchemaFile("testdata/does-not-exist.graphql", Options{})
	if err == nil || errors.Is(err, ErrSchema) {
		t.Fatalf("want a read error, got %v", err)
	}
}

func TestSchemaErrors(t *testing.T) {
	const base = "type Query { a: String }\n"
	tests := []struct {
		name, src, want string
	}{
		{"syntax error", base + "type Subscription {\n  x: \n}", "s.graphql:4:1: Expected Name, found }"},
		{"unknown directive", base + "type Subscription {\n  x: String @nope\n}", "s.graphql:3:14: Undefined directive nope"},
		{"topic placeholder names no argument", base + "type Subscription {\n  x(a: ID): String @topic(name: \"t.{b}\")\n}",
			"s.graphql:3:34: @topic \"t.{b}\": placeholder {b} names no argument of x"},
		{"topic placeholder on a list argument", base + "type Subscription {\n  x(a: [ID]): String @topic(name: \"{a}\")\n}",
			"s.graphql:3:36: @topic \"{a}\": placeholder {a} names argument a whose type [ID] is not a scalar or enum"},
		{"topic unbalanced", base + "type Subscription {\n  x(a: ID): String @topic(name: \"t.{a\")\n}", "s.graphql:3:34: @topic \"t.{a\": unclosed '{'"},
		{"topic on a query field", "type Query {\n  a: String @topic(name: \"x\")\n}",
			"s.graphql:2:14: @topic is only allowed on fields of the subscription type, not on Query.a"},
		{"filter with arg and claim", base + "type Subscription {\n  x(a: ID): String @filter(field: \"f\", arg: \"a\", claim: \"c\")\n}",
			"s.graphql:3:21: @filter on x needs exactly one of arg or claim"},
		{"filter with neither", base + "type Subscription {\n  x(a: ID): String @filter(field: \"f\")\n}",
			"s.graphql:3:21: @filter on x needs exactly one of arg or claim"},
		{"filter arg names no argument", base + "type Subscription {\n  x(a: ID): String @filter(field: \"f\", arg: \"b\")\n}",
			"s.graphql:3:46: @filter(arg: \"b\") names no argument of x"},
		{"filter with an empty path step", base + "type Subscription {\n  x(a: ID): String @filter(field: \"a..b\", arg: \"a\")\n}",
			"s.graphql:3:36: @filter(field:) must be a dotted path"},
		{"filter on a type field", base + "type T {\n  x: String @filter(field: \"f\", claim: \"c\")\n}",
			"s.graphql:3:14: @filter is only allowed on fields of the subscription type"},
		{"auth with a bad requirement", "type Query {\n  a: String @auth(requires: [\"admin\"])\n}",
			"s.graphql:2:31: @auth: requirement \"admin\" must be a string \"role:NAME\" or \"scope:NAME\""},
		{"auth on a type with an empty name", "type Query @auth(requires: \"role:\") {\n  a: String\n}",
			"s.graphql:1:29: @auth: requirement \"role:\""},
		{"user redeclares a fraised directive", "directive @topic(name: String!) on FIELD_DEFINITION\n" + base,
			"s.graphql:1:12: Cannot redeclare directive topic."},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := LoadSchema("s.graphql", tt.src, Options{})
			if err == nil {
				t.Fatal("want an error")
			}
			if !errors.Is(err, ErrSchema) {
				t.Errorf("error does not wrap ErrSchema: %v", err)
			}
			contains(t, err.Error(), tt.want)
		})
	}
}

func TestResolverKeys(t *testing.T) {
	noop := func(_ ctxT, _ ResolveParams) (any, error) { return nil, nil }
	tests := []struct {
		key  string
		want string // "" = loads
	}{
		{"Query.serverTime", ""},
		{"Subscription.events", ""},
		{"Query.nope", `cannot bind resolver "Query.nope": no such root field`},
		{"Event.body", `cannot bind resolver "Event.body": no such root field`},
		{"serverTime", `cannot bind resolver "serverTime"`},
	}
	for _, tt := range tests {
		t.Run(tt.key, func(t *testing.T) {
			_, err := LoadSchemaFile("../examples/schema.graphql", Options{Resolvers: map[string]ResolverFunc{tt.key: noop}})
			if tt.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil {
				t.Fatal("want an error")
			}
			contains(t, err.Error(), tt.want)
		})
	}
}

func TestRenamedRootTypes(t *testing.T) {
	src := "schema { query: Q subscription: S }\ntype Q { now: String }\ntype S { tick: Int }\n"
	s, err := LoadSchema("r.graphql", src, Options{Resolvers: map[string]ResolverFunc{
		"Query.now": func(ctxT, ResolveParams) (any, error) { return "noon", nil },
	}})
	if err != nil {
		t.Fatal(err)
	}
	q := mustCompile(t, s, `{ now __typename }`, ``, Env{})
	if got := string(q.AppendQueryResult(bg(), nil)); got != `{"data":{"now":"noon","__typename":"Q"}}` {
		t.Errorf("got %s", got)
	}
	op := mustCompile(t, s, `subscription { tick }`, ``, Env{})
	if op.Topic != "tick" {
		t.Errorf("topic %q", op.Topic)
	}
}

func TestSchemaWithoutQuery(t *testing.T) {
	s, err := LoadSchema("s.graphql", "type Subscription { tick: Int }", Options{})
	if err != nil {
		t.Fatal(err)
	}
	op := mustCompile(t, s, `{ __typename }`, ``, Env{})
	if got := string(op.AppendQueryResult(bg(), nil)); got != `{"data":{"__typename":"Query"}}` {
		t.Errorf("got %s", got)
	}
	_, err = LoadSchema("s.graphql", "schema { subscription: S }\ntype S { t: Int }\ntype Query { a: Int }", Options{})
	if err == nil || !strings.Contains(err.Error(), "s.graphql:3:6: the schema definition names no query root type") {
		t.Errorf("got %v", err)
	}
}
