package postgres

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// carryLimit is fraised.publish's carry_limit (sql/install.sql).
const carryLimit = 2000

// bigSeq is an event with seq n too large to travel in its notification.
func bigSeq(n int) string {
	return fmt.Sprintf(`{"seq": %d, "pad": "%s"}`, n, strings.Repeat("p", carryLimit))
}

// runCounted starts a source whose table reads the test can count, and
// waits for its first read (every shard, at the start of the session).
func runCounted(t *testing.T, url string) (*fakeSink, *Source) {
	t.Helper()
	var src *Source
	sink := runClean(t, url, func(s *Source) { src = s })
	waitFirstRead(t, src)
	return sink, src
}

// waitFirstRead waits for src's first read of the table.
func waitFirstRead(t *testing.T, src *Source) {
	t.Helper()
	deadline := time.Now().Add(within)
	for src.tableReads.Load() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the source did not read the table in its first session")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestSmallEventsSkipTheTable: once the reader has read the table up to
// date, an event small enough to travel in its NOTIFY is delivered from
// it, with no read of the table: fifty events one transaction each, no
// read, in order, each once.
func TestSmallEventsSkipTheTable(t *testing.T) {
	const n = 50
	url := newDB(t)
	sink, src := runCounted(t, url+"&poll=1m&start=earliest")
	before := src.tableReads.Load()
	app := connect(t, url)
	for i := range n {
		publish(t, app, "seq", fmt.Sprintf(`{"seq": %d}`, i))
	}
	sink.waitN(t, n, within)
	if reads := src.tableReads.Load() - before; reads != 0 {
		t.Fatalf("%d small events cost %d reads of the table, want 0 (delivered from their notifications)", n, reads)
	}
	assertSeq(t, sink.snapshot(), n)
}

// TestLargeEventsKeepTheOrder: an event too large for its notification
// makes the reader read the table, and carried events after it wait for
// that read: small and large events mixed, in one transaction and one
// each, across two shards, arrive in id order (here, commit order), each
// once.
func TestLargeEventsKeepTheOrder(t *testing.T) {
	url := newDB(t)
	sink, src := runCounted(t, url+"&poll=1m&start=earliest")
	before := src.tableReads.Load()
	app := connect(t, url)
	other := connect(t, url)
	exec1(t, app, "SET fraised.shard = '3'")
	exec1(t, other, "SET fraised.shard = '5'")
	seq := 0
	next := func(c *pgx.Conn, big bool) {
		p := fmt.Sprintf(`{"seq": %d}`, seq)
		if big {
			p = bigSeq(seq)
		}
		publish(t, c, "seq", p)
		seq++
	}
	// One transaction: small, large, small, large, small.
	tx, err := app.Begin(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		p := fmt.Sprintf(`{"seq": %d}`, seq)
		if i%2 == 1 {
			p = bigSeq(seq)
		}
		if _, err := tx.Exec(context.Background(), "SELECT fraised.publish('seq', $1::jsonb)", p); err != nil {
			t.Fatal(err)
		}
		seq++
	}
	if err := tx.Commit(context.Background()); err != nil {
		t.Fatal(err)
	}
	// One transaction each, alternating shards and sizes: among them, a
	// large event of shard 3, a small one of shard 5, a small one of shard
	// 3, each committed before the next begins, which must arrive in that
	// order (a read of shard 3 alone, or a carried event delivered before
	// the read, would break it).
	for i := range 60 {
		c := app
		if i%3 == 0 {
			c = other
		}
		next(c, i%4 == 1)
	}
	sink.waitN(t, seq, within)
	assertSeq(t, sink.snapshot(), seq)
	if src.tableReads.Load() == before {
		t.Fatal("large events were delivered without reading the table")
	}
}

// TestCarriedEventOverLimitSkipped: a carried event over max_payload is
// skipped like a read one, and the events after it still arrive.
func TestCarriedEventOverLimitSkipped(t *testing.T) {
	url := newDB(t)
	cfg, err := ParseURL(url + "&poll=1m&start=earliest")
	if err != nil {
		t.Fatal(err)
	}
	cfg.MaxPayload = 100
	sink := &fakeSink{}
	src, _ := runConfig(t, cfg, sink)
	waitHealthy(t, src)
	waitFirstRead(t, src)
	before := src.tableReads.Load()
	app := connect(t, url)
	publish(t, app, "big", `{"blob": "`+strings.Repeat("x", 500)+`"}`)
	publish(t, app, "t", `{"seq": 0}`)
	sink.waitN(t, 1, within)
	time.Sleep(200 * time.Millisecond)
	assertSeq(t, sink.snapshot(), 1)
	if reads := src.tableReads.Load() - before; reads != 0 {
		t.Fatalf("the over-limit event was not carried: %d reads", reads)
	}
}

// TestCarriedEventMatchesTheRow: the event a notification carries is the
// row as the table read returns it (payload text, topic with ':' in it).
func TestCarriedEventMatchesTheRow(t *testing.T) {
	url := newDB(t)
	sink, _ := runCounted(t, url+"&poll=1m&start=earliest")
	app := connect(t, url)
	const topic = "a:b:3:c"
	publish(t, app, topic, `{"seq": 0, "s": "ü:1:\"x\"", "n": [1, 2.50, {"k": null}]}`)
	carried := sink.waitN(t, 1, within)[0]
	var read []byte
	if err := app.QueryRow(context.Background(), "SELECT payload::text FROM fraised.outbox ORDER BY id DESC LIMIT 1").Scan(&read); err != nil {
		t.Fatal(err)
	}
	if carried.topic != topic || string(carried.payload) != string(read) {
		t.Fatalf("carried %q %s, the row is %q %s", carried.topic, carried.payload, topic, read)
	}
}

// TestCarryLimitSetting: fraised.carry_limit = 0 carries nothing (every
// event costs a read, and still arrives in order); a bad value fails the
// publish with an error that names the setting.
func TestCarryLimitSetting(t *testing.T) {
	url := newDB(t)
	sink, src := runCounted(t, url+"&poll=1m&start=earliest")
	before := src.tableReads.Load()
	app := connect(t, url)
	exec1(t, app, "SET fraised.carry_limit = '0'")
	for i := range 5 {
		publish(t, app, "seq", fmt.Sprintf(`{"seq": %d}`, i))
		sink.waitN(t, i+1, within)
	}
	assertSeq(t, sink.snapshot(), 5)
	if reads := src.tableReads.Load() - before; reads < 5 {
		t.Fatalf("with fraised.carry_limit = 0, 5 events one by one cost %d reads, want 5", reads)
	}
	for _, bad := range []string{"-1", "7001", "lots"} {
		exec1(t, app, "SET fraised.carry_limit = '"+bad+"'")
		_, err := app.Exec(context.Background(), `SELECT fraised.publish('t', '{}')`)
		if err == nil || !strings.Contains(err.Error(), "fraised.carry_limit is "+bad) {
			t.Fatalf("fraised.carry_limit = %s: %v", bad, err)
		}
	}
}

// TestForgedCarriedEventIsNotDelivered: any session may NOTIFY on the
// channel; an event it "carries" without fraised.publish's signature is
// not delivered and does not move the position, so the real events after
// it (ids below the forged one) still arrive.
func TestForgedCarriedEventIsNotDelivered(t *testing.T) {
	url := newDB(t)
	sink, _ := runCounted(t, url+"&poll=1m&start=earliest")
	app := connect(t, url)
	exec1(t, app, "SET fraised.shard = '3'")
	publish(t, app, "seq", `{"seq": 0}`)
	sink.waitN(t, 1, within)
	other := connect(t, url)
	exec1(t, other, `SELECT pg_notify('fraised_outbox', '3:9000000:5:`+strings.Repeat("0", 32)+`:forge{"seq": 99}')`)
	publish(t, app, "seq", `{"seq": 1}`)
	sink.waitN(t, 2, within)
	assertSeq(t, sink.snapshot(), 2)
}
