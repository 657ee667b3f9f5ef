package postgres

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fraised/fraised/internal/backoff"
)

func TestNotInstalledIsFatal(t *testing.T) {
	s := needPG(t)
	name := fmt.Sprintf("bare_%d", dbSeq.Add(1))
	exec1(t, connect(t, s.URL("postgres")), "CREATE DATABASE "+name)
	cfg, err := ParseURL(s.URL(name))
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- New(cfg, nil).Run(context.Background(), &fakeSink{}) }()
	select {
	case err := <-done:
		if !errors.Is(err, ErrNotInstalled) || !strings.Contains(err.Error(), "fraised pg install") {
			t.Fatalf("Run on a database without the schema: %v, want ErrNotInstalled saying what to run", err)
		}
	case <-time.After(within):
		t.Fatal("Run kept retrying on a database without the fraised schema")
	}
}

func TestFatalErrorStaysInHealth(t *testing.T) {
	url := newDB(t)
	exec1(t, connect(t, url), "UPDATE fraised.meta SET shards = 0")
	cfg, _ := ParseURL(url)
	src := New(cfg, nil)
	if err := src.Run(context.Background(), &fakeSink{}); err == nil || !strings.Contains(err.Error(), "0 shards") {
		t.Fatalf("Run with fraised.meta.shards = 0: %v", err)
	}
	if err := src.Healthy(); err == nil || !strings.Contains(err.Error(), "stopped: ") || !strings.Contains(err.Error(), "0 shards") {
		t.Fatalf("health after a fatal error: %v, want the reason", err)
	}
}

func TestInstallConfigOnFreshDatabase(t *testing.T) {
	s := needPG(t)
	name := fmt.Sprintf("fresh_%d", dbSeq.Add(1))
	exec1(t, connect(t, s.URL("postgres")), "CREATE DATABASE "+name)
	cfg, err := ParseURL(s.URL(name))
	if err != nil {
		t.Fatal(err)
	}
	for range 2 { // a second install changes nothing
		if err := InstallConfig(context.Background(), cfg); err != nil {
			t.Fatalf("InstallConfig: %v", err)
		}
	}
	var v, shards int
	if err := connect(t, s.URL(name)).QueryRow(context.Background(), "SELECT version, shards FROM fraised.meta").Scan(&v, &shards); err != nil || v != SchemaVersion || shards != 16 {
		t.Fatalf("fraised.meta: version %d, shards %d (%v)", v, shards, err)
	}
}

func TestNewerSchemaRefused(t *testing.T) {
	url := newDB(t)
	app := connect(t, url)
	exec1(t, app, "UPDATE fraised.meta SET version = 99")
	if err := Install(context.Background(), app); err == nil || !strings.Contains(err.Error(), "upgrade fraised") {
		t.Fatalf("Install over a newer schema: %v, want 'upgrade fraised'", err)
	}
	cfg, _ := ParseURL(url)
	err := New(cfg, nil).Run(context.Background(), &fakeSink{})
	if err == nil || !strings.Contains(err.Error(), "upgrade fraised") {
		t.Fatalf("Run over a newer schema: %v, want 'upgrade fraised'", err)
	}
}

func TestInstallIsIdempotentAndConcurrent(t *testing.T) {
	url := newDB(t)
	app := connect(t, url)
	id := publish(t, app, "kept", `{"a": 1}`)
	var wg sync.WaitGroup
	errs := make(chan error, 3)
	for range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := connect(t, url)
			errs <- Install(context.Background(), c)
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("concurrent Install: %v", err)
		}
	}
	var n int
	if err := app.QueryRow(context.Background(), "SELECT count(*) FROM fraised.outbox WHERE id = $1", id).Scan(&n); err != nil || n != 1 {
		t.Fatalf("the event published before reinstalling: %d rows (%v), want 1", n, err)
	}
}

func TestSameNameSecondReaderIsUnhealthy(t *testing.T) {
	url := newDB(t)
	a, b, c := &fakeSink{}, &fakeSink{}, &fakeSink{}
	srcA, _ := runSource(t, url+"&name=node1", a)
	waitHealthy(t, srcA)
	srcB, _ := runSource(t, url+"&name=node1", b)
	srcC, _ := runSource(t, url+"&name=node2", c)
	waitHealthy(t, srcC)
	deadline := time.Now().Add(within)
	for {
		err := srcB.Healthy()
		if err != nil && strings.Contains(err.Error(), "another connection reads as name=node1") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("second reader named node1: health %v, want 'another connection reads as name=node1'", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	publish(t, connect(t, url), "t", `{"seq": 0}`)
	a.waitN(t, 1, within)
	c.waitN(t, 1, within) // each node reads for itself
	if len(b.snapshot()) != 0 {
		t.Fatal("the refused reader delivered events")
	}
}

func TestRetention(t *testing.T) {
	url := newDB(t)
	app := connect(t, url)
	for i := range 30 {
		publish(t, app, "t", fmt.Sprintf(`{"seq": %d}`, i))
	}
	exec1(t, app, "UPDATE fraised.outbox SET created_at = now() - interval '2 hours' WHERE id <= 5")
	ctx := context.Background()
	if n, err := prune(ctx, app, time.Hour, 0, within); err != nil || n != 5 {
		t.Fatalf("prune by age: %d (%v), want 5", n, err)
	}
	if n, err := prune(ctx, app, 0, 10, within); err != nil || n != 15 {
		t.Fatalf("prune by count: %d (%v), want 15", n, err)
	}
	var left, minID int64
	if err := app.QueryRow(ctx, "SELECT count(*), min(id) FROM fraised.outbox").Scan(&left, &minID); err != nil || left != 10 || minID != 21 {
		t.Fatalf("after pruning: %d rows from id %d (%v), want the newest 10 from id 21", left, minID, err)
	}
	// A reader that had not read them hears of the gap, then reads the rest.
	var logs bytes.Buffer
	cfg, _ := ParseURL(url + "&start=earliest&name=late")
	sink := &fakeSink{}
	src := New(cfg, slog.New(slog.NewTextHandler(&syncWriter{w: &logs}, nil)))
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- src.Run(rctx, sink) }()
	ev := sink.waitN(t, 10, within)
	cancel()
	<-done
	if !strings.Contains(string(ev[0].payload), `"seq": 20`) {
		t.Fatalf("first event after pruning %s, want seq 20", ev[0].payload)
	}
	if !strings.Contains(logs.String(), "retention deleted events this node had not read") {
		t.Fatalf("no gap warning in the log:\n%s", logs.String())
	}
}

func TestRetentionRunsInSource(t *testing.T) {
	url := newDB(t)
	app := connect(t, url)
	cfg, _ := ParseURL(url + "&retain_count=5&poll=20ms")
	sink := &fakeSink{}
	src := New(cfg, nil)
	src.pruneEvery = 50 * time.Millisecond
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { _ = src.Run(ctx, sink) }()
	waitHealthy(t, src)
	for i := range 20 {
		publish(t, app, "t", fmt.Sprintf(`{"seq": %d}`, i))
	}
	sink.waitN(t, 20, within)
	deadline := time.Now().Add(within)
	for {
		var n int
		if err := app.QueryRow(ctx, "SELECT count(*) FROM fraised.outbox").Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n == 5 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d rows left, want retain_count=5", n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

type syncWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}

// TestNetworkDropLosesNothing runs the source through a TCP proxy that first
// goes silent (packets vanish, nothing is closed) and later drops every
// connection, while rows are committed directly.
func TestNetworkDropLosesNothing(t *testing.T) {
	const rows = 300
	url := newDB(t)
	p := newProxy(t, fmt.Sprintf("127.0.0.1:%d", needPG(t).Port))
	via := strings.Replace(url, fmt.Sprintf(":%d/", needPG(t).Port), fmt.Sprintf(":%d/", p.port()), 1)
	sink := &fakeSink{}
	src, _ := runSource(t, via+"&poll=50ms&query_timeout=500ms&batch=20", sink)
	waitHealthy(t, src)
	app := connect(t, url)
	for i := range rows / 3 {
		publish(t, app, "seq", fmt.Sprintf(`{"seq": %d}`, i))
	}
	sink.waitN(t, rows/3, within)

	p.setSilent(true)
	for i := rows / 3; i < 2*rows/3; i++ {
		publish(t, app, "seq", fmt.Sprintf(`{"seq": %d}`, i))
	}
	deadline := time.Now().Add(within)
	for src.Healthy() == nil { // noticed by query_timeout, not by TCP
		if time.Now().After(deadline) {
			t.Fatal("the source did not notice the silent connection")
		}
		time.Sleep(10 * time.Millisecond)
	}
	p.dropAll() // what the server's keepalive would do to its side
	p.setSilent(false)
	for i := 2 * rows / 3; i < rows; i++ {
		publish(t, app, "seq", fmt.Sprintf(`{"seq": %d}`, i))
	}
	sink.waitN(t, rows, within)
	time.Sleep(200 * time.Millisecond)
	assertSeq(t, sink.snapshot(), rows)
	waitHealthy(t, src)
}

// proxy forwards loopback TCP connections to a target; it can go silent
// (swallow bytes in both directions) and drop every connection.
type proxy struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	silent bool
	conns  []net.Conn
}

func newProxy(t *testing.T, target string) *proxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{ln: ln, target: target}
	t.Cleanup(func() { ln.Close(); p.dropAll() })
	go p.accept()
	return p
}

func (p *proxy) port() int { return p.ln.Addr().(*net.TCPAddr).Port }

func (p *proxy) accept() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		up, err := net.Dial("tcp", p.target)
		if err != nil {
			c.Close()
			continue
		}
		p.mu.Lock()
		p.conns = append(p.conns, c, up)
		p.mu.Unlock()
		go p.pipe(c, up)
		go p.pipe(up, c)
	}
}

func (p *proxy) pipe(dst, src net.Conn) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if err != nil {
			dst.Close()
			return
		}
		p.mu.Lock()
		silent := p.silent
		p.mu.Unlock()
		if silent {
			continue
		}
		if _, err := dst.Write(buf[:n]); err != nil {
			src.Close()
			return
		}
	}
}

func (p *proxy) setSilent(v bool) {
	p.mu.Lock()
	p.silent = v
	p.mu.Unlock()
}

func (p *proxy) dropAll() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}

func TestHealthyReportsOutage(t *testing.T) {
	url := newDB(t)
	p := newProxy(t, fmt.Sprintf("127.0.0.1:%d", needPG(t).Port))
	via := strings.Replace(url, fmt.Sprintf(":%d/", needPG(t).Port), fmt.Sprintf(":%d/", p.port()), 1)
	src, _ := runSource(t, via, &fakeSink{})
	waitHealthy(t, src)
	p.ln.Close() // no new connections from now on
	p.dropAll()
	deadline := time.Now().Add(within)
	for {
		err := src.Healthy()
		if err != nil && strings.Contains(err.Error(), "since") && strings.Contains(err.Error(), "connecting") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("health during an outage: %v, want a connecting error with its start time", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestBackoff(t *testing.T) {
	b := backoff.Backoff{Min: minBackoff, Max: maxBackoff}
	var waits []time.Duration
	for range 10 {
		waits = append(waits, retryWait(&b, time.Second))
	}
	if waits[0] < minBackoff/2 || waits[0] > minBackoff {
		t.Fatalf("first wait %s, want %s..%s", waits[0], minBackoff/2, minBackoff)
	}
	if last := waits[len(waits)-1]; last < maxBackoff/2 || last > maxBackoff {
		t.Fatalf("wait after 10 failures %s, want %s..%s", last, maxBackoff/2, maxBackoff)
	}
	if w := retryWait(&b, stableSession+time.Second); w > minBackoff {
		t.Fatalf("wait after a stable session %s, want at most %s", w, minBackoff)
	}
}

func TestServerKeepalivesRequested(t *testing.T) {
	url := newDB(t)
	cfg, _ := ParseURL(url)
	conn, err := New(cfg, nil).connect(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	for k, want := range serverKeepalives {
		var got string
		if err := conn.QueryRow(context.Background(), "SHOW "+k).Scan(&got); err != nil || got != want {
			t.Errorf("%s = %q (%v), want %s", k, got, err, want)
		}
	}
	cfg, _ = ParseURL(url + "&tcp_keepalives_idle=77")
	conn2, err := New(cfg, nil).connect(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer conn2.Close(context.Background())
	var got string
	if err := conn2.QueryRow(context.Background(), "SHOW tcp_keepalives_idle").Scan(&got); err != nil || got != "77" {
		t.Errorf("tcp_keepalives_idle from the URL: %q (%v), want 77", got, err)
	}
}

// TestPollingFallback: a row whose NOTIFY never came (written straight into
// the outbox by its owner) is read by the next poll.
func TestPollingFallback(t *testing.T) {
	url := newDB(t)
	sink := &fakeSink{}
	src, _ := runSource(t, url+"&poll=50ms", sink)
	waitHealthy(t, src)
	exec1(t, connect(t, url), `INSERT INTO fraised.outbox (shard, topic, payload) VALUES (0, 'quiet', '{"seq": 0}')`)
	sink.waitN(t, 1, within)
	assertSeq(t, sink.snapshot(), 1)
}

// TestPublishersDoNotDeadlock: transactions that publish several events each,
// interleaved across connections, never deadlock on the shard locks.
func TestPublishersDoNotDeadlock(t *testing.T) {
	const writers, txs, perTx = 6, 20, 3
	url := newDB(t)
	sink, _ := runHealthy(t, url)
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for w := range writers {
		c := connect(t, url)
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx := context.Background()
			for i := range txs {
				tx, err := c.Begin(ctx)
				if err != nil {
					errs <- err
					return
				}
				for j := range perTx {
					topic := fmt.Sprintf("w%d.t%d", (w+j)%writers, j)
					if _, err := tx.Exec(ctx, "SELECT fraised.publish($1, jsonb_build_object('i', $2::int))", topic, i); err != nil {
						errs <- err
						return
					}
				}
				if err := tx.Commit(ctx); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("publisher: %v", err)
	}
	sink.waitN(t, writers*txs*perTx, within)
}

// TestInstallSQLByHandWithPsql applies the shipped file the way the README
// says an operator may, twice.
func TestInstallSQLByHandWithPsql(t *testing.T) {
	s := needPG(t)
	name := fmt.Sprintf("psql_%d", dbSeq.Add(1))
	exec1(t, connect(t, s.URL("postgres")), "CREATE DATABASE "+name)
	for range 2 {
		cmd := exec.Command(filepath.Join(s.Bin, "psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", s.URL(name), "-f", "sql/install.sql")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("psql -f sql/install.sql: %v\n%s", err, out)
		}
	}
	var v int
	if err := connect(t, s.URL(name)).QueryRow(context.Background(), "SELECT version FROM fraised.meta").Scan(&v); err != nil || v != SchemaVersion {
		t.Fatalf("after psql: version %d (%v)", v, err)
	}
}

func TestSkippedEventsLogThrottled(t *testing.T) {
	url := newDB(t)
	app := connect(t, url)
	for i := range 50 {
		publish(t, app, "bad", fmt.Sprintf(`{"seq": %d}`, i))
	}
	publish(t, app, "t", `{"seq": 0}`)
	var logs bytes.Buffer
	cfg, _ := ParseURL(url + "&start=earliest")
	sink := &refusingSink{fakeSink: &fakeSink{}, refuse: "bad"}
	src := New(cfg, slog.New(slog.NewTextHandler(&syncWriter{w: &logs}, nil)))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- src.Run(ctx, sink) }()
	sink.waitN(t, 1, within)
	cancel()
	<-done
	if n := sink.refusedN.Load(); n != 50 {
		t.Fatalf("refused %d, want 50", n)
	}
	if n := strings.Count(logs.String(), "event refused, skipped"); n != 1 {
		t.Fatalf("%d warnings for 50 refused events in a burst, want 1:\n%s", n, logs.String())
	}
}
