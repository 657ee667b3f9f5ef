// Package loadgen is the perf harness engine: it opens WebSocket
// connections speaking graphql-transport-ws on raw non-blocking sockets
// served by a few epoll goroutines, publishes at a fixed rate (RESP over TCP
// or a Unix socket, or HTTP POST), measures event-to-socket latency from the
// sequence number found in each frame's bytes, counts deliveries against
// expectations, and samples the server's RSS and CPU from /proc.
//
// Run drives one scenario against one running server; RunSuite starts a
// fresh server per scenario and target. Neither is safe to call
// concurrently with itself (they pin threads and own the process's sockets).
package loadgen

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Scenario describes one measured run. Subscription j of connection i is on
// topic (i*SubsPerConn+j) % Topics.
type Scenario struct {
	Name        string
	Conns       int           // connections that read normally
	SubsPerConn int           // subscriptions per connection
	Topics      int           // distinct topics "bench.0".."bench.<Topics-1>"
	Rate        float64       // events per second (all topics together)
	Duration    time.Duration // publishing time per step
	Events      int64         // if > 0, publish exactly this many events at Rate
	Random      bool          // publish to a random topic (else round robin)
	Slow        int           // S6: extra connections that stop reading
	SlowSubs    int           // S6: subscriptions per slow connection (0: SubsPerConn)
	Steps       []float64     // S2: rates to step through (Rate ignored)
	MaxP99      time.Duration // S2: a step passes only under this p99
	MaxLag      time.Duration // S2: and with the publisher at most this far behind (0: MaxP99)
	Drain       time.Duration // longest wait for deliveries after publishing
	Settle      time.Duration // wait before the "after" RSS sample (S1)
	Capacity    bool          // S1: report RSS per connection
	Source      string        // PG: SourceOutbox or SourceListen (events are committed rows); "" = the target's publisher
}

// Scenarios returns the standard scenarios by name (see perf/README.md).
func Scenarios() map[string]Scenario {
	s2Steps := []float64{50, 100, 200, 500, 1000, 2000, 4000, 8000, 12000, 16000, 20000, 25000, 32000, 40000, 50000}
	capacity := func(name string, conns, subs int) Scenario {
		return Scenario{Name: name, Conns: conns, SubsPerConn: subs, Topics: 1, Rate: 10, Events: 10,
			Drain: 60 * time.Second, Settle: time.Second, Capacity: true}
	}
	return map[string]Scenario{
		"S1-1k":  capacity("S1-1k", 1000, 1),
		"S1-10k": capacity("S1-10k", 10000, 1),
		"S1-19k": capacity("S1-19k", 19000, 1),
		"S1b":    capacity("S1b", 19000, 5),
		"S2": {Name: "S2", Conns: 100, SubsPerConn: 1, Topics: 1, Steps: s2Steps, Duration: 2 * time.Second,
			MaxP99: 50 * time.Millisecond, Drain: 2 * time.Second},
		"S3": {Name: "S3", Conns: 100, SubsPerConn: 1, Topics: 1, Rate: 1000, Duration: 20 * time.Second, Drain: 10 * time.Second},
		"S4": {Name: "S4", Conns: 100, SubsPerConn: 1, Topics: 1, Rate: 10000, Duration: 10 * time.Second, Drain: 10 * time.Second},
		"S5": {Name: "S5", Conns: 1000, SubsPerConn: 10, Topics: 10000, Rate: 10000, Duration: 10 * time.Second,
			Random: true, Drain: 10 * time.Second},
		// Each slow connection subscribes 20 times, so it falls 4 MB/s behind
		// and passes a 4 MiB outbound cap within seconds.
		"S6": {Name: "S6", Conns: 100, SubsPerConn: 1, Topics: 1, Rate: 1000, Duration: 20 * time.Second, Slow: 10,
			SlowSubs: 20, Drain: 10 * time.Second},
		// PG-*: S3's load (and S2's search) with events committed to
		// PostgreSQL, one row per transaction, that fraised reads with
		// --source; latency is from COMMIT. S3 is the same through RESP.
		"PG-outbox": pgScenario("PG-outbox", SourceOutbox),
		"PG-listen": pgScenario("PG-listen", SourceListen),
		"PG-ceiling-outbox": {Name: "PG-ceiling-outbox", Conns: 100, SubsPerConn: 1, Topics: 1, Steps: pgSteps, Duration: 2 * time.Second,
			MaxP99: 10 * time.Millisecond, MaxLag: pgMaxLag, Drain: 2 * time.Second, Source: SourceOutbox},
		"PG-ceiling-listen": {Name: "PG-ceiling-listen", Conns: 100, SubsPerConn: 1, Topics: 1, Steps: pgSteps, Duration: 2 * time.Second,
			MaxP99: 10 * time.Millisecond, MaxLag: pgMaxLag, Drain: 2 * time.Second, Source: SourceListen},
		"smoke-pg-outbox": {Name: "smoke-pg-outbox", Conns: 10, SubsPerConn: 1, Topics: 1, Rate: 500, Events: 100, Drain: 10 * time.Second, Source: SourceOutbox},
		"smoke-pg-listen": {Name: "smoke-pg-listen", Conns: 10, SubsPerConn: 1, Topics: 1, Rate: 500, Events: 100, Drain: 10 * time.Second, Source: SourceListen},
		"smoke":           {Name: "smoke", Conns: 10, SubsPerConn: 1, Topics: 1, Rate: 1000, Events: 100, Drain: 10 * time.Second},
	}
}

// pgSteps are the rates (rows/s) the PG ceilings step through; their
// MaxP99 is the seed's target, 10 ms from COMMIT to the socket.
var pgSteps = []float64{500, 1000, 1500, 2000, 3000, 4000, 6000, 8000, 12000}

// pgMaxLag is how far the PG writers may fall behind in a passing step:
// an event's lag includes its BEGIN and publish round trips (and the wait
// for its shard's lock) before the COMMIT the latency is measured from, so
// S2's 50 ms, not the 10 ms latency target.
const pgMaxLag = 50 * time.Millisecond

// pgScenario is S3 with committed rows: 100 subscribers, 1,000 rows/s for
// 20 s.
func pgScenario(name, src string) Scenario {
	return Scenario{Name: name, Conns: 100, SubsPerConn: 1, Topics: 1, Rate: 1000, Duration: 20 * time.Second,
		Drain: 10 * time.Second, Source: src}
}

// SourceURL is the --source fraised reads a PG scenario's rows with, given
// the database URL (which has a query already).
func (s Scenario) SourceURL(db string) string {
	sep := "?"
	if strings.Contains(db, "?") {
		sep = "&"
	}
	if s.Source == SourceListen {
		var ch []string
		for i := range s.Topics {
			t := "bench." + strconv.Itoa(i)
			ch = append(ch, PGChannel(t)+":"+t)
		}
		return db + sep + "mode=listen&channels=" + strings.Join(ch, ",")
	}
	return db + sep + "mode=outbox"
}

// Lookup returns the standard scenario name, or an error listing them.
func Lookup(name string) (Scenario, error) {
	all := Scenarios()
	if s, ok := all[name]; ok {
		return s, nil
	}
	names := make([]string, 0, len(all))
	for n := range all {
		names = append(names, n)
	}
	sort.Strings(names)
	return Scenario{}, fmt.Errorf("unknown scenario %q: use one of %s", name, strings.Join(names, ", "))
}

// slowSubs is the number of subscriptions per slow connection.
func (s Scenario) slowSubs() int {
	if s.SlowSubs > 0 {
		return s.SlowSubs
	}
	return s.SubsPerConn
}

// allSubs counts every subscription, slow ones included.
func (s Scenario) allSubs() int { return s.totalSubs() + s.Slow*s.slowSubs() }

// totalSubs is the number of normally read subscriptions.
func (s Scenario) totalSubs() int { return s.Conns * s.SubsPerConn }

// topicOf returns the topic index of global subscription k.
func (s Scenario) topicOf(k int) int { return k % s.Topics }
