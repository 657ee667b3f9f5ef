package dispatch

import (
	"fmt"
	"testing"

	"github.com/fraised/fraised/gql"
)

// benchSDL has a tenant-filtered field and an unfiltered one on topics of
// their own (a schema must not let an unfiltered field read a filtered
// field's topic); both benchmarks project the same events.
const benchSDL = `
type Event { seq: Int! tenant: String body: String }
type Query { a: Int }
type Subscription {
  tenantEvents: Event! @topic(name: "orders") @filter(field: "tenant", claim: "tenant_id")
  events: Event! @topic(name: "orders.all")
}
`

// BenchmarkDispatchTenants measures what row-level security costs on the
// dispatch path: one event fanned out to subs subscribers split across
// groups tenants by a claim @filter, against the same subscribers in one
// unfiltered group. Each op is one event through fanOut (filter match per
// group, projection per matching group, one frame appended per delivery);
// output is discarded by truncating each outbox, so no syscall is timed.
//
//	go test ./dispatch -run XXX -bench DispatchTenants -benchtime 2000x
func BenchmarkDispatchTenants(b *testing.B) {
	cases := []struct {
		name          string
		tenants, subs int // tenants 0: one unfiltered group
	}{
		{"filtered/tenants=100/subs=10000", 100, 10000},
		{"unfiltered/groups=1/subs=10000", 0, 10000},
		{"unfiltered/groups=1/subs=100", 0, 100},
		{"filtered/tenants=100/subs=1000", 100, 1000},
		{"filtered/tenants=1000/subs=10000", 1000, 10000},
	}
	for _, bc := range cases {
		b.Run(bc.name, func(b *testing.B) {
			d := benchFanOut(b, bc.tenants, bc.subs)
			groups := max(bc.tenants, 1)
			events := make([][]byte, groups)
			for i := range events {
				events[i] = fmt.Appendf(nil, `{"seq":%d,"tenant":"tenant-%d","body":"an order changed","total":12.5}`, i, i)
			}
			topic := []byte("orders.all")
			if bc.tenants > 0 {
				topic = []byte("orders")
			}
			want := bc.subs / groups
			for _, ev := range events { // every outbox gets its buffer
				d.fanOut(topic, ev, nil)
				d.discardPending()
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if n := d.fanOut(topic, events[i%groups], nil); n != want {
					b.Fatalf("event reached %d subscribers, want %d", n, want)
				}
				d.discardPending()
			}
			perEvent := float64(b.Elapsed().Nanoseconds()) / float64(b.N)
			b.ReportMetric(float64(want), "deliveries/event")
			b.ReportMetric(perEvent/float64(want), "ns/delivery")
		})
	}
}

// benchFanOut returns a dispatcher whose registry holds subs subscribers
// split evenly across tenants claim-filtered groups (or one unfiltered
// group when tenants is 0).
func benchFanOut(b *testing.B, tenants, subs int) *Dispatcher {
	b.Helper()
	schema, err := gql.LoadSchema("bench.graphql", benchSDL, gql.Options{})
	if err != nil {
		b.Fatal(err)
	}
	d, w := newTestDispatcher(b, 1024) // outboxes are truncated before any flush
	groups := max(tenants, 1)
	ops := make([]*gql.Operation, groups)
	for g := range ops {
		req := gql.Request{Query: `subscription { events { seq body } }`}
		env := gql.Env{}
		if tenants > 0 {
			req.Query = `subscription { tenantEvents { seq body } }`
			env.Claims = map[string]any{"tenant_id": fmt.Sprintf("tenant-%d", g)}
		}
		op, errs := schema.Compile(req, env)
		if errs != nil {
			b.Fatal(errs)
		}
		ops[g] = op
	}
	for i := 0; i < subs; i++ {
		o := newOut(-1, w, false)
		op := ops[i%groups]
		d.reg.Add(op.Topic, op.GroupKey, func(g group) bool { return g.op.SameGroup(op) }, func() group { return group{op: op} }, member{out: o, id: []byte(`"1"`)})
	}
	if _, n, _ := d.reg.Len(); n != groups {
		b.Fatalf("%d groups, want %d", n, groups)
	}
	return d
}

// discardPending drops the frames fanOut appended, keeping each outbox's
// buffer for the next event.
func (d *Dispatcher) discardPending() {
	for i, o := range d.dirty {
		o.DiscardPending()
		o.ClearDirty()
		d.dirty[i] = nil
	}
	d.dirty = d.dirty[:0]
}
