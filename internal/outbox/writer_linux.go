package outbox

import (
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"

	"golang.org/x/sys/unix"
)

// Writer finishes writes that the kernel refused with EAGAIN: it watches
// blocked sockets with its own epoll instance (EPOLLOUT, one-shot) and
// flushes them when they drain. Only blocked connections are registered,
// so the common path never touches it.
//
// It also keeps the global count of outbound bytes held by every outbox
// it serves (held), for the --max-outbound-total budget.
type Writer struct {
	epfd    int
	wakefd  int // eventfd to stop run
	mu      sync.Mutex
	watched map[int32]*Outbox
	log     *slog.Logger

	_ [64]byte // keep held on its own cache line: it moves with blocked sockets only
	// held is the bytes of buffer held by outboxes whose output waits for
	// their socket. An outbox adds to it when a flush leaves output
	// pending and subtracts when its output drains or is dropped, so a
	// connection that keeps up never touches it.
	held atomic.Int64
	_    [56]byte
}

// Held returns the bytes of buffer held by outboxes whose output waits
// for their socket (the --max-outbound-total budget). Safe for concurrent
// use: one atomic load.
func (w *Writer) Held() int64 { return w.held.Load() }

// NewWriter returns a Writer logging to log; Run serves it.
func NewWriter(log *slog.Logger) (*Writer, error) {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("cannot create the writer epoll: %w", err)
	}
	wakefd, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		unix.Close(epfd)
		return nil, fmt.Errorf("cannot create the writer eventfd: %w", err)
	}
	ev := unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(wakefd)}
	if err := unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, wakefd, &ev); err != nil {
		unix.Close(epfd)
		unix.Close(wakefd)
		return nil, fmt.Errorf("cannot register the writer eventfd: %w", err)
	}
	return &Writer{epfd: epfd, wakefd: wakefd, watched: make(map[int32]*Outbox), log: log}, nil
}

// watch arms EPOLLOUT for o. The caller holds o.mu.
func (w *Writer) watch(o *Outbox) {
	ev := unix.EpollEvent{Events: unix.EPOLLOUT | unix.EPOLLONESHOT, Fd: int32(o.fd)}
	op := unix.EPOLL_CTL_MOD
	if !o.watched {
		op = unix.EPOLL_CTL_ADD
		w.mu.Lock()
		w.watched[int32(o.fd)] = o
		w.mu.Unlock()
		o.watched = true
	}
	if err := unix.EpollCtl(w.epfd, op, o.fd, &ev); err != nil {
		w.log.Warn("cannot watch a blocked connection; dropping its output", "fd", o.fd, "err", err)
		o.dropLocked()
		o.blocked = false
	}
}

// unwatch removes o from the poller. The caller holds o.mu.
func (w *Writer) unwatch(o *Outbox) {
	_ = unix.EpollCtl(w.epfd, unix.EPOLL_CTL_DEL, o.fd, nil)
	w.mu.Lock()
	if w.watched[int32(o.fd)] == o {
		delete(w.watched, int32(o.fd))
	}
	w.mu.Unlock()
	o.watched = false
}

// Snapshot appends every outbox that ever blocked and is still open to
// dst (the housekeeper's write-stall and budget sweeps). Safe for
// concurrent use.
func (w *Writer) Snapshot(dst []*Outbox) []*Outbox {
	w.mu.Lock()
	for _, o := range w.watched {
		dst = append(dst, o)
	}
	w.mu.Unlock()
	return dst
}

// Run flushes blocked connections as they become writable, until stop.
func (w *Writer) Run() {
	defer unix.Close(w.wakefd)
	defer unix.Close(w.epfd)
	events := make([]unix.EpollEvent, 128)
	for {
		n, err := unix.EpollWait(w.epfd, events, -1)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			w.log.Error("writer epoll failed", "err", err)
			return
		}
		for _, ev := range events[:n] {
			if ev.Fd == int32(w.wakefd) {
				return
			}
			w.mu.Lock()
			o := w.watched[ev.Fd]
			w.mu.Unlock()
			if o != nil {
				o.resume()
			}
		}
	}
}

// resume retries a blocked outbox after EPOLLOUT.
func (o *Outbox) resume() {
	o.mu.Lock()
	o.blocked = false
	o.flushLocked()
	o.mu.Unlock()
}

// Stop ends Run and releases the epoll instance.
func (w *Writer) Stop() {
	var one = [8]byte{1}
	_, _ = unix.Write(w.wakefd, one[:])
}
