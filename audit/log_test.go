package audit

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
	"unsafe"
)

// syncBuffer is a bytes.Buffer safe to read while the writer goroutine
// writes; it signals each Write on wrote.
type syncBuffer struct {
	mu    sync.Mutex
	buf   bytes.Buffer
	wrote chan struct{}
}

func newSyncBuffer() *syncBuffer { return &syncBuffer{wrote: make(chan struct{}, 1)} }

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	select {
	case b.wrote <- struct{}{}:
	default:
	}
	return b.buf.Write(p)
}

func (b *syncBuffer) lines(t *testing.T) []map[string]any {
	t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	return parseLines(t, b.buf.Bytes())
}

// parseLines decodes JSON Lines, failing on any line that is not an object.
func parseLines(t *testing.T, data []byte) []map[string]any {
	t.Helper()
	var out []map[string]any
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("line %q is not JSON: %v", sc.Text(), err)
		}
		out = append(out, m)
	}
	return out
}

func TestRecordsWritten(t *testing.T) {
	at := time.Date(2025, 3, 1, 12, 0, 0, 123456789, time.FixedZone("CET", 3600))
	tests := []struct {
		name string
		rec  Record
		want map[string]any
	}{
		{"auth failed", Record{Time: at, Event: EventAuthFailed, Remote: "192.0.2.1:5555", Reason: "expired", ConnID: 7},
			map[string]any{"time": "2025-03-01T11:00:00.123456789Z", "event": "auth.failed", "remote": "192.0.2.1:5555", "reason": "expired", "conn_id": float64(7)}},
		{"subscribe accepted", Record{Time: at, Event: EventSubscribeAccepted, Subject: "alice", Operation: "Orders", Field: "orderUpdated", DocHash: "ab12", Topic: "orders"},
			map[string]any{"time": "2025-03-01T11:00:00.123456789Z", "event": "subscribe.accepted", "subject": "alice", "operation": "Orders", "field": "orderUpdated", "doc_hash": "ab12", "topic": "orders"}},
		{"hostile text", Record{Time: at, Event: EventSubscribeRefused, Operation: "x\"}\n{\"event\":\"auth.ok\"", Reason: "bad\xffutf8\u2028"},
			map[string]any{"time": "2025-03-01T11:00:00.123456789Z", "event": "subscribe.refused", "operation": "x\"}\n{\"event\":\"auth.ok\"", "reason": "bad\ufffdutf8\u2028"}},
	}
	out := newSyncBuffer()
	l := New(out, 0)
	for _, tt := range tests {
		l.Write(tt.rec)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	got := out.lines(t)
	if len(got) != len(tests) {
		t.Fatalf("%d lines, want %d", len(got), len(tests))
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if len(got[i]) != len(tt.want) {
				t.Fatalf("got %v, want %v", got[i], tt.want)
			}
			for k, v := range tt.want {
				if got[i][k] != v {
					t.Fatalf("%s = %#v, want %#v", k, got[i][k], v)
				}
			}
		})
	}
}

func TestWriteFillsTime(t *testing.T) {
	out := newSyncBuffer()
	l := New(out, 0)
	before := time.Now()
	l.Write(Record{Event: EventConnAccepted})
	l.Close()
	ts, err := time.Parse(time.RFC3339Nano, out.lines(t)[0]["time"].(string))
	if err != nil || ts.Before(before.Add(-time.Second)) {
		t.Fatalf("time %v, %v; want about now", ts, err)
	}
}

// blockingWriter blocks every Write until release is closed, and reports
// the first Write on entered.
type blockingWriter struct {
	entered chan struct{}
	release chan struct{}
	once    sync.Once
	out     syncBuffer
}

func (w *blockingWriter) Write(p []byte) (int, error) {
	w.once.Do(func() { close(w.entered) })
	<-w.release
	return w.out.Write(p)
}

func TestDropsWhenWriterBlocked(t *testing.T) {
	const queue, extra = 8, 5
	w := &blockingWriter{entered: make(chan struct{}), release: make(chan struct{}), out: syncBuffer{wrote: make(chan struct{}, 1)}}
	l := New(w, queue)
	l.Write(Record{Event: "first"})
	<-w.entered // the writer goroutine is now stuck in Write (first flush tick)
	for range queue + extra {
		l.Write(Record{Event: "queued"})
	}
	if got := l.Dropped(); got != extra {
		t.Fatalf("Dropped = %d, want %d", got, extra)
	}
	close(w.release)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if got := len(w.out.lines(t)); got != 1+queue {
		t.Fatalf("%d lines written, want %d", got, 1+queue)
	}
}

func TestCloseDrains(t *testing.T) {
	const n = 2000
	out := newSyncBuffer()
	l := New(out, n)
	for range n {
		l.Write(Record{Event: EventRateLimit, Reason: "inbound messages"})
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if got := len(out.lines(t)); got != n || l.Dropped() != 0 {
		t.Fatalf("%d lines, %d dropped; want %d, 0", got, l.Dropped(), n)
	}
}

func TestFlushesWithoutClose(t *testing.T) {
	out := newSyncBuffer()
	l := New(out, 0)
	defer l.Close()
	l.Write(Record{Event: EventSlowConsumer})
	select {
	case <-out.wrote: // the periodic flush wrote the record
	case <-time.After(10 * time.Second): // hang guard only
		t.Fatal("record never flushed")
	}
	if got := out.lines(t); len(got) != 1 || got[0]["event"] != EventSlowConsumer {
		t.Fatalf("got %v", got)
	}
}

func TestWriteAfterClose(t *testing.T) {
	l := New(newSyncBuffer(), 0)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l.Write(Record{Event: "late"})
	if l.Dropped() != 1 {
		t.Fatalf("Dropped = %d, want 1", l.Dropped())
	}
	if err := l.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

func TestNilLog(t *testing.T) {
	var l *Log
	l.Write(Record{Event: "x"})
	if l.Dropped() != 0 || l.Close() != nil {
		t.Fatal("nil Log is not a no-op")
	}
}

// failingWriter fails the first fails Writes.
type failingWriter struct {
	fails int
	out   syncBuffer
}

func (w *failingWriter) Write(p []byte) (int, error) {
	if w.fails > 0 {
		w.fails--
		return 0, errors.New("disk full")
	}
	return w.out.Write(p)
}

func TestWriteErrorCountsDrops(t *testing.T) {
	w := &failingWriter{fails: 1, out: syncBuffer{wrote: make(chan struct{}, 1)}}
	l := New(w, 0)
	l.Write(Record{Event: "a"})
	l.Write(Record{Event: "b"})
	for l.Dropped() == 0 { // wait for the failed flush
		time.Sleep(time.Millisecond)
	}
	l.Write(Record{Event: "c"})
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	got := w.out.lines(t)
	if l.Dropped() != 2 || len(got) != 1 || got[0]["event"] != "c" {
		t.Fatalf("dropped %d, lines %v; want 2 dropped and c written after recovery", l.Dropped(), got)
	}
}

func TestConcurrentWrites(t *testing.T) {
	const goroutines, each = 8, 300
	out := newSyncBuffer()
	l := New(out, 64)
	var wg sync.WaitGroup
	for range goroutines {
		wg.Go(func() {
			for range each {
				l.Write(Record{Event: EventConnAccepted, Remote: "198.51.100.7:1"})
			}
		})
	}
	wg.Wait()
	l.Close()
	if got := uint64(len(out.lines(t))) + l.Dropped(); got != goroutines*each {
		t.Fatalf("written+dropped = %d, want %d", got, goroutines*each)
	}
}

func TestOpenFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	for _, ev := range []string{"first", "second"} { // the second Open appends
		l, err := Open(path, 0)
		if err != nil {
			t.Fatal(err)
		}
		l.Write(Record{Event: ev})
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := parseLines(t, data); len(got) != 2 || got[0]["event"] != "first" || got[1]["event"] != "second" {
		t.Fatalf("file holds %v", got)
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v, want 0600", fi.Mode().Perm())
	}
}

func TestOpenErrors(t *testing.T) {
	_, err := Open(filepath.Join(t.TempDir(), "missing", "audit.jsonl"), 0)
	if err == nil || !strings.Contains(err.Error(), "missing") {
		t.Fatalf("err = %v, want one naming the path", err)
	}
}

func TestOpenStdout(t *testing.T) {
	for _, p := range []string{"-", "stdout"} {
		l, err := Open(p, 0)
		if err != nil {
			t.Fatal(err)
		}
		if l.w != os.Stdout || l.file != nil {
			t.Fatalf("Open(%q) does not write to stdout without owning it", p)
		}
		l.Close()
	}
}

// TestRecordEscapesLineBreakers pins the bytes: a field cannot end the line
// or the string, even for readers that split lines at U+2028 or U+2029.
func TestRecordEscapesLineBreakers(t *testing.T) {
	r := Record{Time: time.Unix(0, 0), Event: "x", Reason: "a\nb\r\u2028\u2029\"\\\x00\xff"}
	got := string(r.AppendJSON(nil))
	want := `{"time":"1970-01-01T00:00:00Z","event":"x","reason":"a\nb\r\u2028\u2029\"\\\u0000\ufffd"}` + "\n"
	if got != want {
		t.Fatalf("got  %q\nwant %q", got, want)
	}
}

// gateWriter blocks every Write until release is closed, telling entered
// when the first one starts.
type gateWriter struct {
	entered chan struct{}
	release chan struct{}
	once    sync.Once
	mu      sync.Mutex
	buf     bytes.Buffer
}

func (w *gateWriter) Write(p []byte) (int, error) {
	w.once.Do(func() { close(w.entered) })
	<-w.release
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.Write(p)
}

// TestWriteCopiesStrings: a record's strings may view a buffer the caller
// reuses at once (an event loop's read buffer); the line written later
// still holds what they said at Write.
func TestWriteCopiesStrings(t *testing.T) {
	w := &gateWriter{entered: make(chan struct{}), release: make(chan struct{})}
	l := New(w, 0)
	filler := Record{Event: "filler", Reason: strings.Repeat("x", flushSize)}
	l.Write(filler) // one record past flushSize: the writer flushes and blocks
	select {
	case <-w.entered:
	case <-time.After(10 * time.Second):
		t.Fatal("the log never flushed")
	}
	buf := []byte("OrderUpdates orderUpdated")
	view := unsafe.String(unsafe.SliceData(buf), len(buf))
	l.Write(Record{Event: EventSubscribeRefused, Operation: view[:12], Field: view[13:]}) // queued, not encoded yet
	copy(buf, "XXXXXXXXXXXXXXXXXXXXXXXXX")
	close(w.release)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(w.buf.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("%d lines, want 2", len(lines))
	}
	var got Record
	if err := json.Unmarshal([]byte(lines[1]), &struct {
		Operation *string
		Field     *string
	}{&got.Operation, &got.Field}); err != nil {
		t.Fatal(err)
	}
	if got.Operation != "OrderUpdates" || got.Field != "orderUpdated" {
		t.Fatalf("the record changed with the caller's buffer: %s", lines[1])
	}
}
