package freeport

import (
	"net"
	"strconv"
	"time"
)

// claimHold covers the slowest start between handing out and binding
// (PostgreSQL runs initdb first: seconds on a loaded machine); each claim
// holds one descriptor that long.
const claimHold = 30 * time.Second

// claim binds an abstract Unix socket named after port p, which the kernel
// lets one process hold at a time, and releases it after claimHold (or when
// the process exits). It reports false when another process holds it.
func claim(p int) bool {
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: "@fraised-freeport-" + strconv.Itoa(p), Net: "unix"})
	if err != nil {
		return false
	}
	time.AfterFunc(claimHold, func() { l.Close() })
	return true
}
