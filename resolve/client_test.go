package resolve

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeProcess is a resolver process in Go on a Unix socket: it records
// every calls frame and answers with answer (nil: never).
type fakeProcess struct {
	ln     net.Listener
	mu     sync.Mutex
	frames [][]int // call ids per frame
	conns  []net.Conn
	answer func(ids []uint64) []byte
}

func startFake(t *testing.T, answer func(ids []uint64) []byte) (*fakeProcess, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "r.sock")
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeProcess{ln: ln, answer: answer}
	t.Cleanup(func() { ln.Close(); f.dropAll() })
	go f.accept()
	return f, path
}

func (f *fakeProcess) accept() {
	for {
		c, err := f.ln.Accept()
		if err != nil {
			return
		}
		f.mu.Lock()
		f.conns = append(f.conns, c)
		f.mu.Unlock()
		go f.serve(c)
	}
}

func (f *fakeProcess) serve(c net.Conn) {
	var buf []byte
	for {
		body, err := readFrame(c, buf)
		if err != nil {
			return
		}
		var frame struct {
			Calls []struct {
				ID uint64 `json:"id"`
			} `json:"calls"`
		}
		if json.Unmarshal(body, &frame) != nil {
			return
		}
		ids := make([]uint64, len(frame.Calls))
		rec := make([]int, len(frame.Calls))
		for i, c := range frame.Calls {
			ids[i], rec[i] = c.ID, int(c.ID)
		}
		f.mu.Lock()
		f.frames = append(f.frames, rec)
		f.mu.Unlock()
		if f.answer != nil {
			if out := f.answer(ids); out != nil {
				c.Write(out)
			}
		}
	}
}

func (f *fakeProcess) dropAll() {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, c := range f.conns {
		c.Close()
	}
	f.conns = nil
}

func (f *fakeProcess) frameCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.frames)
}

// resultsFrame answers ids in reverse order with {"id":"<id>","n":<id>}.
func resultsFrame(ids []uint64) []byte {
	var rs []string
	for i := len(ids) - 1; i >= 0; i-- {
		rs = append(rs, fmt.Sprintf(`{"id":%d,"data":{"id":"%d","n":%d}}`, ids[i], ids[i], ids[i]))
	}
	rs = append(rs, `{"id":999999,"data":null}`) // unknown: dropped
	body := `{"results":[` + strings.Join(rs, ",") + `]}`
	return append(beginFrameHeader(len(body)), body...)
}

func beginFrameHeader(n int) []byte {
	return []byte{byte(n >> 24), byte(n >> 16), byte(n >> 8), byte(n)}
}

func waitReady(t *testing.T, cl *Client) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cl.Ready() {
		if time.Now().After(deadline) {
			t.Fatal("client did not connect in 10 s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestClientBatchesAndAnswersByID: the calls of one batch go out in one
// frame; answers in any order reach their own calls; an unknown id is
// ignored.
func TestClientBatchesAndAnswersByID(t *testing.T) {
	f, path := startFake(t, resultsFrame)
	cl := Open(Spec{Key: "Subscription.item", Unix: path}, time.Minute, slog.New(slog.DiscardHandler))
	t.Cleanup(func() { cl.Close(closedCtx()) })
	waitReady(t, cl)
	op := testOp(t, nil)
	q := NewCompletions(64, nil)
	calls := make([]*Call, 64)
	for i := range calls {
		calls[i] = NewCall(op, []byte(`{}`), time.Now().Add(time.Minute), q)
		cl.Start(calls[i])
	}
	cl.Flush()
	for range calls {
		c := waitCall(t, q)
		want := fmt.Sprintf(`{"data":{"item":{"id":"%d","n":%d}}}`, c.id, c.id)
		if string(c.Payload) != want {
			t.Fatalf("call %d got %s, want %s", c.id, c.Payload, want)
		}
	}
	if n := f.frameCount(); n != 1 {
		t.Fatalf("64 calls of one batch went out in %d frames, want 1", n)
	}
}

// TestClientCrashFailsInFlightAndRecovers: calls in flight when the
// process goes away get RESOLVER_UNAVAILABLE; once it is back, calls are
// answered again.
func TestClientCrashFailsInFlightAndRecovers(t *testing.T) {
	var answering sync.Mutex
	answer := false
	f, path := startFake(t, func(ids []uint64) []byte {
		answering.Lock()
		defer answering.Unlock()
		if !answer {
			return nil
		}
		return resultsFrame(ids)
	})
	cl := Open(Spec{Key: "Subscription.item", Unix: path}, time.Minute, slog.New(slog.DiscardHandler))
	t.Cleanup(func() { cl.Close(closedCtx()) })
	waitReady(t, cl)
	op := testOp(t, nil)
	q := NewCompletions(8, nil)
	cl.Start(NewCall(op, []byte(`{}`), time.Now().Add(time.Minute), q))
	cl.Flush()
	for f.frameCount() == 0 {
		time.Sleep(time.Millisecond)
	}
	f.dropAll() // the process "crashes" with the call in flight
	if c := waitCall(t, q); !strings.Contains(string(c.Payload), `"RESOLVER_UNAVAILABLE"`) {
		t.Fatalf("in flight at the crash: %s", c.Payload)
	}
	answering.Lock()
	answer = true
	answering.Unlock()
	deadline := time.Now().Add(10 * time.Second)
	for {
		cl.Start(NewCall(op, []byte(`{}`), time.Now().Add(time.Minute), q))
		cl.Flush()
		c := waitCall(t, q)
		if strings.Contains(string(c.Payload), `"item":{"id"`) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("not answered after reconnecting: %s", c.Payload)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if cl.Restarts() == 0 {
		t.Error("the reconnection was not counted")
	}
}

// TestClientDropsLateAnswers: an expired call is abandoned, and its late
// answer is dropped rather than delivered.
func TestClientDropsLateAnswers(t *testing.T) {
	release := make(chan []uint64, 1)
	_, path := startFake(t, func(ids []uint64) []byte { release <- ids; return nil })
	cl := Open(Spec{Key: "Subscription.item", Unix: path}, time.Minute, slog.New(slog.DiscardHandler))
	t.Cleanup(func() { cl.Close(closedCtx()) })
	waitReady(t, cl)
	q := NewCompletions(8, nil)
	c := NewCall(testOp(t, nil), []byte(`{}`), time.Now().Add(time.Minute), q)
	cl.Start(c)
	cl.Flush()
	<-release
	if expired, _ := c.Expire(); !expired {
		t.Fatal("not expired")
	}
	cl.Abandon(c, false)
	cl.answer(&result{ID: c.id, Data: json.RawMessage(`{"id":"late"}`)})
	if q.Len() != 0 || c.Payload != nil {
		t.Fatalf("a late answer was delivered: %s", c.Payload)
	}
}
