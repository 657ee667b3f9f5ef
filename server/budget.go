package server

import (
	"math"
	"os"
	"runtime/debug"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// The default global outbound budget (--max-outbound-total) is a quarter
// of the memory the process may use: GOMEMLIMIT when it is set, otherwise
// the cgroup's memory limit, otherwise the machine's physical memory. A
// quarter leaves the rest for subscriptions, the ring (its own byte
// budget), inbound buffers and the GC's headroom. It is capped so a large
// host does not let slow clients park gigabytes, and floored so a small
// container still serves bursts.
const (
	outboundTotalShare = 4        // the budget is 1/outboundTotalShare of the memory limit
	outboundTotalMax   = 4 << 30  // 4 GiB: ~1,000 connections at the default 4 MiB cap
	outboundTotalMin   = 64 << 20 // 64 MiB: 16 connections at the default cap
)

// defaultOutboundTotal returns the default of --max-outbound-total.
func defaultOutboundTotal() int {
	limit := memoryLimit()
	if limit <= 0 {
		return outboundTotalMax
	}
	return int(min(max(limit/outboundTotalShare, outboundTotalMin), outboundTotalMax))
}

// memoryLimit returns the memory the process may use in bytes, or 0 when
// it cannot tell.
func memoryLimit() int64 {
	if l := debug.SetMemoryLimit(-1); l > 0 && l != math.MaxInt64 {
		return l // GOMEMLIMIT
	}
	if l := cgroupMemoryLimit(); l > 0 {
		return l
	}
	var si unix.Sysinfo_t
	if err := unix.Sysinfo(&si); err == nil {
		return int64(si.Totalram) * int64(si.Unit)
	}
	return 0
}

// cgroupMemoryLimit reads the cgroup v2 (or v1) memory limit; 0 when
// there is none.
func cgroupMemoryLimit() int64 {
	for _, path := range []string{"/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"} {
		b, err := os.ReadFile(path)
		if err != nil {
			continue
		}
		v, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
		// "max" (v2) fails to parse; v1 reports a huge number for "none".
		if err == nil && v > 0 && v < 1<<60 {
			return v
		}
	}
	return 0
}
