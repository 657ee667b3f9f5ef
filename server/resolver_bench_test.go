package server_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/fraised/fraised/gql"
)

// BenchmarkOtherTopicWhileResolverSleeps: publish-to-next latency on a
// topic without a resolver, alone ("idle") and while another topic's
// resolver sleeps 5 s per call with events queued behind it ("sleeping"):
// a stalled resolver must leave the other topic's p50/p99 unchanged.
// Each op is one round trip (publish over RESP, read the next over
// WebSocket).
func BenchmarkOtherTopicWhileResolverSleeps(b *testing.B) {
	for _, sleeping := range []bool{false, true} {
		name := "idle"
		if sleeping {
			name = "sleeping"
		}
		b.Run(name, func(b *testing.B) {
			release := make(chan struct{})
			defer close(release)
			s := startResolverServerTB(b, func(ctx context.Context, p gql.ResolveParams) (any, error) {
				select {
				case <-time.After(5 * time.Second):
				case <-release:
				}
				return nil, nil
			}, 30*time.Second)
			other := connect(b, s.opts.Listen)
			other.subscribe("o", `subscription { events(topic: "news") { seq } }`, nil)
			slow := connect(b, s.opts.Listen)
			slow.subscribe("s", `subscription { orderUpdated(customerId: "slow") { id } }`, nil)
			s.waitSubs(b, 2)
			p := dialPublisher(b, "tcp", s.opts.PublishListen)
			if sleeping {
				for i := range 100 {
					p.publish("orders.slow", fmt.Sprintf(`{"id":"%d"}`, i))
				}
			}
			lat := make([]time.Duration, 0, b.N)
			b.ResetTimer()
			for i := range b.N {
				start := time.Now()
				p.publish("news", fmt.Sprintf(`{"seq":%d}`, i))
				other.next()
				lat = append(lat, time.Since(start))
			}
			b.StopTimer()
			slices.Sort(lat)
			b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-us")
			b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-us")
		})
	}
}
