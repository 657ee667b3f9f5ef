package broker

import (
	"context"
	"errors"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fraised/fraised/dispatch"
	"github.com/fraised/fraised/internal/outbox"
)

func newDispatcher(t *testing.T) *dispatch.Dispatcher {
	t.Helper()
	log := slog.New(slog.DiscardHandler)
	w, err := outbox.NewWriter(log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Stop)
	d := dispatch.New(dispatch.Config{RingSize: 64, RingBytes: 1 << 20, MaxOutbound: 1 << 20, Writer: w, Log: log})
	go d.Run()
	t.Cleanup(d.Stop)
	return d
}

func TestMemoryPublishesIntoTheDispatcher(t *testing.T) {
	m := NewMemory()
	if _, err := m.Publish(context.Background(), []byte("t"), []byte(`{}`)); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("publish before Start: err = %v, want ErrUnavailable", err)
	}
	d := newDispatcher(t)
	if err := m.Start(FeedInlet{Feed: dispatch.NewFeed(d)}); err != nil {
		t.Fatal(err)
	}
	const n = 500 // several times the ring: Publish waits for room
	for i := range n {
		r, err := m.Publish(context.Background(), []byte("t"), []byte(`{"a":1}`))
		if err != nil || r.Receivers != 1 {
			t.Fatalf("publish %d = %+v, %v", i, r, err)
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for d.Stats().Published != n {
		if time.Now().After(deadline) {
			t.Fatalf("dispatched %d of %d", d.Stats().Published, n)
		}
		time.Sleep(time.Millisecond)
	}
	m.Stop()
	if _, err := m.Publish(context.Background(), []byte("t"), []byte(`{}`)); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("publish after Stop: err = %v, want ErrUnavailable", err)
	}
}

// blockingBroker's Publish waits until release closes.
type blockingBroker struct {
	Memory
	release chan struct{}
	calls   atomic.Int64
}

func (b *blockingBroker) Publish(ctx context.Context, _, _ []byte) (Receipt, error) {
	b.calls.Add(1)
	select {
	case <-b.release:
		return Receipt{Receivers: 2}, nil
	case <-ctx.Done():
		return Receipt{}, ctx.Err()
	}
}

// TestAsyncRefusesPastItsQueue: with every worker blocked and the queue
// full, Go refuses at once; released, every accepted publish is answered
// exactly once.
func TestAsyncRefusesPastItsQueue(t *testing.T) {
	b := &blockingBroker{release: make(chan struct{})}
	a := NewAsync(b)
	var answered atomic.Int64
	done := func(r Receipt, err error) {
		if err != nil || r.Receivers != 2 {
			t.Errorf("answer = %+v, %v", r, err)
		}
		answered.Add(1)
	}
	accepted := 0
	start := time.Now()
	for range AsyncWorkers + AsyncQueue + 10 {
		if a.Go([]byte("t"), []byte(`{}`), done) {
			accepted++
		}
		for accepted <= AsyncWorkers && b.calls.Load() < int64(accepted) && time.Since(start) < 10*time.Second {
			time.Sleep(time.Millisecond) // let the workers take the first jobs
		}
	}
	if accepted != AsyncWorkers+AsyncQueue {
		t.Fatalf("accepted %d publishes, want %d workers + %d queued", accepted, AsyncWorkers, AsyncQueue)
	}
	close(b.release)
	a.Close()
	if got := answered.Load(); got != int64(accepted) {
		t.Fatalf("answered %d of %d", got, accepted)
	}
	if a.Go([]byte("t"), []byte(`{}`), done) {
		t.Fatal("Go after Close accepted a publish")
	}
	a.Close() // twice is fine
}
