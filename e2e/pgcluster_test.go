package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/fraised/fraised/internal/redistest"
)

// A PostgreSQL source with --cluster, through real binaries, a real
// PostgreSQL and a real redis-server: one node forwards the source into
// Redis, every node delivers each event with the one offset Redis gave it,
// and another node takes over when the forwarder is killed.

// pgClusterSchema's events carry their Redis offset (@history).
const pgClusterSchema = "testdata/pgcluster.graphql"

// forwarding is the log line of the node that wins the election.
const forwarding = "forwarder election: this node forwards the source"

// startPGCluster runs a cluster node on redis reading sourceURL.
func startPGCluster(t *testing.T, redis *redistest.Server, sourceURL string) *proc {
	t.Helper()
	return startPGClusterSchema(t, redis, sourceURL, pgClusterSchema)
}

func startPGClusterSchema(t *testing.T, redis *redistest.Server, sourceURL, schema string) *proc {
	t.Helper()
	p := newProc(t)
	p.run(t, exec.Command(bin, "--schema", schema, "--listen", p.listen, "--publish-listen", p.publish,
		"--log-level", "debug", "--cluster", redis.URL(), "--source", sourceURL))
	p.waitServed(t)
	return p
}

// delivery is one next message: Redis' offset and the event's seq.
type delivery struct{ offset, seq int }

// offsetSubscriber records every delivery of one topic.
type offsetSubscriber struct {
	c   *wsClient
	mu  sync.Mutex
	got []delivery
}

func subscribeOffsets(t *testing.T, p *proc, topic string) *offsetSubscriber {
	t.Helper()
	s := &offsetSubscriber{c: subscribeWS(t, p.listen, eventsQuery(topic), "")}
	go s.read()
	return s
}

func (s *offsetSubscriber) read() {
	for {
		_ = s.c.conn.SetReadDeadline(time.Now().Add(60 * time.Second))
		msgs, err := readServerText(s.c)
		if err != nil {
			return // the node was killed, or the test ended
		}
		for _, m := range msgs {
			var msg struct {
				Type    string
				Payload struct {
					Data       struct{ Events struct{ Seq int } }
					Extensions struct{ Fraised struct{ Offset int } }
				}
			}
			if json.Unmarshal(m, &msg) != nil || msg.Type != "next" {
				continue
			}
			s.mu.Lock()
			s.got = append(s.got, delivery{msg.Payload.Extensions.Fraised.Offset, msg.Payload.Data.Events.Seq})
			s.mu.Unlock()
		}
	}
}

func (s *offsetSubscriber) snapshot() []delivery {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]delivery(nil), s.got...)
}

// waitSeq waits until the subscriber got seq.
func (s *offsetSubscriber) waitSeq(t *testing.T, seq int, limit time.Duration) []delivery {
	t.Helper()
	deadline := time.Now().Add(limit)
	for {
		got := s.snapshot()
		for _, d := range got {
			if d.seq == seq {
				return got
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("seq %d did not arrive within %s: %d deliveries, the last %v", seq, limit, len(got), got[max(0, len(got)-3):])
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// checkOffsets checks that every delivery has its own offset, one more
// than the one before (no offset twice, none skipped), and returns how
// many times each seq came.
func checkOffsets(t *testing.T, who string, got []delivery) map[int]int {
	t.Helper()
	counts := map[int]int{}
	for i, d := range got {
		if i > 0 && d.offset != got[i-1].offset+1 {
			t.Fatalf("%s: delivery %d has offset %d after %d (an offset twice, or one lost)", who, i, d.offset, got[i-1].offset)
		}
		counts[d.seq]++
	}
	return counts
}

// forwarder waits until exactly one of nodes logged that it forwards.
func forwarder(t *testing.T, nodes ...*proc) *proc {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		var leaders []*proc
		for _, p := range nodes {
			if strings.Contains(p.log(), forwarding) {
				leaders = append(leaders, p)
			}
		}
		if len(leaders) > 1 {
			t.Fatalf("%d nodes forward the source at once", len(leaders))
		}
		if len(leaders) == 1 {
			return leaders[0]
		}
		if time.Now().After(deadline) {
			t.Fatal("no node became the forwarder")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestPostgresClusterOneForwarderFailover: two nodes, one outbox source,
// one Redis. Both are ready (the standby too) and one forwards. Rows
// committed reach a subscriber on each node once each, with the same
// offsets on both (every event was published once, through Redis: the
// standby's subscriber gets them although its node reads nothing; Redis'
// stream holds each once). Then the forwarder publishes a burst whose
// position it has not stored yet and is killed with SIGKILL; rows are
// committed while the other node takes over: it reads the burst again,
// Redis drops each row of it (fraised_publish_once keeps each shard's
// last published id), and every row arrives once, in offset order with
// no offset twice.
func TestPostgresClusterOneForwarderFailover(t *testing.T) {
	const batch, first, burst, rows = 50, 200, 20, 600
	redis := redistest.Start(t)
	url := pgDB(t)
	app := pgConn(t, url)
	src := url + fmt.Sprintf("&batch=%d&poll=1m", batch)
	a, b := startPGCluster(t, redis, src), startPGCluster(t, redis, src)
	a.waitReadyz(t, "200 ok")
	b.waitReadyz(t, "200 ok")
	holder := forwarder(t, a, b)
	standby := a
	if holder == a {
		standby = b
	}
	standby.waitReadyz(t, "200 ok") // standing by is healthy
	sh, ss := subscribeOffsets(t, holder, "cl"), subscribeOffsets(t, standby, "cl")
	deadline := time.Now().Add(20 * time.Second)
	for len(sh.snapshot()) == 0 || len(ss.snapshot()) == 0 {
		pgExec(t, app, `SELECT fraised.publish('cl', '{"seq": -1}')`) // the probe: both subscriptions are live at Redis
		if time.Now().After(deadline) {
			t.Fatal("the probe never reached both nodes' subscribers")
		}
		time.Sleep(50 * time.Millisecond)
	}

	if err := <-insertRows(t, url, "cl", 0, first, nil); err != nil {
		t.Fatal(err)
	}
	gotH, gotS := sh.waitSeq(t, first-1, 20*time.Second), ss.waitSeq(t, first-1, 20*time.Second)
	ch, cs := checkOffsets(t, "forwarder's subscriber", gotH), checkOffsets(t, "standby's subscriber", gotS)
	gotH, gotS = rowsOnly(gotH), rowsOnly(gotS) // the probes may have reached one node first
	if len(gotH) != len(gotS) {
		t.Fatalf("%d rows delivered on the forwarder, %d on the standby", len(gotH), len(gotS))
	}
	for i := range gotH {
		if gotH[i] != gotS[i] {
			t.Fatalf("delivery %d is %+v on the forwarder and %+v on the standby: one order, one offset per event expected", i, gotH[i], gotS[i])
		}
	}
	for seq := range first {
		if ch[seq] != 1 || cs[seq] != 1 {
			t.Fatalf("seq %d delivered %d times on the forwarder, %d on the standby; want once each", seq, ch[seq], cs[seq])
		}
	}
	rdb := goredis.NewClient(&goredis.Options{Addr: redis.Addr, Protocol: 2, DisableIdentity: true})
	defer rdb.Close()
	inRedis := streamSeqs(t, rdb, "cl")
	for seq := range first {
		if inRedis[seq] != 1 {
			t.Fatalf("Redis' stream holds seq %d %d times, want once", seq, inRedis[seq])
		}
	}

	// A burst in one transaction is read on its one NOTIFY and published;
	// with poll=1m no later read stores its position before the kill (the
	// pause lets the first rows' last NOTIFYs wake the reader first), so
	// the next forwarder reads the burst again.
	time.Sleep(200 * time.Millisecond)
	pgExec(t, app, `SELECT fraised.publish('cl', jsonb_build_object('seq', s)) FROM generate_series($1::int, $2::int) AS s`, first, first+burst-1)
	ss.waitSeq(t, first+burst-1, 20*time.Second)
	if err := holder.cmd.Process.Kill(); err != nil {
		t.Fatalf("kill -9 the forwarder: %v", err)
	}
	killed := time.Now()
	if err := <-insertRows(t, url, "cl", first+burst, rows, nil); err != nil { // while the standby takes over
		t.Fatal(err)
	}
	pgExec(t, app, fmt.Sprintf(`SELECT fraised.publish('cl', '{"seq": %d}')`, rows)) // the end mark
	got := ss.waitSeq(t, rows, 25*time.Second)
	if !strings.Contains(standby.log(), forwarding) {
		t.Fatal("the end mark arrived but the standby never logged that it forwards")
	}
	t.Logf("the standby took over and delivered the end mark %s after the kill", time.Since(killed).Round(time.Millisecond))
	counts := checkOffsets(t, "standby's subscriber", got)
	for seq := range rows + 1 {
		if n := counts[seq]; n != 1 {
			t.Fatalf("seq %d delivered %d times across the failover, want once", seq, n)
		}
	}
	dropped := strings.Count(standby.log(), "event already published by another forwarder")
	if dropped == 0 {
		t.Fatal("the new forwarder re-read none of the burst: the test did not cross the unstored batch")
	}
	t.Logf("the new forwarder re-read %d rows the killed one had published; Redis dropped them as already published", dropped)
	inRedis = streamSeqs(t, rdb, "cl")
	for seq := range rows + 1 {
		if inRedis[seq] != counts[seq] {
			t.Fatalf("seq %d is %d times in Redis' stream, delivered %d times", seq, inRedis[seq], counts[seq])
		}
	}
	standby.waitReadyz(t, "200 ok")
}

// rowsOnly drops the probes (seq -1).
func rowsOnly(got []delivery) []delivery {
	var out []delivery
	for _, d := range got {
		if d.seq >= 0 {
			out = append(out, d)
		}
	}
	return out
}

// streamSeqs counts each seq in topic's Redis stream (every event Redis
// numbered).
func streamSeqs(t *testing.T, rdb *goredis.Client, topic string) map[int]int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	entries, err := rdb.XRange(ctx, "fraised:s:"+topic, "-", "+").Result()
	if err != nil {
		t.Fatal(err)
	}
	counts := map[int]int{}
	for _, e := range entries {
		var ev struct{ Seq int }
		p, _ := e.Values["p"].(string)
		if err := json.Unmarshal([]byte(p), &ev); err != nil {
			t.Fatalf("stream entry %s: %v", e.ID, err)
		}
		counts[ev.Seq]++
	}
	return counts
}

// TestPostgresClusterRedisOutage: with Redis down the forwarder's source
// waits and retries (logged), stores no position past the rows it could
// not publish (PostgreSQL's fraised.position says so during the outage),
// and once Redis is back every row committed meanwhile reaches the
// subscriber once, in order.
func TestPostgresClusterRedisOutage(t *testing.T) {
	const before, during = 20, 30
	redis := redistest.Start(t)
	url := pgDB(t)
	app := pgConn(t, url)
	p := startPGClusterSchema(t, redis, url+"&poll=200ms", pgSchema)
	p.waitReadyz(t, "200 ok")
	forwarder(t, p)
	s := subscribe(t, p, `subscription { events(topic: "out") { seq } }`)
	probe(t, app, s, "out")
	if err := <-insertRows(t, url, "out", 0, before, nil); err != nil {
		t.Fatal(err)
	}
	s.waitFor(t, "the rows before the outage", func(m []string) bool { return slicesContain(seqs(m), before-1) })

	redis.Kill()
	p.waitReadyz(t, "503 not ready: cluster")
	if err := <-insertRows(t, url, "out", before, before+during, nil); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(p.log(), "cluster unavailable: the source waits and retries its event") {
		if time.Now().After(deadline) {
			t.Fatal("the source did not log that it waits for the cluster")
		}
		time.Sleep(20 * time.Millisecond)
	}
	var stored, firstDuring int64
	ctx := runCtx(t, 10*time.Second)
	if err := app.QueryRow(ctx, "SELECT coalesce(max(last_id), 0) FROM fraised.position WHERE source = 'default'").Scan(&stored); err != nil {
		t.Fatal(err)
	}
	if err := app.QueryRow(ctx, "SELECT id FROM fraised.outbox WHERE (payload->>'seq')::int = $1", before).Scan(&firstDuring); err != nil {
		t.Fatal(err)
	}
	if stored >= firstDuring {
		t.Fatalf("during the outage the stored position is %d, at or past row %d (id %d) that Redis never took", stored, before, firstDuring)
	}
	if got := seqs(s.snapshot()); slicesContain(got, before) {
		t.Fatalf("row %d was delivered while Redis was down: %v", before, got)
	}

	redis.Restart()
	got := s.waitFor(t, "the rows of the outage", func(m []string) bool { return slicesContain(seqs(m), before+during-1) })
	assertEachOnce(t, seqs(got), before+during)
	if !strings.Contains(p.log(), "cluster available again; the source goes on") {
		t.Fatal("the recovery was not logged")
	}
	p.waitReadyz(t, "200 ok")
}
