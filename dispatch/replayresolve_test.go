package dispatch

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"log/slog"

	"github.com/gobwas/ws"
	"github.com/tidwall/gjson"

	"github.com/fraised/fraised/gql"
	"github.com/fraised/fraised/history"
	"github.com/fraised/fraised/internal/outbox"
	"github.com/fraised/fraised/resolve"
)

// resolverReplay is a dispatcher (stepped by the test, not running) whose
// history topic h.t has a resolver, n retained events, and one resumed
// subscription from the oldest on a socket the test reads.
type resolverReplay struct {
	d      *Dispatcher
	sub    *Subscription
	frames chan string // the nexts the client got, in order
}

// newResolverReplay publishes n events {"seq":i} to h.t and resumes a
// subscription from offset 0; fn is the field's resolver, its calls
// expire after timeout.
func newResolverReplay(t *testing.T, n int, timeout time.Duration, fn gql.ResolverFunc) *resolverReplay {
	t.Helper()
	schema, err := gql.LoadSchema("h.graphql", historySDL, gql.Options{FieldResolvers: map[string]gql.Resolver{"Subscription.hist": {Func: fn}}})
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.DiscardHandler)
	w, err := outbox.NewWriter(log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Stop)
	router := resolve.NewRouter(resolve.Options{Workers: 8, Timeout: timeout, Log: log})
	t.Cleanup(func() { router.Close(context.Background()) })
	d := New(Config{RingSize: testRingSize, RingBytes: testRingBytes, MaxOutbound: testMaxOutbound, Writer: w, Log: log,
		Resolvers: router, History: schema})
	d.now = 1
	for i := 1; i <= n; i++ {
		d.publishOne([]byte("h.t"), fmt.Appendf(nil, `{"seq":%d}`, i))
	}
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_NONBLOCK, 0)
	if err != nil {
		t.Fatal(err)
	}
	peer := os.NewFile(uintptr(fds[1]), "peer")
	syscall.SetNonblock(fds[1], false)
	t.Cleanup(func() { syscall.Close(fds[0]); peer.Close() }) // EOF ends the reader first
	rr := &resolverReplay{d: d, frames: make(chan string, n+16)}
	go func() {
		br := bufio.NewReader(peer)
		for {
			f, err := ws.ReadFrame(br)
			if err != nil {
				return
			}
			rr.frames <- string(f.Payload)
		}
	}()
	op, errs := schema.Compile(gql.Request{Query: `subscription { hist(topic: "t") { seq } }`}, gql.Env{})
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	st := d.hist.Lookup([]byte("h.t"))
	rr.sub = &Subscription{Out: newOut(fds[0], w, true), ID: []byte(`"1"`), Op: op, Resume: &history.Position{Epoch: st.Epoch()}}
	d.subscribe(rr.sub)
	return rr
}

// turn runs the dispatcher's resolver and replay steps once, as Run does.
func (rr *resolverReplay) turn() {
	d := rr.d
	d.resolveTurn()
	d.pumpReplays()
	d.flushResolvers()
	d.flushDirty()
}

// until turns until cond holds, waiting for the resolvers between turns.
func (rr *resolverReplay) until(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		rr.turn()
		time.Sleep(50 * time.Microsecond)
	}
}

// idle reports whether no replay or resolver state is left.
func (rr *resolverReplay) idle() bool {
	d := rr.d
	return len(d.replayConns) == 0 && len(d.replayOf) == 0 && d.res.pending == 0 && d.res.inflight.Len() == 0 && d.replayCalls.n == 0
}

// TestReplayResolvesInOrderWithinTheWindow: 300 retained events replay
// through a resolver whose calls take varying time and overlap: the
// results arrive in offset order, each resolved, at most replayWindow
// calls at once; then the subscription is registered and nothing is
// left.
func TestReplayResolvesInOrderWithinTheWindow(t *testing.T) {
	const n = 300
	var running, most atomic.Int64
	rr := newResolverReplay(t, n, time.Minute, func(_ context.Context, p gql.ResolveParams) (any, error) {
		now := running.Add(1)
		defer running.Add(-1)
		for m := most.Load(); now > m && !most.CompareAndSwap(m, now); m = most.Load() {
		}
		seq := gjson.GetBytes(p.Event, "seq").Int()
		time.Sleep(time.Duration(seq%4) * 100 * time.Microsecond)
		return map[string]any{"seq": seq * 10}, nil
	})
	rr.until(t, "the subscription is live", func() bool { return rr.sub.handle != nil })
	for i := 1; i <= n; i++ {
		select {
		case m := <-rr.frames:
			p := gjson.Get(m, "payload")
			if p.Get("data.hist.seq").Int() != int64(10*i) || p.Get("extensions.fraised.offset").Int() != int64(i) {
				t.Fatalf("next %d: %s", i, m)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("next %d never came", i)
		}
	}
	if m := most.Load(); m > replayWindow || m < 2 {
		t.Fatalf("%d calls at once, want 2..%d (the window)", m, replayWindow)
	}
	if !rr.idle() {
		t.Fatalf("state left: %d connections, %d pending, %d in flight", len(rr.d.replayConns), rr.d.res.pending, rr.d.replayCalls.n)
	}
}

// TestReplayWaitingForItsResolverIsParked: a replay whose call blocks
// parks its connection: no drain notices, no replay work in later turns
// (the dispatcher can sleep); the answer wakes it and the replay goes on.
// A subscription completed while parked ends with its call, leaving no
// state.
func TestReplayWaitingForItsResolverIsParked(t *testing.T) {
	for _, complete := range []bool{false, true} {
		t.Run(fmt.Sprintf("complete=%v", complete), func(t *testing.T) {
			release := make(chan struct{})
			var calls atomic.Int64
			rr := newResolverReplay(t, 40, time.Minute, func(_ context.Context, p gql.ResolveParams) (any, error) {
				calls.Add(1)
				seq := gjson.GetBytes(p.Event, "seq").Int()
				if seq == 5 {
					<-release
				}
				return map[string]any{"seq": seq}, nil
			})
			rc := rr.d.replayOf[rr.sub.Out]
			rr.until(t, "the connection parks behind the blocked call", func() bool { return rc.parked && rr.d.delivered.Load() == 4 })
			if got := calls.Load(); got > 4+replayWindow {
				t.Fatalf("%d calls before the blocked one returned, want at most the 4 delivered and the window (%d)", got, replayWindow)
			}
			for range 100 {
				rr.turn()
				if rr.d.replayWake.Load() || rc.ready.Load() {
					t.Fatal("a parked replay asked for another turn")
				}
			}
			if complete {
				rr.sub.Remove()
			}
			close(release)
			if complete {
				rr.until(t, "the completed replay's state is gone", rr.idle)
				if rr.sub.handle != nil {
					t.Fatal("a completed subscription was registered")
				}
				return
			}
			rr.until(t, "the subscription is live", func() bool { return rr.sub.handle != nil })
			for i := 1; i <= 40; i++ {
				if m := <-rr.frames; gjson.Get(m, "payload.data.hist.seq").Int() != int64(i) {
					t.Fatalf("next %d: %s", i, m)
				}
			}
			if !rr.idle() {
				t.Fatal("state left after the replay")
			}
		})
	}
}

// TestReplayCallsExpire: a replay call past the deadline gives that
// event's next RESOLVER_TIMEOUT, in its place, and the replay goes on.
func TestReplayCallsExpire(t *testing.T) {
	stuck := make(chan struct{})
	t.Cleanup(func() { close(stuck) })
	rr := newResolverReplay(t, 5, 100*time.Millisecond, func(_ context.Context, p gql.ResolveParams) (any, error) {
		seq := gjson.GetBytes(p.Event, "seq").Int()
		if seq == 2 {
			<-stuck // ignores its context
		}
		return map[string]any{"seq": seq}, nil
	})
	rr.until(t, "the subscription is live", func() bool { return rr.sub.handle != nil })
	for i := 1; i <= 5; i++ {
		m := <-rr.frames
		if gjson.Get(m, "payload.extensions.fraised.offset").Int() != int64(i) {
			t.Fatalf("next %d: %s", i, m)
		}
		if i == 2 {
			if gjson.Get(m, "payload.errors.0.extensions.code").String() != gql.CodeResolverTimeout {
				t.Fatalf("want RESOLVER_TIMEOUT at offset 2, got %s", m)
			}
		} else if gjson.Get(m, "payload.data.hist.seq").Int() != int64(i) {
			t.Fatalf("next %d: %s", i, m)
		}
	}
	if !rr.idle() {
		t.Fatal("state left after the replay")
	}
}

// TestStarvedReplayWaitsForRoom: a replay that no bound lets start a
// call (here the pending cap, full of live calls) sends nothing, parks,
// and starts once room is made: when a call returns, it is woken.
func TestStarvedReplayWaitsForRoom(t *testing.T) {
	rr := newResolverReplay(t, 3, time.Minute, func(_ context.Context, p gql.ResolveParams) (any, error) {
		return map[string]any{"seq": gjson.GetBytes(p.Event, "seq").Int()}, nil
	})
	d := rr.d
	d.res.pending = resolve.MaxPending // as if live groups held every slot
	rc := d.replayOf[rr.sub.Out]
	rr.until(t, "the starved replay parks", func() bool { return rc.parked })
	if d.replayCalls.n != 0 || len(d.replayCalls.starved) != 1 {
		t.Fatalf("%d calls started, %d starved, want 0 and 1", d.replayCalls.n, len(d.replayCalls.starved))
	}
	d.res.pending = 0 // the live calls returned: the last one wakes it
	d.wakeStarved()
	rr.until(t, "the subscription is live", func() bool { return rr.sub.handle != nil })
	for i := 1; i <= 3; i++ {
		if m := <-rr.frames; gjson.Get(m, "payload.data.hist.seq").Int() != int64(i) {
			t.Fatalf("next %d: %s", i, m)
		}
	}
}
