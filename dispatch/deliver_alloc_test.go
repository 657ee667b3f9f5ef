package dispatch

import (
	"testing"
)

// TestDeliveryAllocatesNothing: fanning an event out and flushing every
// connection (write, outbox accounting, close-state checks) allocates
// nothing per delivery.
func TestDeliveryAllocatesNothing(t *testing.T) {
	if deliverRaceEnabled {
		t.Skip("allocation counts are not meaningful under the race detector")
	}
	d, payload := benchDispatcher(t, 100, 10)
	for range 3 { // warm the buffer pools
		d.fanOut([]byte("t"), payload, nil)
		d.flushDirty()
	}
	if n := testing.AllocsPerRun(200, func() {
		d.fanOut([]byte("t"), payload, nil)
		d.flushDirty()
	}); n != 0 {
		t.Fatalf("%v allocations per event fanned out to 100 subscribers", n)
	}
	if held := d.w.Held(); held != 0 {
		t.Fatalf("%d bytes counted as held after every connection was flushed", held)
	}
}
