package postgres

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/fraised/fraised/source"
)

const (
	// maxBatchBytes stops a read early once its payloads reach this size,
	// so a batch of big rows holds at most this much (plus one row).
	maxBatchBytes = 8 << 20
	// pruneRows is the most rows one fraised.prune call deletes (short
	// transactions); pruneCalls the most calls per round (a backlog is
	// worked off over several rounds instead of stalling delivery).
	pruneRows  = 10000
	pruneCalls = 10
	// maxShards bounds what fraised.meta may claim (the schema ships 16).
	maxShards = 1024
	// storeEvery is how long handed-over events may go without their
	// position being stored. Storing with every read made each read a
	// write transaction (an upsert and a commit that waits for the WAL
	// flush, and holds back the read's rows until then): at 1,000 rows/s
	// that was one commit per row, the largest part of the reader's cost
	// in PostgreSQL and of its tail latency. 100 ms caps the stores at 10
	// a second while rows trickle in; a crash re-delivers at most these
	// 100 ms of events (and never more than batch= events, see read).
	storeEvery = 100 * time.Millisecond
)

// readSQL takes, for every shard, the rows above that shard's position, in
// id order: one range scan of the (shard, id) index per shard; each payload
// is turned into text once (the LIMIT keeps the subquery from being
// flattened). The range is written as row comparisons, which only that
// index can serve: with "shard = n AND id > last" the planner may prefer
// the primary key (its heap order is cheaper to read) with shard as a
// filter, and each read then walks every row published since the position
// of the shard idle longest, a cost that grows with the table. $1 holds
// the positions indexed by shard, $2 the batch size, $3 the payload limit
// (a larger payload comes back NULL with its length, and is skipped
// unread). Every read reads every shard, in one snapshot: a transaction
// that committed before another began then always comes first, whatever
// their shards (reading only the shards notifications named could deliver
// the later one first, its notification having come sooner).
const readSQL = `
SELECT o.id, o.shard, o.topic,
       CASE WHEN octet_length(o.body) <= $3 THEN o.body END,
       octet_length(o.body)
FROM unnest($1::bigint[]) WITH ORDINALITY AS p(last_id, n)
CROSS JOIN LATERAL (
	SELECT id, shard, topic, payload::text AS body FROM fraised.outbox
	WHERE (shard, id) > ((p.n - 1)::smallint, p.last_id)
	  AND (shard, id) <= ((p.n - 1)::smallint, 9223372036854775807::bigint)
	ORDER BY shard, id LIMIT $2
) o
ORDER BY o.id LIMIT $2`

const storeSQL = `
INSERT INTO fraised.position (source, shard, last_id)
SELECT $1, u.shard, u.last_id FROM unnest($2::smallint[], $3::bigint[]) AS u(shard, last_id)
ON CONFLICT (source, shard) DO UPDATE
	SET last_id = GREATEST(fraised.position.last_id, EXCLUDED.last_id), updated_at = now()`

const latestSQL = `
SELECT s, coalesce((SELECT max(id) FROM fraised.outbox WHERE shard = s), 0)
FROM generate_series(0, $1::int - 1) AS s`

const pruneSQL = `
SELECT fraised.prune(CASE WHEN $1::bigint > 0 THEN $1::bigint * interval '1 millisecond' END,
                     CASE WHEN $2::bigint > 0 THEN $2::bigint END, $3)`

// row is one outbox event of a batch; topic and payload alias the batch's
// arena.
type row struct {
	id      int64
	shard   int
	topic   []byte
	payload []byte // nil: over MaxPayload (size says how big)
	size    int
}

// reader is one outbox session's state.
type reader struct {
	s         *Source
	conn      *pgx.Conn
	positions []int64 // per shard
	moved     []bool  // per shard: position not stored yet
	// readWanted: a notification carried no event, or a backlog is left,
	// so the table must be read (as it is once Poll has passed since
	// lastRead, and at the start of a session).
	readWanted bool
	lastRead   time.Time // when the last read began
	// tailing: the last read returned every committed row, and every
	// notification since then carried its event. PostgreSQL delivers a
	// listener every notification committed while it listens, in commit
	// order, so each event committed since that read comes in its
	// notification, in commit order (id order within a shard, see
	// fraised.publish): a carried event above its shard's position is then
	// delivered as it is, without reading the table. A notification that
	// carries no event ends tailing until the next read.
	tailing bool
	note    []byte // a carried event's topic and payload, while delivered
	// carryKey checks that fraised.publish carried an event (fraised.meta's
	// carry_key; empty: trust none); macBuf is its scratch space.
	carryKey string
	macBuf   []byte
	// unstored counts the events handed over since the positions were
	// last stored, and since when (zero: none); see read.
	unstored      int
	unstoredSince time.Time
	rows          []row
	arena         []byte
	lastPrune     time.Time
	// origin is set when the sink publishes at most once by origin
	// (cluster mode): Stream names this outbox and source name (lineage),
	// parts[shard] is the shard's Part. Nil: plain publishes.
	origin *source.Origin
	parts  []string
}

// lineageSQL names the outbox a source reads, the same on every node and
// new whenever its ids may start over: the cluster's system identifier
// (another server, or a new initdb), the database's oid (a database
// dropped and created again) and the outbox table's (the schema dropped
// and installed again).
const lineageSQL = `
SELECT (SELECT system_identifier FROM pg_control_system())::text || ':' ||
       (SELECT oid FROM pg_database WHERE datname = current_database())::text || ':' ||
       'fraised.outbox'::regclass::oid::text`

func (s *Source) outbox(ctx context.Context, conn *pgx.Conn, sink source.Sink) error {
	r := &reader{s: s, conn: conn, lastPrune: time.Now()}
	if err := r.setup(ctx); err != nil {
		return err
	}
	if _, ok := sink.(source.OnceSink); ok {
		if err := r.setOrigin(ctx); err != nil {
			return err
		}
	}
	defer func() {
		if err := r.flush(ctx); err != nil {
			s.log.Debug("postgres source: storing the position at the end of the session", "err", err)
		}
	}()
	s.connected("name", s.cfg.Name, "shards", len(r.positions), "positions", r.positions)
	for {
		switch now := r.s.now(); {
		case r.readDue(now):
			more, err := r.readAndPublish(ctx, sink)
			if err != nil {
				return err
			}
			if more {
				continue // a backlog: read on at once (readWanted)
			}
		case r.storeDue(now):
			if err := r.flush(ctx); err != nil {
				return err
			}
		}
		if err := r.maybePrune(ctx); err != nil {
			return err
		}
		if err := r.wait(ctx, sink); err != nil {
			return err
		}
	}
}

// readDue reports whether the table must be read: readWanted, or the poll
// is due (Poll after lastRead; at once in a new session).
func (r *reader) readDue(now time.Time) bool {
	return r.readWanted || now.Sub(r.lastRead) >= r.s.cfg.Poll
}

// setup checks the schema, takes the name lock, listens, and loads (or
// initialises) the positions.
func (r *reader) setup(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, connectTimeout)
	defer cancel()
	v, err := installedVersion(ctx, r.conn)
	switch {
	case errors.Is(err, ErrNotInstalled):
		return &fatalError{err}
	case err != nil:
		return err
	case v < SchemaVersion:
		return &fatalError{fmt.Errorf("the database has fraised schema version %d, this fraised reads %d: run `fraised pg install` with this fraised", v, SchemaVersion)}
	case v > SchemaVersion:
		return &fatalError{fmt.Errorf("the database has fraised schema version %d, this fraised reads %d: upgrade fraised", v, SchemaVersion)}
	}
	var shards int
	var locked bool
	// carry_key through to_jsonb: an install older than the column has
	// none, and then no carried event is trusted (none is carried either).
	if err := r.conn.QueryRow(ctx, "SELECT shards, coalesce(to_jsonb(m) ->> 'carry_key', ''), pg_try_advisory_lock($1, hashtext($2)) FROM fraised.meta m",
		lockName, r.s.cfg.Name).Scan(&shards, &r.carryKey, &locked); err != nil {
		return fmt.Errorf("reading fraised.meta: %w", err)
	}
	if shards < 1 || shards > maxShards {
		return &fatalError{fmt.Errorf("fraised.meta says %d shards, want 1 to %d: the fraised schema was changed by hand; reinstall it", shards, maxShards)}
	}
	if !locked {
		return fmt.Errorf("another connection reads as name=%s: give each fraised node its own name= (or, after a network drop, wait until PostgreSQL closes this node's old connection)", r.s.cfg.Name)
	}
	if _, err := r.conn.Exec(ctx, "LISTEN "+notifyChannel); err != nil {
		return fmt.Errorf("LISTEN %s: %w", notifyChannel, err)
	}
	if err := r.loadPositions(ctx, shards); err != nil {
		return err
	}
	return r.checkPruned(ctx)
}

func (r *reader) loadPositions(ctx context.Context, shards int) error {
	r.positions, r.moved = make([]int64, shards), make([]bool, shards)
	known := make([]bool, shards)
	rows, err := r.conn.Query(ctx, "SELECT shard, last_id FROM fraised.position WHERE source = $1", r.s.cfg.Name)
	if err != nil {
		return fmt.Errorf("reading positions: %w", err)
	}
	var shard int
	var last int64
	_, err = pgx.ForEachRow(rows, []any{&shard, &last}, func() error {
		if shard >= 0 && shard < shards {
			r.positions[shard], known[shard] = last, true
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("reading positions: %w", err)
	}
	if r.s.cfg.Start == StartLatest {
		if err := r.latest(ctx, known); err != nil {
			return err
		}
	}
	// Resume after what this process already handed over, unless the
	// database does not know the name at all (it was reset meanwhile: its
	// ids start again).
	if len(r.s.published) == shards && slices.Contains(known, true) {
		for i, p := range r.s.published {
			r.positions[i] = max(r.positions[i], p)
		}
	}
	r.s.published = r.positions
	return r.store(ctx, allShards(shards))
}

// latest sets unknown shards' positions to their newest committed id: within
// a shard every uncommitted id is above it (see fraised.publish).
func (r *reader) latest(ctx context.Context, known []bool) error {
	rows, err := r.conn.Query(ctx, latestSQL, len(known))
	if err != nil {
		return fmt.Errorf("reading the newest ids: %w", err)
	}
	var shard int
	var last int64
	_, err = pgx.ForEachRow(rows, []any{&shard, &last}, func() error {
		if !known[shard] {
			r.positions[shard] = last
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("reading the newest ids: %w", err)
	}
	return nil
}

// checkPruned logs the shards where retention deleted events this source had
// not read yet.
func (r *reader) checkPruned(ctx context.Context) error {
	rows, err := r.conn.Query(ctx, "SELECT shard, through_id FROM fraised.pruned")
	if err != nil {
		return fmt.Errorf("reading fraised.pruned: %w", err)
	}
	var shard int
	var through int64
	_, err = pgx.ForEachRow(rows, []any{&shard, &through}, func() error {
		if shard >= 0 && shard < len(r.positions) && through > r.positions[shard] {
			r.s.log.Warn("postgres source: retention deleted events this node had not read; raise retain_age/retain_count or keep nodes up",
				"name", r.s.cfg.Name, "shard", shard, "position", r.positions[shard], "deleted_through", through)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("reading fraised.pruned: %w", err)
	}
	return nil
}

// readAndPublish reads one batch and publishes it in id order. The new
// positions are stored with a later read (one round trip for both, once
// storeEvery has passed or half a batch is unstored) or by flush when the
// session ends; so at most batch= events, handed over within storeEvery,
// are ever unstored.
func (r *reader) readAndPublish(ctx context.Context, sink source.Sink) (more bool, err error) {
	if more, err = r.read(ctx); err != nil || len(r.rows) == 0 {
		return false, err
	}
	for _, ev := range r.rows {
		if err := r.deliver(ctx, sink, ev); err != nil {
			return false, err
		}
	}
	return more, nil
}

// deliver hands one event to the sink (or skips it, over the payload
// limit) and moves its shard's position past it.
func (r *reader) deliver(ctx context.Context, sink source.Sink, ev row) error {
	if ev.payload == nil {
		r.s.skipped("postgres source: payload over the limit, skipped", "id", ev.id, "topic", string(ev.topic), "bytes", ev.size, "limit", r.s.cfg.maxPayload())
	} else if err := r.s.publish(ctx, sink, string(ev.topic), ev.payload, r.originOf(ev), "id", ev.id); err != nil {
		return err
	}
	r.positions[ev.shard], r.moved[ev.shard] = ev.id, true
	if r.unstored == 0 {
		r.unstoredSince = r.s.now()
	}
	r.unstored++
	return nil
}

// setOrigin reads the outbox's lineage, so that every event goes out with
// its origin (lineage and name, shard, id): a forwarder that re-reads rows
// another node published before it died publishes none of them again.
func (r *reader) setOrigin(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, connectTimeout)
	defer cancel()
	var lineage string
	if err := r.conn.QueryRow(ctx, lineageSQL).Scan(&lineage); err != nil {
		return fmt.Errorf("reading the outbox's identity (pg_control_system, pg_database): %w", err)
	}
	r.origin = &source.Origin{Stream: lineage + ":" + r.s.cfg.Name}
	r.parts = make([]string, len(r.positions))
	for i := range r.parts {
		r.parts[i] = strconv.Itoa(i)
	}
	return nil
}

// originOf is ev's origin, or nil when the sink takes none. It reuses
// one Origin: the sink copies it.
func (r *reader) originOf(ev row) *source.Origin {
	if r.origin == nil {
		return nil
	}
	r.origin.Part, r.origin.Seq = r.parts[ev.shard], ev.id
	return r.origin
}

// flush stores the positions not stored yet. It runs even when ctx has
// ended (shutdown): what was published must not come again.
func (r *reader) flush(ctx context.Context) error {
	if err := r.store(ctx, r.moved); err != nil {
		return err
	}
	r.stored()
	return nil
}

// stored records that every handed-over position is stored.
func (r *reader) stored() {
	clear(r.moved)
	r.unstored = 0
}

// storeDue reports whether the next read must store the positions: they
// have been unstored for storeEvery, or half a batch is unstored (so the
// read, limited to the rest of the batch, keeps the unstored events at
// most one batch).
func (r *reader) storeDue(now time.Time) bool {
	return r.unstored > 0 && (r.unstored >= r.s.cfg.Batch/2 || now.Sub(r.unstoredSince) >= storeEvery)
}

// read fills r.rows with the next batch (at most Batch rows less those
// still unstored, stopping early past maxBatchBytes) and reports whether
// more rows may be waiting. When a store is due it goes in the same round
// trip, before the read; otherwise the read is a read-only transaction.
func (r *reader) read(ctx context.Context) (more bool, err error) {
	// A stop does not cut the read short: pgx closes a connection whose
	// query is interrupted, and the position could then not be stored
	// at the end of the session (flush), so the next reader would send
	// the last batch again. A read takes milliseconds; queryTimeout
	// bounds it.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), r.s.cfg.queryTimeout())
	defer cancel()
	r.rows, r.arena = r.rows[:0], r.arena[:0]
	r.dropBuffered()
	r.lastRead = r.s.now()
	var b pgx.Batch
	var shards []int16
	var last []int64
	if r.storeDue(r.s.now()) {
		shards, last = r.marked(r.moved)
		b.Queue(storeSQL, r.s.cfg.Name, shards, last)
	}
	limit := r.s.cfg.Batch
	if len(shards) == 0 {
		limit -= r.unstored // below half a batch unstored: storeDue
	}
	b.Queue(readSQL, r.positions, limit, r.s.cfg.maxPayload())
	br := r.conn.SendBatch(ctx, &b)
	defer br.Close()
	if len(shards) > 0 {
		if _, err := br.Exec(); err != nil {
			return false, fmt.Errorf("storing the position: %w", err)
		}
	}
	rows, err := br.Query()
	if err != nil {
		return false, fmt.Errorf("reading the outbox: %w", err)
	}
	defer rows.Close()
	var ev row
	var topic, payload []byte
	for rows.Next() && len(r.arena) < maxBatchBytes {
		if err := rows.Scan(&ev.id, &ev.shard, &topic, &payload, &ev.size); err != nil {
			return false, fmt.Errorf("reading the outbox: %w", err)
		}
		if ev.shard < 0 || ev.shard >= len(r.positions) {
			return false, &fatalError{fmt.Errorf("outbox row %d has shard %d, the schema has %d shards: the fraised schema was changed by hand", ev.id, ev.shard, len(r.positions))}
		}
		start := len(r.arena)
		r.arena = append(r.arena, topic...)
		ev.topic = r.arena[start:len(r.arena):len(r.arena)]
		ev.payload = nil
		if payload != nil {
			start = len(r.arena)
			r.arena = append(r.arena, payload...)
			ev.payload = r.arena[start:len(r.arena):len(r.arena)]
		}
		r.rows = append(r.rows, ev)
	}
	more = len(r.rows) == limit || len(r.arena) >= maxBatchBytes
	r.s.tableReads.Add(1)
	rows.Close()
	if err := rows.Err(); err != nil {
		return false, fmt.Errorf("reading the outbox: %w", err)
	}
	if err := br.Close(); err != nil {
		return false, fmt.Errorf("reading the outbox: %w", err)
	}
	// The store and the read are one implicit transaction: the positions
	// are stored only now, so a failed read leaves them to flush.
	if len(shards) > 0 {
		r.stored()
	}
	r.readWanted, r.tailing = more, !more
	return more, nil
}

// doneCtx is an ended context: WaitForNotification with it returns a
// notification pgx has already buffered, or at once without reading.
var doneCtx = func() context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	return ctx
}()

// dropBuffered drops the notifications pgx received while earlier queries
// ran: their transactions committed before this read starts, so the read
// covers them (those carrying an event too).
func (r *reader) dropBuffered() {
	for {
		if n, _ := r.conn.WaitForNotification(doneCtx); n == nil {
			return
		}
	}
}

// take reads one notification and returns the event it carries when it
// is to be delivered now (see tailing). A notification that carries no
// event (a large one's, or one naming no shard: an older install's empty
// payload, a NOTIFY sent by hand) ends tailing and wants a read; so does a
// carried event while not tailing. A carried event at or below its shard's
// position was delivered already.
func (r *reader) take(payload string) (row, bool) {
	n, ok := parseNote(payload)
	switch {
	case !ok || !n.carried || n.shard >= len(r.positions):
		r.readWanted, r.tailing = true, false
	case !r.signed(&n):
		r.readWanted, r.tailing = true, false
	case n.id <= r.positions[n.shard]:
	case !r.tailing:
		r.readWanted = true
	default:
		r.note = append(append(r.note[:0], n.topic...), n.payload...)
		ev := row{id: n.id, shard: n.shard, topic: r.note[:len(n.topic):len(n.topic)], size: len(n.payload)}
		if ev.size <= r.s.cfg.maxPayload() {
			ev.payload = r.note[len(n.topic):]
		}
		return ev, true
	}
	return row{}, false
}

// signed reports whether fraised.publish carried n (see carryKey); a
// notification that claims to carry an event but is not signed so is
// logged (someone else NOTIFYs on the channel) and only wakes a read.
func (r *reader) signed(n *note) bool {
	ok, buf := n.signedBy(r.carryKey, r.macBuf)
	r.macBuf = buf
	if !ok && r.carryKey != "" {
		r.s.skipped("postgres source: a NOTIFY on "+notifyChannel+" carried an event fraised.publish did not sign; ignored, the table is read instead (another session notifies on the channel)",
			"shard", n.shard, "id", n.id)
	}
	return ok
}

// marked lists the shards marked in mask with their positions.
func (r *reader) marked(mask []bool) (shards []int16, last []int64) {
	for s, m := range mask {
		if m {
			shards, last = append(shards, int16(s)), append(last, r.positions[s])
		}
	}
	return shards, last
}

// store saves the positions of the shards marked in moved, even when ctx
// has ended.
func (r *reader) store(ctx context.Context, moved []bool) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), r.s.cfg.queryTimeout())
	defer cancel()
	shards, last := r.marked(moved)
	if len(shards) == 0 {
		return nil
	}
	if _, err := r.conn.Exec(ctx, storeSQL, r.s.cfg.Name, shards, last); err != nil {
		return fmt.Errorf("storing the position: %w", err)
	}
	return nil
}

// wait blocks until a NOTIFY arrives, the poll of every shard falls due
// (Poll after lastRead), or a position store does (storeEvery). It delivers
// the event a notification carries when it can (see take).
func (r *reader) wait(ctx context.Context, sink source.Sink) error {
	now := r.s.now()
	d := r.s.cfg.Poll - now.Sub(r.lastRead)
	if r.unstored > 0 {
		d = min(d, storeEvery-now.Sub(r.unstoredSince))
	}
	if d <= 0 {
		return nil // the next read polls or stores
	}
	wctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	n, err := r.conn.WaitForNotification(wctx)
	if err != nil && wctx.Err() != nil && ctx.Err() == nil && !r.conn.IsClosed() {
		return nil // a poll or a position store fell due: the read does it
	}
	if err != nil {
		return fmt.Errorf("waiting for %s: %w", notifyChannel, err)
	}
	if ev, ok := r.take(n.Payload); ok {
		return r.deliver(ctx, sink, ev)
	}
	return nil
}

// maybePrune applies retention once per pruneEvery.
func (r *reader) maybePrune(ctx context.Context) error {
	c := r.s.cfg
	if (c.RetainAge == 0 && c.RetainCount == 0) || time.Since(r.lastPrune) < r.s.pruneEvery {
		return nil
	}
	r.lastPrune = time.Now()
	deleted, err := prune(ctx, r.conn, c.RetainAge, c.RetainCount, c.queryTimeout())
	if err != nil {
		return err
	}
	if deleted > 0 {
		r.s.log.Debug("postgres source: retention deleted events", "rows", deleted)
	}
	return nil
}

// prune runs fraised.prune until it deletes less than pruneRows, at most
// pruneCalls times, and returns how many rows it deleted.
func prune(ctx context.Context, conn *pgx.Conn, age time.Duration, count int64, timeout time.Duration) (int64, error) {
	var total int64
	for range pruneCalls {
		if ctx.Err() != nil {
			break // stopping: the next round prunes the rest
		}
		// Not cut by a stop either (see read): at most one call runs on.
		qctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), timeout)
		var n int64
		err := conn.QueryRow(qctx, pruneSQL, age.Milliseconds(), count, pruneRows).Scan(&n)
		cancel()
		if err != nil {
			return total, fmt.Errorf("applying retention (fraised.prune): %w", err)
		}
		total += n
		if n < pruneRows {
			break
		}
	}
	return total, nil
}

func allShards(n int) []bool {
	m := make([]bool, n)
	for i := range m {
		m[i] = true
	}
	return m
}
