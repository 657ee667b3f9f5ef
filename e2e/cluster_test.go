package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"
	goredis "github.com/redis/go-redis/v9"

	"github.com/fraised/fraised/internal/redistest"
	"github.com/fraised/fraised/internal/tcpproxy"
)

// clusterToken is the HTTP publish token of the cluster tests' nodes.
const clusterToken = "cluster-test-token"

// startNodes starts n fraised binaries in cluster mode on redis.
func startNodes(t *testing.T, redis *redistest.Server, n int, extra ...string) []*proc {
	t.Helper()
	nodes := make([]*proc, n)
	for i := range nodes {
		nodes[i] = startBinary(t, append([]string{"--cluster", redis.URL(), "--publish-token", clusterToken, "--log-level", "info"}, extra...)...)
	}
	for _, p := range nodes {
		waitStatus(t, p, "/readyz", 200, 10*time.Second)
	}
	return nodes
}

// status returns the status code of GET path, or 0 when the request fails.
func status(p *proc, path string) (int, string) {
	c := http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get("http://" + p.listen + path)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, strings.TrimSpace(string(body))
}

// waitStatus waits until GET path answers want.
func waitStatus(t *testing.T, p *proc, path string, want int, limit time.Duration) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for {
		code, body := status(p, path)
		if code == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("GET %s = %d %q, want %d within %s", path, code, body, want, limit)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// httpPublish POSTs one event to a node and returns the status and body.
func httpPublish(p *proc, topic, payload string) (int, string, error) {
	req, _ := http.NewRequest(http.MethodPost, "http://"+p.listen+"/publish/"+topic, strings.NewReader(payload))
	req.Header.Set("Authorization", "Bearer "+clusterToken)
	c := http.Client{Timeout: 10 * time.Second}
	resp, err := c.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, strings.TrimSpace(string(body)), nil
}

// seqSubscriber is a graphql-ws client that records the seq of every
// event on one topic.
type seqSubscriber struct {
	c    *wsClient
	mu   sync.Mutex
	seqs []int
	err  error
}

func subscribeSeq(t *testing.T, p *proc, topic string) *seqSubscriber {
	t.Helper()
	s := &seqSubscriber{c: subscribeWS(t, p.listen, eventsQuery(topic), "")}
	go s.read()
	return s
}

func (s *seqSubscriber) read() {
	for {
		_ = s.c.conn.SetReadDeadline(time.Now().Add(60 * time.Second))
		msgs, err := readServerText(s.c)
		if err != nil {
			s.mu.Lock()
			s.err = err
			s.mu.Unlock()
			return
		}
		for _, m := range msgs {
			var msg struct {
				Type    string
				Payload struct {
					Data struct{ Events struct{ Seq int } }
				}
			}
			if json.Unmarshal(m, &msg) != nil || msg.Type != "next" {
				s.mu.Lock()
				s.err = fmt.Errorf("unexpected message %s", m)
				s.mu.Unlock()
				return
			}
			s.mu.Lock()
			s.seqs = append(s.seqs, msg.Payload.Data.Events.Seq)
			s.mu.Unlock()
		}
	}
}

func (s *seqSubscriber) snapshot() ([]int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]int(nil), s.seqs...), s.err
}

// TestClusterThreeNodesOneOrder: three nodes on one Redis, subscribers on
// each, events published in turn through every path (RESP PUBLISH to each
// node, HTTP POST to each node, and FCALL fraised_publish straight to
// Redis as a non-Go backend would): every subscriber gets every event
// exactly once, in publish order. A node whose clients do not subscribe
// to a topic is not subscribed to it at Redis. (Bounded: 10 subscribers
// per node and 2,000 events; FRAISED_CLUSTER_FULL=1 runs the 50
// per node and 10,000.)
func TestClusterThreeNodesOneOrder(t *testing.T) {
	perNode, events := 10, 2000
	if os.Getenv("FRAISED_CLUSTER_FULL") != "" {
		perNode, events = 50, 10000
	}
	redis := redistest.Start(t)
	nodes := startNodes(t, redis, 3)
	var subs []*seqSubscriber
	for _, p := range nodes {
		for range perNode {
			subs = append(subs, subscribeSeq(t, p, "orders"))
		}
	}
	only := subscribeSeq(t, nodes[0], "only-node-0")
	rdb := goredis.NewClient(&goredis.Options{Addr: redis.Addr, Protocol: 2, DisableIdentity: true})
	defer rdb.Close()
	waitNumSub(t, rdb, "fraised:c:orders", 3)
	waitNumSub(t, rdb, "fraised:c:only-node-0", 1)

	resp := make([]*goredis.Client, len(nodes))
	for i, p := range nodes {
		resp[i] = goredis.NewClient(&goredis.Options{Addr: p.publish, Protocol: 2, DisableIdentity: true})
		defer resp[i].Close()
	}
	ctx := runCtx(t, 60*time.Second)
	waitSubsLive(t, subs, func(seq int) error {
		return resp[0].Publish(ctx, "orders", fmt.Sprintf(`{"seq":%d}`, seq)).Err()
	})
	for seq := 1; seq <= events; seq++ {
		payload := fmt.Sprintf(`{"seq":%d}`, seq)
		switch path := seq % 7; {
		case path < 3:
			n, err := resp[path].Publish(ctx, "orders", payload).Result()
			if err != nil || n != 3 {
				t.Fatalf("RESP publish %d to node %d = %d, %v; want 3 nodes", seq, path, n, err)
			}
		case path < 6:
			code, body, err := httpPublish(nodes[path-3], "orders", payload)
			if err != nil || code != 200 || !strings.HasPrefix(body, `{"nodes":3,"offset":`) {
				t.Fatalf("HTTP publish %d to node %d = %d %q, %v", seq, path-3, code, body, err)
			}
		default:
			err := rdb.FCall(ctx, "fraised_publish", []string{"fraised:m:orders", "fraised:s:orders"},
				"fraised:c:orders", payload, 1000, 60000, 86400000).Err()
			if err != nil {
				t.Fatalf("FCALL publish %d: %v", seq, err)
			}
		}
	}
	if n, err := resp[1].Publish(ctx, "only-node-0", `{"seq":1}`).Result(); err != nil || n != 1 {
		t.Fatalf("publish to a topic one node listens to = %d, %v; want 1", n, err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for i, s := range append(subs, only) {
		want := events
		if s == only {
			want = 1
		}
		for {
			seqs, err := s.snapshot()
			if err != nil {
				t.Fatalf("subscriber %d: %v", i, err)
			}
			if len(seqs) >= want {
				for j, q := range seqs {
					if q != j+1 {
						t.Fatalf("subscriber %d: event %d has seq %d (want every event once, in order)", i, j, q)
					}
				}
				if len(seqs) > want {
					t.Fatalf("subscriber %d got %d events, want %d", i, len(seqs), want)
				}
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("subscriber %d got %d of %d events", i, len(seqs), want)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
}

func waitNumSub(t *testing.T, rdb *goredis.Client, channel string, want int64) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		res, err := rdb.PubSubNumSub(context.Background(), channel).Result()
		if err == nil && res[channel] == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("PUBSUB NUMSUB %s = %v, %v; want %d", channel, res, err, want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestClusterOutageIsTruthful: with Redis down, /readyz answers 503
// within 10 s while /livez stays 200, and publishes are refused at once
// (RESP -ERR, HTTP 503), never accepted and dropped; with Redis back the
// node is ready again and its subscribers get new events.
func TestClusterOutageIsTruthful(t *testing.T) {
	redis := redistest.Start(t)
	nodes := startNodes(t, redis, 1)
	p := nodes[0]
	sub := subscribeSeq(t, p, "t")
	rdb := goredis.NewClient(&goredis.Options{Addr: redis.Addr, Protocol: 2, DisableIdentity: true})
	defer rdb.Close()
	waitNumSub(t, rdb, "fraised:c:t", 1)
	redis.Kill()
	waitStatus(t, p, "/readyz", 503, 10*time.Second)
	if code, body := status(p, "/livez"); code != 200 {
		t.Fatalf("/livez during the outage = %d %q, want 200", code, body)
	}
	pub := goredis.NewClient(&goredis.Options{Addr: p.publish, Protocol: 2, DisableIdentity: true, MaxRetries: -1})
	defer pub.Close()
	start := time.Now()
	err := pub.Publish(context.Background(), "t", `{"seq":99}`).Err()
	if err == nil || !strings.Contains(err.Error(), "cluster unavailable") {
		t.Fatalf("RESP publish during the outage: %v, want -ERR cluster unavailable", err)
	}
	if code, body, err := httpPublish(p, "t", `{"seq":99}`); err != nil || code != 503 {
		t.Fatalf("HTTP publish during the outage = %d %q, %v; want 503", code, body, err)
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Fatalf("refusing two publishes during the outage took %s", took)
	}
	redis.Restart()
	waitStatus(t, p, "/readyz", 200, 15*time.Second)
	waitNumSub(t, rdb, "fraised:c:t", 1)
	if err := pub.Publish(context.Background(), "t", `{"seq":1}`).Err(); err != nil {
		t.Fatalf("publish after the restart: %v", err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		seqs, err := sub.snapshot()
		if err != nil {
			t.Fatal(err)
		}
		if len(seqs) == 1 && seqs[0] == 1 {
			break
		}
		if len(seqs) > 1 || time.Now().After(deadline) {
			t.Fatalf("after the outage the subscriber has %v, want [1] (the refused publishes must not arrive)", seqs)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// readServerText reads the next server frames, answering pings; it
// returns the text messages among them.
func readServerText(c *wsClient) ([][]byte, error) {
	msgs, err := wsutil.ReadServerMessage(c.r, nil)
	if err != nil {
		return nil, err
	}
	var out [][]byte
	for _, m := range msgs {
		switch m.OpCode {
		case ws.OpText:
			out = append(out, m.Payload)
		case ws.OpPing:
			_ = wsutil.WriteClientMessage(c.conn, ws.OpPong, m.Payload)
		case ws.OpClose:
			code, _ := ws.ParseCloseFrameData(m.Payload)
			return out, fmt.Errorf("closed with %d", code)
		}
	}
	return out, nil
}

// TestClusterPipelinedPublishes: a publisher's pipeline (and a MULTI
// transaction) goes to Redis in batches, each command answered in order
// with the number of nodes reached, interleaved replies (PING) in place;
// the subscriber gets every event once, in order.
func TestClusterPipelinedPublishes(t *testing.T) {
	redis := redistest.Start(t)
	p := startNodes(t, redis, 1)[0]
	sub := subscribeSeq(t, p, "pipe")
	rdb := goredis.NewClient(&goredis.Options{Addr: redis.Addr, Protocol: 2, DisableIdentity: true})
	defer rdb.Close()
	waitNumSub(t, rdb, "fraised:c:pipe", 1)
	pub := goredis.NewClient(&goredis.Options{Addr: p.publish, Protocol: 2, DisableIdentity: true, MaxRetries: -1})
	defer pub.Close()
	ctx := runCtx(t, 30*time.Second)
	const n = 1000
	cmds, err := pub.Pipelined(ctx, func(pl goredis.Pipeliner) error {
		for i := 1; i <= n; i++ {
			pl.Publish(ctx, "pipe", fmt.Sprintf(`{"seq":%d}`, i))
			if i%100 == 0 {
				pl.Ping(ctx)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for i, c := range cmds {
		switch c := c.(type) {
		case *goredis.IntCmd:
			if v, err := c.Result(); err != nil || v != 1 {
				t.Fatalf("pipelined reply %d = %d, %v; want 1", i, v, err)
			}
		case *goredis.StatusCmd:
			if v, err := c.Result(); err != nil || v != "PONG" {
				t.Fatalf("pipelined reply %d = %q, %v; want PONG", i, v, err)
			}
		}
	}
	tx, err := pub.TxPipelined(ctx, func(pl goredis.Pipeliner) error {
		pl.Publish(ctx, "pipe", fmt.Sprintf(`{"seq":%d}`, n+1))
		pl.Publish(ctx, "pipe", fmt.Sprintf(`{"seq":%d}`, n+2))
		return nil
	})
	if err != nil || len(tx) != 2 {
		t.Fatalf("MULTI/EXEC = %v, %v", tx, err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		seqs, err := sub.snapshot()
		if err != nil {
			t.Fatal(err)
		}
		if len(seqs) >= n+2 {
			for j, q := range seqs {
				if q != j+1 {
					t.Fatalf("event %d has seq %d", j, q)
				}
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("subscriber got %d of %d", len(seqs), n+2)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestClusterNodeDrains: SIGTERM on a node of a cluster while events flow
// through another: its subscribers get a gap-free, in-order prefix of the
// stream and then close 1001, it exits 0, and the other node keeps
// serving (a client reconnecting there gets the new events).
func TestClusterNodeDrains(t *testing.T) {
	redis := redistest.Start(t)
	nodes := startNodes(t, redis, 2, "--drain-timeout", "5s")
	var subs []*seqSubscriber
	for range 5 {
		subs = append(subs, subscribeSeq(t, nodes[0], "d"))
	}
	rdb := goredis.NewClient(&goredis.Options{Addr: redis.Addr, Protocol: 2, DisableIdentity: true})
	defer rdb.Close()
	waitNumSub(t, rdb, "fraised:c:d", 1)
	pub := goredis.NewClient(&goredis.Options{Addr: nodes[1].publish, Protocol: 2, DisableIdentity: true, MaxRetries: -1})
	defer pub.Close()
	stop := make(chan struct{})
	published := make(chan int, 1)
	go func() {
		seq := 0
		defer func() { published <- seq }()
		for {
			select {
			case <-stop:
				return
			default:
			}
			if err := pub.Publish(context.Background(), "d", fmt.Sprintf(`{"seq":%d}`, seq+1)).Err(); err != nil {
				return
			}
			seq++
			time.Sleep(time.Millisecond)
		}
	}()
	flowing := time.Now().Add(10 * time.Second)
	for { // events flow to every subscriber before the signal
		ready := true
		for _, s := range subs {
			seqs, _ := s.snapshot()
			ready = ready && len(seqs) >= 50
		}
		if ready {
			break
		}
		if time.Now().After(flowing) {
			t.Fatal("events did not reach the subscribers before the drain")
		}
		time.Sleep(5 * time.Millisecond)
	}
	nodes[0].terminate(t, 10*time.Second)
	close(stop)
	last := <-published
	for i, s := range subs {
		seqs, err := s.snapshot()
		if err == nil || !strings.Contains(err.Error(), "closed with 1001") {
			t.Fatalf("subscriber %d ended with %v, want close 1001", i, err)
		}
		if len(seqs) == 0 {
			t.Fatalf("subscriber %d got nothing before the drain", i)
		}
		// A live subscription starts with whatever event follows its
		// registration (nothing waits for all five before publishing):
		// from there, every event in order, no gap.
		for j, q := range seqs {
			if q != seqs[0]+j {
				t.Fatalf("subscriber %d: event %d has seq %d after seq %d (a gap or reorder before the close)", i, j, q, seqs[0])
			}
		}
	}
	again := subscribeSeq(t, nodes[1], "d")
	waitNumSub(t, rdb, "fraised:c:d", 1)
	if err := pub.Publish(context.Background(), "d", fmt.Sprintf(`{"seq":%d}`, last+1)).Err(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		seqs, err := again.snapshot()
		if err != nil {
			t.Fatal(err)
		}
		if len(seqs) == 1 && seqs[0] == last+1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the client that moved to the other node has %v, want [%d]", seqs, last+1)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestClusterPubSubKillIsInvisible: CLIENT KILL TYPE pubsub twice while
// events stream to 10 topics: the node reconnects and repairs from the
// stream, so no subscriber sees a gap, a duplicate or a close, and the
// node logs the repair.
func TestClusterPubSubKillIsInvisible(t *testing.T) {
	redis := redistest.Start(t)
	nodes := startNodes(t, redis, 2)
	const topics, perTopic = 10, 300
	subs := make([]*seqSubscriber, topics)
	rdb := goredis.NewClient(&goredis.Options{Addr: redis.Addr, Protocol: 2, DisableIdentity: true})
	defer rdb.Close()
	for i := range subs {
		subs[i] = subscribeSeq(t, nodes[0], fmt.Sprintf("k%d", i))
		waitNumSub(t, rdb, fmt.Sprintf("fraised:c:k%d", i), 1)
	}
	pub := goredis.NewClient(&goredis.Options{Addr: nodes[1].publish, Protocol: 2, DisableIdentity: true, MaxRetries: -1})
	defer pub.Close()
	errc := make(chan error, 1)
	go func() {
		for seq := 1; seq <= perTopic; seq++ {
			_, err := pub.Pipelined(context.Background(), func(p goredis.Pipeliner) error {
				for k := range topics {
					p.Publish(context.Background(), fmt.Sprintf("k%d", k), fmt.Sprintf(`{"seq":%d}`, seq))
				}
				return nil
			})
			if err != nil {
				errc <- err
				return
			}
			time.Sleep(2 * time.Millisecond)
		}
		errc <- nil
	}()
	for _, at := range []int{perTopic / 3, 2 * perTopic / 3} {
		deadline := time.Now().Add(10 * time.Second)
		for {
			seqs, _ := subs[0].snapshot()
			if len(seqs) >= at {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("stream stalled at %d events", len(seqs))
			}
			time.Sleep(2 * time.Millisecond)
		}
		if got := redis.Do("CLIENT", "KILL", "TYPE", "pubsub"); !strings.HasPrefix(got, ":") {
			t.Fatalf("CLIENT KILL = %q", got)
		}
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for i, s := range subs {
		for {
			seqs, err := s.snapshot()
			if err != nil {
				t.Fatalf("topic %d: %v (a client must not see the reconnect)", i, err)
			}
			if len(seqs) >= perTopic {
				for j, q := range seqs {
					if q != j+1 {
						t.Fatalf("topic %d: event %d has seq %d", i, j, q)
					}
				}
				if len(seqs) != perTopic {
					t.Fatalf("topic %d: %d events, want %d", i, len(seqs), perTopic)
				}
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("topic %d: %d of %d events", i, len(seqs), perTopic)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	nodes[0].waitLog(t, "reconnects=2")
	repaired := 0
	for _, line := range strings.Split(nodes[0].log(), "\n") {
		if _, rest, ok := strings.Cut(line, "resubscribed after a reconnect"); ok {
			var n int
			if _, after, ok := strings.Cut(rest, "repaired="); ok {
				fmt.Sscanf(after, "%d", &n)
			}
			repaired += n
		}
	}
	if repaired == 0 {
		t.Fatalf("two kills mid-stream and nothing repaired (the events in flight during the reconnects):\n%s", nodes[0].log())
	}
}

// TestClusterSilentLinkIsNoticed: a proxy between one node and Redis stops
// forwarding bytes but keeps TCP open. That node's /readyz goes 503
// within 10 s (its pub/sub probe), it reconnects, and its subscriber gets
// the events it missed, in order, once, without a close.
func TestClusterSilentLinkIsNoticed(t *testing.T) {
	redis := redistest.Start(t)
	link, err := tcpproxy.Listen("127.0.0.1:0", redis.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer link.Close()
	behind := startBinary(t, "--cluster", "redis://"+link.Addr(), "--log-level", "info")
	waitStatus(t, behind, "/readyz", 200, 10*time.Second)
	other := startNodes(t, redis, 1)[0]
	sub := subscribeSeq(t, behind, "s")
	rdb := goredis.NewClient(&goredis.Options{Addr: redis.Addr, Protocol: 2, DisableIdentity: true})
	defer rdb.Close()
	waitNumSub(t, rdb, "fraised:c:s", 1)
	pub := goredis.NewClient(&goredis.Options{Addr: other.publish, Protocol: 2, DisableIdentity: true, MaxRetries: -1})
	defer pub.Close()
	publish := func(from, to int) {
		for seq := from; seq <= to; seq++ {
			if err := pub.Publish(context.Background(), "s", fmt.Sprintf(`{"seq":%d}`, seq)).Err(); err != nil {
				t.Fatal(err)
			}
		}
	}
	publish(1, 10)
	link.Freeze()
	link.FreezeNew(true) // reconnects hang too, until Thaw: the 503 lasts
	frozen := time.Now()
	publish(11, 20)
	waitStatus(t, behind, "/readyz", 503, 10*time.Second)
	if took := time.Since(frozen); took > 10*time.Second {
		t.Fatalf("/readyz went 503 only after %s", took)
	}
	link.Thaw()
	waitStatus(t, behind, "/readyz", 200, 15*time.Second)
	publish(21, 30)
	deadline := time.Now().Add(10 * time.Second)
	for {
		seqs, err := sub.snapshot()
		if err != nil {
			t.Fatalf("subscriber: %v", err)
		}
		if len(seqs) >= 30 {
			for j, q := range seqs {
				if q != j+1 {
					t.Fatalf("event %d has seq %d", j, q)
				}
			}
			if len(seqs) != 30 {
				t.Fatalf("%d events, want 30", len(seqs))
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of 30 events after the reconnect", len(seqs))
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// posSubscriber records the seq and position of every event of one
// history subscription.
type posSubscriber struct {
	c    *wsClient
	mu   sync.Mutex
	got  []posEvent
	err  error
	done chan struct{}
}

type posEvent struct {
	Seq    int
	Offset uint64
	Epoch  string
}

// subscribeFeed subscribes to feed(room) on p, resuming after resume
// (nil: no resume).
func subscribeFeed(t *testing.T, p *proc, room string, resume *posEvent) *posSubscriber {
	t.Helper()
	ext := ""
	if resume != nil {
		ext = fmt.Sprintf(`{"fraised":{"resume":{"epoch":%q,"offset":%d}}}`, resume.Epoch, resume.Offset)
	}
	c := subscribeWS(t, p.listen, fmt.Sprintf("subscription { feed(room: %q) { seq } }", room), ext)
	s := &posSubscriber{c: c, done: make(chan struct{})}
	go s.read()
	return s
}

func (s *posSubscriber) read() {
	defer close(s.done)
	for {
		_ = s.c.conn.SetReadDeadline(time.Now().Add(60 * time.Second))
		msgs, err := readServerText(s.c)
		if err != nil {
			s.mu.Lock()
			s.err = err
			s.mu.Unlock()
			return
		}
		for _, m := range msgs {
			var msg struct {
				Type    string
				Payload struct {
					Data       struct{ Feed struct{ Seq int } }
					Extensions struct {
						Fraised struct {
							Offset uint64
							Epoch  string
						}
					}
				}
			}
			if json.Unmarshal(m, &msg) != nil || msg.Type != "next" {
				s.mu.Lock()
				s.err = fmt.Errorf("unexpected message %s", m)
				s.mu.Unlock()
				return
			}
			s.mu.Lock()
			s.got = append(s.got, posEvent{msg.Payload.Data.Feed.Seq, msg.Payload.Extensions.Fraised.Offset, msg.Payload.Extensions.Fraised.Epoch})
			s.mu.Unlock()
		}
	}
}

// probed is a subscriber waitSubsLive can probe: it reports whether it got an
// event whose seq want accepts, and drops those with a negative seq.
type probed interface {
	has(want func(seq int) bool) bool
	dropProbes()
}

func (s *posSubscriber) has(want func(seq int) bool) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.ContainsFunc(s.got, func(e posEvent) bool { return want(e.Seq) })
}

func (s *posSubscriber) dropProbes() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.got = slices.DeleteFunc(s.got, func(e posEvent) bool { return e.Seq < 0 })
}

func (s *seqSubscriber) has(want func(seq int) bool) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.ContainsFunc(s.seqs, want)
}

func (s *seqSubscriber) dropProbes() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.seqs = slices.DeleteFunc(s.seqs, func(seq int) bool { return seq < 0 })
}

// waitSubsLive publishes probes (seq -1, -2, ...) through probe until every
// subscriber has one, then a last probe every subscriber must get, and
// drops the probes from what they got: a subscription is registered some
// time after its subscribe message (which has no answer), and events
// published before that are not its to get. (PUBSUB NUMSUB counts nodes,
// not the subscriptions on each.)
func waitSubsLive[S probed](t *testing.T, subs []S, probe func(seq int) error) {
	t.Helper()
	seq := 0
	send := func() {
		seq--
		if err := probe(seq); err != nil {
			t.Fatalf("probe %d: %v", seq, err)
		}
	}
	all := func(want func(seq int) bool) bool {
		for _, s := range subs {
			if !s.has(want) {
				return false
			}
		}
		return true
	}
	deadline := time.Now().Add(15 * time.Second)
	wait := func(want func(seq int) bool, resend bool) {
		for !all(want) {
			if time.Now().After(deadline) {
				t.Fatalf("probes did not reach all %d subscribers in 15 s", len(subs))
			}
			time.Sleep(20 * time.Millisecond)
			if resend {
				send()
			}
		}
	}
	send()
	wait(func(seq int) bool { return seq < 0 }, true)
	send()
	last := seq
	wait(func(seq int) bool { return seq == last }, false)
	for _, s := range subs {
		s.dropProbes()
	}
}

func (s *posSubscriber) wait(t *testing.T, n int) []posEvent {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		s.mu.Lock()
		got, err := append([]posEvent(nil), s.got...), s.err
		s.mu.Unlock()
		if err != nil {
			t.Fatalf("subscriber: %v (after %d events)", err, len(got))
		}
		if len(got) >= n {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d events", len(got), n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestClusterHistoryPositionsAndResumeAcrossNodes: on a history topic
// every node shows Redis' positions (one epoch, offsets 1..n, the ones
// FPUBLISH answers) in every next; a client that drops off one node and
// resumes on another gets exactly the events it missed, then live ones,
// from that node's history when it listened to the topic all along, from
// the Redis stream when it did not; what Redis no longer holds is refused.
func TestClusterHistoryPositionsAndResumeAcrossNodes(t *testing.T) {
	redis := redistest.Start(t)
	nodes := startNodes(t, redis, 2, "--schema", "../examples/resume/schema.graphql")
	a := subscribeFeed(t, nodes[0], "r", nil)
	keeper := subscribeFeed(t, nodes[1], "r", nil)
	rdb := goredis.NewClient(&goredis.Options{Addr: redis.Addr, Protocol: 2, DisableIdentity: true})
	defer rdb.Close()
	waitNumSub(t, rdb, "fraised:c:feed.r", 2)
	pub := goredis.NewClient(&goredis.Options{Addr: nodes[0].publish, Protocol: 2, DisableIdentity: true, MaxRetries: -1})
	defer pub.Close()
	ctx := runCtx(t, 30*time.Second)
	var epoch string
	publish := func(from, to int, nodes int64) {
		for seq := from; seq <= to; seq++ {
			res, err := pub.Do(ctx, "FPUBLISH", "feed.r", fmt.Sprintf(`{"seq":%d}`, seq)).Slice()
			if err != nil || len(res) != 3 || nodes > 0 && res[0] != nodes || res[1] != int64(seq) {
				t.Fatalf("FPUBLISH %d = %v, %v; want [%d, %d, epoch]", seq, res, err, nodes, seq)
			}
			if epoch == "" {
				epoch, _ = res[2].(string)
			} else if res[2] != epoch {
				t.Fatalf("FPUBLISH %d epoch %v, want %q", seq, res[2], epoch)
			}
		}
	}
	publish(1, 20, 2)
	for who, s := range map[string]*posSubscriber{"node 0": a, "node 1": keeper} {
		for i, e := range s.wait(t, 20)[:20] {
			if e.Seq != i+1 || e.Offset != uint64(i+1) || e.Epoch != epoch {
				t.Fatalf("%s event %d = %+v, want seq and offset %d in epoch %q", who, i, e, i+1, epoch)
			}
		}
	}
	a.c.conn.Close() // the client drops off node 0
	<-a.done
	publish(21, 30, 0) // 1 or 2 nodes: node 0 unsubscribes once its client is gone
	b := subscribeFeed(t, nodes[1], "r", &posEvent{Offset: 20, Epoch: epoch})
	got := b.wait(t, 10)
	publish(31, 35, 1)
	got = b.wait(t, 15)
	for i, e := range got {
		if e.Seq != 21+i || e.Offset != uint64(21+i) || e.Epoch != epoch {
			t.Fatalf("resumed on node 1: event %d = %+v, want seq and offset %d", i, e, 21+i)
		}
	}
	if len(got) != 15 {
		t.Fatalf("resumed on node 1: %d events, want 15", len(got))
	}
	// Node 0 lost its last subscriber to the topic, unsubscribed and
	// dropped its history of it. A resume there is filled from the Redis
	// stream first (register, record the live events, read the range,
	// merge by offset): 21-35 from Redis, then 36 live, each once.
	waitNumSub(t, rdb, "fraised:c:feed.r", 1)
	filled := subscribeFeed(t, nodes[0], "r", &posEvent{Offset: 20, Epoch: epoch})
	filled.wait(t, 15)
	waitNumSub(t, rdb, "fraised:c:feed.r", 2) // node 0 listens again
	publish(36, 36, 2)
	got = filled.wait(t, 16)
	for i, e := range got {
		if e.Seq != 21+i || e.Offset != uint64(21+i) || e.Epoch != epoch {
			t.Fatalf("resumed on the node without the topic: event %d = %+v, want seq and offset %d", i, e, 21+i)
		}
	}
	if len(got) != 16 {
		t.Fatalf("resumed on the node without the topic: %d events, want 16", len(got))
	}
	// What Redis no longer holds is refused (here trimmed by hand before
	// offset 30), with no event before the error.
	filled.c.conn.Close()
	<-filled.done
	waitNumSub(t, rdb, "fraised:c:feed.r", 1)
	if err := rdb.XTrimMinID(ctx, "fraised:s:feed.r", "30").Err(); err != nil {
		t.Fatal(err)
	}
	gone := subscribeFeed(t, nodes[0], "r", &posEvent{Offset: 20, Epoch: epoch})
	select {
	case <-gone.done:
	case <-time.After(15 * time.Second):
		t.Fatalf("resume past Redis' stream: no error after 15 s, %d events", len(gone.got))
	}
	if gone.err == nil || !strings.Contains(gone.err.Error(), "FRAISED_RESUME_UNAVAILABLE") ||
		!strings.Contains(gone.err.Error(), `"reason":"trimmed"`) || len(gone.got) != 0 {
		t.Fatalf("resume past Redis' stream: %d events, %v; want only FRAISED_RESUME_UNAVAILABLE trimmed", len(gone.got), gone.err)
	}
}
