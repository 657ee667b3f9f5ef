package loadgen

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
)

// Publishing through PostgreSQL: the PG scenarios commit one row per
// transaction from pgWriters connections, through fraised.publish (outbox
// mode) or pg_notify (listen mode), and fraised reads them with --source.
// The send time of an event is taken just before its COMMIT is sent, so the
// latency is COMMIT to the subscriber's socket.

// Source modes of a scenario (Scenario.Source).
const (
	SourceOutbox = "pg-outbox" // fraised.publish, fraised --source ...?mode=outbox
	SourceListen = "pg-listen" // pg_notify, fraised --source ...?mode=listen
)

// pgWriters is the number of writer connections: one row per transaction
// needs several in flight to reach thousands of rows/s (each commit is a
// round trip and a WAL flush), as an application's connection pool would.
const pgWriters = 8

// pgQueryTimeout bounds each statement of a writer: a stuck database fails
// the run instead of hanging it.
const pgQueryTimeout = 30 * time.Second

// PGChannel is the NOTIFY channel of topic in listen mode ("bench.0" →
// "bench_0"); fraised's --source maps it back with channels=.
func PGChannel(topic string) string { return strings.ReplaceAll(topic, ".", "_") }

// pgSink commits each event as its own transaction from a pool of writers.
type pgSink struct {
	jobQueue
	listen bool
	wg     sync.WaitGroup
	conns  []*pgx.Conn

	replies, errs atomic.Int64
}

func dialPG(sh *shared, url, mode string) (*pgSink, error) {
	s := &pgSink{jobQueue: jobQueue{sh: sh, jobs: make(chan queuedJob, 4*pgWriters)}, listen: mode == SourceListen}
	for range pgWriters {
		ctx, cancel := context.WithTimeout(context.Background(), pgQueryTimeout)
		c, err := pgx.Connect(ctx, url)
		cancel()
		if err != nil {
			s.closeConns()
			return nil, fmt.Errorf("cannot connect the PostgreSQL writers: %w", err)
		}
		s.conns = append(s.conns, c)
	}
	for _, c := range s.conns {
		s.wg.Go(func() { s.work(c) })
	}
	return s, nil
}

// work commits the jobs, one transaction each.
func (s *pgSink) work(c *pgx.Conn) {
	sql := "SELECT fraised.publish($1, $2::jsonb)"
	if s.listen {
		sql = "SELECT pg_notify($1, $2)"
	}
	var ev []byte
	for j := range s.jobs {
		topic := string(s.sh.topics[j.topic])
		if s.listen {
			topic = PGChannel(topic)
		}
		ev = appendEvent(ev[:0], j.seq, unixSeconds(time.Now()))
		if err := s.commit(c, sql, topic, string(ev), j); err != nil {
			s.errs.Add(1)
			s.sh.noteErr("publish through PostgreSQL: " + err.Error())
			continue
		}
		s.replies.Add(1)
	}
}

// commit runs one transaction: BEGIN, the publish, then (with the event's
// send time taken) COMMIT.
func (s *pgSink) commit(c *pgx.Conn, sql, topic, payload string, j queuedJob) error {
	ctx, cancel := context.WithTimeout(context.Background(), pgQueryTimeout)
	defer cancel()
	tx, err := c.Begin(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(ctx, sql, topic, payload); err != nil {
		return err
	}
	s.leaving(j)
	return tx.Commit(ctx)
}

// acked counts committed rows; the deliveries are not reported (the
// database does not know them).
func (s *pgSink) acked() (int64, int64, int64) { return s.replies.Load(), 0, s.errs.Load() }

func (s *pgSink) close() error {
	close(s.jobs)
	s.wg.Wait()
	s.closeConns()
	return nil
}

func (s *pgSink) closeConns() {
	for _, c := range s.conns {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_ = c.Close(ctx)
		cancel()
	}
}
