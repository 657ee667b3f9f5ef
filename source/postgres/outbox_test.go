package postgres

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/fraised/fraised/source"
)

const within = 30 * time.Second // generous: the machine is shared

func decode(t *testing.T, b []byte) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("payload %s: %v", b, err)
	}
	return m
}

func TestPublishFunctionEventArrives(t *testing.T) {
	url := newDB(t)
	sink, _ := runHealthy(t, url)
	app := connect(t, url)
	publish(t, app, "orders.42", `{"id": 7, "status": "paid", "nested": {"a": [1, 2]}}`)
	ev := sink.waitN(t, 1, within)
	if ev[0].topic != "orders.42" {
		t.Fatalf("topic %q, want orders.42", ev[0].topic)
	}
	got := decode(t, ev[0].payload)
	if got["status"] != "paid" || got["id"].(float64) != 7 || got["nested"].(map[string]any)["a"].([]any)[1].(float64) != 2 {
		t.Fatalf("payload %s", ev[0].payload)
	}
}

func TestRowTriggerEventsArrive(t *testing.T) {
	url := newDB(t)
	app := connect(t, url)
	exec1(t, app, `CREATE TABLE orders (id int PRIMARY KEY, customer_id int NOT NULL, total numeric)`)
	exec1(t, app, `CREATE TRIGGER orders_events AFTER INSERT OR UPDATE OR DELETE ON orders
		FOR EACH ROW EXECUTE FUNCTION fraised.row_event('orders.{customer_id}')`)
	sink, _ := runHealthy(t, url)
	exec1(t, app, `INSERT INTO orders VALUES (1, 42, 9.5)`)
	exec1(t, app, `UPDATE orders SET total = 10 WHERE id = 1`)
	exec1(t, app, `DELETE FROM orders WHERE id = 1`)
	ev := sink.waitN(t, 3, within)
	for i, op := range []string{"INSERT", "UPDATE", "DELETE"} {
		if ev[i].topic != "orders.42" {
			t.Fatalf("event %d topic %q, want orders.42", i, ev[i].topic)
		}
		p := decode(t, ev[i].payload)
		if p["op"] != op || p["table"] != "orders" || p["schema"] != "public" {
			t.Fatalf("event %d: %s, want op %s on public.orders", i, ev[i].payload, op)
		}
	}
	ins, upd, del := decode(t, ev[0].payload), decode(t, ev[1].payload), decode(t, ev[2].payload)
	if ins["old"] != nil || ins["new"].(map[string]any)["total"].(float64) != 9.5 {
		t.Fatalf("INSERT payload %s", ev[0].payload)
	}
	if upd["old"].(map[string]any)["total"].(float64) != 9.5 || upd["new"].(map[string]any)["total"].(float64) != 10 {
		t.Fatalf("UPDATE payload %s", ev[1].payload)
	}
	if del["new"] != nil || del["old"].(map[string]any)["customer_id"].(float64) != 42 {
		t.Fatalf("DELETE payload %s", ev[2].payload)
	}
}

func TestRowTriggerBadTemplateAbortsStatement(t *testing.T) {
	url := newDB(t)
	app := connect(t, url)
	exec1(t, app, `CREATE TABLE items (id int PRIMARY KEY, owner text)`)
	exec1(t, app, `CREATE TRIGGER items_events AFTER INSERT ON items
		FOR EACH ROW EXECUTE FUNCTION fraised.row_event('items.{nosuch}')`)
	_, err := app.Exec(context.Background(), `INSERT INTO items VALUES (1, 'x')`)
	if err == nil || !strings.Contains(err.Error(), "names column nosuch") {
		t.Fatalf("insert with a template naming a missing column: err %v, want 'names column nosuch'", err)
	}
	exec1(t, app, `DROP TRIGGER items_events ON items`)
	exec1(t, app, `CREATE TRIGGER items_events AFTER INSERT ON items
		FOR EACH ROW EXECUTE FUNCTION fraised.row_event('items.{owner}')`)
	_, err = app.Exec(context.Background(), `INSERT INTO items VALUES (2, NULL)`)
	if err == nil || !strings.Contains(err.Error(), "column owner is NULL") {
		t.Fatalf("insert with a NULL topic column: err %v, want 'column owner is NULL'", err)
	}
	var n int
	if err := app.QueryRow(context.Background(), "SELECT count(*) FROM items").Scan(&n); err != nil || n != 0 {
		t.Fatalf("rows in items: %d (%v), want 0: the failed trigger must abort the insert", n, err)
	}
}

func TestPublishRejectsBadInput(t *testing.T) {
	url := newDB(t)
	app := connect(t, url)
	for _, tc := range []struct{ topic, payload, want string }{
		{"", `{}`, "topic must not be empty"},
		{strings.Repeat("t", 1025), `{}`, "the limit is 1024"},
		{"x", `[1]`, "must be a JSON object, not array"},
		{"x", `"s"`, "must be a JSON object, not string"},
	} {
		_, err := app.Exec(context.Background(), "SELECT fraised.publish($1, $2::jsonb)", tc.topic, tc.payload)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("publish(%.20q, %s): err %v, want %q", tc.topic, tc.payload, err, tc.want)
		}
	}
	_, err := app.Exec(context.Background(), "BEGIN; SET LOCAL fraised.shard = '99'; SELECT fraised.publish('x', '{}'); COMMIT")
	if err == nil || !strings.Contains(err.Error(), "from 0 to 15") {
		t.Errorf("publish with fraised.shard = 99: err %v, want 'from 0 to 15'", err)
	}
}

func TestRolledBackTransactionPublishesNothing(t *testing.T) {
	url := newDB(t)
	sink, _ := runHealthy(t, url)
	app := connect(t, url)
	ctx := context.Background()
	tx, err := app.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, "SELECT fraised.publish('t', '{\"rolled\": \"back\"}')"); err != nil {
		t.Fatal(err)
	}
	if err := tx.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	publish(t, app, "t", `{"marker": true}`) // later in id order than the rolled-back row
	ev := sink.waitN(t, 1, within)
	time.Sleep(200 * time.Millisecond) // let anything wrongly delivered arrive too
	ev = sink.snapshot()
	if len(ev) != 1 || !strings.Contains(string(ev[0].payload), "marker") {
		t.Fatalf("events %v, want only the marker", ev)
	}
}

// TestCommitOrder covers the transaction that takes an id first and commits
// last: a reader that had moved past its id would lose it.
func TestCommitOrder(t *testing.T) {
	url := newDB(t)
	sink, _ := runHealthy(t, url)
	ctx := context.Background()
	c1, c2 := connect(t, url), connect(t, url)

	t.Run("T1 begins, T2 publishes and commits, T1 publishes and commits", func(t *testing.T) {
		base := len(sink.snapshot())
		t1 := begin(t, c1, "")
		t2 := begin(t, c2, "")
		publishTx(t, t2, "order", `{"tx": "T2a"}`)
		commit(t, t2)
		publishTx(t, t1, "order", `{"tx": "T1a"}`)
		commit(t, t1)
		assertOnce(t, sink.waitN(t, base+2, within)[base:], "T2a", "T1a")
	})
	t.Run("T1 takes the lower id in shard 3, T2 commits in shard 5 first", func(t *testing.T) {
		base := len(sink.snapshot())
		t1 := begin(t, c1, "3")
		id1 := publishTx(t, t1, "order", `{"tx": "T1b"}`)
		t2 := begin(t, c2, "5")
		id2 := publishTx(t, t2, "order", `{"tx": "T2b"}`)
		if id1 >= id2 {
			t.Fatalf("ids %d, %d: T1 should hold the lower one", id1, id2)
		}
		commit(t, t2)
		sink.waitN(t, base+1, within) // the reader has read past id1 in id order
		commit(t, t1)
		assertOnce(t, sink.waitN(t, base+2, within)[base:], "T2b", "T1b")
	})
	t.Run("same shard: T2 waits for T1 and is delivered after it", func(t *testing.T) {
		base := len(sink.snapshot())
		t1 := begin(t, c1, "7")
		publishTx(t, t1, "order", `{"tx": "T1c"}`)
		t2 := begin(t, c2, "7")
		done := make(chan int64, 1)
		go func() {
			var id int64
			_ = t2.QueryRow(ctx, "SELECT fraised.publish('order', '{\"tx\": \"T2c\"}')").Scan(&id)
			done <- id
		}()
		select {
		case <-done:
			t.Fatal("T2's publish did not wait for T1's shard lock")
		case <-time.After(300 * time.Millisecond):
		}
		commit(t, t1)
		<-done
		commit(t, t2)
		assertOnce(t, sink.waitN(t, base+2, within)[base:], "T1c", "T2c")
	})
}

func begin(t *testing.T, c *pgx.Conn, shard string) pgx.Tx {
	t.Helper()
	tx, err := c.Begin(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if shard != "" {
		if _, err := tx.Exec(context.Background(), "SELECT set_config('fraised.shard', $1, true)", shard); err != nil {
			t.Fatal(err)
		}
	}
	return tx
}

func publishTx(t *testing.T, tx pgx.Tx, topic, payload string) int64 {
	t.Helper()
	var id int64
	if err := tx.QueryRow(context.Background(), "SELECT fraised.publish($1, $2::jsonb)", topic, payload).Scan(&id); err != nil {
		t.Fatal(err)
	}
	return id
}

func commit(t *testing.T, tx pgx.Tx) {
	t.Helper()
	if err := tx.Commit(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// assertOnce checks the events carry exactly the given "tx" values, in order.
func assertOnce(t *testing.T, ev []event, want ...string) {
	t.Helper()
	time.Sleep(200 * time.Millisecond) // a duplicate would arrive meanwhile
	var got []string
	for _, e := range ev {
		var p struct{ Tx string }
		_ = json.Unmarshal(e.payload, &p)
		got = append(got, p.Tx)
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("events %v, want %v", got, want)
	}
}

// writeRows publishes n rows {"seq": i} from one connection, one transaction
// each, with a short pause every few rows so other things happen meanwhile.
func writeRows(t *testing.T, url string, n int, progress func(i int)) <-chan error {
	c := connect(t, url)
	done := make(chan error, 1)
	go func() {
		ctx := context.Background()
		for i := range n {
			if _, err := c.Exec(ctx, "SELECT fraised.publish('seq', jsonb_build_object('seq', $1::int))", i); err != nil {
				done <- fmt.Errorf("row %d: %w", i, err)
				return
			}
			if progress != nil {
				progress(i)
			}
			if i%50 == 0 {
				time.Sleep(2 * time.Millisecond)
			}
		}
		done <- nil
	}()
	return done
}

// assertSeq checks the events are seq 0..n-1, in order, each once.
func assertSeq(t *testing.T, ev []event, n int) {
	t.Helper()
	if len(ev) != n {
		t.Fatalf("%d events, want %d", len(ev), n)
	}
	for i, e := range ev {
		var p struct{ Seq int }
		if err := json.Unmarshal(e.payload, &p); err != nil || p.Seq != i {
			t.Fatalf("event %d is %s, want seq %d (in id order, none twice, none lost)", i, e.payload, i)
		}
	}
}

// TestTerminatedBackendLosesNothing terminates fraised's backend twice while
// 1,000 rows are committed: once from inside Publish (the batch is in the
// pipeline but its position is not stored yet: the reconnect must not send
// it again) and once while the source waits for rows.
func TestTerminatedBackendLosesNothing(t *testing.T) {
	const rows = 1000
	url := newDB(t)
	admin := connect(t, url)
	terminate := func() {
		var killed int
		if err := admin.QueryRow(context.Background(),
			"SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = 'fraised_terminated'").Scan(&killed); err != nil || killed != 1 {
			t.Errorf("terminated %d backends (%v), want 1", killed, err)
		}
	}
	var inSink sync.Once
	sink := &fakeSink{onEvent: func(_ string, payload []byte) {
		if strings.Contains(string(payload), `"seq": 333}`) {
			inSink.Do(terminate)
		}
	}}
	src, _ := runSource(t, url+"&application_name=fraised_terminated&batch=50", sink)
	waitHealthy(t, src)
	var once sync.Once
	outside := make(chan struct{})
	done := writeRows(t, url, rows, func(i int) {
		if i == 2*rows/3 {
			once.Do(func() { close(outside) })
		}
	})
	<-outside
	sink.waitN(t, 2*rows/3, within) // the source is past the first terminate and reading
	waitHealthy(t, src)
	terminate()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	sink.waitN(t, rows, within)
	time.Sleep(300 * time.Millisecond) // a duplicate would arrive meanwhile
	assertSeq(t, sink.snapshot(), rows)
	waitHealthy(t, src)
}

func TestRestartedSourceLosesNothing(t *testing.T) {
	const rows = 1000
	url := newDB(t)
	sink := &fakeSink{}
	src, stop := runSource(t, url+"&batch=50", sink)
	waitHealthy(t, src)
	restart := make(chan struct{})
	var once sync.Once
	done := writeRows(t, url, rows, func(i int) {
		if i == rows/2 {
			once.Do(func() { close(restart) })
		}
	})
	<-restart
	if err := stop(); err != nil {
		t.Fatalf("Run: %v", err)
	}
	if err := src.Healthy(); err == nil {
		t.Fatal("a stopped source reports healthy")
	}
	src2, _ := runSource(t, url+"&batch=50", sink) // a new process: no memory of the old one
	waitHealthy(t, src2)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	sink.waitN(t, rows, within)
	time.Sleep(300 * time.Millisecond)
	assertSeq(t, sink.snapshot(), rows)
}

func TestPostgresRestartReconnects(t *testing.T) {
	url := newDB(t)
	sink, src := runHealthy(t, url)
	app := connect(t, url)
	publish(t, app, "r", `{"seq": 0}`)
	sink.waitN(t, 1, within)
	if err := needPG(t).Restart(); err != nil {
		t.Fatal(err)
	}
	app = connect(t, url) // the old connection died with the server
	publish(t, app, "r", `{"seq": 1}`)
	sink.waitN(t, 2, within)
	assertSeq(t, sink.snapshot(), 2)
	waitHealthy(t, src)
}

func TestLargePayload(t *testing.T) {
	url := newDB(t)
	sink, _ := runHealthy(t, url)
	big := strings.Repeat("x", 100<<10)
	publish(t, connect(t, url), "big", `{"blob": "`+big+`"}`)
	ev := sink.waitN(t, 1, within)
	if got := decode(t, ev[0].payload)["blob"]; got != big {
		t.Fatalf("100 KiB payload came back as %d bytes", len(fmt.Sprint(got)))
	}
}

func TestOverLimitPayloadSkipped(t *testing.T) {
	url := newDB(t)
	cfg, err := ParseURL(url)
	if err != nil {
		t.Fatal(err)
	}
	cfg.MaxPayload = 1000
	sink := &fakeSink{}
	src, _ := runConfig(t, cfg, sink)
	waitHealthy(t, src)
	app := connect(t, url)
	publish(t, app, "big", `{"blob": "`+strings.Repeat("x", 2000)+`"}`)
	publish(t, app, "t", `{"seq": 0}`)
	sink.waitN(t, 1, within)
	time.Sleep(200 * time.Millisecond)
	assertSeq(t, sink.snapshot(), 1)
}

func TestSinkRefusalSkipsEvent(t *testing.T) {
	url := newDB(t)
	sink := &refusingSink{fakeSink: &fakeSink{}, refuse: "bad"}
	src, _ := runSource(t, url, sink)
	waitHealthy(t, src)
	app := connect(t, url)
	publish(t, app, "bad", `{"seq": -1}`)
	publish(t, app, "t", `{"seq": 0}`)
	sink.waitN(t, 1, within)
	time.Sleep(200 * time.Millisecond)
	assertSeq(t, sink.snapshot(), 1)
	if n := sink.refusedN.Load(); n != 1 {
		t.Fatalf("the sink refused %d events, want 1 (a refused event is skipped, not retried)", n)
	}
}

// refusingSink refuses one topic as invalid, as the server does an event
// that breaks its limits.
type refusingSink struct {
	*fakeSink
	refuse   string
	refusedN atomic.Int64
}

func (r *refusingSink) Publish(ctx context.Context, topic string, payload []byte) error {
	if topic == r.refuse {
		r.refusedN.Add(1)
		return fmt.Errorf("refusing %s: %w", topic, source.ErrInvalid)
	}
	return r.fakeSink.Publish(ctx, topic, payload)
}

// TestPublishNeedsOnlyExecute: an application role with USAGE on the schema
// and EXECUTE on fraised.publish publishes, but cannot write the outbox
// directly (which would bypass the commit-order lock).
func TestPublishNeedsOnlyExecute(t *testing.T) {
	url := newDB(t)
	admin := connect(t, url)
	role := fmt.Sprintf("writer_%d", dbSeq.Add(1))
	exec1(t, admin, "CREATE ROLE "+role+" LOGIN")
	exec1(t, admin, "GRANT USAGE ON SCHEMA fraised TO "+role)
	exec1(t, admin, "GRANT EXECUTE ON FUNCTION fraised.publish(text, jsonb) TO "+role)
	sink, _ := runHealthy(t, url)
	app := connect(t, strings.Replace(url, "//app@", "//"+role+"@", 1))
	publish(t, app, "t", `{"seq": 0}`)
	sink.waitN(t, 1, within)
	_, err := app.Exec(context.Background(), "INSERT INTO fraised.outbox (shard, topic, payload) VALUES (0, 't', '{}')")
	if err == nil || !strings.Contains(err.Error(), "permission denied") {
		t.Fatalf("direct INSERT by the application role: %v, want permission denied", err)
	}
	// The same two grants let the role fire the row trigger.
	exec1(t, admin, `CREATE TABLE public.notes (id int PRIMARY KEY, author text NOT NULL)`)
	exec1(t, admin, `CREATE TRIGGER notes_events AFTER INSERT ON public.notes
		FOR EACH ROW EXECUTE FUNCTION fraised.row_event('notes.{author}')`)
	exec1(t, admin, "GRANT INSERT ON public.notes TO "+role)
	exec1(t, app, `INSERT INTO public.notes VALUES (1, 'ann')`)
	if ev := sink.waitN(t, 2, within); ev[1].topic != "notes.ann" {
		t.Fatalf("trigger event topic %q, want notes.ann", ev[1].topic)
	}
}

// TestReaderRoleGrants: fraised may connect as a role with only the grants
// the README lists, retention included.
func TestReaderRoleGrants(t *testing.T) {
	url := newDB(t)
	admin := connect(t, url)
	role := fmt.Sprintf("reader_%d", dbSeq.Add(1))
	exec1(t, admin, "CREATE ROLE "+role+" LOGIN")
	for _, g := range readerGrants {
		exec1(t, admin, strings.ReplaceAll(g, "ROLE", role))
	}
	for i := range 10 {
		publish(t, admin, "t", fmt.Sprintf(`{"seq": %d}`, i))
	}
	cfg, err := ParseURL(strings.Replace(url, "//app@", "//"+role+"@", 1) + "&start=earliest&retain_count=3&poll=20ms")
	if err != nil {
		t.Fatal(err)
	}
	sink := &fakeSink{}
	src := New(cfg, nil)
	src.pruneEvery = 20 * time.Millisecond
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { _ = src.Run(ctx, sink) }()
	sink.waitN(t, 10, within)
	deadline := time.Now().Add(within)
	for {
		var n int
		if err := admin.QueryRow(ctx, "SELECT count(*) FROM fraised.outbox").Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n == 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d rows left, want 3: retention as the reader role failed: %v", n, src.Healthy())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := src.Healthy(); err != nil {
		t.Fatalf("reader role: %v", err)
	}
}

// readerGrants are the README's grants for fraised's own role.
var readerGrants = []string{
	"GRANT USAGE ON SCHEMA fraised TO ROLE",
	"GRANT SELECT ON fraised.meta TO ROLE",
	"GRANT SELECT, DELETE ON fraised.outbox TO ROLE",
	"GRANT SELECT, INSERT, UPDATE ON fraised.position, fraised.pruned TO ROLE",
	"GRANT EXECUTE ON FUNCTION fraised.prune(interval, bigint, integer) TO ROLE",
}

// TestCrashRedeliversAtMostOneBatch: a process that dies between Publish and
// storing the position (its backend is gone and the process stops at once)
// leaves the stored position at the batch before; a new process re-delivers
// that part of the batch, no more, and loses nothing.
func TestCrashRedeliversAtMostOneBatch(t *testing.T) {
	const rows, batch = 200, 20
	url := newDB(t)
	admin := connect(t, url)
	app := connect(t, url)
	for i := range rows {
		publish(t, app, "seq", fmt.Sprintf(`{"seq": %d}`, i))
	}
	ctx, crash := context.WithCancel(context.Background())
	first := &fakeSink{onEvent: func(_ string, payload []byte) {
		if strings.Contains(string(payload), `"seq": 105}`) {
			if _, err := admin.Exec(context.Background(), "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'fraised_crash'"); err != nil {
				t.Errorf("terminating: %v", err)
			}
			deadline := time.Now().Add(within)
			for n := 1; n > 0; time.Sleep(5 * time.Millisecond) {
				if err := admin.QueryRow(context.Background(), "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'fraised_crash'").Scan(&n); err != nil || time.Now().After(deadline) {
					t.Errorf("waiting for the terminated backend to go: %d left, %v", n, err)
					break
				}
			}
			crash() // the process dies: the rest of the batch is refused, nothing more is stored
		}
	}}
	cfg, err := ParseURL(fmt.Sprintf("%s&application_name=fraised_crash&batch=%d&start=earliest", url, batch))
	if err != nil {
		t.Fatal(err)
	}
	if err := New(cfg, nil).Run(ctx, first); err != nil {
		t.Fatalf("Run: %v", err)
	}
	delivered := first.snapshot()
	if len(delivered) != 106 {
		t.Fatalf("the first process delivered %d events, want 106 (seq 0..105)", len(delivered))
	}
	second := &fakeSink{}
	runSource(t, fmt.Sprintf("%s&batch=%d", url, batch), second)
	rest := second.waitN(t, 1, within)
	var resume struct{ Seq int }
	_ = json.Unmarshal(rest[0].payload, &resume)
	if redelivered := len(delivered) - resume.Seq; redelivered != 6 {
		t.Fatalf("the new process starts at seq %d: %d re-delivered, want 6 (seq 100..105: the batch whose position was not stored)", resume.Seq, redelivered)
	}
	assertSeq(t, append(delivered[:resume.Seq:resume.Seq], second.waitN(t, rows-resume.Seq, within)...), rows)
}

// TestBigRowsSplitAcrossReads: rows whose payloads pass maxBatchBytes
// together are read over several reads, in order, none lost.
func TestBigRowsSplitAcrossReads(t *testing.T) {
	const rows = 100 // 100 x 100 KiB: more than maxBatchBytes
	url := newDB(t)
	exec1(t, connect(t, url), `SELECT fraised.publish('big', jsonb_build_object('seq', i, 'blob', repeat('x', 100 * 1024)))
		FROM generate_series(0, $1::int - 1) AS i`, rows)
	sink := &fakeSink{}
	runSource(t, url+"&start=earliest", sink)
	ev := sink.waitN(t, rows, within)
	time.Sleep(100 * time.Millisecond)
	assertSeq(t, sink.snapshot(), rows)
	if len(ev[rows-1].payload) < 100*1024 {
		t.Fatalf("last payload %d bytes", len(ev[rows-1].payload))
	}
}

func TestUnixSocketConnection(t *testing.T) {
	url := newDB(t)
	s := needPG(t)
	db := url[strings.LastIndex(url, "/")+1 : strings.Index(url, "?")]
	sink := &fakeSink{}
	src, _ := runSource(t, fmt.Sprintf("postgres://app@/%s?host=%s&port=%d", db, s.Dir, s.Port), sink)
	waitHealthy(t, src)
	publish(t, connect(t, url), "unix", `{"seq": 0}`)
	sink.waitN(t, 1, within)
	assertSeq(t, sink.snapshot(), 1)
}

// TestReadUsesTheShardIndex: the read walks each shard's ids on the
// (shard, id) index, not the primary key with shard as a filter (which made
// every read cost as many rows as the busiest shard had published since the
// idlest one last had a row). A plan check, not a timing.
func TestReadUsesTheShardIndex(t *testing.T) {
	url := newDB(t)
	app := connect(t, url)
	exec1(t, app, `SELECT fraised.publish('busy', '{"n": 1}') FROM generate_series(1, 20000)`) // one transaction: one shard
	exec1(t, app, "ANALYZE fraised.outbox")
	positions := make([]int64, 16) // fifteen shards idle since id 0
	rows, err := app.Query(context.Background(), "EXPLAIN "+readSQL, positions, DefaultBatch, DefaultMaxPayload)
	if err != nil {
		t.Fatal(err)
	}
	var plan strings.Builder
	for rows.Next() {
		var line string
		if err := rows.Scan(&line); err != nil {
			t.Fatal(err)
		}
		plan.WriteString(line + "\n")
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if p := plan.String(); !strings.Contains(p, "using outbox_shard_id") || strings.Contains(p, "outbox_pkey") || strings.Contains(p, "Seq Scan on outbox") {
		t.Fatalf("the read does not range-scan (shard, id):\n%s", p)
	}
}

// TestPositionStoresAreCoalesced: rows trickling in (one per read) do not
// make every read store the positions (one write transaction per row,
// which was most of the reader's cost in PostgreSQL); the positions are
// stored once half a batch is unstored, or once storeEvery has passed on
// the source's clock (stopped here, moved by hand).
func TestPositionStoresAreCoalesced(t *testing.T) {
	const batch = 20
	url := newDB(t)
	app := connect(t, url)
	admin := connect(t, url)
	var clock atomic.Int64
	clock.Store(time.Now().UnixNano())
	sink := runClean(t, fmt.Sprintf("%s&batch=%d&start=earliest", url, batch), func(src *Source) {
		src.now = func() time.Time { return time.Unix(0, clock.Load()) }
	})
	stored := func() int64 {
		var id int64
		if err := admin.QueryRow(context.Background(), "SELECT coalesce(max(last_id), 0) FROM fraised.position WHERE source = 'default'").Scan(&id); err != nil {
			t.Fatalf("reading fraised.position: %v", err)
		}
		return id
	}
	waitStored := func(want int64, why string) {
		t.Helper()
		deadline := time.Now().Add(within)
		for got := stored(); got != want; got = stored() {
			if time.Now().After(deadline) {
				t.Fatalf("%s: stored position %d, want %d", why, got, want)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	var last int64
	for i := range batch/2 - 1 {
		last = publish(t, app, "seq", fmt.Sprintf(`{"seq": %d}`, i))
		sink.waitN(t, i+1, within)
	}
	if got := stored(); got != 0 {
		t.Fatalf("after %d rows read one by one (clock stopped) the position %d was stored: each read stored it", batch/2-1, got)
	}
	last = publish(t, app, "seq", fmt.Sprintf(`{"seq": %d}`, batch/2-1))
	sink.waitN(t, batch/2, within)
	waitStored(last, "half a batch unstored")
	last = publish(t, app, "seq", fmt.Sprintf(`{"seq": %d}`, batch/2))
	sink.waitN(t, batch/2+1, within)
	if got := stored(); got == last {
		t.Fatalf("a single unstored row was stored before storeEvery passed on the source's clock")
	}
	clock.Add(int64(storeEvery))
	waitStored(last, "storeEvery passed")
	assertSeq(t, sink.snapshot(), batch/2+1)
}

// TestNotificationWithoutEventReadsEveryShard: a notification that carries
// no event (a large event's, which names its shard, or an older install's
// empty payload) makes the reader read every shard in one snapshot. A row
// in shard 5 that came with no notification (as if it were lost) is not
// delivered while small events of shard 3 come in their notifications,
// and is delivered, in id order, by the read a large event of shard 3
// causes; another by the read an empty notification causes.
func TestNotificationWithoutEventReadsEveryShard(t *testing.T) {
	url := newDB(t)
	app := connect(t, url)
	admin := connect(t, url)
	sink := runClean(t, url+"&poll=1m&start=earliest", nil)
	exec1(t, app, "SET fraised.shard = '3'")
	publish(t, app, "seq", `{"seq": 0}`)
	sink.waitN(t, 1, within)
	exec1(t, admin, `INSERT INTO fraised.outbox (shard, topic, payload) VALUES (5, 'seq', '{"seq": 1}')`)
	publish(t, app, "other", `{"n": 1}`) // carried: no read
	sink.waitN(t, 2, within)
	if got := sink.snapshot(); len(got) != 2 || got[1].topic != "other" {
		t.Fatalf("a carried event of shard 3 read the table too: %d events", len(got))
	}
	publish(t, app, "seq", bigSeq(2))
	got := sink.waitN(t, 4, within)
	if string(got[2].payload) != `{"seq": 1}` || decode(t, got[3].payload)["seq"] != 2.0 {
		t.Fatalf("after a large event of shard 3: %s then %.20s, want seq 1 (shard 5) then seq 2", got[2].payload, got[3].payload)
	}
	exec1(t, admin, `INSERT INTO fraised.outbox (shard, topic, payload) VALUES (7, 'seq', '{"seq": 3}')`)
	exec1(t, admin, `SELECT pg_notify('fraised_outbox', '')`)
	got = sink.waitN(t, 5, within)
	if string(got[4].payload) != `{"seq": 3}` {
		t.Fatalf("after an empty notification: %s, want seq 3 (shard 7)", got[4].payload)
	}
}

// TestPollReadsEveryShardUnderTraffic: notifications for one shard that
// keep coming faster than poll= do not put off the poll's read of every
// shard: a row of another shard whose NOTIFY was lost is delivered within
// about poll=, not only once the traffic stops.
func TestPollReadsEveryShardUnderTraffic(t *testing.T) {
	const poll = 200 * time.Millisecond
	url := newDB(t)
	app := connect(t, url)
	admin := connect(t, url)
	sink := runClean(t, fmt.Sprintf("%s&poll=%s&start=earliest", url, poll), nil)
	exec1(t, app, "SET fraised.shard = '3'")
	publish(t, app, "busy", `{"n": 0}`)
	sink.waitN(t, 1, within)
	// A row in shard 5 with no NOTIFY (as if its notification were lost).
	exec1(t, admin, `INSERT INTO fraised.outbox (shard, topic, payload) VALUES (5, 'lost', '{"n": 0}')`)
	// Shard 3 notifies every poll/4 until the lost row arrives; many polls
	// of the machine's time (a shared machine) before giving up.
	deadline := time.Now().Add(25 * poll)
	for n := 1; ; n++ {
		for _, ev := range sink.snapshot() {
			if ev.topic == "lost" {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("the row of shard 5 was not read in %s (poll=%s) while shard 3 was notified every %s", 25*poll, poll, poll/4)
		}
		publish(t, app, "busy", fmt.Sprintf(`{"n": %d}`, n))
		time.Sleep(poll / 4)
	}
}
