package soak

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"sync"
	"time"
)

// sampleEvery is how often the sampler reads /proc: often enough to see a
// memory spike of a second, rare enough that counting 20,000 descriptors
// costs nothing measurable.
const sampleEvery = 200 * time.Millisecond

// memKB reads VmRSS and VmHWM (KiB) from /proc/PID/status.
func memKB(pid int) (rss, hwm int64, err error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0, fmt.Errorf("cannot read the server's memory: %w", err)
	}
	return statusField(b, "VmRSS:"), statusField(b, "VmHWM:"), nil
}

func statusField(b []byte, key string) int64 {
	i := bytes.Index(b, []byte(key))
	if i < 0 {
		return 0
	}
	f := bytes.Fields(b[i+len(key):])
	if len(f) == 0 {
		return 0
	}
	v, _ := strconv.ParseInt(string(f[0]), 10, 64)
	return v
}

// openFDs counts /proc/PID/fd entries.
func openFDs(pid int) (int, error) {
	d, err := os.Open(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		return 0, err
	}
	defer d.Close()
	n := 0
	for {
		names, err := d.Readdirnames(4096)
		n += len(names)
		if err != nil || len(names) == 0 {
			return n, nil
		}
	}
}

// Sampler watches one server process: peak RSS and descriptors, and kills
// it when its RSS passes the kill limit, so that a failing server cannot
// eat a shared machine.
type Sampler struct {
	child   *Child
	killKB  int64
	mu      sync.Mutex
	baseKB  int64
	peakKB  int64
	peakFD  int
	killed  bool
	stop    chan struct{}
	done    chan struct{}
	samples int
}

// Watch starts sampling child every sampleEvery.
func Watch(child *Child, killKB int64) *Sampler {
	s := &Sampler{child: child, killKB: killKB, stop: make(chan struct{}), done: make(chan struct{})}
	s.sample()
	s.mu.Lock()
	s.baseKB = s.peakKB
	s.mu.Unlock()
	go s.loop()
	return s
}

func (s *Sampler) loop() {
	defer close(s.done)
	t := time.NewTicker(sampleEvery)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
			s.sample()
		}
	}
}

func (s *Sampler) sample() {
	pid := s.child.PID()
	select {
	case <-s.child.Exited():
		return
	default:
	}
	rss, hwm, err := memKB(pid)
	if err != nil {
		return
	}
	fds, _ := openFDs(pid)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.samples++
	s.peakKB = max(s.peakKB, rss, hwm)
	s.peakFD = max(s.peakFD, fds)
	if rss > s.killKB && !s.killed {
		s.killed = true
		s.child.Kill()
	}
}

// Rebase takes the current RSS as the baseline (after a restart).
func (s *Sampler) Rebase() {
	if rss, _, err := memKB(s.child.PID()); err == nil {
		s.mu.Lock()
		s.baseKB = rss
		s.mu.Unlock()
	}
}

// Killed reports whether the sampler killed the server for its memory.
func (s *Sampler) Killed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.killed
}

// BaseKB is the RSS when sampling started (or at the last Rebase), KiB.
func (s *Sampler) BaseKB() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.baseKB
}

// PeakKB is the largest RSS seen so far, in KiB.
func (s *Sampler) PeakKB() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.peakKB
}

// End stops sampling and returns the baseline and peak RSS (KiB) and the
// peak number of open descriptors.
func (s *Sampler) End() (baseKB, peakKB int64, peakFD int) {
	s.sample()
	close(s.stop)
	<-s.done
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.baseKB, s.peakKB, s.peakFD
}
