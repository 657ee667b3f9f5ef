package server_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/tidwall/gjson"

	"github.com/fraised/fraised/broker"
	"github.com/fraised/fraised/server"
	"github.com/fraised/fraised/source"
)

// seqReader collects the seq of every next message of a real WebSocket
// client on its own goroutine.
type seqReader struct {
	mu   sync.Mutex
	seqs []int64
}

func readSeqs(c *client) *seqReader {
	r := &seqReader{}
	go func() {
		for {
			m, err := c.read()
			if err != nil {
				return
			}
			r.mu.Lock()
			r.seqs = append(r.seqs, gjson.Get(m, "payload.data.events.seq").Int())
			r.mu.Unlock()
		}
	}()
	return r
}

func (r *seqReader) snapshot() []int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]int64(nil), r.seqs...)
}

// calls counts the publishes (and batches) the fake broker was asked for.
func (f *fakeCluster) calls() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.batches)
}

// TestClusterSourcePublishesThroughTheBroker: in cluster mode a source's
// events go to the broker (which numbers them and hands them back to the
// node), not straight into the dispatcher. While the broker is
// unavailable the source's Publish waits and retries with backoff: it
// accepts nothing more, its Run neither fails nor returns, and once the
// broker is back every event arrives, the one that was refused included,
// none lost or twice, in order.
func TestClusterSourcePublishesThroughTheBroker(t *testing.T) {
	f := newFakeCluster()
	src := newFakeSource("src")
	src.healthy.Store(true)
	s := startServer(t, func(o *server.Options) {
		o.Cluster = f
		o.Sources = []source.Source{src}
	})
	c := connect(t, s.opts.Listen)
	c.subscribe("1", eventsQuery, map[string]any{"t": "src"})
	s.waitSubs(t, 1)
	got := readSeqs(c)
	waitUntil(t, "the source's events reach the subscriber through the broker", func() bool { return len(got.snapshot()) > 50 })

	down := fmt.Errorf("%w: redis is down", broker.ErrUnavailable)
	f.set(down, down)
	before := f.calls()
	waitUntil(t, "the refused event is retried", func() bool { return f.calls() >= before+4 })
	acked := src.acked.Load()
	waitUntil(t, "more retries", func() bool { return f.calls() >= before+6 })
	if now := src.acked.Load(); now != acked {
		t.Fatalf("the source's events were accepted while the broker refused them (acked %d, then %d)", acked, now)
	}
	select {
	case <-src.returned:
		t.Fatal("the source's Run returned during the outage")
	default:
	}

	f.set(nil, nil)
	waitUntil(t, "the source goes on after the outage", func() bool { return src.acked.Load() > acked+50 })
	waitUntil(t, "the subscriber gets the events after the outage", func() bool { return int64(len(got.snapshot())) > acked+50 })
	seqs := got.snapshot() // from the first after the subscription
	if seqs[0] > acked {
		t.Fatalf("the first delivery is seq %d, after the outage's %d", seqs[0], acked)
	}
	for i, seq := range seqs {
		if seq != seqs[0]+int64(i) {
			t.Fatalf("delivery %d is seq %d after %d: lost, duplicated or out of order around the outage", i+1, seq, seqs[i-1])
		}
	}
}

// TestClusterSourceDoesNotResendAnUnknownOutcome: a source event without
// an origin (a LISTEN notification, at most once) whose cluster publish
// was sent but never answered (broker.ErrOutcomeUnknown: Redis may have
// run it) is not sent again, which could deliver it twice: the source
// goes on with its next event, one publish each.
func TestClusterSourceDoesNotResendAnUnknownOutcome(t *testing.T) {
	f := newFakeCluster()
	src := newFakeSource("src")
	src.healthy.Store(true)
	startServer(t, func(o *server.Options) {
		o.Cluster = f
		o.Sources = []source.Source{src}
	})
	waitUntil(t, "the source publishes", func() bool { return src.acked.Load() > 10 })
	f.set(nil, fmt.Errorf("%w: read tcp: i/o timeout", broker.ErrOutcomeUnknown))
	before, acked := f.calls(), src.acked.Load()
	waitUntil(t, "publishes while the broker does not answer", func() bool { return f.calls() >= before+20 })
	calls, now := f.calls()-before, src.acked.Load()-acked
	if now < int64(calls)-2 {
		t.Fatalf("%d publishes went to the broker for %d source events: an event with an unknown outcome was sent again", calls, now)
	}
}

// TestClusterPublishGoesToTheBroker: Server.Publish (the library's
// publish) goes to the broker in cluster mode, and answers an unavailable
// broker's refusal as an error wrapping broker.ErrUnavailable (once: the
// caller decides whether to retry).
func TestClusterPublishGoesToTheBroker(t *testing.T) {
	s, f := startClusterServer(t)
	c := connect(t, s.opts.Listen)
	c.subscribe("1", eventsQuery, map[string]any{"t": "lib"})
	s.waitSubs(t, 1)
	ctx := context.Background()
	if err := s.Publish(ctx, "lib", []byte(`{"seq":1}`)); err != nil {
		t.Fatal(err)
	}
	c.expect(`{"id":"1","type":"next","payload":{"data":{"events":{"seq":1,"body":null}}}}`)
	f.set(nil, fmt.Errorf("%w: redis is down", broker.ErrUnavailable))
	before := f.calls()
	if err := s.Publish(ctx, "lib", []byte(`{"seq":2}`)); !errors.Is(err, broker.ErrUnavailable) {
		t.Fatalf("Publish with the broker down = %v, want an error wrapping broker.ErrUnavailable", err)
	}
	if n := f.calls() - before; n != 1 {
		t.Fatalf("the library's Publish tried the broker %d times, want once", n)
	}
	if err := s.Publish(ctx, "", []byte(`{}`)); !errors.Is(err, source.ErrInvalid) {
		t.Fatalf("an empty topic = %v, want source.ErrInvalid", err)
	}
	f.set(nil, nil)
	if err := s.Publish(ctx, "lib", []byte(`{"seq":3}`)); err != nil {
		t.Fatal(err)
	}
	c.expect(`{"id":"1","type":"next","payload":{"data":{"events":{"seq":3,"body":null}}}}`)
}

// onceCluster is a fakeCluster that is also a broker.OncePublisher: it
// answers the first unknown publishes with ErrOutcomeUnknown (sent, no
// answer) and records every PublishOnce's origin sequence.
type onceCluster struct {
	*fakeCluster
	mu      sync.Mutex
	unknown int
	seqs    []int64
}

func (c *onceCluster) PublishOnce(ctx context.Context, topic, payload []byte, o broker.Origin) (broker.Receipt, bool, error) {
	c.mu.Lock()
	c.seqs = append(c.seqs, o.Seq)
	fail := c.unknown > 0
	if fail {
		c.unknown--
	}
	c.mu.Unlock()
	if fail {
		return broker.Receipt{}, false, fmt.Errorf("%w: read tcp: i/o timeout", broker.ErrOutcomeUnknown)
	}
	rc, err := c.Publish(ctx, topic, payload)
	return rc, false, err
}

func (c *onceCluster) calls() []int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]int64(nil), c.seqs...)
}

// onceSource publishes n events through PublishOnce, origin seq 1..n.
type onceSource struct {
	n    int64
	done chan error
}

func (s *onceSource) Run(ctx context.Context, sink source.Sink) error {
	var err error
	for seq := int64(1); seq <= s.n && err == nil; seq++ {
		err = sink.(source.OnceSink).PublishOnce(ctx, "once", fmt.Appendf(nil, `{"seq":%d}`, seq), source.Origin{Stream: "db", Part: "0", Seq: seq})
	}
	s.done <- err
	<-ctx.Done()
	return nil
}

func (s *onceSource) Healthy() error { return nil }

// TestClusterSourceResendsAnUnknownOutcomeWithAnOrigin: an event with an
// origin (an outbox row) whose cluster publish got no answer is sent
// again, with the same origin, until the broker answers (the broker drops
// a second copy by its origin): none is skipped.
func TestClusterSourceResendsAnUnknownOutcomeWithAnOrigin(t *testing.T) {
	c := &onceCluster{fakeCluster: newFakeCluster(), unknown: 3}
	src := &onceSource{n: 2, done: make(chan error, 1)}
	startServer(t, func(o *server.Options) {
		o.Cluster = c
		o.Sources = []source.Source{src}
	})
	select {
	case err := <-src.done:
		if err != nil {
			t.Fatalf("the source's publishes: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatalf("the source's publishes did not finish; PublishOnce calls: %v", c.calls())
	}
	if got, want := fmt.Sprint(c.calls()), "[1 1 1 1 2]"; got != want {
		t.Fatalf("PublishOnce origin seqs = %s, want %s (event 1 sent again after each unknown outcome)", got, want)
	}
}
