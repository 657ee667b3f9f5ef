package server

import (
	"math"
	"runtime/debug"
	"testing"
)

// TestDefaultOutboundTotalFollowsGOMEMLIMIT: the default global budget is
// a quarter of GOMEMLIMIT, within its floor and cap; without GOMEMLIMIT it
// comes from the cgroup or the machine and stays within the same bounds.
func TestDefaultOutboundTotalFollowsGOMEMLIMIT(t *testing.T) {
	prev := debug.SetMemoryLimit(-1)
	defer debug.SetMemoryLimit(prev)
	for _, tc := range []struct{ limit, want int64 }{
		{1 << 30, 256 << 20},
		{100 << 20, outboundTotalMin},
		{64 << 30, outboundTotalMax},
	} {
		debug.SetMemoryLimit(tc.limit)
		if got := defaultOutboundTotal(); int64(got) != tc.want {
			t.Errorf("GOMEMLIMIT=%d: default %d, want %d", tc.limit, got, tc.want)
		}
	}
	debug.SetMemoryLimit(math.MaxInt64)
	if got := defaultOutboundTotal(); got < outboundTotalMin || got > outboundTotalMax {
		t.Errorf("without GOMEMLIMIT: default %d outside [%d, %d]", got, outboundTotalMin, outboundTotalMax)
	}
	debug.SetMemoryLimit(2 << 30)
	var o Options
	o.setDefaults()
	if o.MaxOutboundTotal != 512<<20 {
		t.Errorf("Options default with GOMEMLIMIT=2GiB: %d, want 512 MiB", o.MaxOutboundTotal)
	}
}
