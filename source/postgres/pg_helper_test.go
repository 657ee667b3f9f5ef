package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/fraised/fraised/internal/pgtest"
	"github.com/fraised/fraised/source"
)

// A real PostgreSQL for the package's tests (internal/pgtest), started the
// first time a test needs it, stopped by TestMain. Each test gets its own
// database.

func TestMain(m *testing.M) {
	code := m.Run()
	pgtest.StopShared()
	os.Exit(code)
}

// dbSeq numbers the databases and roles the tests name themselves.
var dbSeq atomic.Int64

// needPG returns the shared server (see pgtest.Need).
func needPG(t testing.TB) *pgtest.Server { return pgtest.Need(t) }

// newDB creates an empty database with the fraised schema installed and
// returns its URL.
func newDB(t testing.TB) string {
	t.Helper()
	u := needPG(t).NewDatabase(t)
	if err := Install(context.Background(), connect(t, u)); err != nil {
		t.Fatalf("Install: %v", err)
	}
	return u
}

// connect opens an application connection, closed when the test ends.
func connect(t testing.TB, url string) *pgx.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatalf("connecting to %s: %v", url, err)
	}
	t.Cleanup(func() { c.Close(context.Background()) })
	return c
}

func exec1(t testing.TB, c *pgx.Conn, sql string, args ...any) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := c.Exec(ctx, sql, args...); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

// event is what the fake sink saw.
type event struct {
	topic   string
	payload []byte
	at      time.Time
}

// fakeSink records events, refusing (like the server) an empty or long topic
// and a payload that is not a JSON object. It is the one stand-in of these
// tests: the server wiring comes later.
type fakeSink struct {
	mu      sync.Mutex
	events  []event
	refused int
	onEvent func(topic string, payload []byte) // optional, called before recording
}

var _ source.Sink = (*fakeSink)(nil)

func (f *fakeSink) Publish(ctx context.Context, topic string, payload []byte) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	var obj map[string]any
	if topic == "" || len(topic) > maxTopicLen || json.Unmarshal(payload, &obj) != nil || obj == nil {
		f.mu.Lock()
		f.refused++
		f.mu.Unlock()
		return fmt.Errorf("fake sink: %w", source.ErrInvalid)
	}
	if f.onEvent != nil {
		f.onEvent(topic, payload)
	}
	f.mu.Lock()
	f.events = append(f.events, event{topic: topic, payload: append([]byte(nil), payload...), at: time.Now()})
	f.mu.Unlock()
	return nil
}

func (f *fakeSink) refusedCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.refused
}

func (f *fakeSink) snapshot() []event {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]event(nil), f.events...)
}

// waitN waits (generously) until at least n events arrived and returns them.
func (f *fakeSink) waitN(t testing.TB, n int, within time.Duration) []event {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		ev := f.snapshot()
		if len(ev) >= n {
			return ev
		}
		if time.Now().After(deadline) {
			t.Fatalf("got %d events in %s, want %d", len(ev), within, n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// runSource parses url, starts the source and returns it with a stop
// function that cancels it and waits for Run to return (its error).
func runSource(t testing.TB, url string, sink source.Sink) (*Source, func() error) {
	t.Helper()
	cfg, err := ParseURL(url)
	if err != nil {
		t.Fatalf("ParseURL: %v", err)
	}
	return runConfig(t, cfg, sink)
}

func runConfig(t testing.TB, cfg *Config, sink source.Sink) (*Source, func() error) {
	t.Helper()
	return runPrepared(t, cfg, sink, nil)
}

// runPrepared is runConfig with prep (if not nil) applied to the source
// before it runs (a test's clock, say).
func runPrepared(t testing.TB, cfg *Config, sink source.Sink, prep func(*Source)) (*Source, func() error) {
	t.Helper()
	src := New(cfg, nil)
	if prep != nil {
		prep(src)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- src.Run(ctx, sink) }()
	var once sync.Once
	var runErr error
	stop := func() error {
		once.Do(func() {
			cancel()
			select {
			case runErr = <-done:
			case <-time.After(60 * time.Second):
				runErr = errors.New("Run did not return within 60s of cancel")
			}
		})
		return runErr
	}
	t.Cleanup(func() { _ = stop() })
	return src, stop
}

// runHealthy runs a source on url into a new fakeSink and waits until it
// is healthy.
func runHealthy(t testing.TB, url string) (*fakeSink, *Source) {
	t.Helper()
	sink := &fakeSink{}
	src, _ := runSource(t, url, sink)
	waitHealthy(t, src)
	return sink, src
}

// runClean is runHealthy for a run that must end cleanly: Run's error
// when the test stops it fails the test. prep is as for runPrepared.
func runClean(t *testing.T, url string, prep func(*Source)) *fakeSink {
	t.Helper()
	cfg, err := ParseURL(url)
	if err != nil {
		t.Fatalf("ParseURL: %v", err)
	}
	sink := &fakeSink{}
	src, stop := runPrepared(t, cfg, sink, prep)
	t.Cleanup(func() {
		if err := stop(); err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	waitHealthy(t, src)
	return sink
}

// waitHealthy waits until the source reports healthy.
func waitHealthy(t testing.TB, src *Source) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for src.Healthy() != nil {
		if time.Now().After(deadline) {
			t.Fatalf("source not healthy after 30s: %v", src.Healthy())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// publish runs fraised.publish in its own transaction and returns the id.
func publish(t testing.TB, c *pgx.Conn, topic, payload string) int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var id int64
	if err := c.QueryRow(ctx, "SELECT fraised.publish($1, $2::jsonb)", topic, payload).Scan(&id); err != nil {
		t.Fatalf("fraised.publish(%q): %v", topic, err)
	}
	return id
}
