package dispatch

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tidwall/gjson"

	"github.com/fraised/fraised/gql"
	"github.com/fraised/fraised/history"
	"github.com/fraised/fraised/internal/outbox"
)

// fakeFiller takes fill requests; the test answers them through a Feed,
// as the cluster broker's receiver does.
type fakeFiller struct {
	reqs   chan FillRequest
	refuse bool
}

func (f *fakeFiller) FillHistory(r FillRequest) bool {
	if f.refuse {
		return false
	}
	f.reqs <- r
	return true
}

// fillRig is a running dispatcher in cluster mode (an interest hook and a
// filler) on the history schema, with a Feed for the "authority's" events.
type fillRig struct {
	t      *testing.T
	d      *Dispatcher
	w      *outbox.Writer
	feed   *Feed
	filler *fakeFiller
	hook   *interestLog
	schema *gql.Schema
	stop   chan struct{}
}

func newFillRig(t *testing.T) *fillRig {
	t.Helper()
	return newFillRigCap(t, 0)
}

// newFillRigCap is newFillRig with the history capped at maxBytes
// (Config.HistoryMaxBytes; zero: the default).
func newFillRigCap(t *testing.T, maxBytes int64) *fillRig {
	t.Helper()
	log := slog.New(slog.DiscardHandler)
	w, err := outbox.NewWriter(log)
	if err != nil {
		t.Fatal(err)
	}
	go w.Run()
	schema, err := gql.LoadSchema("h.graphql", historySDL, gql.Options{})
	if err != nil {
		t.Fatal(err)
	}
	r := &fillRig{t: t, w: w, filler: &fakeFiller{reqs: make(chan FillRequest, 16)}, hook: &interestLog{}, schema: schema, stop: make(chan struct{})}
	r.d = New(Config{RingSize: 1024, RingBytes: testRingBytes, MaxOutbound: testMaxOutbound, Writer: w, Log: log,
		Interest: r.hook, History: schema, Filler: r.filler, HistoryMaxBytes: maxBytes})
	go r.d.Run()
	r.feed = NewFeed(r.d)
	t.Cleanup(func() { close(r.stop); r.d.Stop(); w.Stop() })
	return r
}

// client is one subscription's output, read from a pipe.
type client struct {
	sub    *Subscription
	msgs   chan string
	failed chan []byte
}

// subscribe queues a subscription to hist(topic: "t") (topic h.t),
// resuming after resume when set; Fail is recorded as a session would.
func (r *fillRig) subscribe(id string, resume *history.Position) *client {
	r.t.Helper()
	op, errs := r.schema.Compile(gql.Request{Query: `subscription { hist(topic: "t") { seq } }`}, gql.Env{})
	if len(errs) > 0 {
		r.t.Fatal(errs)
	}
	rd, wr, err := os.Pipe()
	if err != nil {
		r.t.Fatal(err)
	}
	r.t.Cleanup(func() { rd.Close(); wr.Close() })
	c := &client{msgs: make(chan string, 1024), failed: make(chan []byte, 1)}
	c.sub = &Subscription{Out: newOut(int(wr.Fd()), r.w, true), ID: []byte(`"` + id + `"`), Op: op, Resume: resume}
	c.sub.Fail = func(errs []byte) { c.failed <- append([]byte(nil), errs...) }
	go readTexts(rd, c.msgs)
	if !r.d.QueueAdd(c.sub) {
		r.t.Fatal("QueueAdd refused")
	}
	return c
}

// live pushes the authority's event seq at offset seq in epoch E.
func (r *fillRig) live(from, to int) {
	r.t.Helper()
	for i := from; i <= to; i++ {
		if !r.feed.Push([]byte("h.t"), fmt.Appendf(nil, `{"seq":%d}`, i), history.Position{Offset: uint64(i), Epoch: "E"}, r.stop) {
			r.t.Fatal("push refused")
		}
	}
}

// stage pushes events from..to of epoch E as read for a fill.
func (r *fillRig) stage(from, to int) {
	for i := from; i <= to; i++ {
		r.feed.Stage([]byte("h.t"), fmt.Appendf(nil, `{"seq":%d}`, i), history.Position{Offset: uint64(i), Epoch: "E"}, r.stop)
	}
}

func (r *fillRig) request() FillRequest {
	r.t.Helper()
	select {
	case req := <-r.filler.reqs:
		return req
	case <-time.After(10 * time.Second):
		r.t.Fatal("no fill requested within 10 s")
	}
	return FillRequest{}
}

// expectSeqs reads the next messages of c: nexts with seq and offset
// from..to, in order, each once.
func (c *client) expectSeqs(t *testing.T, from, to int) {
	t.Helper()
	for i := from; i <= to; i++ {
		select {
		case m := <-c.msgs:
			seq := gjson.Get(m, "payload.data.hist.seq").Int()
			off := gjson.Get(m, "payload.extensions.fraised.offset").Int()
			if gjson.Get(m, "type").Str != "next" || seq != int64(i) || off != int64(i) {
				t.Fatalf("message %s, want the next of seq and offset %d", m, i)
			}
		case errs := <-c.failed:
			t.Fatalf("ended with %s while waiting for seq %d", errs, i)
		case <-time.After(10 * time.Second):
			t.Fatalf("seq %d not received within 10 s", i)
		}
	}
}

func (c *client) expectFail(t *testing.T, reason string) string {
	t.Helper()
	select {
	case m := <-c.msgs:
		t.Fatalf("got %s, want the resume error %s first", m, reason)
	case errs := <-c.failed:
		if got := gjson.GetBytes(errs, "0.extensions.code").Str; got != ResumeUnavailableCode {
			t.Fatalf("error %s, want %s", errs, ResumeUnavailableCode)
		}
		if got := gjson.GetBytes(errs, "0.extensions.reason").Str; got != reason {
			t.Fatalf("error %s, want reason %s", errs, reason)
		}
		return string(errs)
	case <-time.After(15 * time.Second):
		t.Fatalf("no error within 15 s, want %s", reason)
	}
	return ""
}

func (c *client) expectNothing(t *testing.T) {
	t.Helper()
	select {
	case m := <-c.msgs:
		t.Fatalf("unexpected %s", m)
	case errs := <-c.failed:
		t.Fatalf("unexpected end %s", errs)
	case <-time.After(100 * time.Millisecond):
	}
}

// TestFillServesAResumeTheNodeNeverSaw: a node that never listened to
// the topic gets a resume from offset 3: it starts listening (the hook
// hears of the topic before the filler is asked), records the live
// events that arrive meanwhile (11, 12), merges what the filler read
// (4-12) by offset, and the client gets 4..13 exactly once, in order,
// then stays live. The topic stays listened to.
func TestFillServesAResumeTheNodeNeverSaw(t *testing.T) {
	r := newFillRig(t)
	c := r.subscribe("1", &history.Position{Offset: 3, Epoch: "E"})
	req := r.request()
	if req.Topic != "h.t" || req.After != (history.Position{Offset: 3, Epoch: "E"}) || req.Max != 1000 {
		t.Fatalf("request %+v", req)
	}
	if got := r.hook.snapshot(); !slices.Equal(got, []string{"+h.t"}) {
		t.Fatalf("interest before the fill: %v, want [+h.t]", got)
	}
	r.live(11, 12) // arrive while the range is read
	c.expectNothing(t)
	r.stage(4, 12)
	r.feed.Filled(req.ID, []byte("h.t"), history.Position{Offset: 12, Epoch: "E"}, r.stop)
	r.live(13, 13)
	c.expectSeqs(t, 4, 13)
	c.expectNothing(t)
	if got := r.hook.snapshot(); !slices.Equal(got, []string{"+h.t"}) {
		t.Fatalf("interest after the fill: %v, want [+h.t] (no unsubscribe)", got)
	}
	waitFor(t, func() bool { return r.d.Stats().Subscriptions == 1 })
}

// TestFillCatchesUpANodeBehindTheClient: the client has seen offset 8,
// this node only 5 (its events are in flight): the filler delivers 6-8
// live first and answers at 8; the client gets nothing before 9.
func TestFillCatchesUpANodeBehindTheClient(t *testing.T) {
	r := newFillRig(t)
	keeper := r.subscribe("k", nil)
	waitFor(t, func() bool { return r.d.Stats().Subscriptions == 1 })
	r.live(1, 5)
	keeper.expectSeqs(t, 1, 5)
	c := r.subscribe("1", &history.Position{Offset: 8, Epoch: "E"})
	req := r.request()
	r.live(6, 8) // the receiver's repair up to the client's position
	r.feed.Filled(req.ID, []byte("h.t"), history.Position{Offset: 8, Epoch: "E"}, r.stop)
	r.live(9, 10)
	c.expectSeqs(t, 9, 10)
	keeper.expectSeqs(t, 6, 10)
}

// TestFillResumeFromTheStartAsksTheAuthority: the node's stream of the
// topic begins at 6 (its first resume was filled from offset 5); a resume
// from offset 0 ("from the oldest retained") must not be served from 6:
// the oldest is the authority's, so it is filled (After offset 0) and the
// client gets 1..8 exactly once, then the live events.
func TestFillResumeFromTheStartAsksTheAuthority(t *testing.T) {
	r := newFillRig(t)
	a := r.subscribe("a", &history.Position{Offset: 5, Epoch: "E"})
	req := r.request()
	r.stage(6, 8)
	r.feed.Filled(req.ID, []byte("h.t"), history.Position{Offset: 8, Epoch: "E"}, r.stop)
	a.expectSeqs(t, 6, 8)
	b := r.subscribe("b", &history.Position{Offset: 0, Epoch: "E"})
	req = r.request()
	if req.After != (history.Position{Offset: 0, Epoch: "E"}) {
		t.Fatalf("request %+v, want After offset 0 in epoch E", req)
	}
	b.expectNothing(t)
	r.stage(1, 8)
	r.feed.Filled(req.ID, []byte("h.t"), history.Position{Offset: 8, Epoch: "E"}, r.stop)
	b.expectSeqs(t, 1, 8)
	r.live(9, 9)
	b.expectSeqs(t, 9, 9)
	a.expectSeqs(t, 9, 9)
	c := r.subscribe("c", &history.Position{Offset: 0, Epoch: "E"}) // the stream now begins at 1
	c.expectSeqs(t, 1, 9)
	select {
	case req := <-r.filler.reqs:
		t.Fatalf("fill %+v for a stream that holds offset 1", req)
	default:
	}
}

// TestFillRefusesWhatTheAuthorityNoLongerHolds: the authority's stream
// starts at 8 for a resume from 3 (trimmed); one in another epoch
// (epoch_changed); one past the authority's latest (ahead). Each gets the
// resume error and no next, its topic is released (the node stops
// listening), and the answer after a fill is final (one request each).
func TestFillRefusesWhatTheAuthorityNoLongerHolds(t *testing.T) {
	for _, tc := range []struct {
		reason string
		after  history.Position
		stage  [2]int
	}{
		{"trimmed", history.Position{Offset: 3, Epoch: "E"}, [2]int{8, 10}},
		{"epoch_changed", history.Position{Offset: 3, Epoch: "OLD"}, [2]int{}},
		{"ahead", history.Position{Offset: 30, Epoch: "E"}, [2]int{}},
	} {
		t.Run(tc.reason, func(t *testing.T) {
			r := newFillRig(t)
			c := r.subscribe("1", &tc.after)
			req := r.request()
			if tc.stage[0] > 0 {
				r.stage(tc.stage[0], tc.stage[1])
			}
			r.feed.Filled(req.ID, []byte("h.t"), history.Position{Offset: 10, Epoch: "E"}, r.stop)
			errs := c.expectFail(t, tc.reason)
			if got := gjson.Get(errs, "0.extensions.available.epoch").Str; got != "E" {
				t.Fatalf("available %s, want the authority's epoch E", errs)
			}
			waitFor(t, func() bool { return len(r.hook.snapshot()) == 2 })
			if got := r.hook.snapshot(); !slices.Equal(got, []string{"+h.t", "-h.t"}) {
				t.Fatalf("interest %v, want the topic released", got)
			}
			select {
			case extra := <-r.filler.reqs:
				t.Fatalf("a second fill %+v for one resume", extra)
			default:
			}
		})
	}
}

// TestFillThatNeverAnswersEndsUnavailable: a filler that never answers
// (the authority unreachable) ends the resume with reason "unavailable"
// after fillTimeout, and a late answer changes nothing (not even the
// stage of another fill of the topic still pending); a filler that
// refuses the request ends it at once.
func TestFillThatNeverAnswersEndsUnavailable(t *testing.T) {
	if testing.Short() {
		t.Skip("waits for the fill timeout")
	}
	r := newFillRig(t)
	c := r.subscribe("1", &history.Position{Offset: 3, Epoch: "E"})
	req := r.request()
	start := time.Now()
	c.expectFail(t, "unavailable")
	if took := time.Since(start); took < fillTimeout-time.Second {
		t.Fatalf("gave up after %s, before fillTimeout %s", took, fillTimeout)
	}
	// A second resume of the topic is being filled when the late answer
	// comes: what was staged for it stays, and it gets 4..5.
	c3 := r.subscribe("3", &history.Position{Offset: 3, Epoch: "E"})
	req3 := r.request()
	r.stage(4, 5)
	r.feed.Filled(req.ID, []byte("h.t"), history.Position{Offset: 5, Epoch: "E"}, r.stop)
	c.expectNothing(t)
	r.feed.Filled(req3.ID, []byte("h.t"), history.Position{Offset: 5, Epoch: "E"}, r.stop)
	c3.expectSeqs(t, 4, 5)

	r.filler.refuse = true // for a position the node's stream (4..5 of E) cannot serve
	c2 := r.subscribe("2", &history.Position{Offset: 3, Epoch: "OLD"})
	c2.expectFail(t, "unavailable")
}

// TestFillGivenUpStagesNothingMore: the events a fill given up (timed
// out: its topic no longer listened to) still stages are dropped, and its
// answer may never come (the broker drops the request of a topic no
// longer wanted). Kept, they would stay: these go past the stage cap
// (half the history cap), which refuses the topic's stage until a Fill,
// so the next fill of the topic would merge nothing and its resume would
// end "trimmed" although the authority sent what it asked for.
func TestFillGivenUpStagesNothingMore(t *testing.T) {
	if testing.Short() {
		t.Skip("waits for the fill timeout")
	}
	t.Parallel() // beside TestFillThatNeverAnswersEndsUnavailable's wait
	const maxBytes = 64 << 10
	r := newFillRigCap(t, maxBytes)
	c := r.subscribe("1", &history.Position{Offset: 3, Epoch: "E"})
	r.request()
	c.expectFail(t, "unavailable")
	body := strings.Repeat("x", 1<<10)
	for i := 4; i < 4+maxBytes/2/len(body)+1; i++ { // past half the cap
		r.feed.Stage([]byte("h.t"), fmt.Appendf(nil, `{"seq":%d,"body":%q}`, i, body), history.Position{Offset: uint64(i), Epoch: "E"}, r.stop)
	}
	waitFor(t, r.d.Barrier()) // dispatched before the next subscribe holds the topic again
	c2 := r.subscribe("2", &history.Position{Offset: 3, Epoch: "E"})
	req := r.request()
	r.stage(4, 5)
	r.feed.Filled(req.ID, []byte("h.t"), history.Position{Offset: 5, Epoch: "E"}, r.stop)
	c2.expectSeqs(t, 4, 5)
}

// TestLossEndsTheTopicsSubscriptions: a loss reported through the Feed
// ends every registered subscription of the history topic with the
// resume error, right after the last event each got, with the position
// they had and the one the stream continues from; a resume from before
// the loss is then refused after its fill, and the topic is released.
func TestLossEndsTheTopicsSubscriptions(t *testing.T) {
	r := newFillRig(t)
	a, b := r.subscribe("a", nil), r.subscribe("b", nil)
	waitFor(t, func() bool { return r.d.Stats().Subscriptions == 2 })
	r.live(1, 4)
	a.expectSeqs(t, 1, 4)
	b.expectSeqs(t, 1, 4)
	r.feed.Lost([]byte("h.t"), history.EpochChanged, history.Position{Offset: 1, Epoch: "F"}, r.stop)
	for _, c := range []*client{a, b} {
		errs := c.expectFail(t, "epoch_changed")
		if gjson.Get(errs, "0.extensions.requested.epoch").Str != "E" || gjson.Get(errs, "0.extensions.requested.offset").Int() != 4 ||
			gjson.Get(errs, "0.extensions.available.epoch").Str != "F" || gjson.Get(errs, "0.extensions.available.first").Int() != 1 {
			t.Fatalf("error %s, want requested E/4, available F from 1", errs)
		}
	}
	waitFor(t, func() bool { return r.d.Stats().Subscriptions == 0 })
	waitFor(t, func() bool { return len(r.hook.snapshot()) == 2 })
	if got := r.hook.snapshot(); !slices.Equal(got, []string{"+h.t", "-h.t"}) {
		t.Fatalf("interest %v", got)
	}
	// A trimmed gap in the same epoch: a resume across it is refused.
	c := r.subscribe("c", nil)
	waitFor(t, func() bool { return r.d.Stats().Subscriptions == 1 })
	r.live(5, 6)
	c.expectSeqs(t, 5, 6)
	r.feed.Lost([]byte("h.t"), history.Trimmed, history.Position{Offset: 10, Epoch: "E"}, r.stop)
	c.expectFail(t, "trimmed")
}

// TestLossOfATopicWithoutHistory: a topic without @history promised no
// positions: a loss reported for it ends nothing.
func TestLossOfATopicWithoutHistory(t *testing.T) {
	r := newFillRig(t)
	op, errs := r.schema.Compile(gql.Request{Query: `subscription { plain(topic: "t") { seq } }`}, gql.Env{})
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	failed := make(chan []byte, 1)
	s := &Subscription{Out: newOut(-1, r.w, true), ID: []byte(`"p"`), Op: op, Fail: func(e []byte) { failed <- e }}
	r.d.QueueAdd(s)
	waitFor(t, func() bool { return r.d.Stats().Subscriptions == 1 })
	r.feed.Lost([]byte("p.t"), history.Trimmed, history.Position{Offset: 10, Epoch: "E"}, r.stop)
	r.live(1, 1) // behind the loss: once it is dispatched, so was the loss
	waitFor(t, func() bool { return r.d.Stats().Published >= 1 })
	select {
	case e := <-failed:
		t.Fatalf("a subscription of a topic without history ended: %s", e)
	default:
	}
	if r.d.Stats().Subscriptions != 1 {
		t.Fatal("the subscription was removed")
	}
}

// readTexts reads server WebSocket text frames from rd into out.
func readTexts(rd io.Reader, out chan<- string) {
	br := bufio.NewReader(rd)
	for {
		var h [2]byte
		if _, err := io.ReadFull(br, h[:]); err != nil {
			return
		}
		size := uint64(h[1] & 0x7f)
		switch size {
		case 126:
			var ext [2]byte
			if _, err := io.ReadFull(br, ext[:]); err != nil {
				return
			}
			size = uint64(binary.BigEndian.Uint16(ext[:]))
		case 127:
			var ext [8]byte
			if _, err := io.ReadFull(br, ext[:]); err != nil {
				return
			}
			size = binary.BigEndian.Uint64(ext[:])
		}
		body := make([]byte, size)
		if _, err := io.ReadFull(br, body); err != nil {
			return
		}
		if h[0]&0x0f == 1 {
			out <- string(body)
		}
	}
}
