package dispatch

import (
	"fmt"
	"os"
	"testing"

	"github.com/fraised/fraised/gql"
	"github.com/fraised/fraised/history"
)

// TestReplayTurnsAreBounded: fifty clients resuming from the oldest of
// 1,000 retained events at once are served round robin, at most
// replayTurnScan events per dispatcher turn (the live batch runs between
// turns), until every one has all 1,000 and is registered, and no replay
// state is left.
func TestReplayTurnsAreBounded(t *testing.T) {
	const clients, retained = 50, 1000
	d, topic, payload := historyDispatcher(t, 0, 1, true)
	d.now = 1
	for range 3 * retained { // the stream keeps the newest 1,000
		d.publishOne(topic, payload)
	}
	st := d.hist.Lookup(topic)
	schema, _ := gql.LoadSchema("h.graphql", historySDL, gql.Options{})
	null, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer null.Close()
	subs := make([]*Subscription, clients)
	for i := range subs {
		op, errs := schema.Compile(gql.Request{Query: `subscription { hist(topic: "t") { seq body } }`}, gql.Env{})
		if len(errs) > 0 {
			t.Fatal(errs)
		}
		subs[i] = &Subscription{Out: newOut(int(null.Fd()), d.w, true), ID: []byte(fmt.Sprintf(`"%d"`, i)), Op: op,
			Resume: &history.Position{Offset: 0, Epoch: st.Epoch()}}
		d.subscribe(subs[i])
	}
	turns := 0
	for d.replayWake.Load() {
		before := d.delivered.Load()
		d.pumpReplays()
		d.flushDirty()
		if n := d.delivered.Load() - before; n > replayTurnScan {
			t.Fatalf("turn %d delivered %d replayed events, want at most %d", turns, n, replayTurnScan)
		}
		if turns++; turns > 10*clients {
			t.Fatalf("replays still running after %d turns", turns)
		}
	}
	if got := d.delivered.Load(); got != clients*retained {
		t.Fatalf("delivered %d, want %d", got, clients*retained)
	}
	for i, s := range subs {
		if s.handle == nil {
			t.Fatalf("subscription %d never went live", i)
		}
	}
	if len(d.replayConns) != 0 || len(d.replayOf) != 0 {
		t.Fatalf("%d replaying connections left", len(d.replayConns))
	}
	if want := clients * retained / replayTurnScan; turns < want {
		t.Fatalf("%d turns, want at least %d", turns, want)
	}
}
