package postgres

import (
	"context"
	"sort"
	"testing"
	"time"
)

// node is one fraised node of a test cluster: an outbox source under the
// shared name, wrapped in an Exclusive, publishing into its own sink.
type node struct {
	ex   *Exclusive
	sink *fakeSink
	stop func() error
}

func startNode(t *testing.T, url string) *node {
	t.Helper()
	cfg, err := ParseURL(url + "&name=cluster&batch=50")
	if err != nil {
		t.Fatal(err)
	}
	n := &node{sink: &fakeSink{}}
	n.ex = NewExclusive(cfg, "orders-db", New(cfg, nil), nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- n.ex.Run(ctx, n.sink) }()
	stopped := false
	n.stop = func() error {
		if stopped {
			return nil
		}
		stopped = true
		cancel()
		select {
		case err := <-done:
			return err
		case <-time.After(30 * time.Second):
			t.Error("Exclusive.Run did not return within 30 s of cancel")
			return nil
		}
	}
	t.Cleanup(func() { _ = n.stop() })
	return n
}

// leader waits until exactly one of nodes leads and returns it.
func leader(t *testing.T, nodes ...*node) *node {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		var lead []*node
		for _, n := range nodes {
			if n.ex.Leading() {
				lead = append(lead, n)
			}
		}
		if len(lead) == 1 && lead[0].ex.Healthy() == nil {
			return lead[0]
		}
		if len(lead) > 1 {
			t.Fatalf("%d nodes lead at once", len(lead))
		}
		if time.Now().After(deadline) {
			t.Fatalf("no node leads after %s", within)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestExclusiveOneForwarderAndFailover: of two nodes on one database, one
// forwards and the other stands by (healthy, delivering nothing); when the
// forwarder stops, the other takes over within seconds and resumes after
// the stored position: every event is published once across both.
func TestExclusiveOneForwarderAndFailover(t *testing.T) {
	url := newDB(t)
	a, b := startNode(t, url), startNode(t, url)
	first := leader(t, a, b)
	other := b
	if first == b {
		other = a
	}
	for deadline := time.Now().Add(within); other.ex.Healthy() != nil; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the standby is unhealthy: %v", other.ex.Healthy())
		}
	}
	if err := <-writeRows(t, url, 300, nil); err != nil {
		t.Fatal(err)
	}
	first.sink.waitN(t, 300, within)
	if n := len(other.sink.snapshot()); n != 0 {
		t.Fatalf("the standby published %d events", n)
	}
	done := writeRows(t, url, 700, func(i int) {
		if i == 200 {
			if err := first.stop(); err != nil {
				t.Errorf("Run: %v", err)
			}
		}
	})
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if got := leader(t, a, b); got != other {
		t.Fatal("the stopped node still leads")
	}
	other.sink.waitN(t, 1, within)
	deadline := time.Now().Add(within)
	for len(first.sink.snapshot())+len(other.sink.snapshot()) < 1000 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(300 * time.Millisecond) // a duplicate would arrive meanwhile
	all := inArrivalOrder(first, other)
	// Rows 0..299, then 0..699 again from the second writeRows: compare the
	// concatenation with what was written.
	if len(all) != 1000 {
		t.Fatalf("%d events across both nodes, want 1000", len(all))
	}
	assertSeq(t, all[:300], 300)
	assertSeq(t, all[300:], 700)
}

// TestExclusiveLockConnectionLost: when the forwarder's lock connection is
// terminated, it stops forwarding; one node (either) leads again and no
// event is lost or published twice.
func TestExclusiveLockConnectionLost(t *testing.T) {
	url := newDB(t)
	admin := connect(t, url)
	a, b := startNode(t, url+"&application_name=node_a"), startNode(t, url+"&application_name=node_b")
	first := leader(t, a, b)
	name := "node_a"
	if first == b {
		name = "node_b"
	}
	done := writeRows(t, url, 500, func(i int) {
		if i == 150 {
			exec1(t, admin, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1", name)
		}
	})
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	leader(t, a, b)
	deadline := time.Now().Add(within)
	for len(a.sink.snapshot())+len(b.sink.snapshot()) < 500 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(300 * time.Millisecond)
	assertSeq(t, inArrivalOrder(a, b), 500)
}

// inArrivalOrder merges the nodes' events by the time their sinks took them.
func inArrivalOrder(nodes ...*node) []event {
	var all []event
	for _, n := range nodes {
		all = append(all, n.sink.snapshot()...)
	}
	sort.SliceStable(all, func(i, j int) bool { return all[i].at.Before(all[j].at) })
	return all
}
