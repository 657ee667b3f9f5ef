package dispatch

import (
	"bufio"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/fraised/fraised/gql"
	"github.com/fraised/fraised/history"
	"github.com/fraised/fraised/internal/outbox"
)

// interestLog records the interest hook's calls, as a broker would see
// them.
type interestLog struct {
	mu     sync.Mutex
	events []string
}

func (l *interestLog) TopicAdded(t string)   { l.add("+" + t) }
func (l *interestLog) TopicRemoved(t string) { l.add("-" + t) }
func (l *interestLog) add(s string) {
	l.mu.Lock()
	l.events = append(l.events, s)
	l.mu.Unlock()
}

func (l *interestLog) snapshot() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.events)
}

// compileOn compiles a subscription on topic with the example schema.
func compileOn(t *testing.T, topic string, field string) *gql.Operation {
	t.Helper()
	schema, err := gql.LoadSchemaFile("../examples/schema.graphql", gql.Options{})
	if err != nil {
		t.Fatal(err)
	}
	op, errs := schema.Compile(gql.Request{Query: fmt.Sprintf(`subscription { events(topic: %q) { %s } }`, topic, field)}, gql.Env{})
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	return op
}

// TestInterestFirstAndLast: the hook hears of a topic when its first
// subscriber registers and when its last leaves (in any group), never for
// the subscribers in between, on the dispatcher goroutine in order.
func TestInterestFirstAndLast(t *testing.T) {
	log := slog.New(slog.DiscardHandler)
	w, err := outbox.NewWriter(log)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	hook := &interestLog{}
	d := New(Config{RingSize: 1024, RingBytes: testRingBytes, MaxOutbound: testMaxOutbound, Writer: w, Log: log, Interest: hook})
	go d.Run()
	defer d.Stop()

	newSub := func(topic, field string) *Subscription {
		return &Subscription{Out: newOut(-1, w, true), ID: []byte(`"1"`), Op: compileOn(t, topic, field)}
	}
	a1, a2, b1 := newSub("a", "seq"), newSub("a", "body"), newSub("b", "seq")
	for _, s := range []*Subscription{a1, a2, b1} {
		if !d.QueueAdd(s) {
			t.Fatal("QueueAdd refused")
		}
	}
	waitFor(t, func() bool { return len(hook.snapshot()) == 2 })
	remove := func(s *Subscription) {
		if s.Remove() {
			d.QueueRemove(s)
		}
	}
	remove(a1)
	remove(b1)
	waitFor(t, func() bool { return len(hook.snapshot()) == 3 })
	remove(a2)
	waitFor(t, func() bool { return len(hook.snapshot()) == 4 })
	if got, want := hook.snapshot(), []string{"+a", "+b", "-b", "-a"}; !slices.Equal(got, want) {
		t.Fatalf("interest calls = %v, want %v", got, want)
	}
	// A subscription removed before the dispatcher registered it never
	// counts as interest.
	c := newSub("c", "seq")
	c.Remove()
	d.QueueAdd(c)
	d.QueueRemove(c)
	d.QueueAdd(newSub("a", "seq"))
	waitFor(t, func() bool { return len(hook.snapshot()) == 5 })
	if got := hook.snapshot()[4]; got != "+a" {
		t.Fatalf("after a withdrawn subscribe to c and one to a, the hook heard %q", got)
	}
}

// TestFeedPushesPastThePublishWindow: a Feed's events are answered by
// nobody, yet each one leaves the in-flight count once dispatched, so a
// feed keeps pushing past publishWindow and its subscriber gets every
// event in order.
func TestFeedPushesPastThePublishWindow(t *testing.T) {
	log := slog.New(slog.DiscardHandler)
	w, err := outbox.NewWriter(log)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	go w.Run()
	d := New(Config{RingSize: 256, RingBytes: testRingBytes, MaxOutbound: 64 << 20, Writer: w, Log: log})
	go d.Run()
	defer d.Stop()
	r, wr, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer wr.Close()
	got := make(chan int, 1)
	const n = 3 * publishWindow
	go func() { got <- countFrames(r, n) }()
	sub := &Subscription{Out: newOut(int(wr.Fd()), w, true), ID: []byte(`"1"`), Op: compileOn(t, "f", "seq")}
	d.QueueAdd(sub)
	waitFor(t, func() bool { return d.Stats().Subscriptions == 1 })
	f := NewFeed(d)
	stop := make(chan struct{})
	giveUp := time.AfterFunc(20*time.Second, func() { close(stop) })
	defer giveUp.Stop()
	for i := 1; i <= n; i++ {
		if !f.Push([]byte("f"), fmt.Appendf(nil, `{"seq":%d}`, i), history.Position{}, stop) {
			t.Fatalf("push %d refused", i)
		}
	}
	select {
	case last := <-got:
		if last != n {
			t.Fatalf("last seq read = %d, want %d", last, n)
		}
	case <-time.After(20 * time.Second):
		t.Fatalf("not every event arrived; feed in flight = %d", f.Inflight())
	}
	waitFor(t, func() bool { return f.Inflight() == 0 })
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached within 10 s")
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// countFrames reads server WebSocket frames from r until it has seen n,
// checking that each next carries seq one more than the one before; it
// returns the last seq in order (less than n when a frame was missing or
// out of order).
func countFrames(r io.Reader, n int) int {
	br := bufio.NewReader(r)
	last := 0
	for last < n {
		var h [2]byte
		if _, err := io.ReadFull(br, h[:]); err != nil {
			return last
		}
		size := int(h[1] & 0x7f)
		switch size {
		case 126:
			var ext [2]byte
			if _, err := io.ReadFull(br, ext[:]); err != nil {
				return last
			}
			size = int(binary.BigEndian.Uint16(ext[:]))
		case 127:
			return last
		}
		body := make([]byte, size)
		if _, err := io.ReadFull(br, body); err != nil {
			return last
		}
		var msg struct {
			Payload struct {
				Data struct {
					Events struct{ Seq int } `json:"events"`
				} `json:"data"`
			} `json:"payload"`
		}
		if json.Unmarshal(body, &msg) != nil || msg.Payload.Data.Events.Seq != last+1 {
			return last
		}
		last++
	}
	return last
}
