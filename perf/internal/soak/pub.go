package soak

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/fraised/fraised/perf/internal/respw"
)

// pubConn is a Redis-protocol publisher connection. Writes come from one
// goroutine and replies are read by one (possibly another) goroutine.
type pubConn struct {
	conn *net.TCPConn
	r    *bufio.Reader
}

func dialPub(src net.IP, addr string, rcvbuf int) (*pubConn, error) {
	c, err := dialTCP(src, addr, rcvbuf)
	if err != nil {
		return nil, err
	}
	return &pubConn{conn: c, r: bufio.NewReaderSize(c, 16<<10)}, nil
}

// write writes b within d.
func (p *pubConn) write(b []byte, d time.Duration) error {
	_ = p.conn.SetWriteDeadline(time.Now().Add(d))
	_, err := p.conn.Write(b)
	return err
}

// reply reads one reply: an integer (kind ':'), or an error or status
// line (text). It waits at most d.
func (p *pubConn) reply(d time.Duration) (kind byte, n int64, text string, err error) {
	_ = p.conn.SetReadDeadline(time.Now().Add(d))
	line, err := p.r.ReadSlice('\n')
	if err != nil {
		return 0, 0, "", err
	}
	r, k, err := respw.ParseReply(line)
	if err != nil || k == 0 {
		return 0, 0, "", fmt.Errorf("bad reply %q: %v", line, err)
	}
	return r.Kind, r.Int, string(r.Text), nil
}

// publishWait publishes one event and waits for its reply.
func (p *pubConn) publishWait(topic string, payload []byte, d time.Duration) (int64, error) {
	if err := p.write(respw.AppendPublish(nil, []byte(topic), payload), d); err != nil {
		return 0, fmt.Errorf("cannot publish: %w", err)
	}
	kind, n, text, err := p.reply(d)
	if err != nil {
		return 0, fmt.Errorf("no reply to PUBLISH: %w", err)
	}
	if kind != ':' {
		return 0, fmt.Errorf("PUBLISH answered %c%s", kind, text)
	}
	return n, nil
}

// probe publishes a seq -1 event on topic until it reaches want
// subscriptions, so that every subscriber is live before a scenario counts.
func probe(p *pubConn, topic string, want int64, limit time.Duration) error {
	end := time.Now().Add(limit)
	var got int64
	for time.Now().Before(end) {
		n, err := p.publishWait(topic, []byte(`{"seq":-1,"ts":0,"body":"probe"}`), 5*time.Second)
		if err != nil {
			return err
		}
		if got = n; got >= want {
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("only %d of %d subscriptions on %s became live within %v", got, want, topic, limit)
}

// livePub dials the server's publisher port and probes topic until want
// subscriptions are live. On failure it reports through e.Fail and returns
// nil; otherwise the caller closes the returned connection.
func livePub(e *Env, topic string, want int64) *pubConn {
	p, err := dialPub(nil, e.Child.Pub, 0)
	if err != nil {
		e.Fail("%v", err)
		return nil
	}
	if err := probe(p, topic, want, liveWait); err != nil {
		p.conn.Close()
		e.Fail("%v", err)
		return nil
	}
	return p
}

// eventPayload is `{"seq":N,"ts":0,"body":"<pad>"}` of at least size bytes.
func eventPayload(dst []byte, seq int64, size int) []byte {
	dst = append(dst[:0], `{"seq":`...)
	dst = strconv.AppendInt(dst, seq, 10)
	dst = append(dst, `,"ts":0,"body":"`...)
	for len(dst) < size-2 {
		dst = append(dst, 'x')
	}
	return append(dst, `"}`...)
}

// isTimeout reports whether err is a deadline expiry.
func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
