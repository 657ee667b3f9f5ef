package e2e

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/fraised/fraised/internal/freeport"

	"github.com/fraised/fraised/internal/pgtest"
)

// bin is the fraised binary under test: $FRAISED_BIN, or built by TestMain.
var bin string

func TestMain(m *testing.M) {
	bin = os.Getenv("FRAISED_BIN")
	if bin == "" {
		dir, err := os.MkdirTemp("", "fraised-e2e")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		bin = filepath.Join(dir, "fraised")
		// Static and -trimpath, like `make build`: the release binary (it
		// refuses --plugin), sharing make build's compile cache.
		build := exec.Command("go", "build", "-trimpath", "-o", bin, "../cmd/fraised")
		build.Env = append(os.Environ(), "CGO_ENABLED=0")
		out, err := build.CombinedOutput()
		if err != nil {
			fmt.Fprintf(os.Stderr, "cannot build fraised: %v\n%s", err, out)
			os.Exit(1)
		}
		code := m.Run()
		pgtest.StopShared()
		os.RemoveAll(dir)
		os.Exit(code)
	}
	code := m.Run()
	pgtest.StopShared()
	os.Exit(code)
}

// freePort is a loopback address for a listener the binary binds itself.
func freePort(t *testing.T) string {
	t.Helper()
	a, err := freeport.Addr()
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// proc is a running fraised binary.
type proc struct {
	cmd     *exec.Cmd
	listen  string
	publish string
	unix    string
	mu      sync.Mutex
	logs    strings.Builder
	exited  chan error
}

// startBinary runs fraised on the example schema with free ports and waits
// until it accepts connections.
func startBinary(t *testing.T, extra ...string) *proc {
	t.Helper()
	p := newProc(t)
	args := append([]string{"--schema", "../examples/schema.graphql", "--listen", p.listen,
		"--publish-listen", p.publish, "--publish-unix", p.unix, "--log-level", "debug"}, extra...)
	p.run(t, exec.Command(bin, args...))
	p.waitServed(t)
	return p
}

// waitServed waits until fraised answers GET /healthz with 200: a
// connection is then accepted, handed to an event loop and served (a
// TCP connect alone succeeds as soon as the socket listens, before the
// accept loop runs).
func (p *proc) waitServed(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.Dial("tcp", p.listen)
		if err == nil {
			fmt.Fprint(c, "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
			_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
			line, _ := bufio.NewReader(c).ReadString('\n')
			c.Close()
			if strings.HasPrefix(line, "HTTP/1.1 200") {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("fraised did not start: %v\n%s", err, p.log())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// newProc picks free ports and a socket path for one fraised process.
func newProc(t *testing.T) *proc {
	return &proc{listen: freePort(t), publish: freePort(t), unix: filepath.Join(t.TempDir(), "pub.sock"), exited: make(chan error, 1)}
}

// run starts cmd as p's process, collects its stderr into p.logs, sends its
// exit to p.exited, and kills it when the test ends (logging it on failure).
func (p *proc) run(t *testing.T, cmd *exec.Cmd) {
	t.Helper()
	p.cmd = cmd
	stderr, _ := p.cmd.StderrPipe()
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		s := bufio.NewScanner(stderr)
		for s.Scan() {
			p.mu.Lock()
			p.logs.WriteString(s.Text() + "\n")
			p.mu.Unlock()
		}
		p.exited <- p.cmd.Wait()
	}()
	t.Cleanup(func() {
		_ = p.cmd.Process.Kill()
		if t.Failed() {
			t.Logf("fraised logs:\n%s", p.log())
		}
	})
}

// terminate sends SIGTERM and waits up to limit for a clean exit.
func (p *proc) terminate(t *testing.T, limit time.Duration) {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	p.waitExit(t, limit)
}

// waitExit waits up to limit for the process to exit with status 0.
func (p *proc) waitExit(t *testing.T, limit time.Duration) {
	t.Helper()
	select {
	case err := <-p.exited:
		if err != nil {
			t.Fatalf("fraised exited with %v after SIGTERM, want 0", err)
		}
	case <-time.After(limit):
		t.Fatal("fraised did not exit after SIGTERM")
	}
}

func (p *proc) log() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.logs.String()
}

// publish runs `fraised publish` and returns its output.
func publish(t *testing.T, p *proc, topic, payload string) string {
	t.Helper()
	out, err := exec.Command(bin, "publish", "--addr", p.publish, topic, payload).CombinedOutput()
	if err != nil {
		t.Fatalf("fraised publish: %v: %s", err, out)
	}
	return strings.TrimSpace(string(out))
}

// publishUntil republishes a probe until it reaches want subscriptions.
func publishUntil(t *testing.T, p *proc, topic, payload, want string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		got := publish(t, p, topic, payload)
		if got == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("publish output %q, want %q", got, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func runCtx(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}
