package loadgen

import (
	"errors"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/fraised/fraised/perf/internal/hist"
	"github.com/fraised/fraised/perf/internal/wsframe"
)

// readBuf is each receiver's read buffer: large chunks, and more than
// maxFrame so a carried partial frame always leaves room to read.
const readBuf = 2*maxFrame + 256<<10

// shared is the state every receiver reads or bumps; the slices are sized
// before the receivers start and their elements accessed atomically.
type shared struct {
	base    time.Time
	host    string
	topics  [][]byte
	sendNs  []int64  // send time by seq (ns since base); 0 = not sent
	subGot  []uint32 // measured deliveries per subscription
	subWarm []uint32 // 1 once the subscription got a warm-up event

	ready, failed, warmed                     atomic.Int64
	delivered, slowDelivered, warmDelivered   atomic.Int64
	unknown, protoErrors, serverErrors, pings atomic.Int64
	dropped                                   atomic.Int64 // ready, normal conns closed

	errMu    sync.Mutex
	firstErr string
}

func (sh *shared) nowNs() int64 { return int64(time.Since(sh.base)) }

// sent records seq's send time, now (nowNs).
func (sh *shared) sent(seq, now int64) { atomic.StoreInt64(&sh.sendNs[seq], now) }

func (sh *shared) noteErr(s string) {
	sh.errMu.Lock()
	if sh.firstErr == "" {
		sh.firstErr = s
	}
	sh.errMu.Unlock()
}

// receiver serves its connections from one epoll instance on one locked
// OS thread. Other goroutines talk to it only through do.
type receiver struct {
	sh    *shared
	epfd  int
	evfd  int
	in    chan *conn
	cmds  chan func()
	conns []*conn // by fd
	slow  []*conn // slow consumers, also once closed
	buf   []byte
	mu    sync.Mutex // guards h against snapshot/reset from other goroutines
	h     *hist.Histogram
	// hk is the latency to the kernel's receive timestamp of the read
	// that carried the frame (SO_TIMESTAMPNS: when the bytes reached the
	// socket, before this goroutine ran), guarded by mu like h.
	hk     *hist.Histogram
	oob    []byte
	stop   atomic.Bool
	done   chan struct{}
	events [512]unix.EpollEvent

	// per-read counters, flushed once per read
	nDelivered, nSlow, nWarm int64
	// rxAge is how long before the read its bytes reached the socket
	// (the wall clock less the kernel's receive timestamp, both
	// CLOCK_REALTIME and taken together, so a clock step between send
	// and receive does not skew it); -1 if the read had no timestamp.
	rxAge int64
}

func newReceiver(sh *shared) (*receiver, error) {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, err
	}
	evfd, err := unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC)
	if err != nil {
		unix.Close(epfd)
		return nil, err
	}
	ev := unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(evfd)}
	if err := unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, evfd, &ev); err != nil {
		unix.Close(epfd)
		unix.Close(evfd)
		return nil, err
	}
	return &receiver{sh: sh, epfd: epfd, evfd: evfd, in: make(chan *conn, 4096), cmds: make(chan func(), 16),
		buf: make([]byte, readBuf), h: new(hist.Histogram), hk: new(hist.Histogram), oob: make([]byte, 64), done: make(chan struct{})}, nil
}

func (r *receiver) wake() {
	var one = [8]byte{1}
	_, _ = unix.Write(r.evfd, one[:])
}

// add hands a connecting socket to the receiver; safe from any goroutine.
func (r *receiver) add(c *conn) {
	r.in <- c
	r.wake()
}

// do runs f on the receiver goroutine and waits for it.
func (r *receiver) do(f func()) {
	ch := make(chan struct{})
	r.cmds <- func() { f(); close(ch) }
	r.wake()
	select {
	case <-ch:
	case <-r.done:
	}
}

// snapshot merges the latency histograms into dst and dstKernel and, if
// reset, empties them.
func (r *receiver) snapshot(dst, dstKernel *hist.Histogram, reset bool) {
	r.mu.Lock()
	dst.Merge(r.h)
	dstKernel.Merge(r.hk)
	if reset {
		r.h.Reset()
		r.hk.Reset()
	}
	r.mu.Unlock()
}

// shutdown stops the loop, closes every socket and waits.
func (r *receiver) shutdown() {
	r.stop.Store(true)
	r.wake()
	<-r.done
}

func (r *receiver) run() {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	defer close(r.done)
	defer r.closeAll()
	for !r.stop.Load() {
		n, err := unix.EpollWait(r.epfd, r.events[:], 100)
		if err != nil && !errors.Is(err, unix.EINTR) {
			r.sh.noteErr("epoll_wait: " + err.Error())
			return
		}
		for i := 0; i < n; i++ {
			ev := r.events[i]
			if int(ev.Fd) == r.evfd {
				r.onWake()
				continue
			}
			if c := r.lookup(int(ev.Fd)); c != nil {
				r.onEvent(c, ev.Events)
			}
		}
	}
}

func (r *receiver) onWake() {
	var b [8]byte
	_, _ = unix.Read(r.evfd, b[:])
	for {
		select {
		case c := <-r.in:
			r.register(c)
		case f := <-r.cmds:
			f()
		default:
			return
		}
	}
}

func (r *receiver) lookup(fd int) *conn {
	if fd < len(r.conns) {
		return r.conns[fd]
	}
	return nil
}

func (r *receiver) register(c *conn) {
	for c.fd >= len(r.conns) {
		r.conns = append(r.conns, make([]*conn, len(r.conns)+1024)...)
	}
	r.conns[c.fd] = c
	if c.slow {
		r.slow = append(r.slow, c)
	}
	ev := unix.EpollEvent{Events: unix.EPOLLOUT | unix.EPOLLIN | unix.EPOLLRDHUP, Fd: int32(c.fd)}
	if err := unix.EpollCtl(r.epfd, unix.EPOLL_CTL_ADD, c.fd, &ev); err != nil {
		r.fail(c, "epoll_ctl: "+err.Error())
	}
}

func (r *receiver) setEvents(c *conn, events uint32) {
	ev := unix.EpollEvent{Events: events, Fd: int32(c.fd)}
	_ = unix.EpollCtl(r.epfd, unix.EPOLL_CTL_MOD, c.fd, &ev)
}

func (r *receiver) onEvent(c *conn, events uint32) {
	if c.state == stConnecting {
		r.onConnected(c)
		return
	}
	if events&unix.EPOLLOUT != 0 && len(c.out) > 0 {
		r.flushOut(c)
	}
	if events&(unix.EPOLLIN|unix.EPOLLHUP|unix.EPOLLERR|unix.EPOLLRDHUP) != 0 && c.state != stClosed {
		r.read(c)
	}
}

func (r *receiver) onConnected(c *conn) {
	soerr, err := unix.GetsockoptInt(c.fd, unix.SOL_SOCKET, unix.SO_ERROR)
	if err != nil || soerr != 0 {
		r.fail(c, "connect: "+unix.Errno(soerr).Error())
		return
	}
	c.state = stUpgrading
	r.setEvents(c, unix.EPOLLIN|unix.EPOLLRDHUP)
	r.send(c, handshake(r.sh.host))
}

// send queues b and writes what the socket takes now.
func (r *receiver) send(c *conn, b []byte) {
	c.out = append(c.out, b...)
	r.flushOut(c)
}

func (r *receiver) flushOut(c *conn) {
	armed := len(c.out) > 0
	for len(c.out) > 0 {
		n, err := unix.Write(c.fd, c.out)
		if err == unix.EAGAIN {
			r.setEvents(c, unix.EPOLLIN|unix.EPOLLRDHUP|unix.EPOLLOUT)
			return
		}
		if err != nil {
			r.closeConn(c, "error")
			return
		}
		c.out = c.out[n:]
	}
	if armed {
		c.out = nil
		if !c.paused && c.state != stClosed {
			r.setEvents(c, unix.EPOLLIN|unix.EPOLLRDHUP)
		}
	}
}

// read reads one large chunk (level-triggered: epoll reports the rest) and
// handles every complete frame in it.
func (r *receiver) read(c *conn) {
	n0 := copy(r.buf, c.carry)
	n, oobn, _, _, err := unix.Recvmsg(c.fd, r.buf[n0:], r.oob, 0)
	if err == unix.EAGAIN || err == unix.EINTR {
		return
	}
	if err != nil {
		r.closeConn(c, "reset")
		return
	}
	if n == 0 {
		r.closeConn(c, "eof")
		return
	}
	t := time.Now()
	now := int64(t.Sub(r.sh.base))
	r.rxAge = -1
	if rx := rxTimestamp(r.oob[:oobn]); rx > 0 {
		r.rxAge = max(t.UnixNano()-rx, 0)
	}
	data := r.buf[:n0+n]
	r.mu.Lock()
	used := r.process(c, data, now)
	r.mu.Unlock()
	r.flushCounters()
	if c.state == stClosed {
		return
	}
	c.carry = append(c.carry[:0], data[used:]...)
	if len(c.carry) == 0 && cap(c.carry) > 64<<10 {
		c.carry = nil
	}
}

func (r *receiver) flushCounters() {
	if r.nDelivered > 0 {
		r.sh.delivered.Add(r.nDelivered)
		r.nDelivered = 0
	}
	if r.nSlow > 0 {
		r.sh.slowDelivered.Add(r.nSlow)
		r.nSlow = 0
	}
	if r.nWarm > 0 {
		r.sh.warmDelivered.Add(r.nWarm)
		r.nWarm = 0
	}
}

// process handles the HTTP response (while upgrading) and the complete
// frames at the start of data; it returns the bytes consumed.
func (r *receiver) process(c *conn, data []byte, now int64) int {
	used := 0
	if c.state == stUpgrading {
		end, ok := httpResponseEnd(data)
		if end == 0 {
			if len(data) > 16<<10 {
				r.fail(c, "upgrade response too long")
			}
			return 0
		}
		if !ok {
			line := data[:min(end, 80)]
			r.fail(c, "upgrade refused: "+string(line))
			return end
		}
		used = end
		c.state = stIniting
		r.send(c, wsframe.AppendFrame(nil, wsframe.OpText, msgInit, true, c.key()))
	}
	for c.state != stClosed {
		h, hl, err := wsframe.ParseHeader(data[used:], maxFrame)
		if err != nil {
			r.sh.protoErrors.Add(1)
			r.fail(c, "bad frame: "+err.Error())
			return used
		}
		if hl == 0 || len(data)-used < hl+h.Len {
			break
		}
		p := data[used+hl : used+hl+h.Len]
		used += hl + h.Len
		if h.Masked {
			wsframe.Mask(p, h.Mask, 0)
		}
		r.onFrame(c, h, p, now)
	}
	return used
}

func (r *receiver) onFrame(c *conn, h wsframe.Header, p []byte, now int64) {
	switch h.Op {
	case wsframe.OpText:
		if !h.Fin {
			r.sh.protoErrors.Add(1) // fragmented messages are not expected
			return
		}
		r.onText(c, p, now)
	case wsframe.OpPing:
		r.send(c, wsframe.AppendFrame(nil, wsframe.OpPong, p, true, c.key()))
	case wsframe.OpClose:
		r.closeConn(c, "close")
	case wsframe.OpContinuation:
		r.sh.protoErrors.Add(1)
	}
}

func (r *receiver) onText(c *conn, p []byte, now int64) {
	t := wsframe.Type(p)
	if len(t) == 0 {
		r.sh.unknown.Add(1)
		return
	}
	switch {
	case string(t) == "next":
		r.onNext(c, p, now)
	case string(t) == "ping":
		r.sh.pings.Add(1)
		r.send(c, wsframe.AppendFrame(nil, wsframe.OpText, msgPong, true, c.key()))
	case string(t) == "pong":
		if c.state == stSubscribed {
			c.state = stReady
			r.sh.ready.Add(1)
		}
	case string(t) == "connection_ack":
		if c.state == stIniting {
			r.subscribe(c)
		}
	case string(t) == "error" || string(t) == "complete":
		r.sh.serverErrors.Add(1)
		r.sh.noteErr("server sent: " + string(p[:min(len(p), 200)]))
	default:
		r.sh.unknown.Add(1)
	}
}

func (r *receiver) subscribe(c *conn) {
	var b []byte
	for j := range int(c.nsubs) {
		k := int(c.firstSub) + j
		b = appendSubscribe(b, j+1, r.sh.topics[k%len(r.sh.topics)], c.key())
	}
	b = wsframe.AppendFrame(b, wsframe.OpText, msgPing, true, c.key())
	c.state = stSubscribed
	r.send(c, b)
}

func (r *receiver) onNext(c *conn, p []byte, now int64) {
	seq, ok := wsframe.Seq(p)
	id, idOK := wsframe.ParseInt(wsframe.ID(p))
	if !ok || !idOK || id < 1 || id > int64(c.nsubs) {
		r.sh.unknown.Add(1)
		return
	}
	k := int(c.firstSub) + int(id) - 1
	switch {
	case seq < 0:
		r.nWarm++
		if atomic.CompareAndSwapUint32(&r.sh.subWarm[k], 0, 1) {
			r.sh.warmed.Add(1)
		}
	case c.slow:
		r.nSlow++
	case seq < int64(len(r.sh.sendNs)):
		r.nDelivered++
		atomic.AddUint32(&r.sh.subGot[k], 1)
		if sent := atomic.LoadInt64(&r.sh.sendNs[seq]); sent > 0 {
			r.h.Record(now - sent)
			if r.rxAge >= 0 {
				r.hk.Record(max(now-r.rxAge-sent, 0))
			}
		}
	default:
		r.sh.unknown.Add(1)
	}
}

func (r *receiver) fail(c *conn, why string) {
	r.sh.noteErr(why)
	r.closeConn(c, "error")
}

func (r *receiver) closeConn(c *conn, why string) {
	if c.state == stClosed {
		return
	}
	if c.state != stReady {
		r.sh.failed.Add(1)
	} else if !c.slow {
		r.sh.dropped.Add(1)
	}
	c.state, c.closedBy = stClosed, why
	if !c.paused {
		_ = unix.EpollCtl(r.epfd, unix.EPOLL_CTL_DEL, c.fd, nil)
	}
	_ = unix.Close(c.fd)
	r.conns[c.fd] = nil
	c.carry, c.out = nil, nil
}

// pauseSlow stops reading the slow connections (run on the receiver).
func (r *receiver) pauseSlow() {
	for _, c := range r.conns {
		if c != nil && c.slow && !c.paused && c.state != stClosed {
			_ = unix.EpollCtl(r.epfd, unix.EPOLL_CTL_DEL, c.fd, nil)
			c.paused = true
		}
	}
}

// resumeSlow reads the slow connections again (run on the receiver).
func (r *receiver) resumeSlow() {
	for _, c := range r.conns {
		if c != nil && c.paused {
			c.paused = false
			ev := unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLRDHUP, Fd: int32(c.fd)}
			_ = unix.EpollCtl(r.epfd, unix.EPOLL_CTL_ADD, c.fd, &ev)
		}
	}
}

// slowStats counts slow connections closed by the server and still open
// (run on the receiver).
func (r *receiver) slowStats() (cut, open int) {
	for _, c := range r.slow {
		switch {
		case c.state != stClosed:
			open++
		case c.closedBy != "error":
			cut++
		}
	}
	return cut, open
}

func (r *receiver) closeAll() {
	for _, c := range r.conns {
		if c != nil {
			_ = unix.Close(c.fd)
		}
	}
	r.conns = nil
	_ = unix.Close(r.epfd)
	_ = unix.Close(r.evfd)
}

// rxTimestamp reads the SCM_TIMESTAMPNS control message of a recvmsg
// (ns since the epoch), 0 if there is none. For TCP the kernel gives the
// time of the last segment the read took, so a frame that arrived earlier
// in the same read is never timed early. It parses in place: no
// allocation per read.
func rxTimestamp(oob []byte) int64 {
	for len(oob) >= unix.SizeofCmsghdr {
		h := (*unix.Cmsghdr)(unsafe.Pointer(&oob[0]))
		if h.Len < unix.SizeofCmsghdr || int(h.Len) > len(oob) {
			return 0
		}
		if h.Level == unix.SOL_SOCKET && h.Type == unix.SCM_TIMESTAMPNS && int(h.Len) >= unix.SizeofCmsghdr+int(unsafe.Sizeof(unix.Timespec{})) {
			ts := (*unix.Timespec)(unsafe.Pointer(&oob[unix.SizeofCmsghdr]))
			return ts.Nano()
		}
		oob = oob[cmsgSpace(int(h.Len)):]
	}
	return 0
}

// cmsgSpace is a control message's length rounded up to the alignment
// of the next one.
func cmsgSpace(n int) int {
	const align = int(unsafe.Sizeof(uintptr(0)))
	return (n + align - 1) &^ (align - 1)
}
