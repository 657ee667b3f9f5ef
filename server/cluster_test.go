package server_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fraised/fraised/broker"
	"github.com/fraised/fraised/server"
)

// fakeCluster is a broker that orders events itself (like Redis would):
// it numbers them, hands them to the inlet, and records what the server
// asked of it.
type fakeCluster struct {
	mu       sync.Mutex
	in       broker.Inlet
	offset   uint64
	batches  []int
	interest []string
	ready    error
	refuse   error
	stop     chan struct{}
}

var _ broker.Batcher = (*fakeCluster)(nil)

func newFakeCluster() *fakeCluster { return &fakeCluster{stop: make(chan struct{})} }

func (f *fakeCluster) Publish(ctx context.Context, topic, payload []byte) (broker.Receipt, error) {
	out := make([]broker.Result, 1)
	f.PublishBatch(ctx, []broker.Event{{Topic: topic, Payload: payload}}, out)
	return out[0].Receipt, out[0].Err
}

func (f *fakeCluster) PublishBatch(_ context.Context, evs []broker.Event, out []broker.Result) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.batches = append(f.batches, len(evs))
	for i, ev := range evs {
		if f.refuse != nil {
			out[i] = broker.Result{Err: f.refuse}
			continue
		}
		f.offset++
		pos := broker.Position{Offset: f.offset, Epoch: "E1"}
		f.in.Deliver(ev.Topic, ev.Payload, pos, f.stop)
		out[i] = broker.Result{Receipt: broker.Receipt{Receivers: 7, Pos: pos}}
	}
}

func (f *fakeCluster) TopicAdded(t string)   { f.note("+" + t) }
func (f *fakeCluster) TopicRemoved(t string) { f.note("-" + t) }
func (f *fakeCluster) note(s string) {
	f.mu.Lock()
	f.interest = append(f.interest, s)
	f.mu.Unlock()
}

func (f *fakeCluster) Ready() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.ready
}

func (f *fakeCluster) Start(in broker.Inlet) error {
	f.mu.Lock()
	f.in = in
	f.mu.Unlock()
	return nil
}

func (f *fakeCluster) Stop() { close(f.stop) }

func (f *fakeCluster) set(ready, refuse error) {
	f.mu.Lock()
	f.ready, f.refuse = ready, refuse
	f.mu.Unlock()
}

func (f *fakeCluster) snapshot() (batches []int, interest []string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]int(nil), f.batches...), append([]string(nil), f.interest...)
}

func startClusterServer(t *testing.T) (*testServer, *fakeCluster) {
	f := newFakeCluster()
	s := startServer(t, func(o *server.Options) {
		o.Cluster = f
		o.PublishToken = "tok"
	})
	return s, f
}

// TestClusterRESPPublishesAreBatched: in cluster mode a pipelined burst
// of PUBLISH goes to the broker in batches (one round trip each, at most
// 256), every command is answered in order with the broker's receiver
// count, a PING in the middle in its place, and the events reach the
// node's subscribers through the broker. The dispatcher tells the broker
// of the topic's first subscriber and of its last leaving.
func TestClusterRESPPublishesAreBatched(t *testing.T) {
	s, f := startClusterServer(t)
	c := connect(t, s.opts.Listen)
	c.subscribe("1", `subscription { events(topic: "t") { seq } }`, nil)
	s.waitSubs(t, 1)
	waitUntil(t, "interest", func() bool { _, in := f.snapshot(); return len(in) == 1 && in[0] == "+t" })

	const n = 600
	var burst strings.Builder
	for i := 1; i <= n; i++ {
		payload := fmt.Sprintf(`{"seq":%d}`, i)
		fmt.Fprintf(&burst, "*3\r\n$7\r\nPUBLISH\r\n$1\r\nt\r\n$%d\r\n%s\r\n", len(payload), payload)
		if i == n/2 {
			burst.WriteString("*1\r\n$4\r\nPING\r\n")
		}
	}
	p := dialPublisher(t, "tcp", s.opts.PublishListen)
	p.write([]byte(burst.String()))
	for i := 1; i <= n+1; i++ {
		want := ":7"
		if i == n/2+1 {
			want = "+PONG"
		}
		if got := p.line(); got != want {
			t.Fatalf("reply %d = %q, want %q", i, got, want)
		}
	}
	for i := 1; i <= n; i++ {
		c.expect(fmt.Sprintf(`{"id":"1","type":"next","payload":{"data":{"events":{"seq":%d}}}}`, i))
	}
	batches, _ := f.snapshot()
	sum, biggest := 0, 0
	for _, b := range batches {
		sum, biggest = sum+b, max(biggest, b)
	}
	if sum != n || biggest < 2 || biggest > 256 {
		t.Fatalf("batches %v: want %d events in batches of 2 to 256", batches, n)
	}
	c.send(`{"id":"1","type":"complete"}`)
	waitUntil(t, "interest", func() bool { _, in := f.snapshot(); return len(in) == 2 && in[1] == "-t" })
}

// TestClusterHTTPAndReadiness: an HTTP publish in cluster mode answers
// {"nodes","offset","epoch"} from the broker; a refused one 503 with the
// reason; /readyz follows the broker's Ready while /livez and /healthz
// stay 200; a refused RESP publish gets -ERR.
func TestClusterHTTPAndReadiness(t *testing.T) {
	s, f := startClusterServer(t)
	get := func(path string) (int, string) {
		resp, err := http.Get("http://" + s.opts.Listen + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, strings.TrimSpace(string(b))
	}
	post := func() (int, string) {
		req, _ := http.NewRequest(http.MethodPost, "http://"+s.opts.Listen+"/publish/h", strings.NewReader(`{"seq":1}`))
		req.Header.Set("Authorization", "Bearer tok")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := get("/readyz"); code != 200 {
		t.Fatalf("/readyz = %d %q", code, body)
	}
	if code, body := post(); code != 200 || body != `{"nodes":7,"offset":1,"epoch":"E1"}` {
		t.Fatalf("POST = %d %q", code, body)
	}
	// Keep-alive: a second request on the same connection after a parked one.
	conn, err := net.Dial("tcp", s.opts.Listen)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	r := bufio.NewReader(conn)
	for i := 2; i <= 3; i++ {
		fmt.Fprintf(conn, "POST /publish/h HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer tok\r\nContent-Length: 9\r\n\r\n{\"seq\":%d}", i)
		_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		resp, err := http.ReadResponse(r, nil)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		if want := fmt.Sprintf(`{"nodes":7,"offset":%d,"epoch":"E1"}`, i); resp.StatusCode != 200 || string(b) != want {
			t.Fatalf("keep-alive POST %d = %d %q, want %q", i, resp.StatusCode, b, want)
		}
	}
	down := fmt.Errorf("%w: Redis unreachable", broker.ErrUnavailable)
	f.set(down, down)
	if code, body := get("/readyz"); code != 503 || strings.TrimSpace(body) != "not ready: cluster" {
		t.Fatalf("/readyz with the broker down = %d %q", code, body)
	}
	for _, path := range []string{"/livez", "/healthz"} {
		if code, body := get(path); code != 200 {
			t.Fatalf("%s with the broker down = %d %q, want 200", path, code, body)
		}
	}
	if code, body := post(); code != 503 || !strings.Contains(body, "cluster unavailable, event not published") {
		t.Fatalf("POST with the broker down = %d %q", code, body)
	}
	p := dialPublisher(t, "tcp", s.opts.PublishListen)
	if got := p.publish("h", `{"seq":9}`); !strings.HasPrefix(got, "-ERR cluster unavailable, event not published") {
		t.Fatalf("RESP publish with the broker down = %q", got)
	}
	// Sent but never answered: it may have been published, so neither
	// publisher is told it was not.
	f.set(nil, fmt.Errorf("%w: read tcp: i/o timeout", broker.ErrOutcomeUnknown))
	if code, body := post(); code != 504 || !strings.Contains(body, "cluster publish outcome unknown") || strings.Contains(body, "not published") {
		t.Fatalf("POST with no answer from the broker = %d %q, want 504 outcome unknown", code, body)
	}
	if got := p.publish("h", `{"seq":10}`); !strings.HasPrefix(got, "-ERR cluster publish outcome unknown") {
		t.Fatalf("RESP publish with no answer from the broker = %q", got)
	}
	f.set(nil, nil)
	if code, body := get("/readyz"); code != 200 {
		t.Fatalf("/readyz after recovery = %d %q", code, body)
	}
}

// TestLivezReportsAStuckDispatcher: /livez stays 200 while the
// dispatcher makes progress and answers 503 once it has held the same
// events past LivenessStall (a resolver that never returns), then 200
// again when it moves on.
func TestLivezReportsAStuckDispatcher(t *testing.T) {
	s, g := startGated(t, func(o *server.Options) { o.LivenessStall = 300 * time.Millisecond })
	get := func() (int, string) {
		resp, err := http.Get("http://" + s.opts.Listen + "/livez")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, strings.TrimSpace(string(b))
	}
	if code, body := get(); code != 200 {
		t.Fatalf("/livez idle = %d %q", code, body)
	}
	p := dialPublisher(t, "tcp", s.opts.PublishListen)
	blockDispatcher(t, s, g, p, 0)
	if code, body := get(); code != 200 {
		t.Fatalf("/livez just after the dispatcher blocked = %d %q, want 200 (not stalled long enough)", code, body)
	}
	waitUntil(t, "/livez reports the stall", func() bool {
		code, body := get()
		return code == 503 && strings.Contains(body, "dispatcher has not finished a batch")
	})
	if code, body := get(); code != 503 {
		t.Fatalf("/livez still stalled = %d %q, want 503", code, body)
	}
	g.release()
	waitUntil(t, "/livez recovers", func() bool { code, _ := get(); return code == 200 })
}
