package redis

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/fraised/fraised/internal/redistest"
	"github.com/fraised/fraised/internal/tcpproxy"
)

// TestSilentLinkFailsTheProbe: a proxy between one node and Redis stops
// forwarding bytes but keeps TCP open. The node's probe notices, Ready
// fails within 10 s, the node reconnects (a new connection is not frozen)
// and delivers the events it missed, in order, once.
func TestSilentLinkFailsTheProbe(t *testing.T) {
	r := redistest.Start(t)
	p, err := tcpproxy.Listen("127.0.0.1:0", r.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	// Default probe timings: the property is the 10 s.
	sub := startNode(t, "redis://"+p.Addr(), func(c *Config) { c.ProbeIdle, c.ProbeTimeout = 0, 0 })
	pub := startNode(t, r.URL(), nil)
	sub.TopicAdded("t")
	waitReady(t, sub, pub)
	subscribed(t, r, "t", 1)
	publish := func(from, to int) {
		for i := from; i < to; i++ {
			if _, err := pub.Publish(context.Background(), []byte("t"), fmt.Appendf(nil, `{"i":%d}`, i)); err != nil {
				t.Fatal(err)
			}
		}
	}
	publish(0, 10)
	eventually(t, 5*time.Second, func() error {
		if n := len(sub.in.events("t")); n != 10 {
			return fmt.Errorf("%d of 10 before the freeze", n)
		}
		return nil
	})
	p.Freeze()
	p.FreezeNew(true) // reconnects hang too, until Thaw
	frozenAt := time.Now()
	publish(10, 20) // lost on the frozen link
	eventually(t, 10*time.Second, func() error {
		if sub.Ready() == nil {
			return errors.New("still ready on a silent link")
		}
		return nil
	})
	if took := time.Since(frozenAt); took > 10*time.Second {
		t.Fatalf("not ready only %s after the link went silent", took)
	}
	publish(20, 30)
	p.Thaw()
	waitReady(t, sub)
	publish(30, 40)
	eventually(t, 10*time.Second, func() error {
		if n := len(sub.in.events("t")); n < 40 {
			return fmt.Errorf("%d of 40 after the reconnect", n)
		}
		return nil
	})
	checkContiguous(t, "subscriber", sub.in.events("t"), 40)
	if s := sub.Stats(); s.ProbeFailures == 0 || s.Repaired < 10 {
		t.Fatalf("stats %+v: want a probe failure and at least the 10 events published on the frozen link repaired", s)
	}
	if l := sub.losses.all(); len(l) > 0 {
		t.Fatalf("losses: %+v", l)
	}
}
