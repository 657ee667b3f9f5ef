package edge

import (
	"net/netip"
	"testing"
)

// BenchmarkTicket is the gate's cost per connection: a global slot and an
// address slot taken at accept and given back at close.
func BenchmarkTicket(b *testing.B) {
	g := NewGate(1<<20, 1000)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			a := netip.AddrFrom4([4]byte{10, 0, byte(i >> 8), byte(i)})
			i++
			t := Ticket{gate: g}
			if !g.acquire() || !t.ChargeAddr(a) {
				b.Fatal("refused")
			}
			t.Release()
		}
	})
}

var sinkAddr netip.Addr

// BenchmarkClientAddr parses a three-hop X-Forwarded-For, once per
// upgrade from a trusted proxy.
func BenchmarkClientAddr(b *testing.B) {
	tr, _ := ParseTrusted("10.0.0.0/8,192.168.0.0/16")
	v := []byte("203.0.113.1, 198.51.100.7, 10.0.0.2")
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		sinkAddr, _ = ClientAddr(HeaderXFF, v, tr)
	}
}
