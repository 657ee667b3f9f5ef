package resolve

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fraised/fraised/gql"
	"github.com/fraised/fraised/internal/backoff"
)

// Reconnection backoff of a resolver process (internal/backoff: doubling
// with jitter): from minBackoff to maxBackoff, back to minBackoff once a
// connection stayed up for stableAfter. A child that keeps crashing is
// restarted once every 2.5 to 5 s, so a resolver that dies at start
// cannot make fraised spin.
const (
	minBackoff  = 100 * time.Millisecond
	maxBackoff  = 5 * time.Second
	stableAfter = 10 * time.Second
)

// stopGrace is how long a resolver process has to exit after SIGTERM
// (and its socket closed) before it is killed.
const stopGrace = 2 * time.Second

var errUnavailable = gql.ResolverError(gql.CodeResolverUnavailable, "the resolver process is not available")

// conn is how a Client reaches its process: a Unix socket it dials, or a
// child it starts (exec). stop ends what dial began and reports how the
// child exited.
type conn interface {
	dial() (net.Conn, error)
	stop(grace time.Duration) error
	String() string
}

// Client is a Backend that sends calls to a resolver process over the
// socket protocol (protocol.go). The dispatcher's calls of one batch go
// out in one frame; answers come back on a reader goroutine. While the
// process is down (crashed, restarting, not listening), calls fail at
// once with RESOLVER_UNAVAILABLE, and calls in flight when it went down
// too; it is redialled (restarted) with backoff.
type Client struct {
	c       conn
	log     *slog.Logger
	timeout time.Duration

	batch []*Call // calls started since the last Flush; dispatcher-owned

	mu       sync.Mutex
	sock     net.Conn // nil while down
	inflight map[uint64]*Call
	queue    []*Call // submitted, for the writer
	nextID   uint64
	closing  bool

	wake    chan struct{}
	stopped chan struct{} // closed by Close
	done    chan struct{} // closed when run returns
	up      atomic.Bool

	answered, restarts atomic.Uint64
}

var _ Backend = (*Client)(nil)

// newClient returns a client of c and starts connecting.
func newClient(c conn, timeout time.Duration, log *slog.Logger) *Client {
	if log == nil {
		log = slog.Default()
	}
	cl := &Client{c: c, log: log.With("resolver", c.String()), timeout: timeout, inflight: map[uint64]*Call{},
		wake: make(chan struct{}, 1), stopped: make(chan struct{}), done: make(chan struct{})}
	go cl.run()
	return cl
}

// Start queues c for this batch's frame, or fails it at once when the
// process is down. Called by the dispatcher.
func (cl *Client) Start(c *Call) {
	if !cl.up.Load() {
		fail(c, errUnavailable)
		return
	}
	cl.batch = append(cl.batch, c)
}

// Flush hands the batch's calls to the writer: one frame. Called by the
// dispatcher.
func (cl *Client) Flush() {
	if len(cl.batch) == 0 {
		return
	}
	cl.submit(cl.batch)
	clear(cl.batch)
	cl.batch = cl.batch[:0]
}

// Abandon forgets an expired call: a late answer is dropped.
func (cl *Client) Abandon(c *Call, _ bool) {
	cl.mu.Lock()
	delete(cl.inflight, c.id)
	cl.mu.Unlock()
}

// Ready reports whether the process is connected.
func (cl *Client) Ready() bool { return cl.up.Load() }

// Restarts returns how many times the connection was lost and
// re-established or retried.
func (cl *Client) Restarts() uint64 { return cl.restarts.Load() }

// submit registers calls in flight and wakes the writer; while down they
// fail at once. Safe for concurrent use.
func (cl *Client) submit(calls []*Call) {
	cl.mu.Lock()
	if cl.sock == nil || cl.closing {
		cl.mu.Unlock()
		for _, c := range calls {
			fail(c, errUnavailable)
		}
		return
	}
	for _, c := range calls {
		cl.nextID++
		c.id = cl.nextID
		cl.inflight[c.id] = c
	}
	cl.queue = append(cl.queue, calls...)
	cl.mu.Unlock()
	select {
	case cl.wake <- struct{}{}:
	default:
	}
}

// Func returns a blocking resolver of key over this client, for query
// fields (they run on their own goroutine) and for callers of
// gql.Operation.AppendResult. The call's deadline is ctx's or the
// client's timeout, whichever comes first.
func (cl *Client) Func(key string, identity bool) gql.ResolverFunc {
	return func(ctx context.Context, p gql.ResolveParams) (any, error) {
		ctx, cancel := context.WithTimeout(ctx, cl.timeout)
		defer cancel()
		deadline, _ := ctx.Deadline()
		sink := NewCompletions(1, nil)
		c := NewRawCall(key, p, identity, deadline, sink)
		if p.Event != nil {
			c.Event = p.Event
		}
		cl.submit([]*Call{c})
		if _, err := sink.Wait(ctx); err != nil {
			if expired, _ := c.Expire(); expired {
				cl.Abandon(c, false)
				return nil, gql.ResolverError(gql.CodeResolverTimeout, "the resolver did not answer in time (--resolver-timeout)")
			}
		}
		if c.Err != nil {
			return nil, c.Err
		}
		return json.RawMessage(c.Raw), nil
	}
}

// Close drains the client: new calls fail, calls in flight get their
// answers until ctx ends, then the connection is closed and a child
// process stopped (SIGTERM, then SIGKILL after stopGrace).
func (cl *Client) Close(ctx context.Context) {
	cl.mu.Lock()
	if cl.closing {
		cl.mu.Unlock()
		<-cl.done
		return
	}
	cl.closing = true
	cl.mu.Unlock()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for cl.inflightLen() > 0 {
		select {
		case <-ctx.Done():
		case <-tick.C:
			continue
		}
		break
	}
	close(cl.stopped)
	<-cl.done
}

func (cl *Client) inflightLen() int {
	cl.mu.Lock()
	defer cl.mu.Unlock()
	return len(cl.inflight)
}

// run connects, serves the connection until it breaks, fails what was in
// flight, and reconnects with backoff, until Close.
func (cl *Client) run() {
	defer close(cl.done)
	wait := backoff.Backoff{Min: minBackoff, Max: maxBackoff}
	for {
		sock, err := cl.c.dial()
		if err == nil {
			since := time.Now()
			err = cl.serve(sock)
			if time.Since(since) >= stableAfter {
				wait.Reset()
			}
		}
		exit := cl.c.stop(stopGrace)
		if cl.isClosing() {
			return
		}
		cl.restarts.Add(1)
		d := wait.Next()
		cl.log.Warn("resolve: resolver process unavailable; calls get RESOLVER_UNAVAILABLE until it is back",
			"err", err, "exit", exit, "retry_in", d.Round(time.Millisecond))
		if !backoff.Sleep(cl.stopped, d) {
			return
		}
	}
}

func (cl *Client) isClosing() bool {
	select {
	case <-cl.stopped:
		return true
	default:
		return false
	}
}

// serve runs one connection: the reader on its own goroutine, the writer
// here. It returns why the connection ended, with every call it carried
// failed.
func (cl *Client) serve(sock net.Conn) error {
	cl.mu.Lock()
	cl.sock = sock
	cl.mu.Unlock()
	cl.up.Store(true)
	cl.log.Info("resolve: resolver process connected")
	readErr := make(chan error, 1)
	go func() { readErr <- cl.read(sock) }()
	err, readDone := cl.write(sock, readErr)
	sock.Close()
	if !readDone {
		if rerr := <-readErr; errors.Is(err, errStopped) {
			err = rerr
		}
	}
	cl.up.Store(false)
	cl.failAll()
	if cl.isClosing() {
		return nil
	}
	return err
}

var errStopped = errors.New("resolve: client closed")

// write sends the submitted calls, a frame per wake-up (split past
// MaxFrame), until the reader fails (readDone), a write fails or Close.
func (cl *Client) write(sock net.Conn, readErr <-chan error) (err error, readDone bool) {
	var buf []byte
	var spare []*Call
	for {
		select {
		case err := <-readErr:
			return fmt.Errorf("reading answers: %w", err), true
		case <-cl.stopped:
			return errStopped, false
		case <-cl.wake:
		}
		cl.mu.Lock()
		calls := cl.queue
		cl.queue = spare[:0]
		cl.mu.Unlock()
		var err error
		if buf, err = cl.encode(buf[:0], calls); err == nil && len(buf) > 0 {
			_ = sock.SetWriteDeadline(time.Now().Add(cl.timeout))
			_, err = sock.Write(buf)
		}
		clear(calls)
		spare = calls
		if err != nil {
			return fmt.Errorf("writing calls: %w", err), false
		}
		if cap(buf) > 2*MaxFrame {
			buf = nil
		}
	}
}

// encode appends calls as frames, starting a new frame before one would
// pass MaxFrame. A call that does not fit in a frame alone fails.
func (cl *Client) encode(dst []byte, calls []*Call) ([]byte, error) {
	start, n := -1, 0
	for _, c := range calls {
		if c.Ended() {
			continue // expired while queued
		}
		if start < 0 {
			start, n = len(dst), 0
			dst = beginFrame(dst)
		}
		mark := len(dst)
		if n > 0 {
			dst = append(dst, ',')
		}
		var err error
		dst, err = appendCall(dst, c)
		switch {
		case err != nil:
			dst = dst[:mark]
			cl.failCall(c, gql.ResolverError(gql.CodeInternal, "internal error"), err)
			continue
		case len(dst)-start+2 > MaxFrame && n == 0:
			dst = dst[:start]
			start = -1
			cl.failCall(c, gql.ResolverError(gql.CodeInternal, "internal error"), errFrameTooLarge)
			continue
		case len(dst)-start+2 > MaxFrame:
			dst = endFrame(dst[:mark], start)
			start, n = len(dst), 0
			dst = beginFrame(dst)
			if dst, err = appendCall(dst, c); err != nil {
				return dst, err
			}
		}
		n++
	}
	if start >= 0 {
		dst = endFrame(dst, start)
	}
	return dst, nil
}

// failCall takes c out of flight and fails it with err, logging cause.
func (cl *Client) failCall(c *Call, err, cause error) {
	cl.mu.Lock()
	delete(cl.inflight, c.id)
	cl.mu.Unlock()
	cl.log.Error("resolve: cannot send a call to the resolver process", "field", c.Key, "err", cause)
	fail(c, err)
}

// read answers calls from the frames on sock until it fails.
func (cl *Client) read(sock net.Conn) error {
	var buf []byte
	for {
		body, err := readFrame(sock, buf)
		if err != nil {
			return err
		}
		buf = body[:0]
		results, err := parseResults(body)
		if err != nil {
			return err
		}
		for i := range results {
			cl.answer(&results[i])
		}
		if cap(buf) > 1<<20 {
			buf = nil
		}
	}
}

// answer completes the call r answers; an unknown id (an expired call) is
// dropped.
func (cl *Client) answer(r *result) {
	cl.mu.Lock()
	c := cl.inflight[r.ID]
	delete(cl.inflight, r.ID)
	cl.mu.Unlock()
	if c == nil {
		return
	}
	var err error
	if r.Error != nil {
		err = r.Error.err()
	}
	cl.answered.Add(1)
	if c.Op == nil {
		c.Raw, c.Err = r.Data, err
		if len(c.Raw) == 0 && err == nil {
			c.Raw = json.RawMessage("null")
		}
		c.Finish()
		return
	}
	c.Payload = c.Op.AppendResolved(nil, r.Data, err)
	c.Finish()
}

// failAll fails every call in flight (the connection is gone).
func (cl *Client) failAll() {
	cl.mu.Lock()
	calls := cl.inflight
	cl.inflight = map[uint64]*Call{}
	clear(cl.queue)
	cl.queue = cl.queue[:0]
	cl.sock = nil
	cl.mu.Unlock()
	for _, c := range calls {
		fail(c, errUnavailable)
	}
}

// fail ends c with err.
func fail(c *Call, err error) {
	if c.Op == nil {
		c.Err = err
	} else {
		c.Payload = c.Op.AppendResolved(nil, nil, err)
	}
	c.Finish()
}
