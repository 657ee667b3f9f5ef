package server_test

import (
	"context"
	"testing"

	"github.com/fraised/fraised/server"
)

// TestSinkPublishAllocatesNothing: a Publish that finds room in the ring
// allocates nothing (the event and the publisher are pooled), counting the
// dispatcher's work on the event.
func TestSinkPublishAllocatesNothing(t *testing.T) {
	if server.RaceEnabled {
		t.Skip("the race detector makes sync.Pool drop items; `make unit` runs this without -race")
	}
	s := startServer(t, nil)
	c := connect(t, s.opts.Listen)
	c.subscribe("1", eventsQuery, map[string]any{"t": "alloc"})
	s.waitSubs(t, 1)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	payload := []byte(`{"seq":1,"body":"x"}`)
	go func() { // the subscriber reads (into one buffer: AllocsPerRun counts this goroutine too), so its outbox never grows
		buf := make([]byte, 64<<10)
		for {
			if _, err := c.conn.Read(buf); err != nil {
				return
			}
		}
	}()
	// Warm the pools with more events than one publisher may have in
	// flight (a dispatcher batch, 1024), and let the dispatcher put them
	// all back.
	const warm = 5000
	for range warm {
		if err := s.Publish(ctx, "alloc", payload); err != nil {
			t.Fatal(err)
		}
	}
	waitUntil(t, "the warm-up events are dispatched", func() bool { return s.Stats().Published == warm })
	if n := testing.AllocsPerRun(2000, func() { _ = s.Publish(ctx, "alloc", payload) }); n > 0.01 {
		t.Fatalf("Publish allocates %.3f times per event, want 0", n)
	}
}
