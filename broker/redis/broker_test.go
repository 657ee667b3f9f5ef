package redis

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/fraised/fraised/broker"
	"github.com/fraised/fraised/internal/redistest"
)

func newClient(t *testing.T, r *redistest.Server) *goredis.Client {
	t.Helper()
	c := goredis.NewClient(&goredis.Options{Addr: r.Addr, DisableIdentity: true, Protocol: 2})
	t.Cleanup(func() { c.Close() })
	return c
}

// TestOneOrderAcrossNodes: three nodes listening to one topic, events
// published concurrently through all three and directly with FCALL (as a
// non-Go backend would): every node receives every event once, at
// offsets 1..n, in the same order.
func TestOneOrderAcrossNodes(t *testing.T) {
	r := redistest.Start(t)
	nodes := []*node{startNode(t, r.URL(), nil), startNode(t, r.URL(), nil), startNode(t, r.URL(), nil)}
	for _, n := range nodes {
		n.TopicAdded("orders")
	}
	waitReady(t, nodes...)
	subscribed(t, r, "orders", 3)

	const perPublisher = 500
	direct := newClient(t, r)
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for p := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range perPublisher {
				payload := fmt.Sprintf(`{"p":%d,"i":%d}`, p, i)
				var err error
				if p < 3 {
					var rc broker.Receipt
					rc, err = nodes[p].Publish(context.Background(), []byte("orders"), []byte(payload))
					if err == nil && rc.Receivers != 3 {
						err = fmt.Errorf("publish answered %d receivers, want 3", rc.Receivers)
					}
				} else {
					err = direct.FCall(context.Background(), "fraised_publish",
						[]string{"fraised:m:orders", "fraised:s:orders"}, "fraised:c:orders", payload, 1000, 60000, 86400000).Err()
				}
				if err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	const total = 4 * perPublisher
	eventually(t, 10*time.Second, func() error {
		for i, n := range nodes {
			if got := len(n.in.events("orders")); got < total {
				return fmt.Errorf("node %d has %d of %d", i, got, total)
			}
		}
		return nil
	})
	first := nodes[0].in.events("orders")
	for i, n := range nodes {
		evs := n.in.events("orders")
		checkContiguous(t, fmt.Sprintf("node %d", i), evs, total)
		for j := range evs {
			if evs[j] != first[j] {
				t.Fatalf("node %d event %d = %+v, node 0 has %+v", i, j, evs[j], first[j])
			}
		}
		if l := n.losses.all(); len(l) > 0 {
			t.Fatalf("node %d reported losses %+v", i, l)
		}
	}
}

// TestInterestDrivesSubscriptions: a node subscribes only to topics with
// local interest and unsubscribes when the last subscriber leaves; a node
// without interest receives none of a topic's traffic.
func TestInterestDrivesSubscriptions(t *testing.T) {
	r := redistest.Start(t)
	a, b := startNode(t, r.URL(), nil), startNode(t, r.URL(), nil)
	waitReady(t, a, b)
	a.TopicAdded("only-a")
	subscribed(t, r, "only-a", 1)
	for range 10 {
		if _, err := b.Publish(context.Background(), []byte("only-a"), []byte(`{}`)); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, 5*time.Second, func() error {
		if n := len(a.in.events("only-a")); n != 10 {
			return fmt.Errorf("a has %d of 10", n)
		}
		return nil
	})
	if n := len(b.in.events("only-a")); n != 0 {
		t.Fatalf("node b without interest received %d events", n)
	}
	a.TopicRemoved("only-a")
	subscribed(t, r, "only-a", 0)
	// Coalesced churn ends subscribed once.
	for range 100 {
		b.TopicAdded("churn")
		b.TopicRemoved("churn")
	}
	b.TopicAdded("churn")
	subscribed(t, r, "churn", 1)
}

// TestPubSubKillIsRepaired: CLIENT KILL TYPE pubsub during a stream: the
// node reconnects, reads what it missed from the repair stream and
// delivers every event once, in order, with no loss reported.
func TestPubSubKillIsRepaired(t *testing.T) {
	r := redistest.Start(t)
	sub, pub := startNode(t, r.URL(), nil), startNode(t, r.URL(), nil)
	sub.TopicAdded("t")
	waitReady(t, sub, pub)
	subscribed(t, r, "t", 1)
	const total = 3000
	done := make(chan error, 1)
	go func() {
		for i := range total {
			if _, err := pub.Publish(context.Background(), []byte("t"), fmt.Appendf(nil, `{"i":%d}`, i)); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	for k := range 3 {
		eventually(t, 10*time.Second, func() error {
			if n := len(sub.in.events("t")); n < (k+1)*total/4 {
				return fmt.Errorf("%d events so far", n)
			}
			return nil
		})
		r.Do("CLIENT", "KILL", "TYPE", "pubsub")
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, func() error {
		if n := len(sub.in.events("t")); n < total {
			return fmt.Errorf("%d of %d", n, total)
		}
		return nil
	})
	checkContiguous(t, "subscriber", sub.in.events("t"), total)
	if l := sub.losses.all(); len(l) > 0 {
		t.Fatalf("losses reported: %+v", l)
	}
	if s := sub.Stats(); s.Reconnects < 3 || s.Repaired == 0 {
		t.Fatalf("after 3 kills mid-stream: stats %+v, want 3 reconnects and repaired events", s)
	}
	waitReady(t, sub)
}

// TestOutageFailsPublishesFast: while Redis is down a publish fails at
// once with ErrUnavailable and Ready says so; once it is back the node
// is ready again and publishes flow.
func TestOutageFailsPublishesFast(t *testing.T) {
	r := redistest.Start(t)
	n := startNode(t, r.URL(), nil)
	n.TopicAdded("t")
	waitReady(t, n)
	for range 3 { // pooled connections (on a topic of its own: "t" stays in one epoch)
		if _, err := n.Publish(context.Background(), []byte("warm"), []byte(`{}`)); err != nil {
			t.Fatal(err)
		}
	}
	r.Kill()
	// At once, before the broker noticed: a pipeline that cannot connect
	// sent nothing, so its events are unavailable, not of unknown outcome.
	out0 := make([]broker.Result, 1)
	n.PublishBatch(context.Background(), []broker.Event{{Topic: []byte("warm"), Payload: []byte(`{}`)}}, out0)
	if !errors.Is(out0[0].Err, broker.ErrUnavailable) {
		t.Fatalf("batched publish just after Redis died: %v, want ErrUnavailable", out0[0].Err)
	}
	eventually(t, 10*time.Second, func() error {
		if n.Ready() == nil {
			return errors.New("still ready with Redis down")
		}
		return nil
	})
	start := time.Now()
	out := make([]broker.Result, 2)
	n.PublishBatch(context.Background(), []broker.Event{{Topic: []byte("t"), Payload: []byte(`{}`)}, {Topic: []byte("t"), Payload: []byte(`{}`)}}, out)
	for i, r := range out {
		if !errors.Is(r.Err, broker.ErrUnavailable) || errors.Is(r.Err, broker.ErrOutcomeUnknown) {
			t.Fatalf("batched publish %d during the outage: %v, want ErrUnavailable", i, r.Err)
		}
	}
	_, err := n.Publish(context.Background(), []byte("t"), []byte(`{}`))
	if !errors.Is(err, broker.ErrUnavailable) {
		t.Fatalf("publish during the outage: %v, want ErrUnavailable", err)
	}
	if took := time.Since(start); took > time.Second {
		t.Fatalf("publish during the outage took %s to fail", took)
	}
	r.Restart()
	waitReady(t, n)
	subscribed(t, r, "t", 1)
	if _, err := n.Publish(context.Background(), []byte("t"), []byte(`{"after":1}`)); err != nil {
		t.Fatalf("publish after the restart: %v", err)
	}
	eventually(t, 5*time.Second, func() error {
		if len(n.in.events("t")) != 1 {
			return errors.New("the event after the restart did not arrive")
		}
		return nil
	})
}

// TestRestartWithoutPersistenceReportsEpochChange: Redis restarted with
// its data lost mid-stream: the node reports the lost run
// (epoch_changed), and later events flow in the new epoch from offset 1.
func TestRestartWithoutPersistenceReportsEpochChange(t *testing.T) {
	r := redistest.Start(t)
	n := startNode(t, r.URL(), nil)
	n.TopicAdded("t")
	waitReady(t, n)
	subscribed(t, r, "t", 1)
	for i := range 5 {
		if _, err := n.Publish(context.Background(), []byte("t"), fmt.Appendf(nil, `{"i":%d}`, i)); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, 5*time.Second, func() error {
		if len(n.in.events("t")) != 5 {
			return errors.New("first run not delivered")
		}
		return nil
	})
	old := n.in.events("t")[0].pos.Epoch
	r.Restart()
	waitReady(t, n)
	subscribed(t, r, "t", 1)
	for i := range 3 {
		if _, err := n.Publish(context.Background(), []byte("t"), fmt.Appendf(nil, `{"j":%d}`, i)); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, 10*time.Second, func() error {
		if len(n.in.events("t")) != 8 {
			return fmt.Errorf("%d of 8 events", len(n.in.events("t")))
		}
		return nil
	})
	evs := n.in.events("t")[5:]
	for i, e := range evs {
		if e.pos.Epoch == old || e.pos.Offset != uint64(i+1) || e.pos.Epoch != evs[0].pos.Epoch {
			t.Fatalf("event %d after the restart at %+v (old epoch %q)", i, e.pos, old)
		}
	}
	l := n.losses.all()
	if len(l) != 1 || l[0].Reason != "epoch_changed" || l[0].Epoch != old || l[0].After != 5 || l[0].NewEpoch != evs[0].pos.Epoch {
		t.Fatalf("losses = %+v, want one epoch_changed from %q after 5", l, old)
	}
}

// TestTLS: rediss:// with the CA given by CAFile: the node connects,
// subscribes and delivers; without the CA, the certificate is refused and
// the node is not ready.
func TestTLS(t *testing.T) {
	r := redistest.StartTLS(t)
	n := startNode(t, r.URL(), func(c *Config) { c.CAFile = r.CAFile })
	n.TopicAdded("t")
	waitReady(t, n)
	for i := range 3 {
		if _, err := n.Publish(context.Background(), []byte("t"), fmt.Appendf(nil, `{"i":%d}`, i)); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, 10*time.Second, func() error {
		if got := len(n.in.events("t")); got != 3 {
			return fmt.Errorf("%d of 3 over TLS", got)
		}
		return nil
	})
	untrusting := startNode(t, r.URL(), nil)
	eventually(t, 10*time.Second, func() error {
		if err := untrusting.Ready(); err == nil || !strings.Contains(err.Error(), "certificate") {
			return fmt.Errorf("a node without the CA: Ready = %v, want a certificate error", err)
		}
		return nil
	})
	if _, err := New(Config{URL: "redis://" + r.Addr, CAFile: r.CAFile}); err == nil {
		t.Fatal("a CA file with a plain redis:// URL was accepted")
	}
}

// TestPassword: Config.Password (FRAISED_CLUSTER_PASSWORD) authenticates
// against a Redis with requirepass, and overrides the URL's; a node with
// a wrong one is not ready and says why.
func TestPassword(t *testing.T) {
	r := redistest.Start(t, "--requirepass", "s3cret")
	n := startNode(t, "redis://:wrong@"+r.Addr, func(c *Config) { c.Password = "s3cret" })
	n.TopicAdded("t")
	waitReady(t, n)
	if _, err := n.Publish(context.Background(), []byte("t"), []byte(`{}`)); err != nil {
		t.Fatal(err)
	}
	wrong := startNode(t, "redis://:wrong@"+r.Addr, nil)
	eventually(t, 10*time.Second, func() error {
		if err := wrong.Ready(); err == nil || !strings.Contains(err.Error(), "WRONGPASS") {
			return fmt.Errorf("wrong password: Ready = %v, want WRONGPASS", err)
		}
		return nil
	})
	if got := Redact("redis://:s3cret@host:6379/0"); strings.Contains(got, "s3cret") {
		t.Fatalf("Redact left the password in %q", got)
	}
}

// TestUnansweredPublishIsOutcomeUnknown: a publish sent to Redis whose
// answer does not come within its deadline (Redis busy with a slow
// script, as it can be during a failover) may still run, so it fails with
// broker.ErrOutcomeUnknown, never with ErrUnavailable (which promises the
// event was not published); here it does run once Redis is free. A
// publish Redis refuses with an error reply (out of memory) did not run:
// ErrUnavailable.
func TestUnansweredPublishIsOutcomeUnknown(t *testing.T) {
	r := redistest.Start(t)
	n := startNode(t, r.URL(), nil)
	waitReady(t, n)
	c := newClient(t, r)
	busy := make(chan error, 1)
	go func() { // one to two seconds of Redis' only thread
		busy <- c.Eval(context.Background(), "local s = redis.call('TIME')[1] while redis.call('TIME')[1] - s < 2 do end return 1", nil).Err()
	}()
	probe := goredis.NewClient(&goredis.Options{Addr: r.Addr, DisableIdentity: true, Protocol: 2, MaxRetries: -1, ReadTimeout: 100 * time.Millisecond})
	defer probe.Close()
	eventually(t, 5*time.Second, func() error { // the script holds Redis (at least a second from now): a PING goes unanswered
		if probe.Ping(context.Background()).Err() == nil {
			return errors.New("Redis still answers PING: the slow script has not started")
		}
		return nil
	})
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	_, err := n.Publish(ctx, []byte("t"), []byte(`{}`))
	cancel()
	if !errors.Is(err, broker.ErrOutcomeUnknown) || errors.Is(err, broker.ErrUnavailable) {
		t.Fatalf("publish with no answer in time: %v, want ErrOutcomeUnknown (and not ErrUnavailable)", err)
	}
	if err := <-busy; err != nil {
		t.Fatalf("the slow script: %v", err)
	}
	eventually(t, 5*time.Second, func() error {
		if o := c.HGet(context.Background(), metaPrefix+"t", "o").Val(); o != "1" {
			return fmt.Errorf("topic offset %q after the script, want 1 (the unanswered publish ran)", o)
		}
		return nil
	})

	r.Do("CONFIG", "SET", "maxmemory", "1")
	_, err = n.Publish(context.Background(), []byte("t"), []byte(`{}`))
	r.Do("CONFIG", "SET", "maxmemory", "0")
	if !errors.Is(err, broker.ErrUnavailable) || errors.Is(err, broker.ErrOutcomeUnknown) {
		t.Fatalf("publish refused by Redis (OOM): %v, want ErrUnavailable", err)
	}
	if o := c.HGet(context.Background(), metaPrefix+"t", "o").Val(); o != "1" {
		t.Fatalf("topic offset %q after a refused publish, want 1", o)
	}
}
