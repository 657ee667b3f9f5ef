package soak

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"github.com/tidwall/gjson"

	"github.com/fraised/fraised/internal/tcpproxy"
	"github.com/fraised/fraised/perf/internal/wsframe"
)

// The cluster scenarios (issue 10): three nodes on one redis-server
// behind a round-robin TCP proxy, events published straight through the
// Redis function to many history topics, clients that follow the resume
// recipe (examples/resume: record the last position, send it in
// connection_init's fraised.resume at every reconnect, subscribe again
// with the same id) reconnecting through the proxy. One node is killed
// (-9, then restarted) or drained (SIGTERM) mid-stream: every client must
// end with every event of its topic exactly once, in order.

// Bounds of the cluster scenarios.
const (
	// clusterNodes is the cluster's size: the three.
	clusterNodes = 3
	// clusterReady bounds how long a node may take to report ready.
	clusterReady = 15 * time.Second
	// clusterCatchUp bounds the wait, after publishing stops, for every
	// client to have every event.
	clusterCatchUp = 60 * time.Second
	// clusterBackoff is a client's wait before it reconnects.
	clusterBackoff = 20 * time.Millisecond
	// clusterTick is the publisher's period: one event per topic.
	clusterTick = 10 * time.Millisecond
)

// soakRedis is the redis-server of a cluster scenario, without
// persistence.
type soakRedis struct {
	cmd  *exec.Cmd
	Addr string
}

// startRedis runs redis-server on a free loopback port and waits until it
// answers.
func startRedis(ctx context.Context, logDir, name string) (*soakRedis, error) {
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	_, port, _ := net.SplitHostPort(addr)
	cmd := exec.Command("redis-server", "--port", port, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no")
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if logDir != "" {
		f, err := os.Create(filepath.Join(logDir, name+"-redis.log"))
		if err == nil {
			cmd.Stdout, cmd.Stderr = f, f
			defer f.Close()
		}
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("cannot start redis-server (apt-get install redis-server): %w", err)
	}
	r := &soakRedis{cmd: cmd, Addr: addr}
	exited := make(chan struct{}) // never closed: redis-server's exit shows as a timeout
	if err := waitListening(ctx, addr, exited); err != nil {
		r.stop()
		return nil, fmt.Errorf("redis-server on %s: %w", addr, err)
	}
	c := goredis.NewClient(&goredis.Options{Addr: addr, Protocol: 2, DisableIdentity: true})
	defer c.Close()
	for end := time.Now().Add(listenWait); ; {
		if c.Ping(ctx).Err() == nil {
			return r, nil
		}
		if time.Now().After(end) {
			r.stop()
			return nil, fmt.Errorf("redis-server on %s did not answer within %v", addr, listenWait)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (r *soakRedis) stop() {
	_ = r.cmd.Process.Kill()
	_ = r.cmd.Wait()
}

// clusterRun is one cluster scenario's shape.
type clusterRun struct {
	topics, clients, rate int
	dur                   time.Duration
	// fault runs once a third of the events are out; heal (if set) once
	// two thirds are.
	fault, heal func(e *Env)
}

// clusterStream runs the body of a cluster scenario.
func clusterStream(e *Env, run clusterRun) {
	nodes := []*Child{e.Child}
	for i := 1; i < clusterNodes; i++ {
		c, err := StartChild(e.Ctx, e.Child.cfg, fmt.Sprintf("%s-node%d", e.Child.name, i))
		if err != nil {
			e.Fail("node %d: %v", i, err)
			return
		}
		defer c.Stop()
		nodes = append(nodes, c)
	}
	addrs := make([]string, len(nodes))
	for i, n := range nodes {
		addrs[i] = n.WS
		if err := waitReadyz(e.Ctx, n.WS); err != nil {
			e.Fail("node %d: %v", i, err)
			return
		}
	}
	px, err := tcpproxy.Listen("127.0.0.1:0", addrs...)
	if err != nil {
		e.Fail("proxy: %v", err)
		return
	}
	defer px.Close()
	rdb := goredis.NewClient(&goredis.Options{Addr: e.Redis.Addr, Protocol: 2, DisableIdentity: true, PoolSize: 4})
	defer rdb.Close()
	pub := &clusterPub{rdb: rdb, topics: run.topics}
	epochs, err := pub.publish(e.Ctx, 1)
	if err != nil {
		e.Fail("first publish: %v", err)
		return
	}
	perTick := max(1, run.rate*int(clusterTick/time.Millisecond)/1000/run.topics)
	total := int64(1 + perTick*int(run.dur/clusterTick))
	var final atomic.Int64 // set once publishing stopped
	final.Store(-1)
	clients := make([]*clusterClient, run.clients)
	var wg sync.WaitGroup
	for i := range clients {
		k := i % run.topics
		clients[i] = &clusterClient{e: e, addr: px.Addr(), topic: pub.topic(k), epoch: epochs[k]}
		wg.Add(1)
		go func(c *clusterClient) {
			defer wg.Done()
			c.run(&final)
		}(clients[i])
	}
	seq := int64(2)
	start := time.Now()
	faulted, healed := false, run.heal == nil
	for tick := 0; seq <= total && e.Ctx.Err() == nil; tick++ { // node 0 may be down: not e.done()
		for j := 0; j < perTick && seq <= total; j++ {
			if _, err := pub.publish(e.Ctx, seq); err != nil {
				e.Fail("publish %d: %v", seq, err)
				seq = total + 1
				break
			}
			seq++
		}
		if !faulted && seq > total/3 {
			faulted = true
			run.fault(e)
		}
		if !healed && seq > 2*total/3 {
			healed = true
			run.heal(e)
		}
		if sleep := time.Until(start.Add(time.Duration(tick+1) * clusterTick)); sleep > 0 {
			time.Sleep(sleep)
		}
	}
	published := seq - 1
	final.Store(published)
	wg.Wait()
	var delivered, reconnects int64
	refused := 0
	for i, c := range clients {
		delivered += c.last
		reconnects += int64(c.conns - 1)
		if c.err == nil && c.last != published {
			c.err = fmt.Errorf("ended with %d of %d events", c.last, published)
		}
		if c.err != nil {
			refused++
			if refused <= 3 {
				e.Fail("client %d (%s): %v", i, c.topic, c.err)
			}
		}
	}
	if refused > 3 {
		e.Fail("%d clients in all missed events or were refused", refused)
	}
	e.Deliveries(published*int64(run.clients), delivered)
	e.Fig("nodes", "%d", clusterNodes)
	e.Fig("topics", "%d", run.topics)
	e.Fig("clients", "%d", run.clients)
	e.Fig("events", "%d", published*int64(run.topics))
	e.Fig("rate", "%d/s", perTick*run.topics*int(time.Second/clusterTick))
	e.Fig("reconnects", "%d", reconnects)
}

// waitReadyz waits for GET /readyz to answer 200.
func waitReadyz(ctx context.Context, addr string) error {
	c := http.Client{Timeout: 2 * time.Second}
	for end := time.Now().Add(clusterReady); ; {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if resp, err := c.Get("http://" + addr + "/readyz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		if time.Now().After(end) {
			return fmt.Errorf("/readyz on %s not 200 within %v", addr, clusterReady)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// clusterPub publishes one event to each topic per call, in one pipeline,
// through the Redis function as any backend may.
type clusterPub struct {
	rdb    *goredis.Client
	topics int
}

func (p *clusterPub) topic(k int) string { return fmt.Sprintf("soak.c%d", k) }

// publish publishes seq to every topic and returns their epochs.
func (p *clusterPub) publish(ctx context.Context, seq int64) ([]string, error) {
	cmds := make([]*goredis.Cmd, p.topics)
	_, err := p.rdb.Pipelined(ctx, func(pl goredis.Pipeliner) error {
		for k := range cmds {
			t := p.topic(k)
			// The @history size and ttl, and the meta TTL a node passes.
			cmds[k] = pl.FCall(ctx, "fraised_publish", []string{"fraised:m:" + t, "fraised:s:" + t}, "fraised:c:"+t,
				fmt.Sprintf(`{"seq":%d,"ts":0,"body":"cluster"}`, seq), 200000, 120000, 86400000)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	epochs := make([]string, p.topics)
	for k, c := range cmds {
		res, err := c.Slice()
		if err != nil || len(res) != 3 {
			return nil, fmt.Errorf("fraised_publish answered %v, %v", res, err)
		}
		if off, _ := res[1].(int64); off != seq {
			return nil, fmt.Errorf("%s: seq %d got offset %d", p.topic(k), seq, off)
		}
		epochs[k], _ = res[2].(string)
	}
	return epochs, nil
}

// clusterClient is one recipe client: from offset 0 ("the oldest
// retained") of its topic's epoch, through the proxy, reconnecting with
// its last position whenever its connection ends, until it has every
// event once publishing stopped.
type clusterClient struct {
	e           *Env
	addr, topic string
	epoch       string
	last        int64
	conns       int
	err         error
}

func (c *clusterClient) run(final *atomic.Int64) {
	var deadline time.Time
	var buf []byte
	for c.e.Ctx.Err() == nil {
		if n := final.Load(); n >= 0 {
			if deadline.IsZero() {
				deadline = time.Now().Add(clusterCatchUp)
			}
			if c.last == n {
				return
			}
			if time.Now().After(deadline) {
				c.err = fmt.Errorf("has %d of %d events %v after publishing stopped", c.last, n, clusterCatchUp)
				return
			}
		}
		end, err := c.session(final, &buf, &deadline)
		if err != nil {
			c.err = err
			return
		}
		if end != "" {
			c.e.Code(end)
		}
		time.Sleep(clusterBackoff)
	}
}

// session runs one connection; it returns how it ended (a close code,
// EOF, ...; "" when the client is done), or an error that ends the client
// (a refused resume, an event out of order).
func (c *clusterClient) session(final *atomic.Int64, buf *[]byte, deadline *time.Time) (string, error) {
	ws, err := dialWS(nil, c.addr, 0)
	if err != nil {
		return "", nil // the proxy had no node to give: try again
	}
	defer ws.conn.Close()
	c.conns++
	init := fmt.Sprintf(`{"type":"connection_init","payload":{"fraised":{"resume":{"1":{"epoch":%q,"offset":%d}}}}}`, c.epoch, c.last)
	sub := fmt.Sprintf(`{"id":"1","type":"subscribe","payload":{"query":"subscription { events(topic: \"%s\") { seq } }"}}`, c.topic)
	if ws.send(init) != nil || ws.send(sub) != nil {
		return "", nil
	}
	for c.e.Ctx.Err() == nil {
		if n := final.Load(); n >= 0 && c.last == n {
			return "", nil
		}
		if !deadline.IsZero() && time.Now().After(*deadline) {
			return "", nil // run judges it
		}
		f, b, err := ws.pollFrame(*buf, stormPoll)
		*buf = b
		if isTimeout(err) && !errors.Is(err, errTruncated) {
			continue
		}
		if err != nil || f.op == wsframe.OpClose {
			return serverEnd(f, err), nil
		}
		if ws.pong(f) || f.op != wsframe.OpText || strings.Contains(string(f.payload), `"connection_ack"`) {
			continue
		}
		m := gjson.ParseBytes(f.payload)
		off := m.Get("payload.extensions.fraised.offset").Int()
		if m.Get("type").Str != "next" || off != c.last+1 || m.Get("payload.extensions.fraised.epoch").Str != c.epoch {
			return "", fmt.Errorf("after offset %d got %s", c.last, f.payload)
		}
		c.last = off
	}
	return "", nil
}

// clusterKill9: kill -9 one node mid-stream, restart it on its addresses
// later; its clients resume on the others (and some, reconnecting after
// the restart, on it: filled from Redis).
func clusterKill9(e *Env) {
	clusterStream(e, clusterRun{
		topics: e.scale(100, 20), clients: e.scale(300, 60),
		rate: e.scale(10_000, 2_000), dur: e.scaleD(10*time.Second, 3*time.Second),
		fault: func(e *Env) {
			if err := e.Child.Signal(syscall.SIGKILL); err != nil {
				e.Fail("cannot kill node 0: %v", err)
			}
		},
		heal: func(e *Env) { e.restart() },
	})
}

// clusterDrain: SIGTERM on one node with many clients: each gets its
// queued frames and close 1001, and resumes on another node.
func clusterDrain(e *Env) {
	clusterStream(e, clusterRun{
		topics: e.scale(100, 10), clients: e.scale(1000, 100),
		rate: e.scale(5_000, 1_000), dur: e.scaleD(10*time.Second, 3*time.Second),
		fault: func(e *Env) {
			if err := e.Child.Signal(syscall.SIGTERM); err != nil {
				e.Fail("cannot signal node 0: %v", err)
			}
		},
	})
	e.mu.Lock()
	away, other := e.res.Codes["1001"], 0
	for code, n := range e.res.Codes {
		if code != "1001" {
			other += n
		}
	}
	e.mu.Unlock()
	if away == 0 {
		e.Fail("no client got 1001 from the drained node")
	}
	if other > 0 {
		e.Fail("%d connections ended otherwise than with 1001 (codes %v): a drain must close each with 1001 after its frames", other, e.res.CodesString())
	}
	if got := e.Child.ExitStatus(); got != "exit 0" {
		e.Fail("the drained node ended with %s, want exit 0", got)
	}
}
