package server_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"
	"github.com/tidwall/gjson"

	"github.com/fraised/fraised/server"
	"github.com/fraised/fraised/source"
)

// TestPublishDeliversLikeRESP: an event from Server.Publish reaches a real
// WebSocket subscriber projected, as the same event through RESP does.
func TestPublishDeliversLikeRESP(t *testing.T) {
	s := startServer(t, nil)
	c := connect(t, s.opts.Listen)
	c.subscribe("1", `subscription { orderUpdated(customerId: 42) { id status } }`, nil)
	s.waitSubs(t, 1)
	ctx := context.Background()
	if err := s.Publish(ctx, "orders.42", []byte(`{"id":"o1","status":"PAID","total":3}`)); err != nil {
		t.Fatal(err)
	}
	c.expect(`{"id":"1","type":"next","payload":{"data":{"orderUpdated":{"id":"o1","status":"PAID"}}}}`)
	p := dialPublisher(t, "tcp", s.opts.PublishListen)
	if got := p.publish("orders.42", `{"id":"o2","status":"SHIPPED"}`); got != ":1" {
		t.Fatalf("RESP publish reached %s", got)
	}
	c.expect(`{"id":"1","type":"next","payload":{"data":{"orderUpdated":{"id":"o2","status":"SHIPPED"}}}}`)
	if got := s.Stats().Published; got != 2 {
		t.Fatalf("%d events published, want 2", got)
	}
}

// TestPublishRefusesWhatRESPRefuses: the same validation, with the same
// reason, for Publish (an error wrapping source.ErrInvalid) and PUBLISH
// (-ERR); nothing refused is delivered.
func TestPublishRefusesWhatRESPRefuses(t *testing.T) {
	s := startServer(t, func(o *server.Options) { o.MaxPayload = 64 })
	c := connect(t, s.opts.Listen)
	c.subscribe("1", eventsQuery, map[string]any{"t": "t"})
	s.waitSubs(t, 1)
	p := dialPublisher(t, "tcp", s.opts.PublishListen)
	cases := []struct{ topic, payload, reason string }{
		{"", `{}`, "topic must not be empty"},
		{"t", `[1]`, "payload must be a JSON object"},
		{"t", `{"seq":`, "payload must be a JSON object"},
		{"t", ` `, "payload must be a JSON object"},
		{"t", `{"body":"` + strings.Repeat("x", 64) + `"}`, "payload too large (limit 64 bytes)"},
	}
	for _, tc := range cases {
		err := s.Publish(context.Background(), tc.topic, []byte(tc.payload))
		if !errors.Is(err, source.ErrInvalid) || !strings.HasSuffix(err.Error(), ": "+tc.reason) {
			t.Errorf("Publish(%.20q, %.20q) = %v, want source.ErrInvalid with %q", tc.topic, tc.payload, err, tc.reason)
		}
		if got := p.publish(tc.topic, tc.payload); got != "-ERR "+tc.reason {
			t.Errorf("PUBLISH(%.20q, %.20q) = %q, want -ERR %s", tc.topic, tc.payload, got, tc.reason)
		}
	}
	// (RESP refuses a topic this long in its parser already.)
	if err := s.Publish(context.Background(), strings.Repeat("t", 1025), []byte(`{}`)); !errors.Is(err, source.ErrInvalid) ||
		!strings.HasSuffix(err.Error(), ": topic longer than 1024 bytes") {
		t.Errorf("Publish with a 1025-byte topic = %v", err)
	}
	if err := s.Publish(context.Background(), "t", []byte(`{"seq":1}`)); err != nil {
		t.Fatal(err)
	}
	c.expect(`{"id":"1","type":"next","payload":{"data":{"events":{"seq":1,"body":null}}}}`)
}

// TestPublishWaitsForRingSpace: with the dispatcher held and the ring
// full, Publish waits (backpressure), gives up when its context ends, and
// goes through once the ring drains; nothing is lost or reordered.
func TestPublishWaitsForRingSpace(t *testing.T) {
	s, g := startGated(t, func(o *server.Options) { o.RingSize = 2 })
	p := dialPublisher(t, "tcp", s.opts.PublishListen)
	held := blockDispatcher(t, s, g, p, 0)
	ctx := context.Background()
	for seq := 1; seq <= 2; seq++ { // fills the ring behind the held event
		if err := s.Publish(ctx, "held", fmt.Appendf(nil, `{"seq":%d}`, seq)); err != nil {
			t.Fatal(err)
		}
	}
	waitUntil(t, "the ring is full", func() bool { return server.RingFull(s.Server) })
	short, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel()
	if err := s.Publish(short, "held", []byte(`{"seq":99}`)); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Publish on a full ring with an ending context = %v, want context.DeadlineExceeded", err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Publish(ctx, "held", []byte(`{"seq":3}`)) }()
	waitUntil(t, "Publish waits for its turn", func() bool { return server.WaitingPublishers(s.Server) > 0 })
	select {
	case err := <-done:
		t.Fatalf("Publish returned %v while the ring was full", err)
	default:
	}
	g.release()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	for seq := 0; seq <= 3; seq++ {
		held.expect(fmt.Sprintf(`{"id":"h","type":"next","payload":{"data":{"held":{"seq":%d}}}}`, seq))
	}
	_ = p.line() // the RESP reply of seq 0
}

// TestPublishConcurrentCallers: many goroutines publish at once through
// one server, each event arrives exactly once.
func TestPublishConcurrentCallers(t *testing.T) {
	const callers, each = 8, 500
	s := startServer(t, func(o *server.Options) { o.RingSize = 64 })
	c := connect(t, s.opts.Listen)
	c.subscribe("1", eventsQuery, map[string]any{"t": "many"})
	s.waitSubs(t, 1)
	var wg sync.WaitGroup
	for w := range callers {
		wg.Go(func() {
			for i := range each {
				if err := s.Publish(context.Background(), "many", fmt.Appendf(nil, `{"seq":%d}`, w*each+i)); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	seen := make(map[int64]bool, callers*each)
	for len(seen) < callers*each {
		seq := gjson.Get(c.next(), "payload.data.events.seq").Int()
		if seen[seq] {
			t.Fatalf("seq %d delivered twice", seq)
		}
		seen[seq] = true
	}
	wg.Wait()
}

// TestPublishDuringShutdownRefused: once Shutdown began, Publish returns
// ErrDraining instead of taking an event that may not be delivered.
func TestPublishDuringShutdownRefused(t *testing.T) {
	s := startServer(t, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if err := s.Publish(context.Background(), "t", []byte(`{}`)); !errors.Is(err, server.ErrDraining) {
		t.Fatalf("Publish after Shutdown = %v, want server.ErrDraining", err)
	}
	ended, stop := context.WithCancel(context.Background())
	stop()
	if err := s.Publish(ended, "t", []byte(`{}`)); !errors.Is(err, context.Canceled) {
		t.Fatalf("Publish with an ended context = %v, want context.Canceled", err)
	}
}

// fakeSource publishes seq 1, 2, ... as fast as the sink takes them while
// it runs, recording the last seq the sink accepted; its health is set by
// the test.
type fakeSource struct {
	topic    string
	healthy  atomic.Bool
	acked    atomic.Int64
	started  chan struct{}
	returned chan struct{}
}

func newFakeSource(topic string) *fakeSource {
	return &fakeSource{topic: topic, started: make(chan struct{}), returned: make(chan struct{})}
}

func (f *fakeSource) Run(ctx context.Context, sink source.Sink) error {
	defer close(f.returned)
	close(f.started)
	for seq := int64(1); ; seq++ {
		err := sink.Publish(ctx, f.topic, fmt.Appendf(nil, `{"seq":%d}`, seq))
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			return err
		}
		f.acked.Store(seq)
		if seq%16 == 0 {
			time.Sleep(time.Millisecond) // a database, not a flood
		}
	}
}

func (f *fakeSource) Healthy() error {
	if f.healthy.Load() {
		return nil
	}
	return errors.New("fake source: disconnected")
}

var _ source.Source = (*fakeSource)(nil)

// get fetches path over a real HTTP connection.
func get(t *testing.T, addr, path string) (int, string) {
	t.Helper()
	resp, err := http.Get("http://" + addr + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// TestReadinessFollowsSourcesAndChecks: /readyz answers 503 naming every
// unhealthy source and failing check, 200 once all are well; /livez and
// /healthz do not look at them.
func TestReadinessFollowsSourcesAndChecks(t *testing.T) {
	src := newFakeSource("ready")
	s := startServer(t, func(o *server.Options) { o.Sources = []source.Source{src} })
	var clusterUp atomic.Bool
	s.AddReadyCheck("cluster", func() error {
		if clusterUp.Load() {
			return nil
		}
		return errors.New("no redis")
	})
	check := func(path string, wantCode int, wantBody string) {
		t.Helper()
		if code, body := get(t, s.opts.Listen, path); code != wantCode || body != wantBody {
			t.Fatalf("GET %s = %d %q, want %d %q", path, code, body, wantCode, wantBody)
		}
	}
	check("/readyz", 503, "not ready: source 1, cluster\n")
	check("/livez", 200, "ok\n")
	check("/healthz", 200, "ok\n")
	src.healthy.Store(true)
	check("/readyz", 503, "not ready: cluster\n")
	clusterUp.Store(true)
	check("/readyz", 200, "ok\n")
	src.healthy.Store(false)
	check("/readyz", 503, "not ready: source 1\n")
}

// TestShutdownStopsSourcesThenDelivers: on Shutdown a source's Run ends
// first, and every event the sink accepted before reaches the subscriber
// before its close 1001.
func TestShutdownStopsSourcesThenDelivers(t *testing.T) {
	src := newFakeSource("src")
	opts := server.Options{Listen: freePort(t), PublishListen: "-", EventLoops: 2, Schema: loadSchema(t, nil),
		Sources: []source.Source{src}}
	srv, err := server.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Run() }()
	<-srv.Ready()
	<-src.started
	c := connect(t, opts.Listen)
	c.subscribe("1", eventsQuery, map[string]any{"t": "src"})
	type result struct {
		seqs []int64
		code ws.StatusCode
		err  error
	}
	read := make(chan result, 1)
	go func() { // reads while the server drains
		var r result
		_ = c.conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		for {
			msgs, err := wsutil.ReadServerMessage(c.r, nil)
			if err != nil {
				r.err = err
				read <- r
				return
			}
			for _, m := range msgs {
				switch m.OpCode {
				case ws.OpText:
					r.seqs = append(r.seqs, gjson.GetBytes(m.Payload, "payload.data.events.seq").Int())
				case ws.OpClose:
					r.code, _ = ws.ParseCloseFrameData(m.Payload)
					read <- r
					return
				}
			}
		}
	}()
	waitUntil(t, "the subscription is registered", func() bool { return srv.Stats().Subscriptions == 1 })
	waitUntil(t, "the source published to the subscriber", func() bool { return srv.Stats().Delivered > 100 })
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case <-src.returned:
	default:
		t.Fatal("Shutdown returned before the source's Run")
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	r := <-read
	acked := src.acked.Load()
	if r.err != nil || r.code != 1001 {
		t.Fatalf("subscriber ended with close %d, error %v; want 1001", r.code, r.err)
	}
	if len(r.seqs) == 0 || r.seqs[len(r.seqs)-1] < acked {
		t.Fatalf("the sink accepted seq %d, the subscriber got %d events up to %v", acked, len(r.seqs), r.seqs[max(0, len(r.seqs)-1):])
	}
	for i := 1; i < len(r.seqs); i++ {
		if r.seqs[i] != r.seqs[i-1]+1 {
			t.Fatalf("seq %d after %d", r.seqs[i], r.seqs[i-1])
		}
	}
}
