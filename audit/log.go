package audit

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// Tuning. A Record is about 160 bytes, so the default queue holds roughly
// 650 KiB; it absorbs a burst of a few thousand events (a reconnect storm)
// while the disk catches up.
const (
	DefaultQueue  = 4096
	flushInterval = 100 * time.Millisecond
	flushSize     = 64 << 10 // write once this much is buffered
	warnEvery     = 10 * time.Second
)

// Log is an append-only JSON Lines audit log written by one goroutine.
// Write never blocks: it enqueues the record, or counts a drop when the
// queue is full. Records are buffered and written at least every 100 ms,
// when 64 KiB are pending, and on Close. All methods are safe for
// concurrent use; a nil *Log discards everything.
type Log struct {
	ch      chan Record
	mu      sync.RWMutex // guards closed against Write racing Close
	closed  bool
	dropped atomic.Uint64
	w       io.Writer
	file    *os.File // set when Open created the file; closed by Close
	name    string   // for log lines
	done    chan struct{}
	err     error // first write error of the final flush, read after done
}

// Open opens an audit log at path, appending to it (created with mode 0600
// when missing). "-" or "stdout" logs to standard output. queue is the
// number of records that may wait for the disk (<= 0: DefaultQueue).
func Open(path string, queue int) (*Log, error) {
	if path == "-" || path == "stdout" {
		return newLog(os.Stdout, nil, "stdout", queue), nil
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("cannot open audit log %q: %w; check the directory exists and is writable", path, err)
	}
	return newLog(f, f, path, queue), nil
}

// New returns a Log writing to w, which stays the caller's: Close flushes
// but does not close it. queue as in Open.
func New(w io.Writer, queue int) *Log {
	return newLog(w, nil, fmt.Sprintf("%T", w), queue)
}

func newLog(w io.Writer, f *os.File, name string, queue int) *Log {
	if queue <= 0 {
		queue = DefaultQueue
	}
	l := &Log{ch: make(chan Record, queue), w: w, file: f, name: name, done: make(chan struct{})}
	go l.run()
	return l
}

// Write enqueues a copy of r, its strings included, without blocking; when
// the queue is full or the Log is closed, r is dropped and counted. r's
// strings may view memory the caller reuses once Write returns (an event
// loop's read buffer): the record is encoded later, on the Log's own
// goroutine. A zero r.Time is set to now. Safe for concurrent use, from
// event loops included; one allocation (the copied strings).
func (l *Log) Write(r Record) {
	if l == nil {
		return
	}
	if r.Time.IsZero() {
		r.Time = time.Now()
	}
	r.own()
	l.mu.RLock()
	defer l.mu.RUnlock()
	if l.closed {
		l.dropped.Add(1)
		return
	}
	select {
	case l.ch <- r:
	default:
		l.dropped.Add(1)
	}
}

// Dropped returns how many records were lost: queue full, written after
// Close, or lost to a failed write. Safe for concurrent use.
func (l *Log) Dropped() uint64 {
	if l == nil {
		return 0
	}
	return l.dropped.Load()
}

// Close stops accepting records, writes every queued one, and closes the
// file Open created (after an fsync). It returns the first error of that
// final flush or close. Later calls return nil. Safe for concurrent use.
func (l *Log) Close() error {
	if l == nil {
		return nil
	}
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil
	}
	l.closed = true
	close(l.ch)
	l.mu.Unlock()
	<-l.done
	if l.file == nil {
		return l.err
	}
	return errors.Join(l.err, l.file.Sync(), l.file.Close())
}

// writer is the state of the goroutine that owns the output.
type writer struct {
	l        *Log
	buf      []byte
	pending  uint64 // records in buf
	failed   uint64 // records lost since the last warning
	lastWarn time.Time
}

// run encodes queued records and flushes them until Close.
func (l *Log) run() {
	defer close(l.done)
	w := &writer{l: l, buf: make([]byte, 0, flushSize+1024)}
	tick := time.NewTicker(flushInterval)
	defer tick.Stop()
	for {
		select {
		case r, ok := <-l.ch:
			if !ok {
				l.err = w.flush()
				return
			}
			w.buf = r.AppendJSON(w.buf)
			w.pending++
			if len(w.buf) >= flushSize {
				w.flush()
			}
		case <-tick.C:
			w.flush()
		}
	}
}

// flush writes the buffered records; on error they are counted as dropped
// and a warning is logged at most every warnEvery.
func (w *writer) flush() error {
	if w.pending == 0 {
		return nil
	}
	_, err := w.l.w.Write(w.buf)
	if err != nil {
		w.l.dropped.Add(w.pending)
		w.warn(err)
	}
	w.buf, w.pending = w.buf[:0], 0
	return err
}

// warn logs a write failure, throttled so a full disk does not flood logs.
func (w *writer) warn(err error) {
	w.failed += w.pending
	if now := time.Now(); now.Sub(w.lastWarn) >= warnEvery {
		slog.Warn("audit: cannot write records; they are lost", "log", w.l.name, "lost", w.failed, "err", err)
		w.lastWarn, w.failed = now, 0
	}
}
