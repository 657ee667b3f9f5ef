package gql

import "testing"

func TestZeroAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are not meaningful under the race detector")
	}
	s := rich(t)
	ev := loadEvent(t)
	tests := []struct {
		name, query, vars string
		env               Env
	}{
		{"typical projection and filters", typicalQuery, `{"room":"r1"}`, Env{}},
		{"fragments, abstract types, custom scalars, nested lists", `subscription {
			messages(room: "r", author: "u-42") { ...M node { id ... on Bot { model } } matrix meta replies { ...M } } }
			fragment M on Message { id seq score text tags status label author { __typename ... on User { name status } } }`, ``,
			Env{Roles: []string{"admin"}}},
		{"claim filter", `subscription { tenantEvents(kind: "deploy") { seq text } }`, ``, Env{Claims: map[string]any{"tenant_id": "acme"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			op := mustCompile(t, s, tt.query, tt.vars, tt.env)
			if !op.Match(ev) {
				t.Fatal("event does not match")
			}
			dst := op.AppendResult(nil, ev)
			if got := op.AppendResult(dst[:0], ev); len(got) == 0 || string(got[len(got)-2:]) != "}}" {
				t.Fatalf("unexpected output %s", got)
			}
			if n := testing.AllocsPerRun(100, func() { dst = op.AppendResult(dst[:0], ev) }); n != 0 {
				t.Errorf("AppendResult: %v allocs per run", n)
			}
			if n := testing.AllocsPerRun(100, func() { sinkBool = op.Match(ev) }); n != 0 {
				t.Errorf("Match: %v allocs per run", n)
			}
		})
	}
}
