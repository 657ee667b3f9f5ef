package gql

import (
	"context"
	"errors"
	"reflect"
	"testing"
)

// identityFreeSchema binds Subscription.custom to a resolver that does not
// declare it reads the identity.
func identityFreeSchema(t *testing.T) *Schema {
	t.Helper()
	s, err := LoadSchemaFile("testdata/rich.graphql", Options{FieldResolvers: map[string]Resolver{
		"Subscription.custom": {Func: func(_ context.Context, p ResolveParams) (any, error) {
			if p.InitPayload != nil || p.Claims != nil {
				return nil, errors.New("the identity leaked into an identity-free resolver")
			}
			return map[string]any{"seq": 1, "text": p.Args["room"]}, nil
		}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestIdentityFreeResolverGroupsAcrossIdentities(t *testing.T) {
	s := identityFreeSchema(t)
	q := `subscription { custom(room: "r") { seq text } }`
	a := mustCompile(t, s, q, ``, Env{InitPayload: []byte(`{"t":1}`), Claims: map[string]any{"sub": "a"}})
	b := mustCompile(t, s, q, ``, Env{InitPayload: []byte(`{"t":2}`), Claims: map[string]any{"sub": "b"}})
	if !a.SameGroup(b) || a.GroupKey != b.GroupKey {
		t.Error("a resolver that does not read the identity must not split groups by identity")
	}
	if a.ReadsIdentity() {
		t.Error("ReadsIdentity true for an identity-free resolver")
	}
	other := mustCompile(t, s, `subscription { custom(room: "other") { seq text } }`, ``, Env{})
	if a.SameGroup(other) {
		t.Error("different arguments share a group")
	}
	p := a.ResolveParams([]byte(`1`))
	want := ResolveParams{Event: []byte(`1`), Args: map[string]any{"room": "r"}}
	if !reflect.DeepEqual(p, want) {
		t.Errorf("params %+v, want %+v", p, want)
	}
	if got := string(a.AppendResultContext(context.Background(), nil, []byte(`1`))); got != `{"data":{"custom":{"seq":1,"text":"r"}}}` {
		t.Errorf("AppendResultContext: %s", got)
	}
	if a.ResolverKey() != "Subscription.custom" {
		t.Errorf("ResolverKey %q", a.ResolverKey())
	}
	if k := mustCompile(t, s, `subscription { ping }`, ``, Env{}).ResolverKey(); k != "" {
		t.Errorf("ResolverKey of a projected field: %q", k)
	}
}

func TestIdentityReadingResolverKeepsIdentity(t *testing.T) {
	s, err := LoadSchemaFile("testdata/rich.graphql", Options{FieldResolvers: map[string]Resolver{
		"Subscription.custom": {Func: func(context.Context, ResolveParams) (any, error) { return nil, nil }, Identity: true},
	}})
	if err != nil {
		t.Fatal(err)
	}
	q := `subscription { custom(room: "r") { seq } }`
	a := mustCompile(t, s, q, ``, Env{InitPayload: []byte(`{"t":1}`)})
	b := mustCompile(t, s, q, ``, Env{InitPayload: []byte(`{"t":2}`)})
	if a.SameGroup(b) {
		t.Error("a resolver reading the identity: different init payloads share a group")
	}
	if p := a.ResolveParams(nil); string(p.InitPayload) != `{"t":1}` {
		t.Errorf("init payload not given: %+v", p)
	}
}

func TestResolverInBothMapsIsALoadError(t *testing.T) {
	f := func(context.Context, ResolveParams) (any, error) { return nil, nil }
	_, err := LoadSchemaFile("testdata/rich.graphql", Options{
		Resolvers:      map[string]ResolverFunc{"Subscription.custom": f},
		FieldResolvers: map[string]Resolver{"Subscription.custom": {Func: f}},
	})
	if !errors.Is(err, ErrSchema) {
		t.Fatalf("err = %v, want a schema error", err)
	}
}

func TestAppendResolved(t *testing.T) {
	s := identityFreeSchema(t)
	op := mustCompile(t, s, `subscription { custom(room: "r") { seq text } }`, ``, Env{})
	tests := []struct {
		name string
		raw  string
		err  error
		want string
	}{
		{"raw JSON projected", ` {"seq":7,"text":"x","extra":1} `, nil, `{"data":{"custom":{"seq":7,"text":"x"}}}`},
		{"null", `null`, nil, `{"data":{"custom":null}}`},
		{"timeout code", ``, ResolverError(CodeResolverTimeout, "resolver timed out"),
			`{"data":{"custom":null},"errors":[{"message":"resolver timed out","locations":[{"line":1,"column":16}],"path":["custom"],"extensions":{"code":"RESOLVER_TIMEOUT"}}]}`},
		{"plain error", ``, errors.New("no"), `{"data":{"custom":null},"errors":[{"message":"no","locations":[{"line":1,"column":16}],"path":["custom"]}]}`},
	}
	for _, tt := range tests {
		if got := string(op.AppendResolved(nil, []byte(tt.raw), tt.err)); got != tt.want {
			t.Errorf("%s:\ngot  %s\nwant %s", tt.name, got, tt.want)
		}
	}
}
