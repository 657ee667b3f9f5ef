// Package redistest starts a real redis-server for tests: on a free
// loopback port, without persistence, stopped when the test ends.
package redistest

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/fraised/fraised/internal/freeport"
)

// startTimeout bounds waiting for redis-server to accept connections.
const startTimeout = 10 * time.Second

// Server is a redis-server process started by a test.
type Server struct {
	Addr string // host:port on loopback
	tb   testing.TB
	cmd  *exec.Cmd
	args []string
	tls  bool // serves TLS only: started when the port accepts TCP
}

// URL returns redis://Addr.
func (s *Server) URL() string { return "redis://" + s.Addr }

// Start starts redis-server with extra config arguments (for example
// "--appendonly", "yes"); the test fails when it is not installed.
func Start(tb testing.TB, extra ...string) *Server {
	tb.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		tb.Fatal("redis-server is not installed (apt-get install redis-server): the cluster tests need a real Redis")
	}
	addr, err := freeport.Addr()
	if err != nil {
		tb.Fatal(err)
	}
	_, port, _ := net.SplitHostPort(addr)
	s := &Server{Addr: addr, tb: tb}
	s.args = append([]string{"--port", port, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
		"--dir", tb.TempDir(), "--protected-mode", "no"}, extra...)
	s.start()
	tb.Cleanup(s.Kill)
	return s
}

func (s *Server) start() {
	s.tb.Helper()
	s.cmd = exec.Command("redis-server", s.args...)
	s.cmd.Stdout, s.cmd.Stderr = nil, nil
	if err := s.cmd.Start(); err != nil {
		s.tb.Fatalf("start redis-server: %v", err)
	}
	deadline := time.Now().Add(startTimeout)
	for {
		if s.tls && s.accepts() || !s.tls && s.ping() {
			return
		}
		if time.Now().After(deadline) {
			s.tb.Fatalf("redis-server on %s did not answer PING within %s", s.Addr, startTimeout)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// accepts reports whether the port takes a TCP connection.
func (s *Server) accepts() bool {
	c, err := net.DialTimeout("tcp", s.Addr, time.Second)
	if err == nil {
		c.Close()
	}
	return err == nil
}

func (s *Server) ping() bool {
	c, err := net.DialTimeout("tcp", s.Addr, time.Second)
	if err != nil {
		return false
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(time.Second))
	if _, err := c.Write([]byte("PING\r\n")); err != nil {
		return false
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	return err == nil && (strings.HasPrefix(line, "+PONG") || strings.HasPrefix(line, "-NOAUTH")) // up, maybe with requirepass
}

// Kill stops redis-server at once (SIGKILL); its data is gone.
func (s *Server) Kill() {
	if s.cmd == nil || s.cmd.Process == nil {
		return
	}
	_ = s.cmd.Process.Signal(os.Kill)
	_ = s.cmd.Wait()
	s.cmd = nil
}

// Restart kills redis-server and starts a new one on the same port, with
// the same arguments (without persistence: empty).
func (s *Server) Restart() {
	s.tb.Helper()
	s.Kill()
	s.start()
}

// Do sends one command (inline arguments, no spaces inside) and returns
// the first line of the reply, for tests that need a quick CLIENT KILL or
// PUBSUB query without a client library.
func (s *Server) Do(args ...string) string {
	s.tb.Helper()
	c, err := net.DialTimeout("tcp", s.Addr, time.Second)
	if err != nil {
		s.tb.Fatalf("redis %s: %v", s.Addr, err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	var cmd strings.Builder
	fmt.Fprintf(&cmd, "*%d\r\n", len(args))
	for _, a := range args {
		fmt.Fprintf(&cmd, "$%d\r\n%s\r\n", len(a), a)
	}
	if _, err := c.Write([]byte(cmd.String())); err != nil {
		s.tb.Fatalf("redis %s: %v", s.Addr, err)
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		s.tb.Fatalf("redis %s: %v", s.Addr, err)
	}
	return strings.TrimRight(line, "\r\n")
}
