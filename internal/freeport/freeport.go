// Package freeport hands out loopback TCP addresses for servers that must
// be told their port before they start (redis-server, PostgreSQL, the
// fraised binary and its publish listener in tests and the perf harness).
//
// The usual trick, binding port 0 and closing the listener, returns a port
// from the kernel's ephemeral range; before the server binds it the kernel
// may hand the same port to another listener on port 0 or to an outgoing
// connection's local end, and the server fails with "bind: address already
// in use" (this failed CI once, two parallel tests holding one port).
// freeport hands out ports below the ephemeral range, which the kernel never
// picks by itself. It walks them from a random start so that one process
// never hands out a port twice, and on Linux it claims each port for
// ClaimHold with an abstract Unix socket so that two processes (parallel
// test binaries) never hand out the same port at the same time.
package freeport

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
)

// ClaimHold is how long a handed-out port stays claimed against other
// processes: ample for a server to start and bind it; after that the bind
// itself keeps the port.
const ClaimHold = claimHold

const (
	lowestPort  = 10000 // below it sit well-known services (PostgreSQL's 5432, 8080, ...)
	defaultHigh = 32768 // Linux's default ip_local_port_range starts here
)

var (
	windowOnce sync.Once
	lo, span   int
	start      int
	walked     atomic.Int64
)

// Addr returns "127.0.0.1:port" for a port nobody listens on and no other
// call in this process or (on Linux) another process has handed out lately.
func Addr() (string, error) {
	p, err := Port()
	if err != nil {
		return "", err
	}
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(p)), nil
}

// Port is Addr's port alone.
func Port() (int, error) {
	windowOnce.Do(setWindow)
	if span <= 0 {
		return ephemeral()
	}
	for range span {
		p := lo + (start+int(walked.Add(1)))%span
		if !claim(p) {
			continue
		}
		if l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p))); err == nil {
			l.Close()
			return p, nil
		}
	}
	return 0, fmt.Errorf("no free loopback port in %d-%d: close test servers or widen the range below net.ipv4.ip_local_port_range", lo, lo+span-1)
}

// setWindow finds the ports below the ephemeral range.
func setWindow() {
	high := defaultHigh
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
		if f := strings.Fields(string(b)); len(f) == 2 {
			if n, err := strconv.Atoi(f[0]); err == nil {
				high = n
			}
		}
	}
	lo, span = lowestPort, high-lowestPort
	if span < 1000 { // the ephemeral range starts too low: nothing safe below it
		span = 0
		return
	}
	start = rand.IntN(span)
}

// ephemeral is the fallback when no ports lie below the ephemeral range.
func ephemeral() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, errors.New("cannot find a free loopback port: " + err.Error())
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
