package gql

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"
)

type ctxKey struct{}

// resolverSchema loads the rich schema with test resolvers; got records the
// params of the last call per field. Logs go to logs.
func resolverSchema(t *testing.T) (s *Schema, got *sync.Map, logs *bytes.Buffer) {
	t.Helper()
	got, logs = &sync.Map{}, &bytes.Buffer{}
	record := func(key string, v any, err error) ResolverFunc {
		return func(ctx context.Context, p ResolveParams) (any, error) {
			got.Store(key, p)
			if key == "Query.serverTime" {
				return ctx.Value(ctxKey{}), nil
			}
			return v, err
		}
	}
	s, err := LoadSchemaFile("testdata/rich.graphql", Options{
		Logger: slog.New(slog.NewTextHandler(logs, nil)),
		Resolvers: map[string]ResolverFunc{
			"Query.serverTime": record("Query.serverTime", nil, nil),
			"Query.me":         record("Query.me", []byte(` {"id":1,"name":"Ada","extra":true} `), nil),
			"Query.failing":    record("Query.failing", nil, errors.New("backend down")),
			"Query.nothing":    record("Query.nothing", nil, &gqlerror.Error{Message: "not found", Extensions: map[string]any{"code": "NOT_FOUND"}}),
			"Query.panicking":  func(context.Context, ResolveParams) (any, error) { panic("boom") },
			"Query.echo": func(_ context.Context, p ResolveParams) (any, error) {
				return map[string]any{"args": p.Args}, nil
			},
			"Subscription.custom": func(_ context.Context, p ResolveParams) (any, error) {
				got.Store("Subscription.custom", p)
				if bytes.Contains(p.Event, []byte("fail")) {
					return nil, errors.New("cannot enrich")
				}
				if bytes.Contains(p.Event, []byte("panic")) {
					panic("enrich panicked")
				}
				return json.RawMessage(`{"seq":` + string(p.Event) + `,"text":` + string(p.InitPayload) + `}`), nil
			},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	return s, got, logs
}

func TestQueryResolvers(t *testing.T) {
	s, _, logs := resolverSchema(t)
	ctx := context.WithValue(context.Background(), ctxKey{}, "12:00")
	tests := []struct {
		name, query, want string
	}{
		{"resolver result encoded, ctx passed", `{ serverTime }`, `{"data":{"serverTime":"12:00"}}`},
		{"raw JSON projected through the selection", `{ me { name id __typename } t: __typename }`, `{"data":{"me":{"name":"Ada","id":"1","__typename":"User"},"t":"Query"}}`},
		{"resolver error with path, nullable field", `{ serverTime failing }`,
			`{"data":{"serverTime":"12:00","failing":null},"errors":[{"message":"backend down","locations":[{"line":1,"column":14}],"path":["failing"]}]}`},
		{"panic: internal error, non-null propagates", `{ serverTime panicking }`,
			`{"data":null,"errors":[{"message":"internal error","locations":[{"line":1,"column":14}],"path":["panicking"],"extensions":{"code":"INTERNAL_SERVER_ERROR"}}]}`},
		{"introspection next to resolvers", `{ me { id } x: __schema { description } }`,
			`{"data":{"me":{"id":"1"},"x":{"description":null}}}`},
		{"GraphQL error from a resolver keeps its extensions", `{ nothing }`,
			`{"data":{"nothing":null},"errors":[{"message":"not found","locations":[{"line":1,"column":3}],"path":["nothing"],"extensions":{"code":"NOT_FOUND"}}]}`},
		{"arguments coerced, defaults applied", `{ echo(s: "x") }`, `{"data":{"echo":{"args":{"n":7,"s":"x"}}}}`},
		{"introspection is served", `{ __type(name: "User") { name } }`, `{"data":{"__type":{"name":"User"}}}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			op := mustCompile(t, s, tt.query, ``, Env{})
			if op.Kind != KindQuery {
				t.Fatalf("kind %v", op.Kind)
			}
			if got := string(op.AppendQueryResult(ctx, nil)); got != tt.want {
				t.Errorf("got  %s\nwant %s", got, tt.want)
			}
		})
	}
	if !strings.Contains(logs.String(), "gql: resolver panicked") || !strings.Contains(logs.String(), "panic=boom") {
		t.Errorf("panic not logged: %s", logs)
	}
}

func TestSubscriptionResolver(t *testing.T) {
	s, got, logs := resolverSchema(t)
	env := Env{InitPayload: []byte(`"tok"`), Claims: map[string]any{"sub": "u1"}}
	op := mustCompile(t, s, `subscription($r: ID!) { custom(room: $r) { seq text } }`, `{"r": 5}`, env)
	tests := []struct {
		name, event, want string
	}{
		{"resolver output is projected", `41`, `{"data":{"custom":{"seq":41,"text":"tok"}}}`},
		{"resolver error", `"fail"`, `{"data":{"custom":null},"errors":[{"message":"cannot enrich","locations":[{"line":1,"column":25}],"path":["custom"]}]}`},
		{"resolver panic", `"panic"`, `{"data":{"custom":null},"errors":[{"message":"internal error","locations":[{"line":1,"column":25}],"path":["custom"],"extensions":{"code":"INTERNAL_SERVER_ERROR"}}]}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if out := string(op.AppendResult(nil, []byte(tt.event))); out != tt.want {
				t.Errorf("got  %s\nwant %s", out, tt.want)
			}
		})
	}
	v, _ := got.Load("Subscription.custom")
	p := v.(ResolveParams)
	want := ResolveParams{Event: []byte(`"panic"`), Args: map[string]any{"room": "5"}, InitPayload: []byte(`"tok"`), Claims: env.Claims}
	if !reflect.DeepEqual(p, want) {
		t.Errorf("params %+v, want %+v", p, want)
	}
	if !strings.Contains(logs.String(), "enrich panicked") {
		t.Errorf("panic not logged: %s", logs)
	}
}

func TestWrongKind(t *testing.T) {
	s := rich(t)
	q := mustCompile(t, s, `{ serverTime }`, ``, Env{})
	if got := string(q.AppendResult(nil, []byte(`{}`))); got != `{"errors":[{"message":"AppendResult needs a subscription operation"}]}` {
		t.Errorf("got %s", got)
	}
	sub := mustCompile(t, s, `subscription { ping }`, ``, Env{})
	if got := string(sub.AppendQueryResult(context.Background(), nil)); got != `{"errors":[{"message":"AppendQueryResult needs a query operation"}]}` {
		t.Errorf("got %s", got)
	}
}

func TestAppendErrors(t *testing.T) {
	errs := gqlerror.List{
		{Message: "plain"},
		{Message: "with \"quotes\"\n\x01 and \xff", Locations: []gqlerror.Location{{Line: 1, Column: 2}, {Line: 3, Column: 4}, {Line: -1, Column: -1}},
			Path: ast.Path{ast.PathName("a"), ast.PathIndex(0), ast.PathName("b")}, Extensions: map[string]any{"code": "X", "n": 1}},
		nil,
	}
	got := string(AppendErrors([]byte("x"), errs))
	want := `x[{"message":"plain"},{"message":"with \"quotes\"\n\u0001 and \ufffd","locations":[{"line":1,"column":2},{"line":3,"column":4}],"path":["a",0,"b"],"extensions":{"code":"X","n":1}},{"message":"unknown error"}]`
	if got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
	if got := string(AppendErrors(nil, nil)); got != `[]` {
		t.Errorf("empty: %s", got)
	}
}
