package redisclients

import (
	"bufio"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

// libraryPath is fraised's Redis library, loaded as the broker loads it.
const libraryPath = "../../broker/redis/fraised.lua"

// startTimeout bounds waiting for redis-server to answer PING: generous,
// the machine is shared.
const startTimeout = 10 * time.Second

// server is a redis-server started by a benchmark or test.
type server struct {
	addr string
	cmd  *exec.Cmd
}

// startRedis starts redis-server on a free loopback port without
// persistence, loads fraised.lua (FUNCTION LOAD REPLACE) and kills the
// server when tb ends.
func startRedis(tb testing.TB) *server {
	tb.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		tb.Fatal("redis-server is not installed (apt-get install redis-server): these benchmarks need a real Redis")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	_, port, _ := net.SplitHostPort(addr)
	cmd := exec.Command("redis-server", "--port", port, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
		"--dir", tb.TempDir(), "--protected-mode", "no")
	if err := cmd.Start(); err != nil {
		tb.Fatalf("start redis-server: %v", err)
	}
	s := &server{addr: addr, cmd: cmd}
	tb.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	deadline := time.Now().Add(startTimeout)
	for !s.answers() {
		if time.Now().After(deadline) {
			tb.Fatalf("redis-server on %s did not answer PING within %s", addr, startTimeout)
		}
		time.Sleep(10 * time.Millisecond)
	}
	lib, err := os.ReadFile(libraryPath)
	if err != nil {
		tb.Fatalf("read fraised's Redis library (run from perf/redisclients): %v", err)
	}
	if reply := s.do(tb, "FUNCTION", "LOAD", "REPLACE", string(lib)); reply != "$7" {
		tb.Fatalf("FUNCTION LOAD REPLACE %s: %q, want the library's name", libraryPath, reply)
	}
	return s
}

func (s *server) answers() bool {
	c, err := net.DialTimeout("tcp", s.addr, time.Second)
	if err != nil {
		return false
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(time.Second))
	if _, err := c.Write([]byte("PING\r\n")); err != nil {
		return false
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	return err == nil && strings.HasPrefix(line, "+PONG")
}

// do sends one command (RESP array of bulk strings) on a new connection
// and returns the first line of the reply, without its CRLF.
func (s *server) do(tb testing.TB, args ...string) string {
	tb.Helper()
	c, err := net.DialTimeout("tcp", s.addr, time.Second)
	if err != nil {
		tb.Fatalf("redis %s: %v", s.addr, err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Write(appendCommand(nil, args...)); err != nil {
		tb.Fatalf("redis %s: %v", s.addr, err)
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		tb.Fatalf("redis %s %s: %v", s.addr, args[0], err)
	}
	return strings.TrimRight(line, "\r\n")
}

// appendCommand appends args as a RESP array of bulk strings.
func appendCommand(dst []byte, args ...string) []byte {
	dst = append(dst, '*')
	dst = strconv.AppendInt(dst, int64(len(args)), 10)
	dst = append(dst, "\r\n"...)
	for _, a := range args {
		dst = append(dst, '$')
		dst = strconv.AppendInt(dst, int64(len(a)), 10)
		dst = append(dst, "\r\n"...)
		dst = append(dst, a...)
		dst = append(dst, "\r\n"...)
	}
	return dst
}

// numsub returns PUBSUB NUMSUB's count for channel.
func (s *server) numsub(tb testing.TB, channel string) int {
	tb.Helper()
	c, err := net.DialTimeout("tcp", s.addr, time.Second)
	if err != nil {
		tb.Fatalf("redis %s: %v", s.addr, err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Write(appendCommand(nil, "PUBSUB", "NUMSUB", channel)); err != nil {
		tb.Fatal(err)
	}
	r := bufio.NewReader(c)
	var last string
	for range 5 { // *2, $len, channel, :count
		line, err := r.ReadString('\n')
		if err != nil {
			tb.Fatalf("PUBSUB NUMSUB: %v", err)
		}
		if last = strings.TrimRight(line, "\r\n"); strings.HasPrefix(last, ":") {
			n, _ := strconv.Atoi(last[1:])
			return n
		}
	}
	tb.Fatalf("PUBSUB NUMSUB: unexpected reply ending %q", last)
	return 0
}

// waitSubscribed waits until channel has n subscribers.
func (s *server) waitSubscribed(tb testing.TB, channel string, n int) {
	tb.Helper()
	deadline := time.Now().Add(startTimeout)
	for s.numsub(tb, channel) != n {
		if time.Now().After(deadline) {
			tb.Fatalf("%s has not %d subscribers after %s", channel, n, startTimeout)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
