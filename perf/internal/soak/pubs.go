package soak

import (
	"fmt"
	"slices"
	"strconv"
	"sync"
	"time"
)

// Targets and bounds of the publisher scenarios.
const (
	// lightEvery paces the light publisher.
	lightEvery = 100 * time.Millisecond
	// lightWait bounds one light publish: the finding was 16.8-30.8 s.
	lightWait = 60 * time.Second
	// floodPayload is the size of the flooders' events.
	floodPayload = 4 << 10
	// floodGroups subscriptions, each its own group, slow the dispatcher
	// to a few tens of thousands of events/s, below what three flooders
	// publish.
	floodGroups = 10
	// flooders is the number of publishers flooding the ring.
	flooders = 3
	// ringPayload is the size of the ring-bytes events: just under the
	// default --max-payload of 1 MiB.
	ringPayload = 1_000_000
	// ringPublishers publish ringPayload events in parallel.
	ringPublishers = 4
	// catchUpWait bounds the wait for subscribers to receive everything
	// acknowledged once publishing stops.
	catchUpWait = 60 * time.Second
	// ringSeqSpan separates the ring publishers' event numbers.
	ringSeqSpan = 100_000
)

// publisherFloodFairness: three publishers flood the ring while a light
// one publishes ten events a second; its replies must stay on time.
func publisherFloodFairness(e *Env) {
	const topic = "soak.flood"
	d := e.scaleD(20*time.Second, 8*time.Second)
	// Each subscription its own group, each event 4 KiB with seq at its
	// end: the dispatcher scans it once per group, so it is slower than
	// the flooders and the ring stays full.
	var readers []*reader
	for _, c := range connectGroups(e, floodGroups, topic) {
		readers = append(readers, startReader(c, maxLoadEvents))
	}
	defer waitReaders(readers, 0)
	// A subscribe has no answer: until the dispatcher registered every
	// subscription, an event reaches fewer of them (its reply says so)
	// and would be counted as owed to all. Probe until all are live.
	pp := livePub(e, topic, int64(len(readers)))
	if pp == nil {
		return
	}
	pp.conn.Close()
	flood := tailSeq(floodPayload)
	wait := pipelines(e, "flooder", flooders, topic, maxLoadEvents, d,
		func(int) func([]byte, int64) []byte { return flood })
	lat := lightPublisher(e, d)
	_, acked := wait()
	e.Fig("flood_acked_per_s", "%.0f", float64(acked)/d.Seconds())
	if len(lat) == 0 {
		e.Fail("the light publisher got no reply")
		return
	}
	slices.Sort(lat)
	p99, worst := lat[len(lat)*99/100], lat[len(lat)-1]
	e.Fig("light_replies", "%d", len(lat))
	e.Fig("light_p99", "%s", ms(p99))
	e.Fig("light_max", "%s", ms(worst))
	// The light publisher's replies must be as on time as the canary's
	// events.
	if p99 > e.Cfg.CanaryP99 {
		e.Fail("light publisher reply p99 %s > %v while %d publishers flood", ms(p99), e.Cfg.CanaryP99, flooders)
	}
	e.catchUp(readers, acked)
}

// lightPublisher publishes every lightEvery for d and returns the reply
// times.
func lightPublisher(e *Env, d time.Duration) []time.Duration {
	p, err := dialPub(nil, e.Child.Pub, 0)
	if err != nil {
		e.Fail("light publisher: %v", err)
		return nil
	}
	defer p.conn.Close()
	var lat []time.Duration
	end := time.Now().Add(d)
	for seq := int64(0); time.Now().Before(end) && !e.done(); seq++ {
		start := time.Now()
		if _, err := p.publishWait("soak.light", eventPayload(nil, seq, 0), lightWait); err != nil {
			e.Fail("light publisher: %v", err)
			break
		}
		lat = append(lat, time.Since(start))
		time.Sleep(max(0, lightEvery-time.Since(start)))
	}
	return lat
}

// catchUp waits until the readers that were not cut have every
// acknowledged event, and records acknowledged vs delivered.
func (e *Env) catchUp(readers []*reader, acked int64) {
	start := time.Now()
	var live []*reader
	for _, r := range readers {
		select {
		case <-r.done:
			e.Code(r.end) // cut or closed: its losses are the server's policy
		default:
			live = append(live, r)
		}
	}
	ok := waitEvents(live, acked, catchUpWait)
	var delivered int64
	for _, r := range live {
		delivered += min(r.events.Load(), acked)
	}
	e.Deliveries(acked*int64(len(live)), delivered)
	e.Fig("catch_up", "%.1fs", time.Since(start).Seconds())
	if !ok {
		e.Fail("%d of %d acknowledged deliveries missing %v after publishing stopped",
			acked*int64(len(live))-delivered, acked*int64(len(live)), catchUpWait)
	}
}

// ringBytes: publishers push 1 MB events faster than the dispatcher can
// take them (each of the subscriptions is its own group, so each event is
// projected once per subscription, scanning 1 MB for a field at its end).
// The ring must bound its bytes, not only its count.
func ringBytes(e *Env) {
	const topic = "soak.ring"
	groups := e.scale(100, 30)
	var readers []*reader
	subs := connectGroups(e, groups, topic)
	for _, c := range subs {
		readers = append(readers, startReader(c, ringPublishers*ringSeqSpan))
	}
	defer waitReaders(readers, 0)
	pp := livePub(e, topic, int64(len(readers)))
	if pp == nil {
		return
	}
	pp.conn.Close()
	d := e.scaleD(15*time.Second, 6*time.Second)
	big := tailSeq(ringPayload)
	sent, acked := pipelines(e, "publisher", ringPublishers, topic, e.scale(2000, 500), d,
		func(i int) func([]byte, int64) []byte {
			return func(dst []byte, seq int64) []byte { return big(dst, int64(i)*ringSeqSpan+seq) }
		})()
	e.Fig("published", "%d", sent)
	e.Fig("acked", "%d", acked)
	e.Fig("published_MiB", "%.0f", float64(sent)*ringPayload/(1<<20))
	e.catchUp(readers, acked)
}

// pipelines starts n publishers, each on its own connection (from the next
// source address) running pipeline on topic with the events mk(i) makes
// (at most count, for at most d); the returned wait blocks until every
// one has stopped, closes their connections and returns the totals.
func pipelines(e *Env, who string, n int, topic string, count int, d time.Duration,
	mk func(i int) func(dst []byte, seq int64) []byte) (wait func() (sent, acked int64)) {
	var wg sync.WaitGroup
	var mu sync.Mutex
	var sent, acked int64
	var pubs []*pubConn
	for i := range n {
		p, err := dialPub(e.src.next(), e.Child.Pub, 0)
		if err != nil {
			e.Fail("%s %d: %v", who, i, err)
			continue
		}
		pubs = append(pubs, p)
		wg.Add(1)
		go func() {
			defer wg.Done()
			s, a := pipeline(e, p, topic, count, mk(i), d)
			mu.Lock()
			sent, acked = sent+s, acked+a
			mu.Unlock()
		}()
	}
	return func() (int64, int64) {
		wg.Wait()
		for _, p := range pubs {
			p.conn.Close()
		}
		return sent, acked
	}
}

// tailSeq makes `{"body":"x…","seq":N}` events of size bytes, the
// projected field at the end.
func tailSeq(size int) func([]byte, int64) []byte {
	return func(dst []byte, seq int64) []byte {
		dst = append(dst[:0], `{"body":"`...)
		tail := `","seq":` + strconv.FormatInt(seq, 10) + `}`
		for len(dst) < size-len(tail) {
			dst = append(dst, 'x')
		}
		return append(dst, tail...)
	}
}

// connectGroups connects n subscribers, each with its own document (an
// alias of seq), so that each is its own group.
func connectGroups(e *Env, n int, topic string) []*wsClient {
	var out []*wsClient
	for i := range n {
		c, err := dialWS(e.src.next(), e.Child.WS, 0)
		if err == nil {
			err = c.initAck()
		}
		if err == nil {
			err = c.send(fmt.Sprintf(`{"id":"1","type":"subscribe","payload":{"query":"subscription { events(topic: \"%s\") { seq s%d: seq } }"}}`, topic, i))
		}
		if err != nil {
			e.Fail("group subscriber %d: %v", i, err)
			continue
		}
		out = append(out, c)
	}
	return out
}
