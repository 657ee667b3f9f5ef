package server

import (
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fraised/fraised/dispatch"
	"github.com/fraised/fraised/ratelimit"
	"github.com/fraised/fraised/resp"
)

// Read buffer sizes of a RESP publisher connection.
const (
	// pubReadBuf is the read buffer a publisher starts with: a 64-command
	// pipeline of small events fits in one read.
	pubReadBuf = 64 << 10
	// pubReadHeadroom is what a command may hold besides its payload (the
	// command name, a topic of up to maxTopicLen, the RESP headers); the
	// read buffer grows to at most MaxPayload plus this, one command.
	pubReadHeadroom = 64 << 10
)

// publishWriteTimeout bounds one write of replies to a publisher, and the
// final flush of a closing connection: a publisher that reads none of its
// replies for this long is cut off (its reader stopped reading it long
// before, at maxUnsentReplies). 10 s rides out any pause of a live process.
const publishWriteTimeout = 10 * time.Second

// pubConn is a Redis-protocol publisher connection (TCP or Unix socket).
// Publishers are few, trusted backends, so each is served by its own two
// goroutines, not by gnet: a reader that parses commands and pushes events,
// blocking while the ring has no room for it (so its socket is not read
// and TCP holds the publisher back), and a writer that writes its replies.
type pubConn struct {
	dispatch.Publisher
	wakeCh  chan struct{} // the dispatcher wakes a held-back command
	srv     *Server
	conn    net.Conn
	parser  resp.Parser
	bucket  ratelimit.Bucket
	rb      *replyBuf
	remote  string
	id      int64
	name    string // CLIENT SETNAME
	resp3   bool   // HELLO 3
	tx      *txState
	cbatch  clusterBatch // cluster mode: publishes waiting to go to the broker in one round trip
	reply3  []byte       // cluster mode: an FPUBLISH answer being built
	buf     []byte       // received bytes not yet consumed
	maxBuf  int          // the most buf may hold: one command
	stop    bool         // reader: stop after this command (QUIT, protocol error)
	waited  bool         // reader: blocked on backpressure since the last read
	results int          // commands and rejections seen, to tell a new partial command from an old one

	partialSince time.Time // when the partial command at the start of buf began arriving
	deadline     time.Time // the read deadline set on conn

	shutdown  atomic.Bool   // the server is shutting down: the end of input is not the peer's fault
	ending    chan struct{} // closed by the reader when it stops: the writer flushes and closes
	closing   chan struct{} // closed to abort: write failure or forced shutdown
	abortOnce sync.Once
}

func newPubConn(s *Server, conn net.Conn, id int64) *pubConn {
	c := &pubConn{
		srv:     s,
		conn:    conn,
		id:      id,
		rb:      newReplyBuf(),
		buf:     make([]byte, 0, pubReadBuf),
		maxBuf:  s.opts.MaxPayload + pubReadHeadroom,
		ending:  make(chan struct{}),
		closing: make(chan struct{}),
	}
	if a := conn.RemoteAddr(); a != nil {
		c.remote = a.String()
	}
	if c.remote == "" || c.remote == "@" {
		c.remote = "unix:" + s.opts.PublishUnix
	}
	c.wakeCh = make(chan struct{}, 1)
	c.Publisher.Init(s.d, c.rb, func() {
		select {
		case c.wakeCh <- struct{}{}:
		default:
		}
	})
	c.parser.MaxBulk = s.opts.MaxPayload
	return c
}

// serve runs the connection until it ends; it returns once both of its
// goroutines are done.
func (c *pubConn) serve() {
	writerDone := make(chan struct{})
	go func() {
		defer close(writerDone)
		c.writeLoop()
	}()
	c.readLoop()
	close(c.ending)
	<-writerDone
}

// abort cuts the connection: the writer stops, the socket is closed (which
// ends a blocked read), queued replies are dropped. Safe for concurrent use.
func (c *pubConn) abort() {
	c.abortOnce.Do(func() {
		close(c.closing)
		c.rb.close()
		_ = c.conn.Close()
	})
}

// readLoop reads and runs commands until the peer closes, a command ends
// the connection, or the connection is aborted.
func (c *pubConn) readLoop() {
	for !c.stop {
		if !c.waitReplies() {
			return
		}
		if len(c.buf) == cap(c.buf) && !c.grow() {
			return
		}
		c.setDeadline()
		n, err := c.conn.Read(c.buf[len(c.buf):cap(c.buf)])
		c.buf = c.buf[:len(c.buf)+n]
		if n > 0 {
			c.process()
		}
		if err != nil {
			c.readFailed(err)
			return
		}
	}
}

// process runs every complete command in buf, then keeps the rest (the
// start of the next command) at the front of buf. Parser state advances
// only past commands that ran: a command waiting for ring space blocks
// here, with its bytes still in buf.
func (c *pubConn) process() {
	off, pushed := 0, false
	for off < len(c.buf) && !c.stop {
		args, n, err := c.parser.Next(c.buf[off:])
		if n == 0 && err == nil {
			break
		}
		switch {
		case err != nil:
			c.results++
			c.rejected(err)
		case args != nil:
			c.results++
			pushed = true
			c.run(args)
		}
		off += n
		c.parser.Commit()
	}
	c.flushCluster() // batched publishes point into buf
	c.buf = c.buf[:copy(c.buf, c.buf[off:])]
	if len(c.buf) == 0 && cap(c.buf) > pubReadBuf {
		c.buf = make([]byte, 0, pubReadBuf) // drop a big command's buffer
	}
	if pushed {
		c.Dispatcher().Notify()
	}
}

// setDeadline gives a partial command --publish-read-timeout to arrive in
// full, counted from its first byte, so a publisher that sends half a
// command and stalls (or trickles one) is cut off; an idle publisher, with
// no partial command, may stay connected.
func (c *pubConn) setDeadline() {
	partial := len(c.buf) > 0 || c.parser.Partial()
	switch {
	case !partial:
		c.partialSince = time.Time{}
	case c.partialSince.IsZero() || c.waited || c.results > 0:
		// A new partial command, or one the server held up itself.
		c.partialSince = time.Now()
	}
	c.waited, c.results = false, 0
	var want time.Time
	if !c.partialSince.IsZero() {
		want = c.partialSince.Add(c.srv.opts.PublishReadTimeout)
	}
	if !want.Equal(c.deadline) {
		c.deadline = want
		_ = c.conn.SetReadDeadline(want)
	}
}

// grow doubles the read buffer for a command bigger than it, up to maxBuf;
// a command that does not fit even then is refused and ends the connection.
func (c *pubConn) grow() bool {
	if cap(c.buf) >= c.maxBuf {
		c.reply(appendErrorf(nil, "ERR Protocol error: command larger than %d bytes (the payload limit is --max-payload %d)", c.maxBuf, c.srv.opts.MaxPayload))
		return false
	}
	next := make([]byte, len(c.buf), min(2*cap(c.buf), c.maxBuf))
	copy(next, c.buf)
	c.buf = next
	return true
}

// readFailed handles the end of the input: the peer closed it (normal), a
// partial command timed out, or the connection was aborted.
func (c *pubConn) readFailed(err error) {
	switch {
	case errors.Is(err, io.EOF), errors.Is(err, net.ErrClosed), c.shutdown.Load():
	case errors.Is(err, os.ErrDeadlineExceeded):
		c.srv.refusals.note("publish_read_timeout", c.remote, "partial command not completed in time",
			"send whole commands, or raise --publish-read-timeout")
		c.reply(appendErrorf(nil, "ERR Protocol error: command not completed within %s (--publish-read-timeout)", c.srv.opts.PublishReadTimeout))
	default:
		c.srv.log.Debug("publisher read failed", "remote", c.remote, "err", err)
	}
}

// waitReplies blocks while the unsent replies exceed maxUnsentReplies, so a
// publisher that does not read its replies is not read either. It reports
// false when the connection is aborted.
func (c *pubConn) waitReplies() bool {
	for c.rb.unsent() > maxUnsentReplies {
		c.waited = true
		select {
		case <-c.rb.drained:
		case <-c.closing:
			c.stop = true
			return false
		}
	}
	return true
}

// publishWait publishes, waiting for the publisher's turn while the ring
// is full. It reports false (the event dropped) when the connection is
// aborted.
func (c *pubConn) publishWait(topic, payload []byte, rk dispatch.ReplyKind) bool {
	waited, ok := c.PublishWait(topic, payload, rk, c.wakeCh, c.closing)
	c.noteWait(waited, ok)
	return ok
}

// noteWait records a wait for the publisher's turn (the read deadline
// does not count it against the command) and an abort.
func (c *pubConn) noteWait(waited, ok bool) {
	c.waited = c.waited || waited
	c.stop = c.stop || !ok
}

// reply answers a command after every reply still in flight; b is copied.
func (c *pubConn) reply(b []byte) {
	c.flushCluster() // the replies of batched cluster publishes go first
	c.replyNow(b)
}

// replyNow is reply without the cluster batch's flush.
func (c *pubConn) replyNow(b []byte) {
	c.noteWait(c.ReplyWait(b, c.wakeCh, c.closing))
}

// writeLoop writes replies as they come. Once the reader has stopped it
// waits (up to publishWriteTimeout) for the replies of events still in
// flight, writes them and closes the socket.
func (c *pubConn) writeLoop() {
	defer c.abort()
	var spare []byte
	ending := c.ending
	var final <-chan time.Time
	for {
		select {
		case <-c.rb.ready:
		case <-ending:
			ending = nil
			t := time.NewTimer(publishWriteTimeout)
			defer t.Stop()
			final = t.C
		case <-final:
			return
		case <-c.closing:
			return
		}
		out := c.rb.take(spare)
		if len(out) > 0 {
			_ = c.conn.SetWriteDeadline(time.Now().Add(publishWriteTimeout))
			if _, err := c.conn.Write(out); err != nil {
				c.srv.log.Debug("publisher write failed", "remote", c.remote, "err", err)
				return
			}
		}
		spare = c.rb.wrote(out)
		if ending == nil && c.Inflight() == 0 && c.rb.unsent() == 0 {
			return
		}
	}
}
