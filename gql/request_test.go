package gql

import (
	"encoding/json"
	"fmt"
	"runtime"
	"strconv"
	"sync"
	"testing"
)

const tenantQuery = `subscription($k: String) { tenantEvents(kind: $k) { seq } }`

// compileOK compiles a request that must succeed.
func compileOK(t testing.TB, s *Schema, req Request, env Env) *Operation {
	t.Helper()
	op, errs := s.Compile(req, env)
	if errs != nil {
		t.Fatalf("Compile(%s, %s): %v", req.Query, req.Variables, errs)
	}
	return op
}

func TestCompileRepeatReturnsTheSameOperation(t *testing.T) {
	s := rich(t)
	tests := []struct {
		name, query, vars string
		a, b              Env // b differs from a only in what the operation does not depend on
	}{
		{"no Env dependence", typicalQuery, `{"room":"r1"}`,
			Env{Claims: map[string]any{"sub": "a"}, Roles: []string{"x"}}, Env{Claims: map[string]any{"sub": "b"}}},
		{"claim filter, same tenant", tenantQuery, `{"k":"deploy"}`,
			Env{Claims: map[string]any{"tenant_id": "acme", "sub": "a"}}, Env{Claims: map[string]any{"tenant_id": "acme", "sub": "b"}}},
		{"numeric claim", tenantQuery, ``,
			Env{Claims: map[string]any{"tenant_id": json.Number("7")}}, Env{Claims: map[string]any{"tenant_id": json.Number("7"), "x": 1}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := Request{Query: tt.query, Variables: []byte(tt.vars)}
			first := compileOK(t, s, req, tt.a)
			for _, env := range []Env{tt.a, tt.b, tt.a} {
				if op := compileOK(t, s, req, env); op != first {
					t.Fatalf("repeat compiled to another operation")
				}
			}
			if raceEnabled {
				return
			}
			if n := testing.AllocsPerRun(100, func() { compileOK(t, s, req, tt.b) }); n != 0 {
				t.Errorf("repeat: %v allocs per Compile", n)
			}
		})
	}
}

func TestTenantsNeverShareThroughTheCache(t *testing.T) {
	s := rich(t)
	req := Request{Query: tenantQuery, Variables: []byte(`{"k":"deploy"}`)}
	envs := []Env{
		{Claims: map[string]any{"tenant_id": "acme"}},
		{Claims: map[string]any{"tenant_id": "evil"}},
		{Claims: map[string]any{"tenant_id": json.Number("9007199254740992")}},
		{Claims: map[string]any{"tenant_id": json.Number("9007199254740993")}},
		{Claims: map[string]any{"sub": "no tenant"}}, // no events, like anonymous: may share with it
	}
	events := []string{
		`{"tenant":"acme","kind":"deploy"}`, `{"tenant":"evil","kind":"deploy"}`,
		`{"tenant":9007199254740992,"kind":"deploy"}`, `{"tenant":9007199254740993,"kind":"deploy"}`,
	}
	anonymous := compileOK(t, s, req, Env{})
	for round := 0; round < 3; round++ { // cold, then from the caches, in several orders
		seen := map[*Operation]int{}
		for k := range envs {
			i := (k + round) % len(envs)
			op := compileOK(t, s, req, envs[i])
			if j, ok := seen[op]; ok {
				t.Fatalf("round %d: envs %d and %d share an operation", round, i, j)
			}
			seen[op] = i
			if op == anonymous && i < 4 {
				t.Fatalf("round %d: env %d shares the operation of anonymous", round, i)
			}
			for e, ev := range events {
				if got, want := op.Match([]byte(ev)), e == i; got != want {
					t.Errorf("round %d: env %d, event %s: Match = %v", round, i, ev, got)
				}
			}
		}
	}
}

func TestCachedCompileChecksAuthEveryTime(t *testing.T) {
	s := rich(t)
	admin := Env{Roles: []string{"admin"}}
	req := Request{Query: `subscription { messages(room: "r") { node { id ... on Secret { code } } } }`}
	const want = `[{"message":"forbidden: type \"Secret\" requires role:admin","locations":[{"line":1,"column":38}]}]`
	for i := 0; i < 2; i++ {
		if _, errs := s.Compile(req, Env{}); errorsText(errs) != want {
			t.Errorf("anonymous, round %d: got %s, want %s", i, errorsText(errs), want)
		}
		compileOK(t, s, req, admin)
	}
	// Refusals come before the errors that do not depend on the Env.
	req = Request{Query: `subscription { messages(room: "r", minSeq: 3000000000) { node { ... on Secret { code } } } }`}
	const both = `[{"message":"forbidden: type \"Secret\" requires role:admin","locations":[{"line":1,"column":58}]},` +
		`{"message":"Argument \"minSeq\" has invalid value 3000000000: Int cannot represent non 32-bit signed integer value: 3000000000","locations":[{"line":1,"column":44}]}]`
	for i := 0; i < 2; i++ {
		if _, errs := s.Compile(req, Env{}); errorsText(errs) != both {
			t.Errorf("got  %s\nwant %s", errorsText(errs), both)
		}
		if _, errs := s.Compile(req, admin); len(errs) != 1 || errs[0].Message[:8] != "Argument" {
			t.Errorf("admin: got %s", errorsText(errs))
		}
	}
}

func TestNewVariableValuesReuseThePlan(t *testing.T) {
	s := rich(t)
	a := mustCompile(t, s, typicalQuery, `{"room":"r1"}`, Env{})
	b := mustCompile(t, s, typicalQuery, `{"room":"r2"}`, Env{})
	if a == b || a.Topic != "rooms.r1" || b.Topic != "rooms.r2" {
		t.Fatalf("topics %q and %q", a.Topic, b.Topic)
	}
	fa, fb := a.plan.fields[0], b.plan.fields[0]
	if fa.obj != fb.obj {
		t.Error("a new variable value planned the selection again")
	}
	if fa.args["room"] != "r1" || fb.args["room"] != "r2" {
		t.Errorf("args %v and %v", fa.args, fb.args)
	}
	ev := loadEvent(t)
	if string(a.AppendResult(nil, ev)) != string(b.AppendResult(nil, ev)) {
		t.Error("same selection, different output")
	}
}

func TestSkipIncludeVariablesSelectThePlan(t *testing.T) {
	s := rich(t)
	const q = `subscription($b: Boolean!, $r: ID!) { messages(room: $r) { seq text @include(if: $b) ...F @skip(if: $b) } }
		fragment F on Message { id }`
	ev := []byte(`{"seq":1,"text":"t","id":"i"}`)
	tests := []struct{ vars, want string }{
		{`{"b":true,"r":"x"}`, `{"data":{"messages":{"seq":1,"text":"t"}}}`},
		{`{"b":false,"r":"x"}`, `{"data":{"messages":{"seq":1,"id":"i"}}}`},
		{`{"b":true,"r":"y"}`, `{"data":{"messages":{"seq":1,"text":"t"}}}`},
		{`{"b":false,"r":"y"}`, `{"data":{"messages":{"seq":1,"id":"i"}}}`},
	}
	objs := map[string]*objPlan{}
	for _, tt := range tests {
		op := mustCompile(t, s, q, tt.vars, Env{})
		if got := string(op.AppendResult(nil, ev)); got != tt.want {
			t.Errorf("%s: got %s, want %s", tt.vars, got, tt.want)
		}
		if o, ok := objs[tt.want]; ok && o != op.plan.fields[0].obj {
			t.Errorf("%s: the plan for these conditions was built again", tt.vars)
		}
		objs[tt.want] = op.plan.fields[0].obj
	}
	if objs[tests[0].want] == objs[tests[1].want] {
		t.Error("different conditions share a plan")
	}
}

func TestResolverOperationsFollowTheConnection(t *testing.T) {
	s, err := LoadSchemaFile("testdata/rich.graphql", Options{Resolvers: map[string]ResolverFunc{
		"Subscription.custom": func(_ ctxT, p ResolveParams) (any, error) {
			return json.RawMessage(`{"text":` + strconv.Quote(string(p.InitPayload)+"/"+fmt.Sprint(p.Claims["sub"])) + `}`), nil
		},
	}})
	if err != nil {
		t.Fatal(err)
	}
	req := Request{Query: `subscription { custom(room: "r") { text } }`}
	envs := []Env{
		{InitPayload: []byte(`{"t":1}`), Claims: map[string]any{"sub": "a"}},
		{InitPayload: []byte(`{"t":2}`), Claims: map[string]any{"sub": "a"}},
		{InitPayload: []byte(`{"t":1}`), Claims: map[string]any{"sub": "b"}},
	}
	for round := 0; round < 2; round++ {
		for i, env := range envs {
			op := compileOK(t, s, req, env)
			want := `{"data":{"custom":{"text":` + strconv.Quote(string(env.InitPayload)+"/"+env.Claims["sub"].(string)) + `}}}`
			if got := string(op.AppendResult(nil, []byte(`{}`))); got != want {
				t.Errorf("round %d, env %d: got %s, want %s", round, i, got, want)
			}
		}
	}
}

// A hash collision in either cache must not hand out another request's or
// another tenant's operation: entries are stored under the other's hash
// to simulate one.
func TestCacheCollisionsCompareTheFullKey(t *testing.T) {
	s, err := LoadSchemaFile("testdata/rich.graphql", Options{})
	if err != nil {
		t.Fatal(err)
	}
	acme := Env{Claims: map[string]any{"tenant_id": "acme"}}
	evil := Env{Claims: map[string]any{"tenant_id": "evil"}}
	reqA := Request{Query: tenantQuery, Variables: []byte(`{"k":"a"}`)}
	reqB := Request{Query: tenantQuery, Variables: []byte(`{"k":"b"}`)}
	a := compileOK(t, s, reqA, acme)
	b := compileOK(t, s, reqB, acme)
	rb, _ := s.requests.Get(s.requestHash(reqB))
	s.requests.Put(s.requestHash(reqA), rb, 1)
	if op := compileOK(t, s, reqA, acme); op != a {
		t.Fatalf("request collision: got the operation of %q", op.plan.filters[1].str)
	}

	ra, _ := s.requests.Get(s.requestHash(reqA))
	var buf [64]byte
	ha := s.opHash(ra, ra.fingerprint(buf[:0], &acme))
	he := s.opHash(ra, ra.fingerprint(buf[:0], &evil))
	e := compileOK(t, s, reqA, evil)
	ee, _ := s.envOps.Get(he)
	s.envOps.Put(ha, ee, 1)
	if op := compileOK(t, s, reqA, acme); op == e || !op.Match([]byte(`{"tenant":"acme","kind":"a"}`)) {
		t.Fatal("fingerprint collision: acme got evil's operation")
	}
	runtime.KeepAlive(b)
}

func TestCachesAreBounded(t *testing.T) {
	s, err := LoadSchemaFile("testdata/rich.graphql", Options{})
	if err != nil {
		t.Fatal(err)
	}
	held := make([]*Operation, 0, 3*requestCacheEntries/2)
	for i := range cap(held) {
		vars := []byte(`{"k":"` + strconv.Itoa(i) + `"}`)
		held = append(held, compileOK(t, s, Request{Query: tenantQuery, Variables: vars}, Env{Claims: map[string]any{"tenant_id": "t"}}))
	}
	if n := s.requests.Len(); n > requestCacheEntries || n < requestCacheEntries/2 {
		t.Errorf("request cache holds %d entries, bound %d", n, requestCacheEntries)
	}
	if n := s.envOps.Len(); n > opCacheEntries || n < opCacheEntries/2 {
		t.Errorf("operation cache holds %d entries, bound %d", n, opCacheEntries)
	}
	// Evicted requests compile again to the operations still held.
	for i, op := range held {
		vars := []byte(`{"k":"` + strconv.Itoa(i) + `"}`)
		if compileOK(t, s, Request{Query: tenantQuery, Variables: vars}, Env{Claims: map[string]any{"tenant_id": "t"}}) != op {
			t.Fatalf("request %d: another operation after eviction", i)
		}
	}
}

func TestConcurrentCompile(t *testing.T) {
	s, err := LoadSchemaFile("testdata/rich.graphql", Options{})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range 200 {
				tenant := strconv.Itoa((g + i) % 5)
				vars := []byte(`{"k":"k` + strconv.Itoa(i%7) + `"}`)
				op := compileOK(t, s, Request{Query: tenantQuery, Variables: vars}, Env{Claims: map[string]any{"tenant_id": tenant}})
				ev := `{"tenant":"` + tenant + `","kind":"k` + strconv.Itoa(i%7) + `"}`
				other := `{"tenant":"x` + tenant + `","kind":"k` + strconv.Itoa(i%7) + `"}`
				if !op.Match([]byte(ev)) || op.Match([]byte(other)) {
					t.Errorf("tenant %s, vars %s: wrong operation", tenant, vars)
					return
				}
			}
		})
	}
	wg.Wait()
}
