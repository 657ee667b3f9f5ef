package loadgen

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fraised/fraised/perf/internal/respw"
	"github.com/fraised/fraised/perf/internal/wsframe"
)

// body is the ~100-byte string every event carries.
var body = bytes.Repeat([]byte("x"), 100)

// appendEvent appends {"seq":N,"ts":T,"body":"..."}.
func appendEvent(dst []byte, seq int64, ts float64) []byte {
	dst = append(dst, `{"seq":`...)
	dst = strconv.AppendInt(dst, seq, 10)
	dst = append(dst, `,"ts":`...)
	dst = strconv.AppendFloat(dst, ts, 'f', 6, 64)
	dst = append(dst, `,"body":"`...)
	dst = append(dst, body...)
	return append(dst, `"}`...)
}

func unixSeconds(t time.Time) float64 { return float64(t.UnixMicro()) / 1e6 }

// sink sends events to the server. send and close are called from one
// goroutine; the counters are safe from any.
type sink interface {
	// send publishes events seqs[i] to topics[i]; seqs ≥ 0 get their send
	// time recorded in sh.sendNs just before they leave.
	send(seqs []int64, topics []int32) error
	// acked returns how many publishes the server answered, the deliveries
	// it reported and how many it refused.
	acked() (replies, deliveries, errs int64)
	close() error
}

// queuedSink is a sink whose events wait for a free worker (HTTP, the
// PostgreSQL writers): send gives up at the deadline, and the wait counts
// as publish lag.
type queuedSink interface {
	sink
	setDeadline(*time.Time)
	queueLag() time.Duration
}

var _ queuedSink = (*httpSink)(nil)
var _ queuedSink = (*pgSink)(nil)

// respSink pipelines PUBLISH commands on one TCP or Unix connection.
type respSink struct {
	sh   *shared
	nc   net.Conn
	buf  []byte
	ev   []byte
	done chan struct{}

	replies, deliveries, errs atomic.Int64
}

func dialRESP(sh *shared, network, addr string) (*respSink, error) {
	nc, err := net.DialTimeout(network, addr, 5*time.Second)
	if err != nil {
		return nil, fmt.Errorf("cannot connect to the publish listener %s %s: %w", network, addr, err)
	}
	s := &respSink{sh: sh, nc: nc, done: make(chan struct{})}
	go s.readReplies()
	return s, nil
}

func (s *respSink) send(seqs []int64, topics []int32) error {
	ts := unixSeconds(time.Now())
	s.buf = s.buf[:0]
	for i, seq := range seqs {
		s.ev = appendEvent(s.ev[:0], seq, ts)
		s.buf = respw.AppendPublish(s.buf, s.sh.topics[topics[i]], s.ev)
	}
	now := s.sh.nowNs()
	for _, seq := range seqs {
		if seq >= 0 {
			s.sh.sent(seq, now)
		}
	}
	if _, err := s.nc.Write(s.buf); err != nil {
		return fmt.Errorf("cannot publish: %w", err)
	}
	return nil
}

func (s *respSink) readReplies() {
	defer close(s.done)
	br := bufio.NewReaderSize(s.nc, 64<<10)
	for {
		line, err := br.ReadSlice('\n')
		if err != nil {
			return
		}
		r, n, err := respw.ParseReply(line)
		if err != nil || n == 0 {
			s.errs.Add(1)
			s.sh.noteErr("bad publish reply: " + string(line))
			continue
		}
		s.replies.Add(1)
		switch r.Kind {
		case ':':
			s.deliveries.Add(r.Int)
		case '-':
			s.errs.Add(1)
			s.sh.noteErr("publish refused: " + string(r.Text))
		}
	}
}

func (s *respSink) acked() (int64, int64, int64) {
	return s.replies.Load(), s.deliveries.Load(), s.errs.Load()
}

func (s *respSink) close() error {
	err := s.nc.Close()
	<-s.done
	return err
}

// errPublishDeadline stops a publisher that cannot keep up.
var errPublishDeadline = errors.New("loadgen: the publisher could not send every event in time")

// httpWorkers is the number of concurrent POST /publish requests.
const httpWorkers = 16

// httpSink POSTs each event to BASE/publish/{topic} from a pool of workers.
type httpSink struct {
	jobQueue
	base   string
	token  string
	client *http.Client
	wg     sync.WaitGroup
	cancel context.CancelFunc

	replies, deliveries, errs atomic.Int64
}

func newHTTPSink(sh *shared, base, token string) *httpSink {
	ctx, cancel := context.WithCancel(context.Background())
	tr := &http.Transport{MaxIdleConnsPerHost: httpWorkers, MaxConnsPerHost: httpWorkers, DisableCompression: true}
	s := &httpSink{jobQueue: jobQueue{sh: sh, jobs: make(chan queuedJob, 4*httpWorkers)}, base: base, token: token, cancel: cancel,
		client: &http.Client{Transport: tr, Timeout: 30 * time.Second}}
	for range httpWorkers {
		s.wg.Go(func() { s.work(ctx) })
	}
	return s
}

func (s *httpSink) work(ctx context.Context) {
	var ev []byte
	for j := range s.jobs {
		ev = appendEvent(ev[:0], j.seq, unixSeconds(time.Now()))
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.base+"/publish/"+string(s.sh.topics[j.topic]), bytes.NewReader(ev))
		if err != nil {
			s.fail(err.Error())
			continue
		}
		req.Header.Set("Content-Type", "application/json")
		if s.token != "" {
			req.Header.Set("Authorization", "Bearer "+s.token)
		}
		s.leaving(j)
		resp, err := s.client.Do(req)
		if err != nil {
			s.fail(err.Error())
			continue
		}
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		resp.Body.Close()
		s.replies.Add(1)
		if resp.StatusCode/100 != 2 {
			s.fail(fmt.Sprintf("publish refused: %s %s", resp.Status, b))
			continue
		}
		if i := bytes.Index(b, []byte(`"deliveries":`)); i >= 0 {
			n, _ := wsframe.ParseInt(bytes.TrimLeft(b[i+13:], " "))
			s.deliveries.Add(n)
		}
	}
}

func (s *httpSink) fail(msg string) {
	s.errs.Add(1)
	s.sh.noteErr(msg)
}

func (s *httpSink) acked() (int64, int64, int64) {
	return s.replies.Load(), s.deliveries.Load(), s.errs.Load()
}

func (s *httpSink) close() error {
	close(s.jobs)
	s.cancel()
	s.wg.Wait()
	s.client.CloseIdleConnections()
	return nil
}
