package dispatch

import (
	"fmt"
	"testing"

	"github.com/fraised/fraised/gql"
)

// BenchmarkSubscribe is the dispatcher's side of a subscribe and its
// complete: a member joins one of groups existing groups of a topic (the
// scan below registry's index threshold, the index above it), or starts
// a group of its own.
func BenchmarkSubscribe(b *testing.B) {
	for _, bc := range []struct {
		name   string
		groups int
		fresh  bool
	}{{"join/groups=4", 4, false}, {"join/groups=64", 64, false}, {"new/groups=64", 64, true}} {
		b.Run(bc.name, func(b *testing.B) {
			schema, err := gql.LoadSchemaFile("../examples/schema.graphql", gql.Options{})
			if err != nil {
				b.Fatal(err)
			}
			d, w := newTestDispatcher(b, testRingSize)
			compile := func(g int) *gql.Operation {
				q := fmt.Sprintf(`subscription { events(topic: "t") { a%d: seq ts body } }`, g)
				op, errs := schema.Compile(gql.Request{Query: q}, gql.Env{})
				if len(errs) > 0 {
					b.Fatal(errs)
				}
				return op
			}
			o := newOut(-1, w, false)
			ops := make([]*gql.Operation, bc.groups)
			for g := range ops {
				ops[g] = compile(g)
				d.subscribe(&Subscription{Out: o, ID: []byte(`"h"`), Op: ops[g]})
			}
			extra := compile(bc.groups)
			sub := &Subscription{Out: o, ID: []byte(`"1"`)}
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				sub.Op = ops[i%bc.groups]
				if bc.fresh {
					sub.Op = extra
				}
				d.subscribe(sub)
				d.reg.Remove(sub.handle)
				i++
			}
		})
	}
}
