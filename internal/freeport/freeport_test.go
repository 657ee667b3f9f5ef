package freeport

import (
	"net"
	"strconv"
	"testing"
)

// TestPortsAreDistinctAndBelowEphemeral: ports never repeat in a process,
// lie below the kernel's ephemeral range, and bind.
func TestPortsAreDistinctAndBelowEphemeral(t *testing.T) {
	seen := map[int]bool{}
	for range 200 {
		p, err := Port()
		if err != nil {
			t.Fatal(err)
		}
		if seen[p] {
			t.Fatalf("port %d handed out twice", p)
		}
		seen[p] = true
		if span > 0 && (p < lo || p >= lo+span) {
			t.Fatalf("port %d outside %d-%d", p, lo, lo+span-1)
		}
	}
	a, err := Addr()
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", a)
	if err != nil {
		t.Fatalf("handed-out %s does not bind: %v", a, err)
	}
	l.Close()
}

// TestBusyPortSkipped: a port someone listens on is not handed out.
func TestBusyPortSkipped(t *testing.T) {
	windowOnce.Do(setWindow)
	if span == 0 {
		t.Skip("no ports below the ephemeral range on this machine: Port falls back to port 0")
	}
	next := lo + (start+int(walked.Load())+1)%span
	l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(next)))
	if err != nil {
		t.Fatalf("cannot occupy %d: %v", next, err)
	}
	defer l.Close()
	p, err := Port()
	if err != nil {
		t.Fatal(err)
	}
	if p == next {
		t.Fatalf("busy port %d handed out", p)
	}
}

// TestClaimedPortSkipped: a port claimed elsewhere (another process's
// claim looks the same) is not handed out.
func TestClaimedPortSkipped(t *testing.T) {
	windowOnce.Do(setWindow)
	if span == 0 || ClaimHold == 0 {
		t.Skip("no claims on this platform")
	}
	next := lo + (start+int(walked.Load())+1)%span
	if !claim(next) {
		t.Fatalf("cannot claim %d", next)
	}
	p, err := Port()
	if err != nil {
		t.Fatal(err)
	}
	if p == next {
		t.Fatalf("claimed port %d handed out", p)
	}
}
