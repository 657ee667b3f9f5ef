package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"
	"github.com/redis/go-redis/v9"
	"github.com/tidwall/gjson"
)

// The standard Redis clients drive the real binary: every PUBLISH reply
// must be what was delivered. Two subscriptions listen on each topic, so
// every reply must be 2 and the subscribers must together receive exactly
// the sum of the replies, each event once per subscriber, in order.

const subsPerTopic = 2

// deliveries subscribes subsPerTopic clients to topic and records the seq
// of every event each receives.
type deliveries struct {
	mu   sync.Mutex
	seqs [subsPerTopic][]int64
	done sync.WaitGroup
}

func subscribeCounting(t *testing.T, p *proc, topic string) *deliveries {
	t.Helper()
	d := &deliveries{}
	for i := range subsPerTopic {
		c := subscribeWS(t, p.listen, eventsQuery(topic), "")
		d.done.Add(1)
		go d.read(c, i)
	}
	return d
}

// read records events until the connection closes or stays silent.
func (d *deliveries) read(c *wsClient, i int) {
	defer d.done.Done()
	for {
		_ = c.conn.SetReadDeadline(time.Now().Add(3 * time.Second))
		msgs, err := wsutil.ReadServerMessage(c.r, nil)
		if err != nil {
			return
		}
		for _, m := range msgs {
			switch m.OpCode {
			case ws.OpText:
				if seq := gjson.GetBytes(m.Payload, "payload.data.events.seq"); seq.Exists() {
					d.mu.Lock()
					d.seqs[i] = append(d.seqs[i], seq.Int())
					d.mu.Unlock()
				}
			case ws.OpPing:
				_ = wsutil.WriteClientMessage(c.conn, ws.OpPong, m.Payload)
			}
		}
	}
}

// waitLive publishes probes (seq -1) until both subscriptions are
// registered, then returns; probes are not counted.
func waitLive(t *testing.T, rdb *redis.Client, topic string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		n, err := rdb.Publish(context.Background(), topic, `{"seq":-1}`).Result()
		if err != nil {
			t.Fatalf("probe: %v", err)
		}
		if n == subsPerTopic {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("probe reached %d subscriptions, want %d", n, subsPerTopic)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// check waits for the subscribers to go quiet and compares what they got
// with the replies: every reply is subsPerTopic, and each subscriber got
// exactly the events 0..n-1 after the probes, in order.
func (d *deliveries) check(t *testing.T, replies []int64) {
	t.Helper()
	d.done.Wait()
	sum := int64(0)
	for i, r := range replies {
		if r != subsPerTopic {
			t.Fatalf("reply %d = %d, want %d", i, r, subsPerTopic)
		}
		sum += r
	}
	got := int64(0)
	for i, seqs := range d.seqs {
		var events []int64
		for _, s := range seqs {
			if s >= 0 {
				events = append(events, s)
			}
		}
		got += int64(len(events))
		for j, s := range events {
			if s != int64(j) {
				t.Fatalf("subscriber %d: event %d has seq %d (events %v)", i, j, s, events)
			}
		}
	}
	if got != sum {
		t.Fatalf("subscribers received %d events, the replies promised %d", got, sum)
	}
}

// TestGoRedisClient: go-redis v9 with RESP2 and RESP3, plain publishes,
// its default pipeline and its transactional pipeline (MULTI/EXEC), on a
// pooled client, 30 rounds: no error, no stale reply.
func TestGoRedisClient(t *testing.T) {
	for _, protocol := range []int{2, 3} {
		t.Run(fmt.Sprintf("RESP%d", protocol), func(t *testing.T) {
			p := startBinary(t)
			topic := fmt.Sprintf("goredis.%d", protocol)
			d := subscribeCounting(t, p, topic)
			rdb := redis.NewClient(&redis.Options{Addr: p.publish, Protocol: protocol, PoolSize: 4})
			defer rdb.Close()
			ctx := context.Background()
			waitLive(t, rdb, topic)
			var replies []int64
			seq := 0
			next := func() string { seq++; return fmt.Sprintf(`{"seq":%d}`, seq-1) }
			for round := range 30 {
				n, err := rdb.Publish(ctx, topic, next()).Result()
				if err != nil {
					t.Fatalf("round %d: publish: %v", round, err)
				}
				replies = append(replies, n)
				for _, tx := range []bool{false, true} {
					var cmds []*redis.IntCmd
					fill := func(pipe redis.Pipeliner) error {
						for range 5 {
							cmds = append(cmds, pipe.Publish(ctx, topic, next()))
						}
						return nil
					}
					var err error
					if tx {
						_, err = rdb.TxPipelined(ctx, fill)
					} else {
						_, err = rdb.Pipelined(ctx, fill)
					}
					if err != nil {
						t.Fatalf("round %d: pipeline (transaction %v): %v", round, tx, err)
					}
					for _, c := range cmds {
						replies = append(replies, c.Val())
					}
				}
				if got, err := rdb.Ping(ctx).Result(); err != nil || got != "PONG" {
					t.Fatalf("round %d: ping %q %v (a stale reply?)", round, got, err)
				}
			}
			d.check(t, replies)
		})
	}
}

// requireClient finds a client tool, skipping (or failing when CI requires
// it through env) when it is missing.
func requireClient(t *testing.T, env, what, install string, ok bool) {
	t.Helper()
	if ok {
		return
	}
	if os.Getenv(env) != "" {
		t.Fatalf("%s is required (%s is set) but not installed: %s", what, env, install)
	}
	t.Skipf("%s not installed (%s; .ci/run does)", what, install)
}

// pythonWithRedis returns a Python interpreter that can import redis-py:
// Debian's python3-redis lives in /usr/bin/python3's path.
func pythonWithRedis() string {
	for _, py := range []string{"/usr/bin/python3", "python3"} {
		if exec.Command(py, "-c", "import redis").Run() == nil {
			return py
		}
	}
	return ""
}

// clientReport is what the client scripts print: the reply of every
// PUBLISH they sent, in order, and the labels of their steps.
type clientReport struct {
	Replies []int64  `json:"replies"`
	Steps   []string `json:"steps"`
}

// runClient runs a client script against p and parses its report.
func runClient(t *testing.T, p *proc, name string, args ...string) clientReport {
	t.Helper()
	cmd := exec.CommandContext(runCtx(t, 60*time.Second), name, args...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s %v: %v\n%s", name, args, err, stderr.String())
	}
	var r clientReport
	if err := json.Unmarshal(out, &r); err != nil {
		t.Fatalf("%s printed %q: %v\n%s", name, out, err, stderr.String())
	}
	return r
}

// TestRedisPyClient: redis-py (Debian's python3-redis) with plain
// publishes, pipeline() (transactional by default: MULTI/EXEC) and
// pipeline(transaction=False).
func TestRedisPyClient(t *testing.T) {
	py := pythonWithRedis()
	requireClient(t, "FRAISED_REQUIRE_REDIS_CLI", "redis-py", "apt-get install python3-redis", py != "")
	p := startBinary(t)
	d := subscribeCounting(t, p, "py")
	rdb := redis.NewClient(&redis.Options{Addr: p.publish})
	defer rdb.Close()
	waitLive(t, rdb, "py")
	host, port, _ := strings.Cut(p.publish, ":")
	r := runClient(t, p, py, "python/publish.py", "--host", host, "--port", port, "--topic", "py", "--rounds", "20")
	t.Logf("redis-py steps: %v", r.Steps)
	d.check(t, r.Replies)
}

// TestIORedisClient: ioredis (pinned in e2e/npm) with plain publishes,
// pipeline() and multi().exec(), after its INFO ready check. `make test`
// installs it and sets FRAISED_NPM_E2E (make e2e-npm).
func TestIORedisClient(t *testing.T) {
	if os.Getenv("FRAISED_NPM_E2E") == "" {
		t.Skip("set FRAISED_NPM_E2E=1 after `npm ci --prefix e2e/npm` (make test does)")
	}
	_, err := os.Stat("npm/node_modules/ioredis")
	requireClient(t, "FRAISED_REQUIRE_NODE", "ioredis", "npm ci --prefix e2e/npm", err == nil && nodeInstalled())
	p := startBinary(t)
	d := subscribeCounting(t, p, "node")
	rdb := redis.NewClient(&redis.Options{Addr: p.publish})
	defer rdb.Close()
	waitLive(t, rdb, "node")
	host, port, _ := strings.Cut(p.publish, ":")
	r := runClient(t, p, "node", "npm/publish.mjs", "--host", host, "--port", port, "--topic", "node", "--rounds", "20")
	t.Logf("ioredis steps: %v", r.Steps)
	d.check(t, r.Replies)
}

func nodeInstalled() bool {
	_, err := exec.LookPath("node")
	return err == nil
}
