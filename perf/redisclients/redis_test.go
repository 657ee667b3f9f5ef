package redisclients

import (
	"bufio"
	"net"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/fraised/fraised/internal/redistest"
)

// libraryPath is fraised's Redis library, loaded as the broker loads it.
const libraryPath = "../../broker/redis/fraised.lua"

// waitTimeout bounds waiting for a channel's subscribers: generous, the
// machine is shared.
const waitTimeout = 10 * time.Second

// server is a redis-server (internal/redistest's, as the broker's own
// tests start it) with fraised's library loaded.
type server struct{ *redistest.Server }

// startRedis starts redis-server on a free loopback port without
// persistence (redistest.Start), loads fraised.lua (FUNCTION LOAD
// REPLACE) and kills the server when tb ends.
func startRedis(tb testing.TB) *server {
	tb.Helper()
	r := redistest.Start(tb)
	lib, err := os.ReadFile(libraryPath)
	if err != nil {
		tb.Fatalf("read fraised's Redis library (run from perf/redisclients): %v", err)
	}
	if reply := r.Do("FUNCTION", "LOAD", "REPLACE", string(lib)); reply != "$7" {
		tb.Fatalf("FUNCTION LOAD REPLACE %s: %q, want the library's name", libraryPath, reply)
	}
	return &server{r}
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
	c, err := net.DialTimeout("tcp", s.Addr, time.Second)
	if err != nil {
		tb.Fatalf("redis %s: %v", s.Addr, err)
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
	deadline := time.Now().Add(waitTimeout)
	for s.numsub(tb, channel) != n {
		if time.Now().After(deadline) {
			tb.Fatalf("%s has not %d subscribers after %s", channel, n, waitTimeout)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
