package loadgen

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// clkTck is USER_HZ, the unit of utime/stime in /proc/PID/stat (100 on
// every Linux architecture Go supports).
const clkTck = 100

// procSample is a server's resident memory and CPU time at one moment.
type procSample struct {
	rssKB int64
	cpu   time.Duration // utime + stime
}

// readProc samples /proc/PID/status and /proc/PID/stat.
func readProc(pid int) (procSample, error) {
	var s procSample
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return s, fmt.Errorf("cannot read the server's /proc status (is --pid right?): %w", err)
	}
	if i := bytes.Index(status, []byte("VmRSS:")); i >= 0 {
		f := bytes.Fields(status[i+6:])
		if len(f) > 0 {
			s.rssKB, _ = strconv.ParseInt(string(f[0]), 10, 64)
		}
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return s, fmt.Errorf("cannot read the server's /proc stat: %w", err)
	}
	// Fields after the parenthesised command: state is field 3, utime 14, stime 15.
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return s, fmt.Errorf("cannot parse /proc/%d/stat", pid)
	}
	f := bytes.Fields(stat[i+1:])
	if len(f) < 13 {
		return s, fmt.Errorf("cannot parse /proc/%d/stat: %d fields", pid, len(f))
	}
	ut, _ := strconv.ParseInt(string(f[11]), 10, 64)
	st, _ := strconv.ParseInt(string(f[12]), 10, 64)
	s.cpu = time.Duration(ut+st) * time.Second / clkTck
	return s, nil
}

// selfCPU returns this process's user+system CPU time.
func selfCPU() time.Duration {
	var ru unix.Rusage
	if unix.Getrusage(unix.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// allowedCPUs returns how many CPUs this process may run on.
func allowedCPUs() int {
	var set unix.CPUSet
	if unix.SchedGetaffinity(0, &set) != nil {
		return 1
	}
	return max(set.Count(), 1)
}

// rssWatch samples a server's RSS every 100 ms and keeps the maximum.
type rssWatch struct {
	mu   sync.Mutex
	max  int64
	stop chan struct{}
	done chan struct{}
}

func watchRSS(pid int) *rssWatch {
	w := &rssWatch{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(w.done)
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for {
			if s, err := readProc(pid); err == nil {
				w.mu.Lock()
				w.max = max(w.max, s.rssKB)
				w.mu.Unlock()
			}
			select {
			case <-w.stop:
				return
			case <-t.C:
			}
		}
	}()
	return w
}

// end stops sampling and returns the largest RSS seen, in KiB.
func (w *rssWatch) end() int64 {
	close(w.stop)
	<-w.done
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.max
}

// machineBusy returns the CPU time all cores spent outside idle and iowait,
// from the first line of /proc/stat.
func machineBusy() time.Duration {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0
	}
	line, _, _ := bytes.Cut(b, []byte("\n"))
	f := bytes.Fields(line)
	var busy int64
	for i := 1; i < len(f) && i <= 8; i++ { // user nice system idle iowait irq softirq steal
		if i == 4 || i == 5 {
			continue
		}
		v, _ := strconv.ParseInt(string(f[i]), 10, 64)
		busy += v
	}
	return time.Duration(busy) * time.Second / clkTck
}
