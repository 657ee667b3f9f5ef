package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"path/filepath"
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

// These tests take nodes of a cluster away while events flow: each
// client follows the resume recipe of examples/resume/resume.mjs (record
// the last position of every operation from the next extensions; at every
// reconnect send them in connection_init's fraised.resume and subscribe
// again with the same id), reconnecting through a round-robin proxy in
// front of the nodes, as clients do behind a load balancer.

// resumeSchema is the recipe's schema: feed(room) on feed.{room}, 10,000
// events of history for 5 minutes.
const resumeSchema = "../examples/resume/schema.graphql"

// resumer is one recipe client of feed(room).
type resumer struct {
	addr, room string
	mu         sync.Mutex
	got        []posEvent
	closes     []string // why each connection ended
	failure    string   // an error message: the resume was refused
	conns      int
	stop       chan struct{}
	done       chan struct{}
}

func startResumer(addr, room string, from *posEvent) *resumer {
	r := &resumer{addr: addr, room: room, stop: make(chan struct{}), done: make(chan struct{})}
	if from != nil {
		r.got = append(r.got, *from)
	}
	go r.run()
	return r
}

func (r *resumer) run() {
	defer close(r.done)
	for {
		select {
		case <-r.stop:
			return
		default:
		}
		why := r.session()
		r.mu.Lock()
		r.closes = append(r.closes, why)
		failed := r.failure != ""
		r.mu.Unlock()
		if failed {
			return
		}
		select { // the recipe's reconnect backoff, short
		case <-r.stop:
			return
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// session runs one connection; it returns why it ended.
func (r *resumer) session() string {
	d := ws.Dialer{Protocols: []string{"graphql-transport-ws"}, Timeout: 2 * time.Second}
	conn, br, _, err := d.Dial(context.Background(), "ws://"+r.addr+"/graphql")
	if err != nil {
		return "dial: " + err.Error()
	}
	defer conn.Close()
	go func() {
		select {
		case <-r.stop:
		case <-r.done:
		}
		conn.Close()
	}()
	if br == nil {
		br = bufio.NewReader(conn)
	}
	r.mu.Lock()
	r.conns++
	init := `{"type":"connection_init"}`
	if n := len(r.got); n > 0 {
		last := r.got[n-1]
		init = fmt.Sprintf(`{"type":"connection_init","payload":{"fraised":{"resume":{"1":{"epoch":%q,"offset":%d}}}}}`, last.Epoch, last.Offset)
	}
	r.mu.Unlock()
	sub := fmt.Sprintf(`{"id":"1","type":"subscribe","payload":{"query":"subscription { feed(room: \"%s\") { seq } }"}}`, r.room)
	for _, m := range []string{init, sub} {
		if err := wsutil.WriteClientText(conn, []byte(m)); err != nil {
			return "write: " + err.Error()
		}
	}
	c := &wsClient{conn: conn, r: br}
	for {
		_ = conn.SetReadDeadline(time.Now().Add(30 * time.Second))
		msgs, err := readServerText(c)
		for _, m := range msgs {
			if why := r.message(m); why != "" {
				return why
			}
		}
		if err != nil {
			return err.Error()
		}
	}
}

// message records one server message; it returns why the connection must
// end ("" to go on).
func (r *resumer) message(m []byte) string {
	var msg struct {
		Type    string
		Payload json.RawMessage
	}
	if json.Unmarshal(m, &msg) != nil {
		return "bad message " + string(m)
	}
	switch msg.Type {
	case "connection_ack", "pong", "ping":
		return ""
	case "next":
		var p struct {
			Data       struct{ Feed struct{ Seq int } }
			Extensions struct {
				Fraised struct {
					Offset uint64
					Epoch  string
				}
			}
		}
		_ = json.Unmarshal(msg.Payload, &p)
		r.mu.Lock()
		r.got = append(r.got, posEvent{p.Data.Feed.Seq, p.Extensions.Fraised.Offset, p.Extensions.Fraised.Epoch})
		r.mu.Unlock()
		return ""
	}
	r.mu.Lock()
	r.failure = string(m)
	r.mu.Unlock()
	return "failed: " + string(m)
}

func (r *resumer) close() {
	close(r.stop)
	<-r.done
}

// snapshot returns the events received (without the starting position)
// and the refusal, if any.
func (r *resumer) snapshot(skip int) ([]posEvent, string, int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]posEvent(nil), r.got[skip:]...), r.failure, r.conns
}

// waitAll waits until r has events from..to (offsets and seqs) exactly
// once and in order, in epoch; skip is the starting position's entry.
func (r *resumer) waitAll(t *testing.T, who string, skip, from, to int, epoch string, limit time.Duration) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for {
		got, failure, _ := r.snapshot(skip)
		if failure != "" {
			t.Fatalf("%s: the resume was refused: %s (after %d events)", who, failure, len(got))
		}
		for i, e := range got {
			if e.Offset != uint64(from+i) || e.Seq != from+i || e.Epoch != epoch {
				t.Fatalf("%s: event %d = %+v, want seq and offset %d in %q (a gap, a duplicate or a reorder)", who, i, e, from+i, epoch)
			}
		}
		if len(got) == to-from+1 {
			return
		}
		if len(got) > to-from+1 || time.Now().After(deadline) {
			r.mu.Lock()
			closes := append([]string(nil), r.closes...)
			r.mu.Unlock()
			t.Fatalf("%s: %d of %d events (connections ended: %q)", who, len(got), to-from+1, closes)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// clusterBehindProxy starts n nodes on redis with the recipe's schema and
// a round-robin proxy in front of their WebSocket listeners.
func clusterBehindProxy(t *testing.T, redis *redistest.Server, n int, extra ...string) ([]*proc, *tcpproxy.Proxy) {
	t.Helper()
	nodes := startNodes(t, redis, n, append([]string{"--schema", resumeSchema}, extra...)...)
	addrs := make([]string, n)
	for i, p := range nodes {
		addrs[i] = p.listen
	}
	px, err := tcpproxy.Listen("127.0.0.1:0", addrs...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { px.Close() })
	return nodes, px
}

// feedPublisher publishes seq k to rooms r0..r(rooms-1) straight through
// the Redis function (as a non-Go backend would), one pipeline of one
// event per room at a time.
type feedPublisher struct {
	rdb   *goredis.Client
	rooms int
}

func (p *feedPublisher) publish(ctx context.Context, seq int) error {
	_, err := p.rdb.Pipelined(ctx, func(pl goredis.Pipeliner) error {
		for k := range p.rooms {
			t := fmt.Sprintf("feed.r%d", k)
			// The history's size and ttl (10000, 5m), the meta TTL a node passes.
			pl.FCall(ctx, "fraised_publish", []string{"fraised:m:" + t, "fraised:s:" + t}, "fraised:c:"+t,
				fmt.Sprintf(`{"seq":%d}`, seq), 10000, 300000, 86400000)
		}
		return nil
	})
	return err
}

// epochs returns each room's epoch in Redis.
func (p *feedPublisher) epochs(t *testing.T) []string {
	t.Helper()
	out := make([]string, p.rooms)
	for k := range out {
		e, err := p.rdb.HGet(context.Background(), fmt.Sprintf("fraised:m:feed.r%d", k), "e").Result()
		if err != nil {
			t.Fatal(err)
		}
		out[k] = e
	}
	return out
}

// restartNode starts a node again on the ports of p (after it died).
func restartNode(t *testing.T, redis *redistest.Server, p *proc, extra ...string) *proc {
	t.Helper()
	q := &proc{listen: p.listen, publish: p.publish, unix: filepath.Join(t.TempDir(), "pub.sock"), exited: make(chan error, 1)}
	args := append([]string{"--schema", resumeSchema, "--listen", q.listen, "--publish-listen", q.publish,
		"--publish-unix", q.unix, "--cluster", redis.URL(), "--publish-token", clusterToken, "--log-level", "info"}, extra...)
	q.run(t, exec.Command(bin, args...))
	q.waitServed(t)
	waitStatus(t, q, "/readyz", 200, 10*time.Second)
	return q
}

// streamCluster is the shared body of the node-failure tests: clients
// resumers per room behind the proxy, from offset 1 (a first event is
// published before they connect, and they start from offset 0: "the
// oldest retained", so none depends on when its node went live), events
// 2..events published at about rate per second per room; fault runs once
// a third are out.
func streamCluster(t *testing.T, px *tcpproxy.Proxy, pub *feedPublisher, perRoom, events int, every time.Duration, fault func()) ([]*resumer, []string) {
	t.Helper()
	ctx := runCtx(t, 120*time.Second)
	if err := pub.publish(ctx, 1); err != nil {
		t.Fatal(err)
	}
	epochs := pub.epochs(t)
	var clients []*resumer
	for k := range pub.rooms {
		for range perRoom {
			clients = append(clients, startResumer(px.Addr(), fmt.Sprintf("r%d", k), &posEvent{Offset: 0, Epoch: epochs[k]}))
		}
	}
	t.Cleanup(func() {
		for _, c := range clients {
			c.close()
		}
	})
	for i, c := range clients { // every client has its first event
		c.waitAll(t, fmt.Sprintf("client %d", i), 1, 1, 1, epochs[i/perRoom], 20*time.Second)
	}
	tick := time.NewTicker(every)
	defer tick.Stop()
	for seq := 2; seq <= events; seq++ {
		if seq == events/3 {
			fault()
		}
		if err := pub.publish(ctx, seq); err != nil {
			t.Fatalf("publish %d: %v", seq, err)
		}
		<-tick.C
	}
	for i, c := range clients {
		c.waitAll(t, fmt.Sprintf("client %d (room r%d)", i, i/perRoom), 1, 1, events, epochs[i/perRoom], 30*time.Second)
	}
	return clients, epochs
}

// TestClusterKillNodeClientsResume: kill -9 one of three nodes while
// events stream to 10 rooms (2,000 events/s in all); its clients
// reconnect through the proxy to the other nodes and resume there: every
// client gets every event of its room exactly once, in order. The node
// is started again; clients resuming there from an old position are
// filled from Redis (it has no history at all), the same way.
// (Bounded; the soak's cluster-kill scenario runs the 10,000
// events/s across 100 topics.)
func TestClusterKillNodeClientsResume(t *testing.T) {
	redis := redistest.Start(t)
	nodes, px := clusterBehindProxy(t, redis, 3)
	rdb := goredis.NewClient(&goredis.Options{Addr: redis.Addr, Protocol: 2, DisableIdentity: true})
	defer rdb.Close()
	pub := &feedPublisher{rdb: rdb, rooms: 10}
	const events = 600
	clients, epochs := streamCluster(t, px, pub, 3, events, 5*time.Millisecond, func() {
		if err := nodes[0].cmd.Process.Kill(); err != nil { // SIGKILL
			t.Fatal(err)
		}
	})
	moved := 0
	for _, c := range clients {
		if _, _, conns := c.snapshot(0); conns > 1 {
			moved++
		}
	}
	if moved == 0 {
		t.Fatal("no client was on the killed node (the proxy spreads them round robin)")
	}
	t.Logf("%d of %d clients reconnected and resumed after the kill", moved, len(clients))
	<-nodes[0].exited
	restarted := restartNode(t, redis, nodes[0])
	for k := range pub.rooms {
		late := startResumer(restarted.listen, fmt.Sprintf("r%d", k), &posEvent{Offset: 100, Epoch: epochs[k]})
		late.waitAll(t, fmt.Sprintf("room r%d on the restarted node", k), 1, 101, events, epochs[k], 20*time.Second)
		late.close()
	}
}

// TestClusterDrainClientsResumeElsewhere: SIGTERM on one of three nodes
// with about 100 clients in all: each of its clients gets its queued
// frames and then close 1001, reconnects through the proxy to another
// node and resumes there; every client gets every event exactly once, in
// order.
func TestClusterDrainClientsResumeElsewhere(t *testing.T) {
	redis := redistest.Start(t)
	nodes, px := clusterBehindProxy(t, redis, 3, "--drain-timeout", "5s")
	rdb := goredis.NewClient(&goredis.Options{Addr: redis.Addr, Protocol: 2, DisableIdentity: true})
	defer rdb.Close()
	pub := &feedPublisher{rdb: rdb, rooms: 10}
	drained := make(chan struct{})
	clients, _ := streamCluster(t, px, pub, 10, 600, 5*time.Millisecond, func() {
		go func() {
			defer close(drained)
			nodes[0].terminate(t, 15*time.Second)
		}()
	})
	<-drained
	goingAway := 0
	for _, c := range clients {
		c.mu.Lock()
		for _, why := range c.closes {
			if strings.Contains(why, "closed with 1001") {
				goingAway++
			}
		}
		c.mu.Unlock()
	}
	if goingAway == 0 {
		t.Fatal("no client saw the drained node's 1001")
	}
	t.Logf("%d of %d clients got 1001 and resumed elsewhere", goingAway, len(clients))
}

// TestClusterRedisRestartEndsHistorySubscriptions: Redis restarted without
// persistence mid-stream loses every epoch: the subscribers of a history
// topic on every node get FRAISED_RESUME_UNAVAILABLE with epoch_changed
// after the last event of the old epoch (never an event of the new one
// before it: no silent loss); subscribed again, they get the events that
// follow, in the new epoch from offset 1.
func TestClusterRedisRestartEndsHistorySubscriptions(t *testing.T) {
	redis := redistest.Start(t)
	nodes := startNodes(t, redis, 2, "--schema", resumeSchema)
	var subs []*posSubscriber
	for _, p := range nodes {
		for range 3 {
			subs = append(subs, subscribeFeed(t, p, "x", nil))
		}
	}
	rdb := goredis.NewClient(&goredis.Options{Addr: redis.Addr, Protocol: 2, DisableIdentity: true})
	defer rdb.Close()
	waitNumSub(t, rdb, "fraised:c:feed.x", 2)
	pub := &feedPublisher{rdb: rdb, rooms: 0}
	publishX := func(seq int) error {
		return pub.rdb.FCall(context.Background(), "fraised_publish", []string{"fraised:m:feed.x", "fraised:s:feed.x"}, "fraised:c:feed.x",
			fmt.Sprintf(`{"seq":%d}`, seq), 10000, 300000, 86400000).Err()
	}
	waitSubsLive(t, subs, publishX)
	for seq := 1; seq <= 20; seq++ {
		if err := publishX(seq); err != nil {
			t.Fatal(err)
		}
	}
	var epoch string
	for _, s := range subs {
		got := s.wait(t, 20)
		epoch = got[0].Epoch
	}
	redis.Kill()
	redis.Restart()
	for _, p := range nodes {
		waitStatus(t, p, "/readyz", 200, 15*time.Second)
	}
	// The function is gone with the data: a node reloads it; publish
	// through a node, which does.
	pubNode := goredis.NewClient(&goredis.Options{Addr: nodes[1].publish, Protocol: 2, DisableIdentity: true, MaxRetries: -1})
	defer pubNode.Close()
	deadline := time.Now().Add(10 * time.Second)
	for pubNode.Do(context.Background(), "FPUBLISH", "feed.x", `{"seq":1001}`).Err() != nil {
		if time.Now().After(deadline) {
			t.Fatal("no publish accepted after the restart")
		}
		time.Sleep(50 * time.Millisecond)
	}
	for i, s := range subs {
		select {
		case <-s.done:
		case <-time.After(15 * time.Second):
			t.Fatalf("subscriber %d: no error 15 s after Redis lost its data (silent loss), %d events", i, len(s.got))
		}
		s.mu.Lock()
		got, err := append([]posEvent(nil), s.got...), s.err
		s.mu.Unlock()
		if err == nil || !strings.Contains(err.Error(), "FRAISED_RESUME_UNAVAILABLE") || !strings.Contains(err.Error(), `"reason":"epoch_changed"`) {
			t.Fatalf("subscriber %d ended with %v, want FRAISED_RESUME_UNAVAILABLE epoch_changed", i, err)
		}
		if len(got) != 20 || got[19].Epoch != epoch {
			t.Fatalf("subscriber %d got %d events before the error (last %+v), want the 20 of the old epoch", i, len(got), got[len(got)-1])
		}
	}
	again := subscribeFeed(t, nodes[0], "x", nil)
	waitNumSub(t, rdb, "fraised:c:feed.x", 1)
	res, err := pubNode.Do(context.Background(), "FPUBLISH", "feed.x", `{"seq":1002}`).Slice()
	if err != nil {
		t.Fatal(err)
	}
	e := again.wait(t, 1)[0]
	if e.Seq != 1002 || e.Epoch == epoch || e.Epoch != res[2] || e.Offset != 2 {
		t.Fatalf("after the restart the new subscriber got %+v, want seq 1002 at offset 2 of the new epoch %v", e, res[2])
	}
}
