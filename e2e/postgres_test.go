package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"
	"github.com/jackc/pgx/v5"

	"github.com/fraised/fraised/internal/pgtest"
)

// The PostgreSQL source through the real binary: a real PostgreSQL
// (internal/pgtest), `fraised pg install`, `fraised --source`, and real
// WebSocket subscribers. The package tests of source/postgres cover the
// source's corners; these check the wiring end to end.

// pgSchema is the schema these tests serve (events and row changes).
const pgSchema = "testdata/pg.graphql"

// pgDB returns the URL of a new database with the outbox schema installed
// by `fraised pg install`.
func pgDB(t *testing.T) string {
	t.Helper()
	url := pgtest.Need(t).NewDatabase(t)
	out, err := exec.Command(bin, "pg", "install", "--source", url).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "installed the outbox schema") {
		t.Fatalf("fraised pg install: %v\n%s", err, out)
	}
	return url
}

// startPG runs fraised on pgSchema reading the given --source URL.
func startPG(t *testing.T, sourceURL string, extra ...string) *proc {
	t.Helper()
	p := newProc(t)
	args := append([]string{"--schema", pgSchema, "--listen", p.listen, "--publish-listen", p.publish,
		"--log-level", "debug", "--source", sourceURL}, extra...)
	p.run(t, exec.Command(bin, args...))
	p.waitServed(t)
	return p
}

// waitReadyz waits until GET /readyz answers want (the code and body's
// first line).
func (p *proc) waitReadyz(t *testing.T, want string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	var got string
	for {
		got = httpGet(p.listen, "/readyz")
		if got == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("GET /readyz = %q, want %q\n%s", got, want, p.log())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// httpGet returns "CODE body" of GET path (the body's first line).
func httpGet(addr, path string) string {
	c := http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get("http://" + addr + path)
	if err != nil {
		return "error " + err.Error()
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	line, _, _ := strings.Cut(string(body), "\n")
	return strconv.Itoa(resp.StatusCode) + " " + line
}

// pgConn opens an application connection.
func pgConn(t *testing.T, url string) *pgx.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(context.Background()) })
	return c
}

func pgExec(t *testing.T, c *pgx.Conn, sql string, args ...any) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, err := c.Exec(ctx, sql, args...); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

// subscriber is a real WebSocket client collecting its next payloads.
type subscriber struct {
	c     *wsClient
	mu    sync.Mutex
	msgs  []string // data of each next message
	code  ws.StatusCode
	ended chan struct{}
}

// subscribe opens a WebSocket to p and subscribes to query.
func subscribe(t *testing.T, p *proc, query string) *subscriber {
	t.Helper()
	s := &subscriber{c: subscribeWS(t, p.listen, query, ""), ended: make(chan struct{})}
	go s.run()
	return s
}

func (s *subscriber) run() {
	defer close(s.ended)
	for {
		_ = s.c.conn.SetReadDeadline(time.Now().Add(30 * time.Second))
		msgs, err := wsutil.ReadServerMessage(s.c.r, nil)
		if err != nil {
			return
		}
		for _, m := range msgs {
			switch m.OpCode {
			case ws.OpClose:
				s.mu.Lock()
				s.code, _ = ws.ParseCloseFrameData(m.Payload)
				s.mu.Unlock()
				_ = wsutil.WriteClientMessage(s.c.conn, ws.OpClose, m.Payload)
				return
			case ws.OpText:
				var msg struct {
					Type    string
					Payload struct{ Data json.RawMessage }
				}
				if json.Unmarshal(m.Payload, &msg) == nil && msg.Type == "next" {
					s.mu.Lock()
					s.msgs = append(s.msgs, string(msg.Payload.Data))
					s.mu.Unlock()
				}
			}
		}
	}
}

func (s *subscriber) snapshot() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.msgs...)
}

// waitFor waits until a message satisfies ok and returns every message.
func (s *subscriber) waitFor(t *testing.T, what string, ok func([]string) bool) []string {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		m := s.snapshot()
		if ok(m) {
			return m
		}
		if time.Now().After(deadline) {
			t.Fatalf("waiting for %s: got %d messages, the last %q", what, len(m), m[max(0, len(m)-3):])
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// waitData waits until the subscriber got a message whose data is want.
func (s *subscriber) waitData(t *testing.T, want string) []string {
	t.Helper()
	return s.waitFor(t, want, func(m []string) bool { return len(m) > 0 && m[len(m)-1] == want })
}

// seqs returns the seq of every events message.
func seqs(msgs []string) []int {
	out := make([]int, 0, len(msgs))
	for _, m := range msgs {
		var d struct{ Events struct{ Seq int } }
		if json.Unmarshal([]byte(m), &d) == nil {
			out = append(out, d.Events.Seq)
		}
	}
	return out
}

// probe publishes seq -1 through fraised.publish until the subscriber got
// one: the subscription is then registered and the source reading.
func probe(t *testing.T, app *pgx.Conn, s *subscriber, topic string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for len(s.snapshot()) == 0 {
		pgExec(t, app, "SELECT fraised.publish($1, '{\"seq\": -1}')", topic)
		if time.Now().After(deadline) {
			t.Fatal("the probe never arrived")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// assertEachOnce checks that seqs holds 0..n-1 exactly once each, in order,
// after any probes (-1).
func assertEachOnce(t *testing.T, got []int, n int) {
	t.Helper()
	var real []int
	for _, s := range got {
		if s >= 0 {
			real = append(real, s)
		}
	}
	if len(real) != n {
		t.Fatalf("%d events, want %d", len(real), n)
	}
	for i, s := range real {
		if s != i {
			t.Fatalf("event %d is seq %d (lost, duplicated or out of order)", i, s)
		}
	}
}

// insertRows commits rows seq from..to-1, one transaction each, through
// fraised.publish on topic, calling at(i) before row i; it sends its error
// (or nil) on the returned channel when done.
func insertRows(t *testing.T, url, topic string, from, to int, at func(int)) <-chan error {
	c := pgConn(t, url)
	done := make(chan error, 1)
	go func() {
		for i := from; i < to; i++ {
			if at != nil {
				at(i)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			_, err := c.Exec(ctx, "SELECT fraised.publish($1, jsonb_build_object('seq', $2::int))", topic, i)
			cancel()
			if err != nil {
				done <- fmt.Errorf("row %d: %w", i, err)
				return
			}
		}
		done <- nil
	}()
	return done
}

// TestPostgresOutboxThroughBinary: events from fraised.publish and from the
// row trigger arrive projected; a rolled-back transaction publishes
// nothing; the commit-order cases (T2 commits while T1 is open, and T1
// holding the lower id commits last) deliver each event once; a 100 KiB
// payload arrives whole; /readyz is 200 once the source reads.
func TestPostgresOutboxThroughBinary(t *testing.T) {
	url := pgDB(t)
	app := pgConn(t, url)
	p := startPG(t, url+"&poll=200ms")
	p.waitReadyz(t, "200 ok")
	ev := subscribe(t, p, `subscription { events(topic: "pg") { seq body } }`)
	orders := subscribe(t, p, `subscription { orders(customerId: 7) { op new { id status } old { status } } }`)
	probe(t, app, ev, "pg")

	pgExec(t, app, `SELECT fraised.publish('pg', '{"seq": 1, "body": "hello", "secret": "not selected"}')`)
	ev.waitData(t, `{"events":{"seq":1,"body":"hello"}}`)

	pgExec(t, app, "CREATE TABLE orders (id int PRIMARY KEY, customer_id int NOT NULL, status text)")
	pgExec(t, app, "CREATE TRIGGER orders_events AFTER INSERT OR UPDATE OR DELETE ON orders FOR EACH ROW EXECUTE FUNCTION fraised.row_event('orders.{customer_id}')")
	pgExec(t, app, "INSERT INTO orders VALUES (1, 7, 'new'), (2, 8, 'other customer')")
	orders.waitData(t, `{"orders":{"op":"INSERT","new":{"id":1,"status":"new"},"old":null}}`)
	pgExec(t, app, "UPDATE orders SET status = 'paid' WHERE id = 1")
	orders.waitData(t, `{"orders":{"op":"UPDATE","new":{"id":1,"status":"paid"},"old":{"status":"new"}}}`)

	ctx := context.Background()
	tx, err := app.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, `SELECT fraised.publish('pg', '{"seq": 2, "body": "rolled back"}')`); err != nil {
		t.Fatal(err)
	}
	if err := tx.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	pgExec(t, app, `SELECT fraised.publish('pg', '{"seq": 3}')`)
	got := ev.waitData(t, `{"events":{"seq":3,"body":null}}`)
	if s := seqs(got); s[len(s)-2] != 1 {
		t.Fatalf("before seq 3 came %v: the rolled-back event was delivered", s)
	}

	// The order: T1 begins, T2 publishes and commits, T1 publishes
	// and commits. Then Hasura's hole: T1 takes the lower id (shard 1), T2
	// a higher one (shard 2) and commits first, T1 commits last.
	t1, t2 := pgConn(t, url), pgConn(t, url)
	commitOrder := func(seqT1, seqT2 int, t1First bool) {
		tx1, err := t1.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer tx1.Rollback(ctx)
		pgExec(t, t1, "SELECT 1") // T1 is open
		mustExec := func(tx pgx.Tx, sql string) {
			if _, err := tx.Exec(ctx, sql); err != nil {
				t.Fatalf("%s: %v", sql, err)
			}
		}
		mustExec(tx1, "SET LOCAL fraised.shard = 1")
		if t1First {
			mustExec(tx1, fmt.Sprintf(`SELECT fraised.publish('pg', '{"seq": %d}')`, seqT1))
		}
		tx2, err := t2.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		mustExec(tx2, "SET LOCAL fraised.shard = 2")
		mustExec(tx2, fmt.Sprintf(`SELECT fraised.publish('pg', '{"seq": %d}')`, seqT2))
		if err := tx2.Commit(ctx); err != nil {
			t.Fatal(err)
		}
		ev.waitFor(t, fmt.Sprintf("T2's seq %d", seqT2), func(m []string) bool { return slicesContain(seqs(m), seqT2) })
		if !t1First {
			mustExec(tx1, fmt.Sprintf(`SELECT fraised.publish('pg', '{"seq": %d}')`, seqT1))
		}
		if err := tx1.Commit(ctx); err != nil {
			t.Fatal(err)
		}
		ev.waitFor(t, fmt.Sprintf("T1's seq %d", seqT1), func(m []string) bool { return slicesContain(seqs(m), seqT1) })
	}
	commitOrder(10, 11, false)
	commitOrder(20, 21, true)

	big := strings.Repeat("x", 100<<10)
	pgExec(t, app, `SELECT fraised.publish('pg', jsonb_build_object('seq', 30, 'body', $1::text))`, big)
	got = ev.waitFor(t, "the 100 KiB event", func(m []string) bool { return slicesContain(seqs(m), 30) })
	if want := `{"events":{"seq":30,"body":"` + big + `"}}`; got[len(got)-1] != want {
		t.Fatalf("the 100 KiB event arrived as %d bytes, want %d", len(got[len(got)-1]), len(want))
	}
	counts := map[int]int{}
	for _, s := range seqs(got) {
		counts[s]++
	}
	for _, s := range []int{1, 3, 10, 11, 20, 21, 30} {
		if counts[s] != 1 {
			t.Errorf("seq %d delivered %d times, want once", s, counts[s])
		}
	}
	if counts[2] != 0 {
		t.Error("the rolled-back event was delivered")
	}
}

func slicesContain(s []int, v int) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// TestPostgresTerminatedBackendLosesNothing: pg_terminate_backend of
// fraised's connection while 1,000 rows are committed; after the
// reconnect every row reaches the subscriber once, in id order, and
// /readyz is 200 again.
func TestPostgresTerminatedBackendLosesNothing(t *testing.T) {
	const rows = 1000
	url := pgDB(t)
	app := pgConn(t, url)
	p := startPG(t, url+"&application_name=fraised_e2e_terminated&batch=50")
	p.waitReadyz(t, "200 ok")
	s := subscribe(t, p, `subscription { events(topic: "term") { seq } }`)
	probe(t, app, s, "term")
	var once sync.Once
	done := insertRows(t, url, "term", 0, rows, func(i int) {
		if i < rows/3 {
			return
		}
		once.Do(func() {
			var killed int
			if err := app.QueryRow(context.Background(), "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = 'fraised_e2e_terminated'").Scan(&killed); err != nil || killed != 1 {
				t.Errorf("terminated %d backends (%v), want 1", killed, err)
			}
		})
	})
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	pgExec(t, app, `SELECT fraised.publish('term', '{"seq": 1000}')`) // the end mark: a duplicate would come before it
	got := s.waitFor(t, "the end mark", func(m []string) bool { return slicesContain(seqs(m), rows) })
	assertEachOnce(t, seqs(got), rows+1)
	if !strings.Contains(p.log(), "postgres source disconnected; reconnecting") {
		t.Fatal("the terminated connection was not logged")
	}
	p.waitReadyz(t, "200 ok")
}

// TestPostgresRestartLosesNothing: a second fraised reading under the same
// name waits (unready) while the first holds the name. The first reads
// rows as they are committed, then a burst it has published but (with
// poll=1m and no later NOTIFY) not stored yet; SIGTERM makes it store its
// position before it exits. The second takes over while the rest of the
// rows are committed: across both nodes' subscribers every row arrives
// once (without the position stored at the stop, the burst would come
// twice).
func TestPostgresRestartLosesNothing(t *testing.T) {
	const rows, first, burst = 1000, 300, 20
	url := pgDB(t)
	app := pgConn(t, url)
	src := url + "&name=node&batch=50&poll=1m"
	a := startPG(t, src)
	a.waitReadyz(t, "200 ok")
	sa := subscribe(t, a, `subscription { events(topic: "restart") { seq } }`)
	probe(t, app, sa, "restart")
	b := startPG(t, src)
	b.waitReadyz(t, "503 not ready: source 1")
	sb := subscribe(t, b, `subscription { events(topic: "restart") { seq } }`)
	publishUntil(t, b, "restart", `{"seq": -1}`, "(integer) 1") // sb is registered

	if err := <-insertRows(t, url, "restart", 0, first, nil); err != nil {
		t.Fatal(err)
	}
	sa.waitFor(t, "the first rows", func(m []string) bool { return slicesContain(seqs(m), first-1) })
	// Let the last NOTIFYs of those rows wake the reader (each wake reads
	// and stores): then the burst is read on its own NOTIFY and nothing
	// stores it before the stop. (This only makes the test sharper; it
	// passes without the pause.)
	time.Sleep(200 * time.Millisecond)
	pgExec(t, app, `SELECT fraised.publish('restart', jsonb_build_object('seq', s)) FROM generate_series($1::int, $2::int) AS s`, first, first+burst-1)
	sa.waitFor(t, "the burst on the first node", func(m []string) bool { return slicesContain(seqs(m), first+burst-1) })
	a.terminate(t, 15*time.Second)
	<-sa.ended
	if sa.code != 1001 {
		t.Fatalf("the first node's subscriber ended with %d, want 1001", sa.code)
	}
	done := insertRows(t, url, "restart", first+burst, rows, nil) // while the second node takes over
	b.waitReadyz(t, "200 ok")
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	pgExec(t, app, `SELECT fraised.publish('restart', '{"seq": 1000}')`)
	got := sb.waitFor(t, "the end mark on the second node", func(m []string) bool { return slicesContain(seqs(m), rows) })
	assertEachOnce(t, append(seqs(sa.snapshot()), seqs(got)...), rows+1)
}

// TestPostgresListenMode: NOTIFY on a configured channel becomes an event
// on the mapped topic; a payload that is not a JSON object is skipped
// (logged) and the next one still arrives.
func TestPostgresListenMode(t *testing.T) {
	url := pgtest.Need(t).NewDatabase(t) // listen mode needs no schema
	app := pgConn(t, url)
	q := startPG(t, url+"&channels=pg_events:notified", "--source-mode", "listen")
	q.waitReadyz(t, "200 ok")
	s := subscribe(t, q, `subscription { events(topic: "notified") { seq body } }`)
	deadline := time.Now().Add(20 * time.Second)
	for len(s.snapshot()) == 0 {
		pgExec(t, app, `SELECT pg_notify('pg_events', '{"seq": -1}')`)
		if time.Now().After(deadline) {
			t.Fatal("no notification arrived")
		}
		time.Sleep(50 * time.Millisecond)
	}
	pgExec(t, app, `SELECT pg_notify('pg_events', '[1, 2]')`)
	pgExec(t, app, `NOTIFY pg_events, '{"seq": 1, "body": "notified"}'`)
	s.waitData(t, `{"events":{"seq":1,"body":"notified"}}`)
	// The log line travels on fraised's stderr, not with the event: wait.
	q.waitLog(t, "event refused, skipped")
}
