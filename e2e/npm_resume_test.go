package e2e

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestNPMResumeRecipe: the stock graphql-ws client wrapped by
// examples/resume/resume.mjs, behind a proxy that cuts its TCP
// connection several times while 2,000 events are published at 1,000/s,
// receives every event exactly once, in order, with contiguous offsets.
func TestNPMResumeRecipe(t *testing.T) {
	if os.Getenv("FRAISED_NPM_E2E") == "" {
		t.Skip("set FRAISED_NPM_E2E=1 after `npm ci --prefix e2e/npm` (make test does)")
	}
	p := startBinary(t, "--schema", "../examples/resume/schema.graphql")
	px := startCutter(t, p.listen)
	const n = 2000
	cmd := exec.CommandContext(runCtx(t, 60*time.Second), "node", "npm/resume.mjs", "--url", "ws://"+px.addr+"/graphql", "--count", fmt.Sprint(n+1), "r")
	stdout, _ := cmd.StdoutPipe()
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := make(chan string, n+16)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	pub := dialRESP(t, p.publish)
	// The probe: the subscription is live once a publish reaches it.
	deadline := time.Now().Add(20 * time.Second)
	for pub.publish(t, "feed.r", `{"seq":0}`) != ":1" {
		if time.Now().After(deadline) {
			t.Fatalf("the subscription never went live\n%s", stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	cuts := make(chan int, 1)
	go func() { cuts <- px.cutEvery(250*time.Millisecond, 2500*time.Millisecond) }()
	for i := 1; i <= n; i += 10 { // 10 events every 10 ms
		var b strings.Builder
		for j := i; j < i+10; j++ {
			ev := fmt.Sprintf(`{"seq":%d}`, j)
			fmt.Fprintf(&b, "*3\r\n$7\r\nPUBLISH\r\n$6\r\nfeed.r\r\n$%d\r\n%s\r\n", len(ev), ev)
		}
		if _, err := io.WriteString(pub.conn, b.String()); err != nil {
			t.Fatal(err)
		}
		for j := 0; j < 10; j++ {
			if _, err := pub.r.ReadString('\n'); err != nil {
				t.Fatal(err)
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	var got []struct {
		Seq    int    `json:"seq"`
		Offset uint64 `json:"offset"`
		Epoch  string `json:"epoch"`
	}
	for l := range lines {
		var e struct {
			Seq    int    `json:"seq"`
			Offset uint64 `json:"offset"`
			Epoch  string `json:"epoch"`
		}
		if err := json.Unmarshal([]byte(l), &e); err != nil {
			t.Fatalf("bad line %q", l)
		}
		got = append(got, e)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("node: %v\n%s", err, stderr.String())
	}
	cutCount := <-cuts
	if len(got) != n+1 || got[0].Seq != 0 {
		t.Fatalf("got %d events (first %+v), want the probe then %d\n%s", len(got), got[0], n, stderr.String())
	}
	for i, e := range got[1:] {
		if e.Seq != i+1 || e.Offset != got[0].Offset+uint64(i+1) || e.Epoch != got[0].Epoch {
			t.Fatalf("event %d: %+v after %+v (cut %d times)", i+1, e, got[i], cutCount)
		}
	}
	if cutCount < 3 || !strings.Contains(stderr.String(), "connected") {
		t.Fatalf("the connection was cut %d times (want several); node said %s", cutCount, stderr.String())
	}
	t.Logf("cut %d times; %s", cutCount, strings.TrimSpace(stderr.String()))
}

// cutter is a TCP proxy that can cut every connection through it.
type cutter struct {
	addr  string
	mu    sync.Mutex
	conns []net.Conn
}

// startCutter proxies a loopback port to target until the test ends.
func startCutter(t *testing.T, target string) *cutter {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	c := &cutter{addr: l.Addr().String()}
	go func() {
		for {
			in, err := l.Accept()
			if err != nil {
				return
			}
			out, err := net.Dial("tcp", target)
			if err != nil {
				in.Close()
				continue
			}
			c.mu.Lock()
			c.conns = append(c.conns, in, out)
			c.mu.Unlock()
			go func() { _, _ = io.Copy(out, in); out.Close(); in.Close() }()
			go func() { _, _ = io.Copy(in, out); in.Close(); out.Close() }()
		}
	}()
	t.Cleanup(c.cut)
	return c
}

// cut closes every connection through the proxy.
func (c *cutter) cut() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, conn := range c.conns {
		conn.Close()
	}
	c.conns = nil
}

// cutEvery cuts the connections every interval for total and returns how
// many cuts found a connection to cut.
func (c *cutter) cutEvery(interval, total time.Duration) int {
	n := 0
	for end := time.Now().Add(total); time.Now().Before(end); {
		time.Sleep(interval)
		c.mu.Lock()
		had := len(c.conns) > 0
		c.mu.Unlock()
		if had {
			n++
		}
		c.cut()
	}
	return n
}
