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
	d, subs := resumeAll(t, clients, retained)
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

// resumeAll returns a dispatcher whose stream h.t retains its newest
// 1,000 events (of 3,000) and clients subscriptions, each on its own
// connection (writing to /dev/null), that resumed from the oldest: their
// replays are queued, not started.
func resumeAll(t testing.TB, clients, retained int) (*Dispatcher, []*Subscription) {
	t.Helper()
	d, topic, payload := historyDispatcher(t, 0, 1, true)
	d.now = 1
	for range 3 * retained {
		d.publishOne(topic, payload)
	}
	st := d.hist.Lookup(topic)
	if st.Len() != retained {
		t.Fatalf("the stream retains %d, want %d", st.Len(), retained)
	}
	schema, _ := gql.LoadSchema("h.graphql", historySDL, gql.Options{})
	null, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { null.Close() })
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
	return d, subs
}

// TestEndReplaysAbandonsReplays: at drain (EndReplays) the replays in
// progress stop, and so does a resume that comes after: nothing more is
// appended, nothing is registered, no replay state is left.
func TestEndReplaysAbandonsReplays(t *testing.T) {
	d, subs := resumeAll(t, 50, 1000)
	d.pumpReplays() // the first turn: a few connections are served
	d.flushDirty()
	countLive := func() (n int) {
		for _, s := range subs {
			if s.handle != nil {
				n++
			}
		}
		return n
	}
	liveBefore := countLive()
	if len(d.replayConns) == 0 {
		t.Fatal("no replay in progress before the drain")
	}
	d.EndReplays()
	before := d.delivered.Load()
	late := &Subscription{Out: subs[0].Out, ID: []byte(`"late"`), Op: subs[len(subs)-1].Op, Resume: subs[len(subs)-1].Resume}
	d.subscribe(late)
	d.pumpReplays()
	if n := d.delivered.Load() - before; n != 0 || len(d.replayConns) != 0 || len(d.replayOf) != 0 || d.replayWake.Load() {
		t.Fatalf("after EndReplays: %d more delivered, %d replaying connections, wake %v", n, len(d.replayConns), d.replayWake.Load())
	}
	if live := countLive(); live != liveBefore || late.handle != nil {
		t.Fatalf("%d live (late %v), want the %d live before the drain", live, late.handle != nil, liveBefore)
	}
}

// TestCompletedReplaysDoNotPileUp: a client that completes and resumes
// again and again on a connection that does not drain keeps one replay
// per active operation, not one per resume.
func TestCompletedReplaysDoNotPileUp(t *testing.T) {
	d, subs := resumeAll(t, 1, 1000)
	out, op, pos := subs[0].Out, subs[0].Op, subs[0].Resume
	for i := 0; i < 100; i++ {
		if d.replayOf[out] != nil && len(d.replayOf[out].replays) > 1 {
			t.Fatalf("after %d resumes of one operation, %d replays are kept", i, len(d.replayOf[out].replays))
		}
		subs[0].Remove() // complete, then the same subscribe again
		subs[0] = &Subscription{Out: out, ID: []byte(`"0"`), Op: op, Resume: pos}
		d.subscribe(subs[0])
	}
}

// BenchmarkReplayTurn measures one dispatcher turn of replay work with
// 100 connections catching up at once (each from the oldest of 1,000
// retained events, writing to /dev/null): the time a live batch waits
// behind a resume storm, bounded by replayTurnScan.
func BenchmarkReplayTurn(b *testing.B) {
	var d *Dispatcher
	events := 0
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if d == nil || !d.replayWake.Load() {
			b.StopTimer()
			d, _ = resumeAll(b, 100, 1000)
			b.StartTimer()
		}
		before := d.delivered.Load()
		d.pumpReplays()
		d.flushDirty()
		events += int(d.delivered.Load() - before)
	}
	b.ReportMetric(float64(events)/float64(b.N), "events/turn")
}
