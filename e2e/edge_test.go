package e2e

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// startLimited runs fraised under prlimit with an open-files limit of
// nofile (soft and hard, so Go cannot raise it) and waits until it serves.
func startLimited(t *testing.T, nofile int, extra ...string) *proc {
	t.Helper()
	prlimit, err := exec.LookPath("prlimit")
	if err != nil {
		t.Fatalf("prlimit (util-linux) is required to run fraised under a low open-files limit: %v", err)
	}
	p := newProc(t)
	args := append([]string{fmt.Sprintf("--nofile=%d:%d", nofile, nofile), bin, "--schema", "../examples/schema.graphql",
		"--listen", p.listen, "--publish-listen", p.publish, "--publish-unix", p.unix}, extra...)
	p.run(t, exec.Command(prlimit, args...))
	p.waitServed(t)
	return p
}

// respPublisher is one long-lived Redis-protocol connection.
type respPublisher struct {
	conn net.Conn
	r    *bufio.Reader
}

func dialRESP(t *testing.T, addr string) *respPublisher {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &respPublisher{conn: c, r: bufio.NewReader(c)}
}

func (p *respPublisher) publish(t *testing.T, topic, payload string) string {
	t.Helper()
	fmt.Fprintf(p.conn, "*3\r\n$7\r\nPUBLISH\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n", len(topic), topic, len(payload), payload)
	_ = p.conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	line, err := p.r.ReadString('\n')
	if err != nil {
		t.Fatalf("publish reply: %v", err)
	}
	return strings.TrimSpace(line)
}

// TestEMFILEKeepsServing: with --max-connections above what the
// open-files limit allows, a connection flood drives accept into EMFILE;
// the server backs off, keeps delivering to its established subscriber,
// serves new clients once descriptors are free, and exits 0 only on
// SIGTERM.
func TestEMFILEKeepsServing(t *testing.T) {
	const nofile = 96
	p := startLimited(t, nofile, "--max-connections", "1000", "--max-ip-connections", "0",
		"--limit-ip-connections", "0", "--http-read-timeout", "60s")
	sub := dialWSHeader(t, p.listen, nil)
	sub.send(`{"type":"connection_init"}`)
	if got := sub.next(); got != ack {
		t.Fatalf("init: %s", got)
	}
	sub.send(`{"id":"1","type":"subscribe","payload":{"query":"subscription { events(topic: \"e\") { seq } }"}}`)
	pub := dialRESP(t, p.publish)
	deadline := time.Now().Add(10 * time.Second)
	for pub.publish(t, "e", `{"seq":0}`) != ":1" {
		if time.Now().After(deadline) {
			t.Fatal("subscription not registered")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if got := sub.next(); !strings.Contains(got, `"seq":0`) {
		t.Fatalf("first event: %s", got)
	}

	var flood []net.Conn
	defer func() {
		for _, c := range flood {
			c.Close()
		}
	}()
	for i := 0; i < 3*nofile; i++ {
		c, err := net.DialTimeout("tcp", p.listen, 5*time.Second)
		if err != nil {
			t.Fatalf("flood connection %d: %v", i, err)
		}
		flood = append(flood, c)
	}
	p.waitLog(t, "too many open files")

	for i := 1; i <= 3; i++ {
		if got := pub.publish(t, "e", fmt.Sprintf(`{"seq":%d}`, i)); got != ":1" {
			t.Fatalf("publish during EMFILE: %s", got)
		}
		if got := sub.next(); !strings.Contains(got, fmt.Sprintf(`"seq":%d`, i)) {
			t.Fatalf("event %d during EMFILE: %s", i, got)
		}
	}
	select {
	case err := <-p.exited:
		t.Fatalf("fraised exited during the flood: %v", err)
	default:
	}

	for _, c := range flood {
		c.Close()
	}
	flood = nil
	late := dialWSHeader(t, p.listen, nil)
	late.send(`{"type":"connection_init"}`)
	if got := late.next(); got != ack {
		t.Fatalf("client after the flood: %s", got)
	}
	p.terminate(t, 15*time.Second)
}

// TestDefaultCapKeepsDescriptors: with the derived --max-connections a
// flood is refused with 503 before the process runs out of descriptors.
func TestDefaultCapKeepsDescriptors(t *testing.T) {
	const nofile = 512 // cap = 512 - 128 - 64 - 256 = 64
	p := startLimited(t, nofile, "--max-ip-connections", "0", "--limit-ip-connections", "0", "--http-read-timeout", "60s")
	var flood []net.Conn
	defer func() {
		for _, c := range flood {
			c.Close()
		}
	}()
	refused := 0
	for i := 0; i < 100 && refused == 0; i++ {
		c, err := net.DialTimeout("tcp", p.listen, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		flood = append(flood, c)
		_ = c.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
		line, _ := bufio.NewReader(c).ReadString('\n')
		if strings.HasPrefix(line, "HTTP/1.1 503") {
			refused = i
		}
	}
	if refused != 64 {
		t.Fatalf("first 503 at connection %d, want 64 (the derived cap)", refused)
	}
	if strings.Contains(p.log(), "too many open files") {
		t.Fatal("the process reached EMFILE under its default cap")
	}
}

// vmHWM returns the peak resident set of pid in KiB.
func vmHWM(t *testing.T, pid int) int {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmHWM:" {
			n, _ := strconv.Atoi(f[1])
			return n
		}
	}
	t.Fatal("no VmHWM in /proc status")
	return 0
}

// TestPipelinedHealthzStaysBounded: a client pipelining GET /healthz
// without reading the responses is cut off; the server's peak RSS stays
// near its idle size (it grew to 2.8 GB in 14 s before).
func TestPipelinedHealthzStaysBounded(t *testing.T) {
	p := startBinary(t)
	before := vmHWM(t, p.cmd.Process.Pid)
	// The receive buffer is set before the handshake: set after it, the
	// kernel drops the responses already let into the larger window and
	// the connection stalls in retransmission backoff (see
	// server.dialSmallReceiveBuffer's comment); that stalled this test
	// with 4,081,280 bytes written.
	d := net.Dialer{Timeout: 5 * time.Second, Control: func(_, _ string, rc syscall.RawConn) error {
		var serr error
		if err := rc.Control(func(fd uintptr) {
			serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4<<10)
		}); err != nil {
			return err
		}
		return serr
	}}
	conn, err := d.Dial("tcp", p.listen)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	req := []byte(strings.Repeat("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n", 4000))
	_ = conn.SetWriteDeadline(time.Now().Add(15 * time.Second))
	written := 0
	for written < 512<<20 {
		n, err := conn.Write(req)
		written += n
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				t.Fatalf("not cut off after %d bytes in 15 s", written)
			}
			break
		}
	}
	after := vmHWM(t, p.cmd.Process.Pid)
	t.Logf("wrote %d bytes before the cut; server peak RSS %d KiB -> %d KiB", written, before, after)
	if written >= 512<<20 {
		t.Fatalf("the server absorbed %d bytes of pipelined requests", written)
	}
	if after-before > 64<<10 {
		t.Fatalf("server peak RSS grew by %d KiB", after-before)
	}
}

func TestHelpListsEdgeFlags(t *testing.T) {
	out, err := exec.Command(bin, "--help").CombinedOutput()
	if err != nil {
		t.Fatalf("--help: %v", err)
	}
	for _, name := range []string{"http-read-timeout", "http-idle-timeout", "max-connections", "max-ip-connections",
		"trusted-proxies", "forwarded-header", "proxy-protocol"} {
		env := "FRAISED_" + strings.ToUpper(strings.ReplaceAll(name, "-", "_"))
		flag := "--" + name
		if !(strings.Contains(string(out), flag+" ") || strings.Contains(string(out), flag+"\n")) || !strings.Contains(string(out), env) {
			t.Errorf("--help lacks --%s or %s", name, env)
		}
	}
}

// TestEdgeFlagErrors: a bad trusted-proxy list or header name is a usage
// error that names the problem.
func TestEdgeFlagErrors(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--trusted-proxies", "10.0.0.0/33"}, "invalid trusted proxy"},
		{[]string{"--forwarded-header", "x-real-ip"}, "use x-forwarded-for or forwarded"},
	} {
		out, err := exec.Command(bin, append([]string{"--schema", "../examples/schema.graphql"}, c.args...)...).CombinedOutput()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 2 || !strings.Contains(string(out), c.want) {
			t.Errorf("%v: exit %v, output %q; want code 2 and %q", c.args, err, out, c.want)
		}
	}
}
