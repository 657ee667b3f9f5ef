package dispatch

import (
	"fmt"
	"os"
	"runtime"
	"strings"
	"testing"

	"github.com/tidwall/gjson"

	"github.com/fraised/fraised/gql"
	"github.com/fraised/fraised/history"
)

const historySDL = `type Event { seq: Int! body: String }
type Query { a: String }
type Subscription {
  hist(topic: String!): Event! @topic(name: "h.{topic}") @history(size: 1000, ttl: "1m")
  plain(topic: String!): Event! @topic(name: "p.{topic}")
}`

// historyDispatcher is benchDispatcher on a schema whose topic "h.t"
// keeps history (or, with hist false, the same subscriptions on "p.t").
func historyDispatcher(tb testing.TB, subs, groups int, hist bool) (*Dispatcher, []byte, []byte) {
	tb.Helper()
	schema, err := gql.LoadSchema("h.graphql", historySDL, gql.Options{})
	if err != nil {
		tb.Fatal(err)
	}
	null, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { null.Close() })
	d, w := newTestDispatcher(tb, testRingSize)
	d.initHistory(Config{History: schema})
	field, topic := "plain", "p.t"
	if hist {
		field, topic = "hist", "h.t"
	}
	for i := 0; i < subs; i++ {
		q := fmt.Sprintf(`subscription { %s(topic: "t") { a%d: seq body } }`, field, i%groups)
		op, errs := schema.Compile(gql.Request{Query: q}, gql.Env{})
		if len(errs) > 0 {
			tb.Fatal(errs)
		}
		d.subscribe(&Subscription{Out: newOut(int(null.Fd()), w, true), ID: []byte(fmt.Sprintf(`"%d"`, i)), Op: op})
	}
	payload := []byte(`{"seq":123456,"body":"` + strings.Repeat("x", 120) + `"}`)
	return d, []byte(topic), payload
}

// publishOne runs one publish through the dispatcher's event path
// (history, fan-out, flush).
func (d *Dispatcher) publishOne(topic, payload []byte) {
	d.dispatch(newPublishEvent(topic, payload, nil, ReplyNone))
	d.flushDirty()
}

// TestHistoryDeliveryAllocates: with history, a delivery still allocates
// nothing; the stream takes a chunk of payload storage now and then (a
// fraction of an allocation per event, none per delivery).
func TestHistoryDeliveryAllocates(t *testing.T) {
	if deliverRaceEnabled {
		t.Skip("allocation counts are not meaningful under the race detector")
	}
	d, topic, payload := historyDispatcher(t, 100, 10, true)
	for range 2000 { // the stream is full and trims: steady state
		d.publishOne(topic, payload)
	}
	const events = 2000
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for range events {
		d.publishOne(topic, payload)
	}
	runtime.ReadMemStats(&after)
	perEvent := float64(after.Mallocs-before.Mallocs) / events
	t.Logf("%.3f allocations per event (100 deliveries each)", perEvent)
	if perEvent > 0.25 {
		t.Fatalf("%.3f allocations per event, want at most a chunk every 4 events", perEvent)
	}
}

// TestHistoryExtensions: every group's payload ends with the event's
// position; the reply carries it.
func TestHistoryExtensions(t *testing.T) {
	d, topic, payload := historyDispatcher(t, 1, 1, true)
	d.now = 1
	st, pos := d.record(newPublishEvent(topic, payload, nil, ReplyNone))
	if st == nil || pos.Offset != 1 || len(pos.Epoch) != history.EpochLen {
		t.Fatalf("record: %v %+v", st, pos)
	}
	got := string(appendExt([]byte(`{"data":{}}`), d.ext))
	if want := `{"data":{},"extensions":{"fraised":{"offset":1,"epoch":"` + pos.Epoch + `"}}}`; got != want {
		t.Fatalf("got %s\nwant %s", got, want)
	}
	if st, _ := d.record(newPublishEvent([]byte("p.t"), payload, nil, ReplyNone)); st != nil {
		t.Fatal("a topic without history was recorded")
	}
	e := appendResumeError(nil, history.Trimmed, history.Position{Offset: 3, Epoch: "E"}, nil)
	if !gjson.ValidBytes(e) || gjson.GetBytes(e, "0.extensions.available").Raw != "null" {
		t.Fatalf("error %s", e)
	}
	if got := string(appendHTTPPosition(nil, 2, &pos)); !strings.HasSuffix(got, `{"delivered":2,"offset":1,"epoch":"`+pos.Epoch+`"}`) ||
		!strings.Contains(got, fmt.Sprintf("Content-Length: %d\r\n", len(`{"delivered":2,"offset":1,"epoch":""}`)+len(pos.Epoch))) {
		t.Fatalf("HTTP reply %q", got)
	}
	if got := string(appendRESPPosition(nil, 2, &pos)); got != "*3\r\n:2\r\n:1\r\n$12\r\n"+pos.Epoch+"\r\n" {
		t.Fatalf("RESP reply %q", got)
	}
}

// TestPublishAtRecordsTheGivenPosition: an externally positioned event is
// recorded and delivered at its position; a new epoch starts over.
func TestPublishAtRecordsTheGivenPosition(t *testing.T) {
	d, topic, payload := historyDispatcher(t, 1, 1, true)
	for _, p := range []history.Position{{Offset: 40, Epoch: "redisA"}, {Offset: 41, Epoch: "redisA"}, {Offset: 7, Epoch: "redisB"}} {
		ev := newPositionedEvent(topic, payload, nil, ReplyNone, p)
		st, pos := d.record(ev)
		if pos != p || st.Epoch() != p.Epoch || st.Last() != p.Offset {
			t.Fatalf("recorded %+v as %+v (stream %s last %d)", p, pos, st.Epoch(), st.Last())
		}
		ev.release()
	}
	if ev := newPositionedEvent(topic, payload, nil, ReplyNone, history.Position{Offset: 0, Epoch: "x"}); ev.hasPos {
		t.Fatal("offset 0 accepted as a position")
	}
}

// BenchmarkHistoryDispatch compares one event fanned out to 100
// subscribers (10 groups) on a topic with and without history.
func BenchmarkHistoryDispatch(b *testing.B) {
	for _, hist := range []bool{false, true} {
		b.Run(fmt.Sprintf("history=%v", hist), func(b *testing.B) {
			d, topic, payload := historyDispatcher(b, 100, 10, hist)
			d.publishOne(topic, payload) // warm the pools
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				d.publishOne(topic, payload)
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*100), "ns/delivery")
		})
	}
}

// BenchmarkHistoryFanOutNoFlush is BenchmarkHistoryDispatch without the
// write syscalls: the dispatcher's own work (recording, projection, the
// extensions, frames), which is where history's cost is.
func BenchmarkHistoryFanOutNoFlush(b *testing.B) {
	for _, hist := range []bool{false, true} {
		b.Run(fmt.Sprintf("history=%v", hist), func(b *testing.B) {
			d, topic, payload := historyDispatcher(b, 100, 10, hist)
			d.publishOne(topic, payload) // warm the pools
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				d.dispatch(newPublishEvent(topic, payload, nil, ReplyNone))
				for _, o := range d.dirty {
					o.DiscardPending()
					o.ClearDirty()
				}
				d.dirty = d.dirty[:0]
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*100), "ns/delivery")
		})
	}
}

// TestShortReplayLeavesNoReplay: a replay that completes in its first
// turn registers the subscription and keeps no replay state.
func TestShortReplayLeavesNoReplay(t *testing.T) {
	d, topic, payload := historyDispatcher(t, 0, 1, true)
	d.now = 1
	for range 3 {
		d.publishOne(topic, payload)
	}
	st := d.hist.Lookup(topic)
	schema, _ := gql.LoadSchema("h.graphql", historySDL, gql.Options{})
	op, errs := schema.Compile(gql.Request{Query: `subscription { hist(topic: "t") { seq } }`}, gql.Env{})
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	null, _ := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	defer null.Close()
	sub := &Subscription{Out: newOut(int(null.Fd()), d.w, true), ID: []byte(`"r"`), Op: op, Resume: &history.Position{Offset: 1, Epoch: st.Epoch()}}
	d.subscribe(sub)
	d.pumpReplays()
	if len(d.replayConns) != 0 || len(d.replayOf) != 0 || sub.handle == nil {
		t.Fatalf("%d replaying connections kept, registered %v", len(d.replayConns), sub.handle != nil)
	}
}
